// Package loopdev attaches image files to read-only loop devices that free
// themselves (LO_FLAGS_AUTOCLEAR), and finds a device already attached to an
// image so that concurrent users of one image share one loop device and its
// page cache (Apptainer's "shared loop devices").
//
// The setup follows util-linux (lib/loopdev.c loopcxt_setup_device,
// libmount/src/hook_loopdev.c): LOOP_CTL_GET_FREE on /dev/loop-control,
// open /dev/loopN, LOOP_CONFIGURE (Linux 5.8+), falling back to LOOP_SET_FD
// plus LOOP_SET_STATUS64 on older kernels, and trying another device when a
// concurrent setup took this one first (EBUSY).
//
// Every function here needs CAP_SYS_ADMIN (root). Mounting is the caller's:
// the loop device stays bound as long as it is open or mounted, so keep the
// returned file open until the mount has succeeded, then close it.
package loopdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	controlPath = "/dev/loop-control"
	loopMajor   = 7 // block major of loop devices (Documentation/admin-guide/devices.txt)

	// flags is how every device is attached, and the only flags a shared
	// device may have of those the kernel lets userspace set.
	flags = unix.LO_FLAGS_READ_ONLY | unix.LO_FLAGS_AUTOCLEAR

	// Tries of a whole setup when concurrent setups take the free device
	// first (losetup: 64).
	maxStolen = 64
	// EAGAIN of LOOP_CONFIGURE / LOOP_SET_STATUS64 (kernel still dropping
	// the page cache of the device): retried this often, this far apart
	// (util-linux: LOOPDEV_MAX_TRIES 10, 250 ms).
	maxAgain   = 10
	againDelay = 250 * time.Millisecond
	// A free /dev/loopN the kernel just created may not be there yet: util-
	// linux waits 16 times 25 ms for it.
	maxOpen   = 16
	openDelay = 25 * time.Millisecond
)

// lockWait bounds the wait for the lock on /dev/loop-control (see
// AttachShared). Past it the setup goes on without the lock: at worst a
// second device for one image, never a launch that waits for ever.
var lockWait = 10 * time.Second

var (
	// ErrNoLoopSupport: there is no /dev/loop-control, so no way to get a
	// loop device (kernel without loop support, or a /dev without it, as in
	// most containers).
	ErrNoLoopSupport = errors.New("no loop device support")
	// ErrNoFreeDevice: the kernel cannot hand out another loop device
	// (LOOP_CTL_GET_FREE failed: the table of minors is full, or no memory).
	ErrNoFreeDevice = errors.New("no free loop device")
	// ErrNotSquashfs: the file does not start with a squashfs 4.0 superblock.
	ErrNotSquashfs = errors.New("not a squashfs image")
	// ErrNoSquashfs: the running kernel cannot mount squashfs.
	ErrNoSquashfs = errors.New("no squashfs support in the kernel")
)

// Attach binds image to a free loop device, read-only with autoclear, and
// returns the device opened read-only (its Name is /dev/loopN).
//
// The device is unbound by the kernel when its last user goes: the
// returned file, then the mounts of it. Keep the file open until the mount
// succeeded, so that autoclear cannot fire in between.
//
// image must be a regular file, open for reading; Attach does not check
// what is in it (see CheckSquashfs) nor who may write it: the kernel reads
// whatever the file holds when a mount reads the device. Errors wrap
// ErrNoLoopSupport, ErrNoFreeDevice or the failing syscall's errno.
func Attach(image *os.File) (*os.File, error) {
	if err := checkRegular(image); err != nil {
		return nil, err
	}
	ctl, err := openControl()
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	return attach(ctl, image)
}

