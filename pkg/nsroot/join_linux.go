package nsroot

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/spec"
)

// A launch enters a kept view (keeper_linux.go) by joining the keeper's
// user and mount namespaces. The kernel lets only a single-threaded process
// join a user namespace (setns(2)), which a Go program never is once its
// runtime runs. So the launch forks itself as package syscall's ForkExec
// does (the runtime's fork hooks, a raw clone, and in the child only raw
// system calls on data prepared before the fork: no allocation, no stack
// growth, no write barrier), and the child joins the namespaces, becomes
// the command's process (no capability, no_new_privs, the working
// directory, what chos was started with) and executes the command: the
// same steps, in the same order, as Launch in a user-namespace child, with
// no second Go start and no view to build.

//go:linkname runtimeBeforeFork syscall.runtime_BeforeFork
func runtimeBeforeFork()

//go:linkname runtimeAfterFork syscall.runtime_AfterFork
func runtimeAfterFork()

//go:linkname runtimeAfterForkInChild syscall.runtime_AfterForkInChild
func runtimeAfterForkInChild()

// Where a joining child stopped (joinReport.Stage).
const (
	joinPdeathsig uint32 = iota + 1
	joinUserNS
	joinMountNS
	joinCaps
	joinNoNewPrivs
	// joinDirNotShown: the kept view lacks the caller's working directory
	// (mounted after the view was built?): the launch builds a private one.
	joinDirNotShown
	joinDir      // Errno from chdir, or Dev and Ino of another directory
	joinNotFound // Index, Errno (Index -1: not on PATH)
	joinNotExec  // Index, Errno (0: a directory)
	joinSignals
	joinLimit
	joinMask
	joinExec // Index, Errno
)

// joinReport is what a joining child writes on its report pipe when it
// stops before executing the command (nothing when it executes it).
type joinReport struct {
	Stage    uint32
	Errno    uint32
	Index    int32
	_        uint32
	Dev, Ino uint64
}

// joinSpec is everything the child does, prepared before the fork.
type joinSpec struct {
	userNS, mntNS uintptr
	report        uintptr // write end of the report pipe (close-on-exec)
	ppid          uintptr
	dir           *byte
	// checkDir: dir must be the directory dirMajor:dirMinor, dirIno.
	checkDir           bool
	dirMajor, dirMinor uint32
	dirIno             uint64
	fallbacks          []*byte
	// slash: the program is a path, its one candidate's errors its own.
	slash      bool
	cands      []*byte
	argv, envv []*byte // each ends with nil
	ignored    SignalSet
	blocked    SignalSet
	stack      uint64      // soft RLIMIT_STACK to restore (0: leave it)
	nofile     unix.Rlimit // what chos was started with (callerNofile)
	capHdr     unix.CapUserHeader
	capData    [2]unix.CapUserData
	sigIgn     sigaction
}

// prepareJoin lays out the child's work for p, joining the namespaces open
// at user and mnt.
func prepareJoin(p *spec.Plan, user, mnt int, report int, nofile unix.Rlimit) (*joinSpec, []string, error) {
	s := &joinSpec{userNS: uintptr(user), mntNS: uintptr(mnt), report: uintptr(report),
		ppid: uintptr(unix.Getpid()), ignored: start.Ignored, blocked: start.Blocked,
		stack: start.StackLimit, sigIgn: sigaction{sigIgn}, nofile: nofile}
	s.capHdr.Version = unix.LINUX_CAPABILITY_VERSION_3
	var err error
	if s.dir, err = unix.BytePtrFromString(p.Dir); err != nil {
		return nil, nil, err
	}
	if p.DirID != nil {
		s.checkDir = true
		s.dirMajor, s.dirMinor, s.dirIno = unix.Major(p.DirID.Dev), unix.Minor(p.DirID.Dev), p.DirID.Ino
	}
	for _, d := range p.DirFallback {
		if d != "" {
			b, err := unix.BytePtrFromString(d)
			if err != nil {
				return nil, nil, err
			}
			s.fallbacks = append(s.fallbacks, b)
		}
	}
	// The candidates in lookPath's order.
	var cands []string
	if strings.Contains(p.Path, "/") {
		s.slash, cands = true, []string{p.Path}
	} else {
		for _, dir := range strings.Split(envValue(p.Env, "PATH"), ":") {
			if dir == "" {
				dir = "."
			}
			cands = append(cands, path.Join(dir, p.Path))
		}
	}
	if s.cands, err = syscall.SlicePtrFromStrings(cands); err != nil {
		return nil, nil, err
	}
	s.cands = s.cands[:len(cands)] // (joinChild counts them: no closing nil)
	if s.argv, err = syscall.SlicePtrFromStrings(p.Argv); err != nil {
		return nil, nil, err
	}
	if s.envv, err = syscall.SlicePtrFromStrings(p.Env); err != nil {
		return nil, nil, err
	}
	return s, cands, nil
}

