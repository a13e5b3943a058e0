package trust

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
)

// Permits says whether a user (uid, with the groups gids) may access p
// with mode (R_OK, W_OK, X_OK bits as access(2) takes them), judged from
// the permission bits of p and of every directory on the way (search),
// after resolving links as root sees them. It is for root acting on a
// user's behalf, where access(2) would check root. ACLs are not read: a
// permission only an ACL grants is refused. The error is a
// *os.PathError wrapping EACCES that names the path denied.
func Permits(p string, mode uint32, uid int, gids []int) error {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return err
	}
	allowed := func(path string, want uint32) error {
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			return &os.PathError{Op: "stat", Path: path, Err: err}
		}
		bits := st.Mode & 0o7 // others
		switch {
		case int(st.Uid) == uid:
			bits = (st.Mode >> 6) & 0o7
		case slices.Contains(gids, int(st.Gid)):
			bits = (st.Mode >> 3) & 0o7
		}
		if bits&want != want {
			return &os.PathError{Op: "access", Path: path, Err: syscall.EACCES}
		}
		return nil
	}
	// Every directory above it must let the user search it.
	for d := filepath.Dir(real); ; d = filepath.Dir(d) {
		if err := allowed(d, 1); err != nil {
			return err
		}
		if d == "/" {
			break
		}
	}
	return allowed(real, mode)
}
