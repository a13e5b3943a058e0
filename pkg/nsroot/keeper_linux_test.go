package nsroot

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fullQueue listens on the abstract socket addr with a queue of one, and
// fills it with a connection of its own; both close with the test.
func fullQueue(t *testing.T, addr string) (listener int) {
	t.Helper()
	lis, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(lis) })
	if err := unix.Bind(lis, &unix.SockaddrUnix{Name: addr}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lis, 0); err != nil {
		t.Fatal(err)
	}
	own, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(own) })
	if err := unix.Connect(own, &unix.SockaddrUnix{Name: addr}); err != nil {
		t.Fatal(err)
	}
	return lis
}

// A keeper's name taken by a process that listens with a full queue and
// never accepts (another user can take it: abstract names are first come,
// first served) must not hold a launch: dialKeeper says at once that it
// cannot join, and the launch builds its own view. Control: a free name is
// errNoKeeper.
func TestDialKeeperDoesNotWaitOnAFullQueue(t *testing.T) {
	addr := fmt.Sprintf("@chos-test-squat/%d/%d", os.Getpid(), time.Now().UnixNano())
	if _, err := dialKeeper(addr); !errors.Is(err, errNoKeeper) {
		t.Fatalf("control: dialKeeper(%s) of a free name: %v, want errNoKeeper", addr, err)
	}
	fullQueue(t, addr)
	done := make(chan error, 1)
	go func() { _, err := dialKeeper(addr); done <- err }()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, errNoKeeper) {
			t.Errorf("dialKeeper(%s) with its queue full: %v, want an error that keeps the launch from joining", addr, err)
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("dialKeeper(%s) still waits after 3 s on a queue that is full", addr)
	}
}

// A keeper's queue full for a moment (a burst of launches) is waited for:
// once it has room, the launch connects and reads the keeper's answer
// (here none: the connection is closed, errNoKeeper).
func TestDialKeeperWaitsForAQueueFullForAMoment(t *testing.T) {
	addr := fmt.Sprintf("@chos-test-burst/%d/%d", os.Getpid(), time.Now().UnixNano())
	lis := fullQueue(t, addr)
	go func() {
		time.Sleep(keeperQueueWait / 3)
		for i := 0; i < 2; i++ { // the filler's, then the launch's
			conn, _, err := unix.Accept4(lis, unix.SOCK_CLOEXEC)
			if err != nil {
				return
			}
			unix.Close(conn)
		}
	}()
	if _, err := dialKeeper(addr); !errors.Is(err, errNoKeeper) {
		t.Errorf("dialKeeper(%s), its queue full for %v: %v, want errNoKeeper (connected, no answer)", addr, keeperQueueWait/3, err)
	}
}