// joinChild is the child's side of forkJoin; it never returns.
//
//go:nosplit
//go:norace
//go:nocheckptr
func joinChild(s *joinSpec) {
	var (
		rep      joinReport
		e        syscall.Errno
		r        uintptr
		i        int
		stx      unix.Statx_t
		lim      unix.Rlimit
		dirErr   syscall.Errno
		otherDir bool
		found    int
		notExec  int
		notExecE syscall.Errno
		notFound syscall.Errno
	)

	// Killed if the launch dies, as the command of a fresh view is
	// (Pdeathsig); too late if it already has.
	if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0, 0); e != 0 {
		rep.Stage = joinPdeathsig
		goto fail
	}
	if r, _, _ = syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0); r != s.ppid {
		r, _, _ = syscall.RawSyscall(syscall.SYS_GETPID, 0, 0, 0)
		syscall.RawSyscall(syscall.SYS_KILL, r, uintptr(syscall.SIGKILL), 0)
	}

	// The view: setns(2) of a mount namespace puts the process at its root.
	if _, _, e = syscall.RawSyscall(unix.SYS_SETNS, s.userNS, unix.CLONE_NEWUSER, 0); e != 0 {
		rep.Stage = joinUserNS
		goto fail
	}
	if _, _, e = syscall.RawSyscall(unix.SYS_SETNS, s.mntNS, unix.CLONE_NEWNS, 0); e != 0 {
		rep.Stage = joinMountNS
		goto fail
	}

	// No capability in any set (dropCapabilities), and no way to gain one.
	for i = 0; ; i++ {
		if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(i), 0, 0, 0, 0); e != 0 {
			if e == syscall.EINVAL {
				break
			}
			rep.Stage = joinCaps
			goto fail
		}
	}
	if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0); e != 0 && e != syscall.EINVAL {
		rep.Stage = joinCaps
		goto fail
	}
	if _, _, e = syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&s.capHdr)), uintptr(unsafe.Pointer(&s.capData[0])), 0); e != 0 {
		rep.Stage = joinCaps
		goto fail
	}
	if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0); e != 0 {
		rep.Stage = joinNoNewPrivs
		goto fail
	}

	// The working directory (enterDir), with the caller's rights.
	if _, _, dirErr = syscall.RawSyscall(syscall.SYS_CHDIR, uintptr(unsafe.Pointer(s.dir)), 0, 0); dirErr == 0 && s.checkDir {
		if _, _, dirErr = syscall.RawSyscall6(unix.SYS_STATX, atFDCWD, uintptr(unsafe.Pointer(&dotPath[0])), 0,
			unix.STATX_INO, uintptr(unsafe.Pointer(&stx)), 0); dirErr == 0 {
			otherDir = stx.Dev_major != s.dirMajor || stx.Dev_minor != s.dirMinor || stx.Ino != s.dirIno
		}
	}
	if dirErr != 0 || otherDir {
		if s.checkDir && (otherDir || dirErr == syscall.ENOENT || dirErr == syscall.ENOTDIR) {
			rep.Stage = joinDirNotShown
			goto fail
		}
		for i = 0; i < len(s.fallbacks); i++ {
			if _, _, e = syscall.RawSyscall(syscall.SYS_CHDIR, uintptr(unsafe.Pointer(s.fallbacks[i])), 0, 0); e == 0 {
				break
			}
		}
		if i == len(s.fallbacks) {
			rep.Stage, rep.Errno = joinDir, uint32(dirErr)
			if otherDir {
				rep.Dev, rep.Ino = unix.Mkdev(stx.Dev_major, stx.Dev_minor), stx.Ino
			}
			goto fail
		}
	}

	// The program (lookPath, checkExecutable).
	found, notExec = -1, -1
	for i = 0; i < len(s.cands); i++ {
		if _, _, e = syscall.RawSyscall6(unix.SYS_STATX, atFDCWD, uintptr(unsafe.Pointer(s.cands[i])), 0,
			unix.STATX_TYPE, uintptr(unsafe.Pointer(&stx)), 0); e != 0 {
			notFound = e
			if s.slash {
				rep.Stage, rep.Errno = joinNotFound, uint32(e)
				goto fail
			}
			continue
		}
		if stx.Mode&unix.S_IFMT == unix.S_IFDIR {
			e = 0
		} else if _, _, e = syscall.RawSyscall6(syscall.SYS_FACCESSAT, atFDCWD, uintptr(unsafe.Pointer(s.cands[i])), unix.X_OK, 0, 0, 0); e == 0 {
			found = i
			break
		}
		if notExec < 0 {
			notExec, notExecE = i, e
		}
	}
	if found < 0 {
		if notExec >= 0 {
			rep.Stage, rep.Index, rep.Errno = joinNotExec, int32(notExec), uint32(notExecE)
		} else {
			rep.Stage, rep.Index, rep.Errno = joinNotFound, -1, uint32(notFound)
		}
		goto fail
	}

	// What chos was started with (Inherited.apply).
	for i = 1; i <= 64; i++ {
		if s.ignored&(1<<(i-1)) != 0 && i != int(syscall.SIGKILL) && i != int(syscall.SIGSTOP) {
			if _, _, e = syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(i), uintptr(unsafe.Pointer(&s.sigIgn)), 0, 8, 0, 0); e != 0 {
				rep.Stage, rep.Index = joinSignals, int32(i)
				goto fail
			}
		}
	}
	if s.stack != 0 {
		if _, _, e = syscall.RawSyscall6(syscall.SYS_PRLIMIT64, 0, unix.RLIMIT_STACK, 0, uintptr(unsafe.Pointer(&lim)), 0, 0); e == 0 {
			lim.Cur = s.stack
			if lim.Cur > lim.Max {
				lim.Cur = lim.Max
			}
			_, _, e = syscall.RawSyscall6(syscall.SYS_PRLIMIT64, 0, unix.RLIMIT_STACK, uintptr(unsafe.Pointer(&lim)), 0, 0, 0)
		}
		if e != 0 {
			rep.Stage = joinLimit
			goto fail
		}
	}
	// The open file limit the Go runtime raised for itself (package
	// syscall's rlimit.go), back as ForkExec and Exec put it, unless
	// someone changed it since.
	{
		if _, _, e = syscall.RawSyscall6(syscall.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE, 0, uintptr(unsafe.Pointer(&lim)), 0, 0); e != 0 ||
			(lim.Cur == s.nofile.Max-1 && lim.Max == s.nofile.Max) {
			syscall.RawSyscall6(syscall.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE, uintptr(unsafe.Pointer(&s.nofile)), 0, 0, 0)
		}
	}
	if _, _, e = syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&s.blocked)), 0, 8, 0, 0); e != 0 {
		rep.Stage = joinMask
		goto fail
	}

	_, _, e = syscall.RawSyscall(syscall.SYS_EXECVE, uintptr(unsafe.Pointer(s.cands[found])),
		uintptr(unsafe.Pointer(&s.argv[0])), uintptr(unsafe.Pointer(&s.envv[0])))
	rep.Stage, rep.Index = joinExec, int32(found)

