//go:build !amd64

package nsroot

import "syscall"

// forkJoin starts the child that carries out s (joinChild) and returns its
// pid. Built without chos_linkname, a launch never joins a kept view
// (callerNofile cannot tell the limit to restore); this plain fork keeps
// the package whole.
//
//go:noinline
//go:norace
//go:nocheckptr
func forkJoin(s *joinSpec) (pid uintptr, err1 syscall.Errno) {
	syscall.ForkLock.Lock()
	defer syscall.ForkLock.Unlock()
	runtimeBeforeFork()
	pid, err1 = rawFork()
	if err1 != 0 || pid != 0 {
		runtimeAfterFork()
		return pid, err1
	}
	runtimeAfterForkInChild()
	joinChild(s)
	return 0, 0 // (never reached)
}
