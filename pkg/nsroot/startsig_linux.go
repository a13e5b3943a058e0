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

// callerNofile cannot tell the soft RLIMIT_NOFILE chos was started with:
// the Go runtime raised it (see startsig_linkname_linux.go). Privileged
// work then keeps the caller's descriptor limit.
func callerNofile() (unix.Rlimit, bool) { return unix.Rlimit{}, false }
