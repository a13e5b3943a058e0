//go:build chos_linkname

package nsroot

import (
	"runtime"
	"syscall"
	_ "unsafe" // for go:linkname

	"golang.org/x/sys/unix"
)

// The child that joins a kept view is started as package syscall's
// ForkExec starts its children: with vfork (CLONE_VM|CLONE_VFORK), sharing
// this process's memory until it executes the command, so that nothing of
// it is copied (page tables, then every page this process writes while the
// command runs) and no other processor's TLB is flushed to write-protect
// it. This process waits, its other threads running on, until the child
// has executed the command or ended. As in syscall.forkAndExecInChild1,
// the system call goes through syscall.rawVforkSyscall (the child must not
// overwrite the return address this process returns through), called
// directly from the frame in which the child goes on and never returns.
// (It has no linkname of its own in package syscall: hence -checklinkname=0
// and the build tag chos_linkname, under which every launch that joins is
// built, see callerNofile.)

//go:linkname rawVforkSyscall syscall.rawVforkSyscall
func rawVforkSyscall(trap, a1, a2, a3 uintptr) (r1 uintptr, err syscall.Errno)

// vforkFlags: clone(2) as vfork(2), the exit signal SIGCHLD.
const vforkFlags = unix.CLONE_VM | unix.CLONE_VFORK | uintptr(syscall.SIGCHLD)

// forkJoin starts the child that carries out s (joinChild) and returns its
// pid once the child has executed the command or stopped (its report then
// waits in the pipe).
func forkJoin(s *joinSpec) (pid uintptr, err1 syscall.Errno) {
	syscall.ForkLock.Lock()
	pid, err1, locked := vforkJoin(s)
	if locked {
		runtimeAfterFork()
	}
	syscall.ForkLock.Unlock()
	return pid, err1
}

// vforkJoin is forkJoin's fork: the parent returns from it at once, using
// nothing of its frame but what rawVforkSyscall wrote after the child was
// replaced (the child goes on in this very frame).
//
//go:noinline
//go:norace
//go:nocheckptr
func vforkJoin(s *joinSpec) (pid uintptr, err1 syscall.Errno, locked bool) {
	runtimeBeforeFork()
	locked = true
	if runtime.GOARCH == "s390x" {
		pid, err1 = rawVforkSyscall(syscall.SYS_CLONE, 0, vforkFlags, 0)
	} else {
		pid, err1 = rawVforkSyscall(syscall.SYS_CLONE, vforkFlags, 0, 0)
	}
	if err1 != 0 || pid != 0 {
		return
	}
	runtimeAfterForkInChild()
	joinChild(s)
	return // (never reached)
}
