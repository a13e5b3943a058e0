package nsroot

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/spec"
)

// The credential calls below are raw, per-thread system calls on purpose:
// Go's syscall.Setresuid changes every thread of the process, while chos
// changes only the locked thread it will exec from, and, in AsUser, only
// for the time of one lookup.

func setresuid(r, e, s int) error {
	return rawErr(unix.RawSyscall(unix.SYS_SETRESUID, uintptr(r), uintptr(e), uintptr(s)))
}
func setresgid(r, e, s int) error {
	return rawErr(unix.RawSyscall(unix.SYS_SETRESGID, uintptr(r), uintptr(e), uintptr(s)))
}

func setgroups(gids []int) error {
	list := make([]uint32, len(gids))
	for i, g := range gids {
		list[i] = uint32(g)
	}
	var p unsafe.Pointer
	if len(list) > 0 {
		p = unsafe.Pointer(&list[0])
	}
	return rawErr(unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(list)), uintptr(p), 0))
}

func rawErr(_, _ uintptr, e unix.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

// keep is the value that leaves an id unchanged in setresuid/setresgid.
const keep = -1

// AsUser runs fn with the calling thread's effective uid, gid and groups
// set to a user's, so that files are opened with that user's own rights
// (their ~/.chos, a tree's /etc/chos.conf): a user's input is only ever a
// lookup key, never read with root's rights. The thread must be locked and
// hold root's rights (setuid, or root acting for a user); they are
// restored after fn.
func AsUser(uid, gid int, groups []int, fn func() error) error {
	saved, err := unix.Getgroups() // this thread's
	if err != nil {
		return fmt.Errorf("reading groups: %w", err)
	}
	_, egid, _ := unix.Getresgid()
	if err := setgroups(groups); err != nil {
		return fmt.Errorf("switching to the groups of uid %d for a lookup: %w", uid, err)
	}
	if err := setresgid(keep, gid, keep); err != nil {
		restoreRoot(saved, egid)
		return fmt.Errorf("switching to gid %d for a lookup: %w", gid, err)
	}
	if err := setresuid(keep, uid, keep); err != nil {
		restoreRoot(saved, egid)
		return fmt.Errorf("switching to uid %d for a lookup: %w", uid, err)
	}
	ferr := fn()
	restoreRoot(saved, egid)
	return ferr
}

// AsCallerWhereDenied runs a lookup fn with this thread's own rights and,
// where they are denied and caller is set (chos holds root for a caller),
// again as the caller on a thread of its own. Some file systems refuse
// root, or anyone whose ids are not all their owner's: a user's FUSE mount
// without allow_other checks the real, effective and saved uid and gid
// (fuse_allow_current_process), NFS maps root to nobody (root_squash).
// There AsUser, which keeps root's saved uid to come back, is denied too.
// The lookup must not depend on the thread's root or mount namespace (the
// new thread has the process's).
func AsCallerWhereDenied(caller *spec.Credentials, fn func() error) error {
	err := fn()
	if caller == nil || !(errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)) {
		return err
	}
	return onCallersThread(*caller, fn)
}

// onCallersThread runs fn on a thread whose real, effective and saved ids
// and groups are all the caller's, and which ends with fn: it never has
// root's rights again, and nothing else ever runs on it.
func onCallersThread(c spec.Credentials, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		// Never unlocked: the runtime ends the thread with the goroutine.
		runtime.LockOSThread()
		if err := setgroups(c.Groups); err != nil {
			done <- fmt.Errorf("switching to the groups of uid %d for a lookup: %w", c.UID, err)
			return
		}
		if err := setresgid(c.GID, c.GID, c.GID); err != nil {
			done <- fmt.Errorf("switching to gid %d for a lookup: %w", c.GID, err)
			return
		}
		if err := setresuid(c.UID, c.UID, c.UID); err != nil {
			done <- fmt.Errorf("switching to uid %d for a lookup: %w", c.UID, err)
			return
		}
		done <- fn()
	}()
	return <-done
}

