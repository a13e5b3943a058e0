//go:build !chos_linkname || mips || mipsle || mips64 || mips64le

package nsroot

import "golang.org/x/sys/unix"

// Built without the tag chos_linkname (see startsig_linkname_linux.go),
// chos knows of its start state only what the kernel still shows when main
// runs: the dispositions the runtime did not replace (SIGHUP and SIGINT
// when ignored, the job control signals) and the mask without the signals
// the runtime never blocks.

// StartSignalsKnown says whether chos knows every signal disposition and
// the whole signal mask it was started with.
const StartSignalsKnown = false

func runtimeStartSignals() (ignored, blocked SignalSet) {
	for sig := 1; sig <= 64; sig++ {
		if h, err := disposition(sig); err == nil && h == sigIgn {
			ignored = ignored.With(sig)
		}
	}
	return ignored, threadMask()
}

// startNofile is the soft open file limit to restore for the command (nil:
// leave the current one), and whether it is known. The Go runtime raises
// a soft limit below the hard one to the hard one less one before main
// runs, keeping the old one to itself: a soft limit of that value is one
// it raised, or the caller's own.
func startNofile() (*unix.Rlimit, bool) {
	var l unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &l); err != nil || l.Cur == l.Max-1 {
		return nil, false
	}
	return nil, true
}
