package nsroot

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A keeper must not be the launch's child: the launch's process is the
// caller's, whose children (the command's parent's wait(2) aside) a
// keeper must not add to, and a keeper outlives it. So the launch forks
// (as forkJoin does) a child that forks the keeper's process and exits at
// once, leaving it to init (or the caller's subreaper). That process makes
// its own user and mount namespace as `unshare --map-current-user` does
// (unshare(2), then its own uid_map and gid_map, setgroups denied), keeps
// CAP_SYS_ADMIN and CAP_SETPCAP as ambient capabilities so that they
// survive the exec (as ownNamespaces does for a user-namespace child), and
// executes chos as the keeper, in a session of its own.

// spawnSpec is what the keeper's process does, prepared before the fork.
type spawnSpec struct {
	// src are the descriptors given to the keeper as 0, 1, 2..., all
	// duplicated above len(src) so that none is overwritten on the way.
	src                       []uintptr
	setgroups, uidMap, gidMap *byte
	deny, uidLine, gidLine    []byte
	capHdr                    unix.CapUserHeader
	capData                   [2]unix.CapUserData
	exe                       *byte
	argv, envv                []*byte
}

// prepareSpawn lays out the start of chos with argv and files as its
// descriptors 0, 1, 2...
func prepareSpawn(files []*os.File, argv []string) (*spawnSpec, error) {
	s := &spawnSpec{deny: []byte("deny"),
		uidLine: []byte(strconv.Itoa(os.Getuid()) + " " + strconv.Itoa(os.Getuid()) + " 1\n"),
		gidLine: []byte(strconv.Itoa(os.Getgid()) + " " + strconv.Itoa(os.Getgid()) + " 1\n")}
	s.capHdr.Version = unix.LINUX_CAPABILITY_VERSION_3
	for _, f := range files {
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, len(files))
		if err != nil {
			s.close()
			return nil, err
		}
		s.src = append(s.src, uintptr(fd))
	}
	var err error
	for _, p := range []struct {
		to   **byte
		path string
	}{{&s.setgroups, "/proc/self/setgroups"}, {&s.uidMap, "/proc/self/uid_map"}, {&s.gidMap, "/proc/self/gid_map"}, {&s.exe, "/proc/self/exe"}} {
		if *p.to, err = unix.BytePtrFromString(p.path); err != nil {
			s.close()
			return nil, err
		}
	}
	if s.argv, err = syscall.SlicePtrFromStrings(argv); err != nil {
		s.close()
		return nil, err
	}
	// The keeper's own environment: its Go runtime on one processor (it
	// serves a few connections, and its threads count against the user's
	// process limit: see keeperTasks).
	if s.envv, err = syscall.SlicePtrFromStrings([]string{"GOMAXPROCS=1"}); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *spawnSpec) close() {
	for _, fd := range s.src {
		unix.Close(int(fd))
	}
	s.src = nil
}

// spawnDetached starts s's process and waits for the child in between.
func spawnDetached(s *spawnSpec) error {
	pid, errno := forkSpawn(s)
	if errno != 0 {
		return errno
	}
	ws, err := reapChild(int(pid))
	if err != nil {
		return err
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return fmt.Errorf("forking: %w", syscall.Errno(ws.ExitStatus()))
	}
	return nil
}

// forkSpawn forks the child that forks s's process and exits.
//
//go:noinline
//go:norace
//go:nocheckptr
func forkSpawn(s *spawnSpec) (pid uintptr, err1 syscall.Errno) {
	syscall.ForkLock.Lock()
	defer syscall.ForkLock.Unlock()
	runtimeBeforeFork()
	pid, err1 = rawFork()
	if err1 != 0 || pid != 0 {
		runtimeAfterFork()
		return pid, err1
	}
	runtimeAfterForkInChild()
	spawnChild(s)
	return 0, 0 // (never reached)
}

// rawFork is fork(2), without the runtime.
//
//go:nosplit
func rawFork() (pid uintptr, err syscall.Errno) {
	if runtime.GOARCH == "s390x" {
		pid, _, err = syscall.RawSyscall6(syscall.SYS_CLONE, 0, uintptr(syscall.SIGCHLD), 0, 0, 0, 0)
	} else {
		pid, _, err = syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	}
	return pid, err
}

// spawnChild forks the keeper's process and exits: with 0, or the errno
// of the fork.
//
//go:nosplit
//go:norace
//go:nocheckptr
func spawnChild(s *spawnSpec) {
	pid, e := rawFork()
	if e != 0 || pid != 0 {
		for {
			syscall.RawSyscall(syscall.SYS_EXIT_GROUP, uintptr(e), 0, 0)
		}
	}
	spawnKeeperProcess(s)
}

// rawWriteFile writes data to the file at path (a /proc/self file of the
// user namespace just made), after a fork.
//
//go:nosplit
//go:norace
//go:nocheckptr
func rawWriteFile(path *byte, data []byte) syscall.Errno {
	fd, _, e := syscall.RawSyscall6(syscall.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(path)), unix.O_WRONLY|unix.O_CLOEXEC, 0, 0, 0)
	if e != 0 {
		return e
	}
	_, _, e = syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&data[0])), uintptr(len(data)))
	syscall.RawSyscall(syscall.SYS_CLOSE, fd, 0, 0)
	return e
}

// spawnKeeperProcess is the keeper's process until it executes chos; it
// never returns (a failure ends it, and the launch sees no result).
//
//go:nosplit
//go:norace
//go:nocheckptr
func spawnKeeperProcess(s *spawnSpec) {
	var (
		e syscall.Errno
		i int
	)
	if _, _, e = syscall.RawSyscall(syscall.SYS_SETSID, 0, 0, 0); e != 0 {
		goto fail
	}
	if _, _, e = syscall.RawSyscall(syscall.SYS_UNSHARE, unix.CLONE_NEWUSER|unix.CLONE_NEWNS, 0, 0); e != 0 {
		goto fail
	}
	if e = rawWriteFile(s.setgroups, s.deny); e != 0 {
		goto fail
	}
	if e = rawWriteFile(s.gidMap, s.gidLine); e != 0 {
		goto fail
	}
	if e = rawWriteFile(s.uidMap, s.uidLine); e != 0 {
		goto fail
	}
	// The two capabilities the keeper builds with, through the exec.
	if _, _, e = syscall.RawSyscall(syscall.SYS_CAPGET, uintptr(unsafe.Pointer(&s.capHdr)), uintptr(unsafe.Pointer(&s.capData[0])), 0); e != 0 {
		goto fail
	}
	s.capData[0].Inheritable |= 1<<unix.CAP_SYS_ADMIN | 1<<unix.CAP_SETPCAP
	if _, _, e = syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&s.capHdr)), uintptr(unsafe.Pointer(&s.capData[0])), 0); e != 0 {
		goto fail
	}
	if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, unix.CAP_SYS_ADMIN, 0, 0, 0); e != 0 {
		goto fail
	}
	if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, unix.CAP_SETPCAP, 0, 0, 0); e != 0 {
		goto fail
	}
	for i = 0; i < len(s.src); i++ {
		if _, _, e = syscall.RawSyscall(syscall.SYS_DUP3, s.src[i], uintptr(i), 0); e != 0 {
			goto fail
		}
	}
	_, _, e = syscall.RawSyscall(syscall.SYS_EXECVE, uintptr(unsafe.Pointer(s.exe)),
		uintptr(unsafe.Pointer(&s.argv[0])), uintptr(unsafe.Pointer(&s.envv[0])))
fail:
	for {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, uintptr(StatusFailed), 0, 0)
	}
}
