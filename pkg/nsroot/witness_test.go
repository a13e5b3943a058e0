package nsroot

import (
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The witness holds what is sent to it, pending, until it is asked to take
// it back; it is in this process's group and ends with stop.
func TestWitnessHoldsSignalsUntilTakenBack(t *testing.T) {
	w, err := startWitness()
	if err != nil {
		t.Fatal(err)
	}
	defer w.stop()
	if pg, err := unix.Getpgid(w.pid); err != nil || pg != unix.Getpgrp() {
		t.Errorf("the witness is in process group %d (%v), want this one's, %d", pg, err, unix.Getpgrp())
	}
	// This process, sent the signal alone, lacks it in the witness:
	// control.
	got := make(chan os.Signal, 1)
	signal.Notify(got, syscall.SIGUSR2)
	defer signal.Stop(got)
	must(t, unix.Kill(os.Getpid(), syscall.SIGUSR2))
	<-got
	if group, err := w.reachedGroup(syscall.SIGUSR2); err != nil || group {
		t.Errorf("a signal to this process alone: reachedGroup = %v, %v", group, err)
	}
	for round := 0; round < 3; round++ {
		must(t, unix.Kill(w.pid, syscall.SIGUSR2))
		time.Sleep(10 * time.Millisecond)
		if group, err := w.reachedGroup(syscall.SIGUSR2); err != nil || !group {
			t.Fatalf("round %d: a signal the witness got: reachedGroup = %v, %v", round, group, err)
		}
		if pending, err := w.has(syscall.SIGUSR2); err != nil || pending {
			t.Fatalf("round %d: taken back, still pending: %v, %v", round, pending, err)
		}
	}
	pid := w.pid
	w.stop()
	if err := unix.Kill(pid, 0); err != unix.ESRCH {
		t.Errorf("the witness %d is still there after stop (%v)", pid, err)
	}
	if _, err := w.has(syscall.SIGUSR2); err != errWitnessGone {
		t.Errorf("has after stop = %v, want errWitnessGone", err)
	}
}

func TestPendingSignalsOfStatus(t *testing.T) {
	set, ok := pendingSignals([]byte("Name:\tx\nSigPnd:\t0000000000000002\nShdPnd:\t0000000000004000\nSigBlk:\tffffffffffffffff\n"))
	if !ok || !set.Has(2) || !set.Has(15) || set.Has(1) {
		t.Errorf("pendingSignals = %x, %v; want SIGINT and SIGTERM", set, ok)
	}
	if _, ok := pendingSignals([]byte("Name:\tx\n")); ok {
		t.Error("a status without the pending sets parses")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