// AttachShared returns a loop device bound to image as Attach sets one up:
// the one already bound to it (by Find), else a new one (by Attach). One
// image gets one device even when many processes set it up at once: the
// second lookup and the setup hold an exclusive flock on /dev/loop-control,
// machine-wide (util-linux does not lock; without the lock, 32 concurrent
// setups of one image made 7 devices in a test).
//
// Who may hold that lock: only processes that can open /dev/loop-control
// (root, and the group that owns the device, disk on most systems): in
// chos, its view builders, processes of root's that no user can signal or
// stop (pkg/nsroot). The wait is bounded anyway (lockWait): a holder that
// never lets go delays a setup, never stalls it; the setup then goes on
// without the lock, which the kernel makes safe (LOOP_CTL_GET_FREE and
// LOOP_CONFIGURE, retried on EBUSY as losetup does) at the cost of sharing.
//
// The returned file keeps the device bound until it is closed, as for
// Attach. Errors: those of Find and Attach.
func AttachShared(image *os.File) (*os.File, error) {
	if err := checkRegular(image); err != nil {
		return nil, err
	}
	// Most setups find the device: look without the lock first.
	if dev, err := Find(image); dev != nil || err != nil {
		return dev, err
	}
	ctl, err := openControl()
	if err != nil {
		return nil, err
	}
	defer ctl.Close() // (which releases the lock)
	locked, err := lockControl(ctl, lockWait)
	if err != nil {
		return nil, err
	}
	if locked {
		if dev, err := Find(image); dev != nil || err != nil {
			return dev, err
		}
	}
	return attach(ctl, image)
}

// Find returns the loop device already bound to image, opened read-only, or
// nil (and no error) if there is none. A device qualifies only if it is
// bound to the same file (device and inode numbers of the backing file, as
// LOOP_GET_STATUS64 reports them), from offset 0 without size limit, read-
// only with autoclear: set up by Attach, never a device someone set up
// writable or for part of the file.
//
// The status is read from the opened device, so it is the status of the
// device that is returned: a device unbound or rebound to another file
// between the listing and the open is not taken. Once open, the device
// stays bound until the file is closed (autoclear waits for the last user),
// as for Attach.
//
// Devices are listed from /sys/block/loop*/loop/backing_file (util-linux
// loopcxt_next_from_sysfs, loopcxt_is_used); libmount re-reads the status
// after opening the device the same way (hook_loopdev.c, "lost race with
// teardown"). Errors: image cannot be fstat'ed, /sys/block cannot be read;
// a device that cannot be opened is skipped.
func Find(image *os.File) (*os.File, error) {
	st, err := fstat(image)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir("/sys/block")
	if err != nil {
		return nil, fmt.Errorf("listing loop devices: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "loop") {
			continue
		}
		if _, err := os.Lstat(filepath.Join("/sys/block", name, "loop", "backing_file")); err != nil {
			continue // not bound
		}
		dev, err := openDevice("/dev/" + name)
		if err != nil {
			continue
		}
		info, err := unix.IoctlLoopGetStatus64(int(dev.Fd()))
		if err == nil && sameImage(info, st) {
			return dev, nil
		}
		dev.Close()
	}
	return nil, nil
}

// sameImage tells whether a loop device with status info reads the whole of
// the file with status st, as Attach set it up.
func sameImage(info *unix.LoopInfo64, st *unix.Stat_t) bool {
	return info.Device == st.Dev && info.Inode == st.Ino &&
		info.Offset == 0 && info.Sizelimit == 0 && info.Encrypt_type == 0 &&
		info.Flags&flags == flags
}

// attach is Attach with /dev/loop-control open as ctl.
func attach(ctl *os.File, image *os.File) (*os.File, error) {
	cfg := config(image)
	defer runtime.KeepAlive(image)

	for try := 0; ; try++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("%w: LOOP_CTL_GET_FREE on %s: %w", ErrNoFreeDevice, controlPath, err)
		}
		path := "/dev/loop" + strconv.Itoa(n)
		dev, err := openNewDevice(path)
		if err != nil {
			return nil, err
		}
		err = configure(dev, &cfg)
		if err == nil {
			return dev, nil
		}
		dev.Close()
		if errors.Is(err, unix.EBUSY) && try < maxStolen {
			continue // a concurrent setup bound it first: take another
		}
		return nil, fmt.Errorf("setting up %s for %s: %w", path, image.Name(), err)
	}
}

