package nsroot

// Inherited is the part of the caller's process state that exec(2) passes
// on but that chos's own start changes: the Go runtime catches signals the
// caller ignored and alters the signal mask, and a setuid exec caps the
// stack limit. Restored just before the command is executed.
type Inherited struct {
	Recorded bool
	Ignored  SignalSet // dispositions that were SIG_IGN
	Blocked  SignalSet // the signal mask
	// StackLimit, when not zero, is the soft RLIMIT_STACK (bytes, or
	// RLIM_INFINITY) that a setuid exec capped.
	StackLimit uint64
}

// SignalSet is a set of the signals 1 to 64: bit n-1 for signal n, as in
// the kernel's sigset_t.
type SignalSet uint64

// Has says whether sig is in the set.
func (s SignalSet) Has(sig int) bool { return sig >= 1 && sig <= 64 && s&(1<<(sig-1)) != 0 }

// With is the set with sig added.
func (s SignalSet) With(sig int) SignalSet {
	if sig < 1 || sig > 64 {
		return s
	}
	return s | 1<<(sig-1)
}
