//go:build chos_linkname && !mips && !mipsle && !mips64 && !mips64le

package nsroot

import (
	"sync/atomic"
	"syscall"
	_ "unsafe" // for go:linkname

	"golang.org/x/sys/unix"
)

// The Go runtime installs its signal handlers and sets the signal mask of
// its threads before main runs; what the process was started with is then
// known only to the runtime, which records it in these variables (as of Go
// 1.26, unchanged since Go 1.5: fwdSig [_NSIG]uintptr, _NSIG 65, and
// initSigmask sigset, [2]uint32, on Linux but MIPS). No documented API
// tells it: os/signal.Ignored only knows SIGHUP and SIGINT. Reading them
// through go:linkname needs the linker's -checklinkname=0, which the
// Makefile passes with the tag chos_linkname; without the tag, chos knows
// less (startsig_linux.go). See `chos check`.

//go:linkname runtimeFwdSig runtime.fwdSig
var runtimeFwdSig [65]uintptr

//go:linkname runtimeInitSigmask runtime.initSigmask
var runtimeInitSigmask [2]uint32

// StartSignalsKnown says whether chos knows every signal disposition and
// the whole signal mask it was started with.
const StartSignalsKnown = true

// runtimeStartSignals are the signals that were ignored (SIG_IGN) and
// blocked when the process started, as the runtime recorded them (signals
// the runtime leaves alone are not in the first: see RecordStart).
func runtimeStartSignals() (ignored, blocked SignalSet) {
	for sig := 1; sig < len(runtimeFwdSig); sig++ {
		if runtimeFwdSig[sig] == sigIgn {
			ignored = ignored.With(sig)
		}
	}
	blocked = SignalSet(runtimeInitSigmask[0]) | SignalSet(runtimeInitSigmask[1])<<32
	return ignored, blocked
}

// The Go runtime raises the soft RLIMIT_NOFILE to the hard one when it
// starts, and keeps the one the process was started with in
// syscall.origRlimitNofile, to give it back to the programs it executes
// (Go 1.19 onwards, unchanged as of Go 1.26). Setting RLIMIT_NOFILE
// clears it: chos reads it first, so that the command still gets the
// caller's soft limit.

//go:linkname syscallOrigRlimitNofile syscall.origRlimitNofile
var syscallOrigRlimitNofile atomic.Pointer[syscall.Rlimit]

// callerNofile is the RLIMIT_NOFILE chos was started with.
func callerNofile() (unix.Rlimit, bool) {
	var now unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &now); err != nil {
		return now, false
	}
	if orig := syscallOrigRlimitNofile.Load(); orig != nil {
		return unix.Rlimit{Cur: orig.Cur, Max: orig.Max}, true
	}
	return now, true // the runtime left it alone
}