fail:
	if rep.Errno == 0 && rep.Stage != joinDir && rep.Stage != joinNotExec {
		rep.Errno = uint32(e)
	}
	syscall.RawSyscall(syscall.SYS_WRITE, s.report, uintptr(unsafe.Pointer(&rep)), unsafe.Sizeof(rep))
	for {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, uintptr(StatusFailed), 0, 0)
	}
}

// dotPath is ".", for the child's statx of its working directory.
var dotPath = [2]byte{'.', 0}

// atFDCWD is AT_FDCWD as a system call argument.
var atFDCWD = func() uintptr { fd := unix.AT_FDCWD; return uintptr(fd) }()

// joinError is how Launch would have reported where the child stopped.
// private, when not empty, says why the launch builds a view of its own
// instead.
func joinError(p *spec.Plan, cands []string, rep joinReport) (lerr *LaunchError, private string) {
	errno := syscall.Errno(rep.Errno)
	cand := func() string {
		if rep.Index >= 0 && int(rep.Index) < len(cands) {
			return cands[rep.Index]
		}
		return p.Path
	}
	switch rep.Stage {
	case joinDirNotShown:
		return nil, fmt.Sprintf("the kept view of tree %s does not show your working directory %s (mounted after the view was built?): using a private view", p.Tree, p.Dir)
	case joinUserNS, joinMountNS:
		return nil, fmt.Sprintf("cannot join the kept view of tree %s (%v): using a private view", p.Tree, errno)
	case joinDir:
		var err error = errno
		if rep.Errno == 0 {
			err = &errOtherDir{spec.FileID{Dev: rep.Dev, Ino: rep.Ino}, *p.DirID}
		}
		return failed("working directory %s is not available in tree %s: %w", p.Dir, p.Tree, err), ""
	case joinNotFound:
		if rep.Index < 0 {
			return &LaunchError{Status: StatusNotFound, Err: fmt.Errorf("%s: command not found in tree %s", p.Path, p.Tree)}, ""
		}
		return &LaunchError{Status: StatusNotFound, Err: fmt.Errorf("%s: %w", cand(), errno)}, ""
	case joinNotExec:
		if rep.Errno == 0 {
			return &LaunchError{Status: StatusNotExecutable, Err: fmt.Errorf("%s: is a directory", cand())}, ""
		}
		return &LaunchError{Status: StatusNotExecutable, Err: fmt.Errorf("%s: %w", cand(), errno)}, ""
	case joinExec:
		status, err := StatusNotExecutable, error(errno)
		if errors.Is(errno, unix.ENOENT) {
			status = StatusNotFound
			err = fmt.Errorf("%w (its interpreter or dynamic loader is missing in the tree)", errno)
		}
		return &LaunchError{Status: status, Err: fmt.Errorf("executing %s: %w", cand(), err)}, ""
	case joinPdeathsig:
		return failed("setting the parent death signal: %w", errno), ""
	case joinCaps:
		return failed("dropping capabilities: %w", errno), ""
	case joinNoNewPrivs:
		return failed("setting no_new_privs: %w", errno), ""
	case joinSignals:
		return failed("ignoring signal %d as the caller did: %w", rep.Index, errno), ""
	case joinLimit:
		return failed("restoring the soft stack limit %d: %w", start.StackLimit, errno), ""
	case joinMask:
		return failed("restoring the signal mask: %w", errno), ""
	}
	return failed("entering the kept view of tree %s: stopped at step %d: %w", p.Tree, rep.Stage, errno), ""
}
