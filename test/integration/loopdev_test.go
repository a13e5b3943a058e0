package integration

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/loopdev"
)

// needLoopSquashfs stops a test that needs loop devices and squashfs where
// the kernel has neither: a failure in CI, a skip (with the reason) elsewhere.
func needLoopSquashfs(t *testing.T) {
	t.Helper()
	for _, err := range []error{loopdev.CheckLoopSupport(), loopdev.CheckKernelSquashfs()} {
		if err == nil {
			continue
		}
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must have loop devices and squashfs: %v", err)
		}
		t.Skipf("SKIPPING: %v", err)
	}
}

// inMountNamespace runs fn on an OS thread of its own, unshared into a new
// mount namespace in which every mount is private: nothing fn mounts
// reaches the host's table. The thread is never handed back to the Go
// scheduler, so the namespace (and whatever is still mounted in it) ends
// with fn.
func inMountNamespace(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: the thread exits with this goroutine
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_NEWNS): %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- fmt.Errorf("making / private: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// mountSquashfs mounts the squashfs on dev at dir as chos will: read-only,
// nosuid, nodev. Only in inMountNamespace.
func mountSquashfs(dev, dir string) error {
	if err := unix.Mount(dev, dir, "squashfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("mount %s on %s: %w", dev, dir, err)
	}
	return nil
}

// mountDir is an empty root-owned directory to mount on, removed after the
// test.
func mountDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(h.base, unique(t))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	return dir
}

// boundTo lists the loop devices (loopN) whose backing file is path, or
// below path if it is a directory, from /sys/block/loop*/loop/backing_file.
func boundTo(t testing.TB, path string) []string {
	t.Helper()
	files, err := filepath.Glob("/sys/block/loop*/loop/backing_file")
	if err != nil {
		t.Fatal(err)
	}
	var devs []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // unbound meanwhile
		}
		backing := strings.TrimSuffix(strings.TrimSpace(string(data)), " (deleted)")
		if backing == path || strings.HasPrefix(backing, path+"/") {
			devs = append(devs, filepath.Base(filepath.Dir(filepath.Dir(f))))
		}
	}
	sort.Strings(devs)
	return devs
}

// losetupLists is what `losetup -a` (util-linux) lists under path.
func losetupLists(t testing.TB, path string) []string {
	t.Helper()
	r := run(t, call{Args: []string{"losetup", "-a"}, Root: true})
	if r.status != 0 {
		t.Fatalf("losetup -a:\n%s", r)
	}
	var lines []string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.Contains(l, path) {
			lines = append(lines, l)
		}
	}
	return lines
}

