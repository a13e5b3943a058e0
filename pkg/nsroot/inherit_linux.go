package nsroot

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// What exec(2) keeps, chos keeps (README: "What the command keeps"). Most
// of it chos never touches: descriptors without close-on-exec, limits,
// nice value, affinity, umask, oom_score_adj, session, process group and
// terminal pass through the setuid exec and chos's own exec unchanged. Three
// things do not, and are recorded when chos starts and put back just
// before the command is executed: the signals the caller ignored and the
// signal mask, which the Go runtime takes over before main runs, and a
// soft stack limit above 8 MiB, which the kernel caps on a setuid exec
// (where it can be known: see callersStack).

var start Inherited

// RecordStart records what chos was started with (see Inherited). Call it
// first in main, before anything uses os/signal.
func RecordStart() {
	start = Inherited{Recorded: true}
	start.Ignored, start.Blocked = runtimeStartSignals()
	// The runtime leaves these alone: their disposition is still the
	// caller's.
	for _, sig := range []int{int(unix.SIGCONT), int(unix.SIGTSTP), int(unix.SIGTTIN), int(unix.SIGTTOU)} {
		if h, err := disposition(sig); err == nil && h == sigIgn {
			start.Ignored = start.Ignored.With(sig)
		}
	}
	start.StackLimit = stackBeforeSetuidExec()
}

// StartState is what RecordStart recorded.
func StartState() Inherited { return start }

// ignoreAsCaller makes this process ignore, as its command will, the
// signals in in.Ignored that os/signal can ignore, but those chos needs
// (SIGCHLD: its children are waited for; SIGURG: the runtime preempts with
// it; SIGPROF).
func (in *Inherited) ignoreAsCaller() {
	var sigs []os.Signal
	for sig := 1; sig <= 64; sig++ {
		if in.Ignored.Has(sig) && keepsIgnoring(sig) {
			sigs = append(sigs, syscall.Signal(sig))
		}
	}
	if len(sigs) > 0 {
		signal.Ignore(sigs...)
	}
}

func keepsIgnoring(sig int) bool {
	switch syscall.Signal(sig) {
	case unix.SIGCHLD, unix.SIGURG, unix.SIGPROF, unix.SIGKILL, unix.SIGSTOP,
		unix.SIGILL, unix.SIGTRAP, unix.SIGBUS, unix.SIGFPE, unix.SIGSEGV, unix.SIGSTKFLT, unix.SIGSYS:
		return false
	}
	return sig < 32 || sig > 34 // (32 to 34: the C library's and the runtime's own)
}

// Signal handlers as the kernel's struct sigaction holds them.
const (
	sigDfl = 0
	sigIgn = 1
)

// sigaction is large enough for the kernel's struct sigaction on every
// Linux architecture; set with the handler alone, its other fields (flags,
// restorer, mask) are zero wherever they are.
type sigaction [4]uint64

func rtSigaction(sig int, act, old *sigaction) error {
	_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(act)), uintptr(unsafe.Pointer(old)), 8, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// disposition is sig's handler: sigDfl, sigIgn or a function.
func disposition(sig int) (uint64, error) {
	var old sigaction
	err := rtSigaction(sig, nil, &old)
	return old[0], err
}

func setDisposition(sig int, handler uint64) error {
	act := sigaction{handler}
	return rtSigaction(sig, &act, nil)
}

// threadMask is the calling thread's signal mask.
func threadMask() SignalSet {
	var set SignalSet
	unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, 0, uintptr(unsafe.Pointer(&set)), 8, 0, 0)
	return set
}

func setThreadMask(how int, set SignalSet) error {
	_, _, e := unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, uintptr(how), uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// apply puts back what in records, on the calling thread, which must be
// the one that executes the command next: nothing of chos runs after it
// but the exec.
func (in *Inherited) apply() error {
	if !in.Recorded {
		return nil
	}
	for sig := 1; sig <= 64; sig++ {
		if in.Ignored.Has(sig) && sig != int(unix.SIGKILL) && sig != int(unix.SIGSTOP) {
			if err := setDisposition(sig, sigIgn); err != nil {
				return fmt.Errorf("ignoring signal %d as the caller did: %w", sig, err)
			}
		}
	}
	if in.StackLimit != 0 {
		var l unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_STACK, &l); err != nil {
			return fmt.Errorf("reading the stack limit: %w", err)
		}
		l.Cur = min(in.StackLimit, l.Max)
		if err := unix.Setrlimit(unix.RLIMIT_STACK, &l); err != nil {
			return fmt.Errorf("restoring the soft stack limit %d: %w", l.Cur, err)
		}
	}
	if err := setThreadMask(unix.SIG_SETMASK, in.Blocked); err != nil {
		return fmt.Errorf("restoring the signal mask: %w", err)
	}
	return nil
}