// restoreRoot gives the thread root's euid, and its egid and groups back.
func restoreRoot(groups []int, egid int) {
	// Cannot fail with a saved uid of 0; never go on half-switched.
	if err := setresuid(keep, 0, keep); err != nil {
		panic(fmt.Sprintf("chos: restoring euid 0 after a lookup: %v", err))
	}
	if err := setresgid(keep, egid, keep); err != nil {
		panic(fmt.Sprintf("chos: restoring egid %d after a lookup: %v", egid, err))
	}
	if err := setgroups(groups); err != nil {
		panic(fmt.Sprintf("chos: restoring groups after a lookup: %v", err))
	}
}

// setCredentials gives the thread the caller's ids and groups and, unless
// the caller is root, no capability in any set and no way to regain one
// (but through the setuid programs of a `setuid = allow` tree, whose
// bounding set is kept for them).
func setCredentials(c spec.Credentials) error {
	if !c.KeepCaps {
		if !c.KeepBounding {
			if err := dropBounding(); err != nil {
				return err
			}
		}
		if err := clearAmbient(); err != nil {
			return err
		}
	}
	if err := setgroups(c.Groups); err != nil {
		return fmt.Errorf("setting groups: %w", err)
	}
	if err := setresgid(c.GID, c.GID, c.GID); err != nil {
		return fmt.Errorf("setting gid %d: %w", c.GID, err)
	}
	if err := setresuid(c.UID, c.UID, c.UID); err != nil {
		return fmt.Errorf("setting uid %d: %w", c.UID, err)
	}
	if !c.KeepCaps {
		// Effective and permitted went with the uid change; inheritable
		// must be cleared by hand.
		if err := clearCapSets(); err != nil {
			return err
		}
		if err := verifyDropped(c); err != nil {
			return err
		}
	}
	if c.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("setting no_new_privs: %w", err)
		}
	}
	return nil
}

// verifyDropped checks, after the fact, that no privilege is left: a launch
// that cannot prove it is not root does not exec.
func verifyDropped(c spec.Credentials) error {
	r, e, s := unix.Getresuid() // reads this thread's ids
	if r != c.UID || e != c.UID || s != c.UID {
		return fmt.Errorf("uid is %d/%d/%d after switching to %d", r, e, s, c.UID)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading capabilities: %w", err)
	}
	for _, d := range data {
		if d.Effective != 0 || d.Permitted != 0 || d.Inheritable != 0 {
			return fmt.Errorf("capabilities left after switching to uid %d", c.UID)
		}
	}
	return nil
}

// dropBounding empties the bounding set, so that nothing the command
// executes can be given a capability.
func dropBounding() error {
	for capNo := 0; ; capNo++ {
		err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(capNo), 0, 0, 0)
		if errors.Is(err, unix.EINVAL) {
			break // past the last capability the kernel knows
		}
		if err != nil {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", capNo, err)
		}
	}
	return nil
}

func clearAmbient() error {
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	return nil
}

func clearCapSets() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clearing capabilities: %w", err)
	}
	return nil
}

// dropCapabilities leaves a user-namespace child with no capability in any
// set, as a setuid launch leaves the command.
func dropCapabilities() error {
	if err := dropBounding(); err != nil {
		return err
	}
	if err := clearAmbient(); err != nil {
		return err
	}
	return clearCapSets()
}

// DropPrivilege gives up root for good, in every thread, before chos has
// read anything with root's rights; the process is then an ordinary one of
// the caller's (dumpable again, so that it can re-execute itself).
func DropPrivilege(uid int) error {
	// syscall.Setresuid changes every thread of the process.
	if err := syscall.Setresuid(uid, uid, uid); err != nil {
		return fmt.Errorf("dropping privilege: %w", err)
	}
	if r, e, s := unix.Getresuid(); r != uid || e != uid || s != uid {
		return fmt.Errorf("dropping privilege: uid is %d/%d/%d", r, e, s)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("making chos dumpable after dropping privilege: %w", err)
	}
	return nil
}