// wantNoLoopDevices waits (a few seconds: unmounting a namespace's mounts
// ends asynchronously) until no loop device is bound to a file under path,
// and fails the test if one still is, by sysfs or by `losetup -a`.
func wantNoLoopDevices(t testing.TB, path string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(boundTo(t, path)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if devs := boundTo(t, path); len(devs) > 0 {
		t.Errorf("loop devices still bound to %s: %v", path, devs)
	}
	if lines := losetupLists(t, path); len(lines) > 0 {
		t.Errorf("losetup -a still lists loop devices of %s:\n%s", path, strings.Join(lines, "\n"))
	}
}

// sysfsAttr reads /sys/block/loopN/ATTR (ro) or /sys/block/loopN/loop/ATTR.
func sysfsAttr(t testing.TB, dev, attr string) string {
	t.Helper()
	path := filepath.Join("/sys/block", filepath.Base(dev), "loop", attr)
	if attr == "ro" {
		path = filepath.Join("/sys/block", filepath.Base(dev), attr)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func openImage(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// A squashfs image attached to a loop device mounts read-only in a private
// mount namespace and shows the tree it was made of; once it is unmounted
// and the device closed, the device frees itself.
func TestLoopAttachMountsImageAndFreesItself(t *testing.T) {
	needLoopSquashfs(t)
	img := squashImage(t, h.trees["one"])
	t.Cleanup(func() { wantNoLoopDevices(t, img) })
	f := openImage(t, img)
	if err := loopdev.CheckSquashfs(f); err != nil {
		t.Fatal(err)
	}
	dev, err := loopdev.Attach(f)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	f.Close() // the device holds the image itself

	if got := boundTo(t, img); len(got) != 1 || "/dev/"+got[0] != dev.Name() {
		t.Fatalf("devices bound to %s: %v, want just %s", img, got, dev.Name())
	}
	for attr, want := range map[string]string{"ro": "1", "autoclear": "1", "offset": "0", "sizelimit": "0"} {
		if got := sysfsAttr(t, dev.Name(), attr); got != want {
			t.Errorf("%s: %s is %s, want %s", dev.Name(), attr, got, want)
		}
	}

	mnt := mountDir(t)
	var osRelease []byte
	var writeErr, hostHasIt error
	err = inMountNamespace(func() error {
		if err := mountSquashfs(dev.Name(), mnt); err != nil {
			return err
		}
		var err error
		if osRelease, err = os.ReadFile(filepath.Join(mnt, "etc", "os-release")); err != nil {
			return err
		}
		writeErr = os.WriteFile(filepath.Join(mnt, "chos-itest-write"), nil, 0o644)
		if hostMounts, err := os.ReadFile("/proc/1/mountinfo"); err != nil || strings.Contains(string(hostMounts), " "+mnt+" ") {
			hostHasIt = fmt.Errorf("the host's mount table has %s (or cannot be read: %v)", mnt, err)
		}
		return unix.Unmount(mnt, 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	if id := parseOSRelease(string(osRelease))["ID"]; id != h.osIDs["one"] {
		t.Errorf("os-release in the image: ID %q, want %q:\n%s", id, h.osIDs["one"], osRelease)
	}
	if !errors.Is(writeErr, unix.EROFS) {
		t.Errorf("writing into the mounted image: %v, want EROFS", writeErr)
	}
	if hostHasIt != nil {
		t.Error(hostHasIt)
	}
	if m := mountsUnder(mnt); len(m) > 0 {
		t.Errorf("mounts on the host under %s: %v", mnt, m)
	}

	// unmounted, still open: still bound (control for the check below)
	if got := boundTo(t, img); len(got) != 1 {
		t.Fatalf("after the unmount, with the device still open: bound to %s: %v, want %s", img, got, dev.Name())
	}
	dev.Close()
	wantNoLoopDevices(t, img)
}

// A file that is not a squashfs image is refused before any loop device or
// mount, with a message naming it.
func TestLoopRefusesPlainFile(t *testing.T) {
	for _, path := range []string{
		filepath.Join(h.trees["one"], "etc", "os-release"),
		filepath.Join(h.trees["one"], "bin", "busybox"),
	} {
		f := openImage(t, path)
		err := loopdev.CheckSquashfs(f)
		if !errors.Is(err, loopdev.ErrNotSquashfs) || !strings.Contains(err.Error(), path) ||
			!strings.Contains(err.Error(), `not the squashfs magic "hsqs"`) {
			t.Errorf("CheckSquashfs(%s): %v; want ErrNotSquashfs naming the file and the magic", path, err)
		}
	}
	// control: an image of the same tree passes
	if err := loopdev.CheckSquashfs(openImage(t, squashImage(t, h.trees["one"]))); err != nil {
		t.Errorf("an image is refused: %v", err)
	}
}

// Attaching the same image again through the share function gives the
// device already bound to it; another file, or a plain Attach, gets its own.
func TestLoopSharedAttachReusesDevice(t *testing.T) {
	needLoopSquashfs(t)
	img := squashImage(t, h.trees["one"])
	t.Cleanup(func() { wantNoLoopDevices(t, h.base) })
	attach := func(how func(*os.File) (*os.File, error), path string) *os.File {
		t.Helper()
		dev, err := how(openImage(t, path))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dev.Close() })
		return dev
	}

	first := attach(loopdev.AttachShared, img)
	second := attach(loopdev.AttachShared, img)
	if first.Name() != second.Name() {
		t.Errorf("two shared attaches of %s: %s and %s, want one device", img, first.Name(), second.Name())
	}
	found, err := loopdev.Find(openImage(t, img))
	if err != nil || found == nil || found.Name() != first.Name() {
		t.Errorf("Find(%s) = %v, %v; want %s", img, found, err, first.Name())
	}
	if found != nil {
		found.Close()
	}
	if got := boundTo(t, img); len(got) != 1 {
		t.Errorf("devices bound to %s: %v, want one", img, got)
	}

	// controls: another image of the same tree (another inode), and a
	// plain Attach, get devices of their own
	other := attach(loopdev.AttachShared, squashImage(t, h.trees["one"]))
	plain := attach(loopdev.Attach, img)
	for _, dev := range []*os.File{other, plain} {
		if dev.Name() == first.Name() {
			t.Errorf("%s is shared, want a device of its own", dev.Name())
		}
	}
	if got := boundTo(t, img); len(got) != 2 {
		t.Errorf("devices bound to %s after a plain Attach: %v, want two", img, got)
	}
}

// Find shares only devices set up as Attach sets them up: never one bound
// to the image writable, without autoclear, or from an offset.
func TestLoopFindSharesOnlyReadOnlyAutoclearWholeImage(t *testing.T) {
	needLoopSquashfs(t)
	img := squashImage(t, h.trees["one"])
	t.Cleanup(func() { wantNoLoopDevices(t, img) })
	cases := []struct {
		name    string
		losetup []string
	}{
		{"writable", nil},
		{"read-only without autoclear", []string{"--read-only"}},
		{"read-only from an offset", []string{"--read-only", "--offset", "4096"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append(append([]string{"losetup", "--find", "--show"}, c.losetup...), img)
			r := run(t, call{Args: args, Root: true})
			dev := strings.TrimSpace(r.stdout)
			if r.status != 0 || !strings.HasPrefix(dev, "/dev/loop") {
				t.Fatalf("losetup:\n%s", r)
			}
			defer run(t, call{Args: []string{"losetup", "--detach", dev}, Root: true})
			if got := boundTo(t, img); len(got) != 1 {
				t.Fatalf("devices bound to %s: %v, want %s", img, got, dev)
			}
			found, err := loopdev.Find(openImage(t, img))
			if err != nil || found != nil {
				if found != nil {
					found.Close()
				}
				t.Errorf("Find(%s) = %v, %v; want no device to share (%s is %s)", img, found, err, dev, c.name)
			}
		})
	}
}

// Many processes setting up one image at once end up with one loop device,
// which each of them mounts.
func TestLoopConcurrentSharedAttachesMakeOneDevice(t *testing.T) {
	needLoopSquashfs(t)
	const n = 32
	img := squashImage(t, h.trees["one"])
	t.Cleanup(func() { wantNoLoopDevices(t, img) })
	mnt := mountDir(t)

	var attached sync.WaitGroup
	release := make(chan struct{})
	names := make([]string, n)
	errs := make([]error, n)
	attached.Add(n)
	var done sync.WaitGroup
	for i := 0; i < n; i++ {
		done.Add(1)
		go func(i int) {
			defer done.Done()
			f, err := os.Open(img)
			if err != nil {
				errs[i] = err
				attached.Done()
				return
			}
			dev, err := loopdev.AttachShared(f)
			f.Close()
			attached.Done()
			if err != nil {
				errs[i] = err
				return
			}
			defer dev.Close()
			names[i] = dev.Name()
			<-release // all hold their device: none can be freed meanwhile
			errs[i] = inMountNamespace(func() error {
				if err := mountSquashfs(dev.Name(), mnt); err != nil {
					return err
				}
				data, err := os.ReadFile(filepath.Join(mnt, "etc", "os-release"))
				if err == nil && parseOSRelease(string(data))["ID"] != h.osIDs["one"] {
					err = fmt.Errorf("os-release in the image: %q", data)
				}
				if uerr := unix.Unmount(mnt, 0); err == nil {
					err = uerr
				}
				return err
			})
		}(i)
	}
	attached.Wait()
	bound := boundTo(t, img)
	close(release)
	done.Wait()

	for i, err := range errs {
		if err != nil {
			t.Errorf("attach %d: %v", i, err)
		}
	}
	devices := map[string]int{}
	for _, name := range names {
		devices[name]++
	}
	if len(devices) != 1 || len(bound) != 1 {
		t.Errorf("%d concurrent shared attaches of %s: devices %v, bound to it %v; want one", n, img, devices, bound)
	}
}

// Control for the test above: plain Attach calls at once each get a device.
func TestLoopConcurrentPlainAttachesMakeOneDeviceEach(t *testing.T) {
	needLoopSquashfs(t)
	const n = 8
	img := squashImage(t, h.trees["one"])
	t.Cleanup(func() { wantNoLoopDevices(t, img) })
	devs := make([]*os.File, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			f, err := os.Open(img)
			if err != nil {
				errs[i] = err
				return
			}
			defer f.Close()
			devs[i], errs[i] = loopdev.Attach(f)
		}(i)
	}
	wg.Wait()
	names := map[string]bool{}
	for i := range devs {
		if errs[i] != nil {
			t.Errorf("attach %d: %v", i, errs[i])
			continue
		}
		names[devs[i].Name()] = true
		defer devs[i].Close()
	}
	if got := boundTo(t, img); len(names) != n || len(got) != n {
		t.Errorf("%d concurrent plain attaches: devices %v, bound %v; want %d distinct", n, names, got, n)
	}
}

// Without loop support (here: a /dev without loop-control, as in most
// containers) or squashfs support, the errors say so.
func TestLoopMissingKernelSupportIsNamed(t *testing.T) {
	needLoopSquashfs(t)
	img := squashImage(t, h.trees["one"])
	noSquashfs := filepath.Join(h.base, unique(t))
	if err := os.WriteFile(noSquashfs, []byte("nodev\tsysfs\nnodev\tproc\n\text4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(noSquashfs)
	var attachErr, squashfsErr error
	err := inMountNamespace(func() error {
		if err := unix.Mount("tmpfs", "/dev", "tmpfs", 0, "mode=0755"); err != nil {
			return fmt.Errorf("mounting a tmpfs on /dev: %w", err)
		}
		f, err := os.Open(img)
		if err != nil {
			return err
		}
		defer f.Close()
		if dev, err := loopdev.Attach(f); err == nil {
			dev.Close()
		} else {
			attachErr = err
		}
		// no squashfs in /proc/filesystems, no module for it (no directory
		// is made: that would be on the host's file system)
		if err := unix.Mount(noSquashfs, "/proc/filesystems", "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding over /proc/filesystems: %w", err)
		}
		if _, err := os.Stat("/lib/modules"); err == nil {
			if err := unix.Mount("tmpfs", "/lib/modules", "tmpfs", 0, "mode=0755"); err != nil {
				return fmt.Errorf("mounting a tmpfs on /lib/modules: %w", err)
			}
		}
		squashfsErr = loopdev.CheckKernelSquashfs()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(attachErr, loopdev.ErrNoLoopSupport) || !strings.Contains(attachErr.Error(), "/dev/loop-control") {
		t.Errorf("Attach without /dev/loop-control: %v; want ErrNoLoopSupport naming /dev/loop-control", attachErr)
	}
	if !errors.Is(squashfsErr, loopdev.ErrNoSquashfs) || !strings.Contains(squashfsErr.Error(), "/proc/filesystems") {
		t.Errorf("CheckKernelSquashfs without squashfs in /proc/filesystems: %v; want ErrNoSquashfs", squashfsErr)
	}
	// controls: on the host, both are there
	if err := loopdev.CheckKernelSquashfs(); err != nil {
		t.Errorf("CheckKernelSquashfs on the host: %v", err)
	}
	if err := loopdev.CheckLoopSupport(); err != nil {
		t.Errorf("CheckLoopSupport on the host: %v", err)
	}
}
