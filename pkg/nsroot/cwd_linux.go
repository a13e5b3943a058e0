package nsroot

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/spec"
)

// The command runs in the caller's very working directory, or chos fails:
// never in another directory of the same name. A cached view shows the
// host's mounts as they were when it was built (and those that propagated
// since): a file system mounted later where nothing propagates is not in
// it, and the path shows what lies underneath.

// CwdID is the identity of this process's working directory.
func CwdID() (*spec.FileID, error) {
	var st unix.Stat_t
	// Through /proc: needs no search permission on the directory itself.
	err := unix.Stat("/proc/self/cwd", &st)
	if err != nil {
		err = unix.Stat(".", &st)
	}
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

// isDir checks that dir is the directory id names (nil: any).
func isDir(dir string, id *spec.FileID) error {
	if id == nil {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return err
	}
	if got := (spec.FileID{Dev: st.Dev, Ino: st.Ino}); got != *id {
		return &errOtherDir{got, *id}
	}
	return nil
}

// enterViewShowingDir enters p's view (EnterView). When that is a cached
// view that does not show the caller's working directory (p.DirID), it
// goes back to the caller's mount namespace and builds a private view
// instead, which copies the mounts the caller has now.
func enterViewShowingDir(p *spec.Plan, mode Mode) (notes []spec.Note, err error) {
	if p.Cache == nil || mode != Privileged || p.DirID == nil {
		return enterView(&p.View, p.Layer, mode)
	}
	caller, err := os.Open("/proc/thread-self/ns/mnt")
	if err != nil {
		return nil, fmt.Errorf("opening your mount namespace: %w", err)
	}
	defer caller.Close()
	if notes, err = enterView(&p.View, p.Layer, mode); err != nil {
		return notes, err
	}
	// Looked up with the caller's rights, as the chdir will be.
	shown := AsUser(p.Creds.UID, p.Creds.GID, p.Creds.Groups, func() error { return isDir(p.Dir, p.DirID) })
	if err := holdPrivilege(); err != nil { // (AsUser gave the fsgid back)
		return notes, err
	}
	var other *errOtherDir
	if shown == nil || !(errors.As(shown, &other) || errors.Is(shown, unix.ENOENT) || errors.Is(shown, unix.ENOTDIR)) {
		return notes, nil // shown, or not for a reason a private view would change
	}
	if err := unix.Setns(int(caller.Fd()), unix.CLONE_NEWNS); err != nil {
		return notes, fmt.Errorf("returning to your mount namespace: %w", err)
	}
	notes = append(notes, spec.Notef("the cached view of tree %s does not show your working directory %s (mounted after the view was built?): using a private view", p.Tree, p.Dir))
	private := p.View
	private.Cache = nil
	more, err := enterView(&private, p.Layer, mode)
	return append(notes, more...), err
}
