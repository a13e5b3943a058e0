package loopdev

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A holder of the lock on /dev/loop-control that never lets go delays a
// shared setup by lockWait at most: the setup then goes on without it.
// The control is the delay itself: the setup did wait for the lock.
func TestAttachSharedWaitsForAHeldLockOnlySoLong(t *testing.T) {
	needRoot(t)
	img, err := os.Open(mksquashfs(t))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	holder, err := openControl() // another open file: flock excludes it
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if err := unix.Flock(int(holder.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer func(saved time.Duration) { lockWait = saved }(lockWait)
	lockWait = 300 * time.Millisecond

	start := time.Now()
	dev, err := AttachShared(img)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("AttachShared with the lock held elsewhere: %v", err)
	}
	defer dev.Close()
	if took < lockWait {
		t.Errorf("control: AttachShared took %v with the lock held, less than lockWait %v: it did not wait for the lock", took, lockWait)
	}
	if took > lockWait+5*time.Second {
		t.Errorf("AttachShared took %v with the lock held, lockWait is %v", took, lockWait)
	}
	info, err := unix.IoctlLoopGetStatus64(int(dev.Fd()))
	st, serr := fstat(img)
	if err != nil || serr != nil || !sameImage(info, st) {
		t.Errorf("%s is not bound to the image as Attach binds it: %+v, %v, %v", dev.Name(), info, err, serr)
	}

	// The lock free, the next setup shares the device.
	holder.Close()
	again, err := AttachShared(img)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	var a, b unix.Stat_t
	if unix.Fstat(int(dev.Fd()), &a) != nil || unix.Fstat(int(again.Fd()), &b) != nil || a.Rdev != b.Rdev {
		t.Errorf("a second setup of the image made another device (%s, then %s)", dev.Name(), again.Name())
	}
}