// stackCap is the soft RLIMIT_STACK to which the kernel lowers a larger one
// on a setuid exec (_STK_LIM, fs/exec.c), losing the caller's.
const stackCap = 8 << 20

// stackBeforeSetuidExec gives the soft stack limit the caller had when a
// setuid exec of chos capped it, where it can be known, or 0 to leave the
// limit as it is (see callersStack).
func stackBeforeSetuidExec() uint64 {
	if !secureExec() {
		return 0
	}
	var own unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_STACK, &own); err != nil {
		return 0
	}
	// (/proc/PID/limits and status are world-readable; prlimit(2) of
	// another user's process needs CAP_SYS_RESOURCE)
	ppid := os.Getppid()
	limit, ok := softStackLimit(fmt.Sprintf("/proc/%d/limits", ppid))
	if !ok {
		return 0
	}
	if callersStack(own, stackParent{limit: limit, asCaller: true}) == 0 {
		return 0 // (whoever the parent is: its ids are read only where they count)
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", ppid))
	return callersStack(own, stackParent{limit: limit, asCaller: runsAs(status, os.Getuid())})
}

// stackParent is what the soft stack limit rule knows of chos's parent.
type stackParent struct {
	limit    uint64 // its soft stack limit
	asCaller bool   // its real, effective and saved uids are the caller's
}

// callersStack is the rule. A setuid exec lowers a soft stack limit above
// 8 MiB to 8 MiB, so chos (own: its limits after the exec) has exactly
// that when the caller had that much or more, and the caller's is lost:
// then chos takes its parent's soft limit, when the parent runs as the
// caller (the shell that started chos, whose `ulimit -s` the caller
// inherited) and the limit is above 8 MiB and within chos's hard limit,
// which the exec keeps. Raising a soft limit up to the hard limit is the
// user's own right. A parent of another user is not asked: root's daemons
// set the limits of a child after forking it (slurmstepd sets a task's to
// those srun propagated, and removes SLURM_RLIMIT_* from its environment),
// so its own says nothing of the caller's, and would often raise it (slurmd
// is started with LimitSTACK=infinity). The one case left: a process that
// set its own soft limit above 8 MiB and then executed chos in place
// (Python's os.execvp after setrlimit, `ulimit -s X; exec chos`, a Slurm
// task, a job of cron's that sh -c executes in place) gets its parent's
// limit if that parent runs as the caller, else 8 MiB. 0: leave it.
func callersStack(own unix.Rlimit, parent stackParent) uint64 {
	if own.Cur != stackCap || !parent.asCaller || parent.limit <= stackCap || parent.limit > own.Max {
		return 0
	}
	return parent.limit
}

// runsAs says whether a /proc/PID/status file is of a process whose real,
// effective and saved uids are all uid.
func runsAs(status []byte, uid int) bool {
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(rest)
			want := strconv.Itoa(uid)
			return len(f) >= 3 && f[0] == want && f[1] == want && f[2] == want
		}
	}
	return false
}

// softStackLimit reads the soft stack limit from a /proc/PID/limits file.
func softStackLimit(file string) (uint64, bool) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, "Max stack size")
		if f := strings.Fields(rest); ok && len(f) >= 1 {
			if f[0] == "unlimited" {
				return unix.RLIM_INFINITY, true
			}
			n, err := strconv.ParseUint(f[0], 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// secureExec says whether the kernel started chos as a setuid program
// (AT_SECURE in the auxiliary vector).
func secureExec() bool {
	auxv, err := unix.Auxv()
	if err != nil {
		return os.Getuid() != os.Geteuid() || os.Getgid() != os.Getegid()
	}
	for _, kv := range auxv {
		if kv[0] == 23 { // AT_SECURE
			return kv[1] != 0
		}
	}
	return false
}
