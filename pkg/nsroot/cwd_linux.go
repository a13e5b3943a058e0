package nsroot

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/spec"
)

// The command runs in the caller's very working directory, or chos fails:
// never in another directory of the same name. A cached view shows the
// host's mounts as they were when it was built (and those that propagated
// since): a file system mounted later where nothing propagates is not in
// it, and the path shows what lies underneath.

// CwdID is the identity of this process's working directory, learned
// where root may be denied as the caller (AsCallerWhereDenied; caller nil
// when chos does not hold root for a caller).
func CwdID(caller *spec.Credentials) (*spec.FileID, error) {
	var st unix.Stat_t
	err := AsCallerWhereDenied(caller, func() error {
		// Through /proc: needs no search permission on the directory itself.
		if err := unix.Stat("/proc/self/cwd", &st); err != nil {
			return unix.Stat(".", &st)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("inspecting the working directory: %w", err)
	}
	return &spec.FileID{Dev: st.Dev, Ino: st.Ino}, nil
}

// errOtherDir is a working directory that exists in the view but is not
// the caller's.
type errOtherDir struct{ got, want spec.FileID }

func (e *errOtherDir) Error() string {
	return fmt.Sprintf("the view has another directory there (device %d inode %d; yours: device %d inode %d), which chos does not run the command in",
		e.got.Dev, e.got.Ino, e.want.Dev, e.want.Ino)
}

// isDir checks that dir is the directory id names (nil: any), also when
// its path is longer than PATH_MAX.
func isDir(dir string, id *spec.FileID) error {
	if id == nil {
		return nil
	}
	var st unix.Stat_t
	if err := statDir(dir, &st); err != nil {
		return err
	}
	if got := (spec.FileID{Dev: st.Dev, Ino: st.Ino}); got != *id {
		return &errOtherDir{got, *id}
	}
	return nil
}

// Getwd is the path of this process's working directory, also when it is
// longer than PATH_MAX (4096 bytes, which deep project trees reach) and
// getcwd(2) fails: then it is found by walking up through "..", as the C
// library's getcwd did before the system call (and does after ERANGE),
// where root may be denied as the caller (see CwdID).
func Getwd(caller *spec.Credentials) (string, error) {
	dir, err := unix.Getwd()
	if !errors.Is(err, unix.ENAMETOOLONG) && !errors.Is(err, unix.ERANGE) {
		return dir, err
	}
	err = AsCallerWhereDenied(caller, func() (err error) {
		dir, err = walkUp()
		return err
	})
	return dir, err
}

// walkUp names the working directory by finding each directory in its
// parent, from "." up to the root.
func walkUp() (string, error) {
	cur, err := unix.Open(".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer func() { unix.Close(cur) }()
	var names []string
	for {
		var st, pst unix.Stat_t
		if err := unix.Fstat(cur, &st); err != nil {
			return "", err
		}
		parent, err := unix.Openat(cur, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", err
		}
		unix.Close(cur)
		cur = parent
		if err := unix.Fstat(parent, &pst); err != nil {
			return "", err
		}
		if pst.Dev == st.Dev && pst.Ino == st.Ino {
			break // the root is its own parent
		}
		name, err := entryOf(parent, st)
		if err != nil {
			return "", err
		}
		names = append(names, name)
	}
	var b strings.Builder
	for i := len(names) - 1; i >= 0; i-- {
		b.WriteString("/" + names[i])
	}
	if b.Len() == 0 {
		return "/", nil
	}
	return b.String(), nil
}

// entryOf is the name under which directory dir (an open descriptor) has
// the file st: the entry with its device and inode (a mount point's entry
// is the directory under the mount, so each is looked at).
func entryOf(dir int, st unix.Stat_t) (string, error) {
	// (a descriptor of its own: reading moves the offset)
	fd, err := unix.Openat(dir, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	f := os.NewFile(uintptr(fd), "..")
	defer f.Close()
	for {
		names, err := f.Readdirnames(256)
		for _, n := range names {
			var est unix.Stat_t
			if unix.Fstatat(dir, n, &est, unix.AT_SYMLINK_NOFOLLOW) == nil && est.Dev == st.Dev && est.Ino == st.Ino {
				return n, nil
			}
		}
		if err != nil {
			return "", fmt.Errorf("the working directory is not in its parent (removed?): %w", unix.ENOENT)
		}
	}
}

// openDir opens directory dir (O_PATH), also when its path is longer than
// PATH_MAX: one piece at a time below PATH_MAX, each relative to the last.
func openDir(dir string) (int, error) {
	const flags = unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC
	at, rest := unix.AT_FDCWD, dir
	for len(rest) >= unix.PathMax {
		cut := strings.LastIndexByte(rest[:unix.PathMax-1], '/')
		if cut <= 0 {
			return -1, unix.ENAMETOOLONG // a name longer than any file system allows
		}
		fd, err := unix.Openat(at, rest[:cut], flags, 0)
		if at != unix.AT_FDCWD {
			unix.Close(at)
		}
		if err != nil {
			return -1, err
		}
		at, rest = fd, rest[cut+1:]
	}
	fd, err := unix.Openat(at, rest, flags, 0)
	if at != unix.AT_FDCWD {
		unix.Close(at)
	}
	return fd, err
}

// statDir stats dir, also when its path is longer than PATH_MAX (then
// through openDir).
func statDir(dir string, st *unix.Stat_t) error {
	if len(dir) < unix.PathMax {
		return unix.Stat(dir, st)
	}
	fd, err := openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fstat(fd, st)
}

// chdir changes to dir, also when its path is longer than PATH_MAX.
func chdir(dir string) error {
	if len(dir) < unix.PathMax {
		return unix.Chdir(dir)
	}
	fd, err := openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fchdir(fd)
}

// enterViewShowingDir enters p's view (EnterView). When that is a cached
// view that does not show the caller's working directory (p.DirID), it
// goes back to the caller's mount namespace and builds a private view
// instead, which copies the mounts the caller has now.
func enterViewShowingDir(p *spec.Plan, mode Mode) (use ViewUse, notes []spec.Note, err error) {
	if p.Cache == nil || mode != Privileged || p.DirID == nil {
		return enterView(&p.View, p.Layer, mode)
	}
	caller, err := os.Open("/proc/thread-self/ns/mnt")
	if err != nil {
		return "", nil, fmt.Errorf("opening your mount namespace: %w", err)
	}
	defer caller.Close()
	if use, notes, err = enterView(&p.View, p.Layer, mode); err != nil {
		return use, notes, err
	}
	// Looked up with the caller's rights, as the chdir will be.
	shown := AsUser(p.Creds.UID, p.Creds.GID, p.Creds.Groups, func() error { return isDir(p.Dir, p.DirID) })
	if err := holdPrivilege(); err != nil { // (AsUser gave the fsgid back)
		return use, notes, err
	}
	var other *errOtherDir
	if shown == nil || !(errors.As(shown, &other) || errors.Is(shown, unix.ENOENT) || errors.Is(shown, unix.ENOTDIR)) {
		return use, notes, nil // shown, or not for a reason a private view would change
	}
	if err := unix.Setns(int(caller.Fd()), unix.CLONE_NEWNS); err != nil {
		return use, notes, fmt.Errorf("returning to your mount namespace: %w", err)
	}
	notes = append(notes, spec.Notef("the cached view of tree %s does not show your working directory %s (mounted after the view was built?): using a private view", p.Tree, p.Dir))
	private := p.View
	private.Cache = nil
	use, more, err := enterView(&private, p.Layer, mode)
	return use, append(notes, more...), err
}
