package loopdev

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// needRoot stops a test that sets up loop devices unless it runs as root
// where there are loop devices: a failure in CI, a skip elsewhere.
func needRoot(t *testing.T) {
	t.Helper()
	err := CheckLoopSupport()
	if os.Geteuid() != 0 {
		err = os.ErrPermission
	}
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI runs the unit tests as root, with loop devices: %v", err)
	}
	t.Skipf("SKIPPING: needs root and loop devices: %v", err)
}

// The setup for kernels before 5.8 (LOOP_SET_FD, then LOOP_SET_STATUS64),
// which this kernel never falls back to, binds as LOOP_CONFIGURE does:
// read-only, autoclear, the whole file; closing the device frees it.
func TestLegacySetupBindsLikeLoopConfigure(t *testing.T) {
	needRoot(t)
	img := mksquashfs(t)
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctl, err := openControl()
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()

	var dev *os.File
	for try := 0; dev == nil; try++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			t.Fatal(err)
		}
		if dev, err = openNewDevice("/dev/loop" + strconv.Itoa(n)); err != nil {
			t.Fatal(err)
		}
		cfg := config(f)
		if err = configureLegacy(dev, &cfg); err != nil {
			dev.Close()
			dev = nil
			if try > 3 || !strings.Contains(err.Error(), "busy") {
				t.Fatal(err)
			}
		}
	}
	defer dev.Close()

	info, err := unix.IoctlLoopGetStatus64(int(dev.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	st, err := fstat(f)
	if err != nil {
		t.Fatal(err)
	}
	if !sameImage(info, st) {
		t.Errorf("%s after the legacy setup: %+v; want %s read-only, autoclear, whole", dev.Name(), info, img)
	}
	backing := filepath.Join("/sys/block", filepath.Base(dev.Name()), "loop", "backing_file")
	if data, err := os.ReadFile(backing); err != nil || strings.TrimSpace(string(data)) != img {
		t.Errorf("%s: %q, %v; want %s", backing, data, err, img)
	}
	dev.Close()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(backing); os.IsNotExist(err) {
			return
		}
	}
	t.Errorf("%s still bound 5 s after it was closed: no autoclear", dev.Name())
}
