package nsroot

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// In userns mode the command shares this process's group. A signal sent
// to the whole group (a terminal's ^C, a shell's job control, scancel,
// `kill -- -PGID`) reaches it directly, and forwarded it would arrive
// twice; one sent to this process alone (`kill PID`) reaches it only
// forwarded. The kernel does not tell the two apart (the siginfo is the
// same), so a witness does: a process of the same group that blocks every
// signal and takes none unless asked. kill(2) of a group queues the signal
// on every member, the newest first, before it returns: this process, the
// group's oldest, receives its copy after the witness has it pending. One
// sent to this process alone is never pending there. Processes killed one
// by one (a cgroup's, as Slurm and systemd do it) may be signalled in any
// order: a signal the witness lacks is forwarded only if it still lacks it
// witnessGrace later.

// witnessGrace is how long a signal the witness lacks waits before it is
// forwarded: for a killer that signals every process of a cgroup one by
// one, this one before the witness.
const witnessGrace = 50 * time.Millisecond

// witness is the process that tells group signals from this process's own.
type witness struct {
	pid    int
	ctl    *os.File // the signal it is to take back, one byte each
	ack    *os.File // its answer, one byte each
	status string   // its /proc/PID/status
	mem    []byte   // its stack and witnessMem, if it shares this process's memory
}

// witnessMem is everything the witness uses after the fork, allocated
// before it: the witness runs with a single thread and no working runtime
// (on a copy of this process, or in its memory on a stack of its own:
// witnessfork_linux.go, witnessvm_linux.go), so it may not allocate, grow
// its stack or call into the runtime, only make system calls.
type witnessMem struct {
	ctl, ack int // its ends of the pipes
	ppid     int
	one      SignalSet
	zero     unix.Timespec
	buf      [1]byte
	name     [16]byte
}

// startWitness forks the witness, in this process's group.
func startWitness() (*witness, error) {
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	ackR, ackW, err := os.Pipe()
	if err != nil {
		ctlR.Close()
		ctlW.Close()
		return nil, err
	}
	defer ctlR.Close()
	defer ackW.Close()
	m := &witnessMem{ctl: int(ctlR.Fd()), ack: int(ackW.Fd()), ppid: os.Getpid()}
	copy(m.name[:], "chos-signals")
	// The fork copies this thread's signal mask: every signal blocked,
	// so that no Go handler ever runs in the witness.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	syscall.ForkLock.Lock()
	old := threadMask()
	setThreadMask(unix.SIG_SETMASK, ^SignalSet(0))
	pid, mem, errno := forkWitness(m)
	setThreadMask(unix.SIG_SETMASK, old)
	syscall.ForkLock.Unlock()
	if errno != 0 {
		ctlW.Close()
		ackR.Close()
		return nil, fmt.Errorf("starting the signal witness: %w", errno)
	}
	return &witness{pid: pid, ctl: ctlW, ack: ackR, status: "/proc/" + strconv.Itoa(pid) + "/status", mem: mem}, nil
}

// witnessLoop is the witness: it dies with this process, keeps only its
// two pipes, and takes back each signal it is asked to.
//
//go:nosplit
//go:norace
func witnessLoop(m *witnessMem) {
	syscall.RawSyscall(unix.SYS_PRCTL, unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0)
	if ppid, _, _ := syscall.RawSyscall(unix.SYS_GETPPID, 0, 0, 0); int(ppid) != m.ppid {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
	}
	syscall.RawSyscall(unix.SYS_PRCTL, unix.PR_SET_NAME, uintptr(unsafe.Pointer(&m.name[0])), 0)
	lo, hi := m.ctl, m.ack
	if lo > hi {
		lo, hi = hi, lo
	}
	syscall.RawSyscall(unix.SYS_CLOSE_RANGE, 3, uintptr(lo-1), 0)
	syscall.RawSyscall(unix.SYS_CLOSE_RANGE, uintptr(lo+1), uintptr(hi-1), 0)
	syscall.RawSyscall(unix.SYS_CLOSE_RANGE, uintptr(hi+1), ^uintptr(0)>>1, 0)
	for {
		n, _, errno := syscall.RawSyscall(unix.SYS_READ, uintptr(m.ctl), uintptr(unsafe.Pointer(&m.buf[0])), 1)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 || n != 1 || m.buf[0] < 1 || m.buf[0] > 64 {
			syscall.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
		}
		m.one = SignalSet(1) << (m.buf[0] - 1)
		syscall.RawSyscall6(unix.SYS_RT_SIGTIMEDWAIT, uintptr(unsafe.Pointer(&m.one)), 0, uintptr(unsafe.Pointer(&m.zero)), 8, 0, 0)
		syscall.RawSyscall(unix.SYS_WRITE, uintptr(m.ack), uintptr(unsafe.Pointer(&m.buf[0])), 1)
	}
}

// errWitnessGone is a witness that no longer answers: signals are then
// told apart as well as can be without it.
var errWitnessGone = errors.New("the signal witness is gone")

// has says whether sig is pending in the witness.
func (w *witness) has(sig syscall.Signal) (bool, error) {
	data, err := os.ReadFile(w.status)
	if err != nil {
		return false, errWitnessGone
	}
	pending, ok := pendingSignals(data)
	if !ok {
		return false, errWitnessGone
	}
	return pending.Has(int(sig)), nil
}

// pendingSignals are the signals pending in a process, for the thread of
// a /proc/PID/status file and shared (SigPnd and ShdPnd).
func pendingSignals(status []byte) (SignalSet, bool) {
	var set SignalSet
	found := 0
	for _, line := range bytes.Split(status, []byte("\n")) {
		for _, key := range []string{"SigPnd:", "ShdPnd:"} {
			if rest, ok := bytes.CutPrefix(line, []byte(key)); ok {
				n, err := strconv.ParseUint(string(bytes.TrimSpace(rest)), 16, 64)
				if err != nil {
					return 0, false
				}
				set |= SignalSet(n)
				found++
			}
		}
	}
	return set, found == 2
}

// takeBack has the witness take sig, which it has pending, so that it
// witnesses the next one too.
func (w *witness) takeBack(sig syscall.Signal) error {
	if _, err := w.ctl.Write([]byte{byte(sig)}); err != nil {
		return errWitnessGone
	}
	// (a witness stopped by SIGSTOP, which it cannot block, must not
	// stop this process)
	w.ack.SetReadDeadline(time.Now().Add(time.Second))
	var b [1]byte
	if n, err := w.ack.Read(b[:]); err != nil || n != 1 || b[0] != byte(sig) {
		return errWitnessGone
	}
	return nil
}

// reachedGroup says whether sig, which this process received, was sent to
// its whole group (or to every process of its cgroup): then the command
// has it already.
func (w *witness) reachedGroup(sig syscall.Signal) (bool, error) {
	for wait := time.Duration(0); ; wait = witnessGrace {
		time.Sleep(wait)
		pending, err := w.has(sig)
		if err != nil {
			return false, err
		}
		if pending {
			return true, w.takeBack(sig)
		}
		if wait > 0 {
			return false, nil
		}
	}
}

// stop ends the witness and collects it (nil, or stopped already: nothing).
func (w *witness) stop() {
	if w == nil || w.pid == 0 {
		return
	}
	unix.Kill(w.pid, unix.SIGKILL)
	reapChild(w.pid)
	w.pid = 0
	if w.mem != nil {
		unix.Munmap(w.mem)
		w.mem = nil
	}
	w.ctl.Close()
	w.ack.Close()
}