// config is how Attach binds a device to image.
func config(image *os.File) unix.LoopConfig {
	cfg := unix.LoopConfig{Fd: uint32(image.Fd())}
	cfg.Info.Flags = flags
	// cosmetic (losetup -a shows it; sysfs backing_file is the real path)
	copy(cfg.Info.File_name[:unix.LO_NAME_SIZE-1], image.Name())
	return cfg
}

// configure binds dev as cfg says: LOOP_CONFIGURE, or on kernels without it
// (before 5.8: EINVAL, ENOTTY or ENOSYS) the two-step legacy setup.
func configure(dev *os.File, cfg *unix.LoopConfig) error {
	err := retryAgain(func() error { return unix.IoctlLoopConfigure(int(dev.Fd()), cfg) })
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOTTY) && !errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("LOOP_CONFIGURE: %w", err)
	}
	return configureLegacy(dev, cfg)
}

// configureLegacy binds dev with LOOP_SET_FD, then sets its flags with
// LOOP_SET_STATUS64; if that fails, it unbinds dev again (it is ours: the
// EBUSY of LOOP_SET_FD keeps anyone else's).
func configureLegacy(dev *os.File, cfg *unix.LoopConfig) error {
	fd := int(dev.Fd())
	if err := unix.IoctlSetInt(fd, unix.LOOP_SET_FD, int(cfg.Fd)); err != nil {
		return fmt.Errorf("LOOP_SET_FD: %w", err)
	}
	info := cfg.Info
	if err := retryAgain(func() error { return unix.IoctlLoopSetStatus64(fd, &info) }); err != nil {
		unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0)
		return fmt.Errorf("LOOP_SET_STATUS64: %w", err)
	}
	return nil
}

// retryAgain calls f again while it fails with EAGAIN, a few times.
func retryAgain(f func() error) error {
	for try := 0; ; try++ {
		err := f()
		if !errors.Is(err, unix.EAGAIN) || try >= maxAgain {
			return err
		}
		time.Sleep(againDelay)
	}
}

func openControl() (*os.File, error) {
	fd, err := unix.Open(controlPath, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO) {
		return nil, fmt.Errorf("%w: %s: %w (kernel without loop support, module loop not loadable, or a /dev without it)",
			ErrNoLoopSupport, controlPath, err)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: controlPath, Err: err}
	}
	return os.NewFile(uintptr(fd), controlPath), nil
}

// openNewDevice opens a device that LOOP_CTL_GET_FREE just named, waiting a
// little for its node to appear.
func openNewDevice(path string) (*os.File, error) {
	for try := 0; ; try++ {
		dev, err := openDevice(path)
		if err == nil || try >= maxOpen || !(errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EACCES)) {
			return dev, err
		}
		time.Sleep(openDelay)
	}
}

// openDevice opens a loop device read-only (a kernel that refuses writers
// to mounted devices refuses nothing then: libmount does the same) and
// checks that it is one.
func openDevice(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	dev := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		dev.Close()
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK || unix.Major(st.Rdev) != loopMajor {
		dev.Close()
		return nil, fmt.Errorf("%s is not a loop device (mode %#o, device %d:%d)", path, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return dev, nil
}

// lockControl takes an exclusive lock on ctl, waiting at most wait, and
// says whether it got it.
func lockControl(ctl *os.File, wait time.Duration) (bool, error) {
	deadline := time.Now().Add(wait)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		err := unix.Flock(int(ctl.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case err == unix.EINTR:
			continue
		case err != unix.EWOULDBLOCK:
			return false, &os.PathError{Op: "flock", Path: ctl.Name(), Err: err}
		case !time.Now().Before(deadline):
			return false, nil
		}
		time.Sleep(delay)
	}
}

func fstat(f *os.File) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: f.Name(), Err: err}
	}
	return &st, nil
}

func checkRegular(f *os.File) error {
	st, err := fstat(f)
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s is not a regular file (mode %#o): only image files are attached", f.Name(), st.Mode)
	}
	return nil
}
