// nsorder LAUNCHCPU VIEWCPU CMD [ARG...]: run CMD in a new private mount
// namespace made on LAUNCHCPU once that CPU's namespace ids have passed
// what VIEWCPU hands out now, with CMD kept on VIEWCPU. So every namespace
// CMD's processes make on VIEWCPU gets a smaller id than the one they run
// in, as happens to a Slurm job's namespace or an `unshare -m` on Linux
// 6.18, which gives namespace ids out in per-CPU batches. Before CMD, it
// checks that the kernel then refuses to bind a namespace made on VIEWCPU
// in the new one (status 3 if it does not: the test would prove nothing).
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

func init() { runtime.LockOSThread() }

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: nsorder LAUNCHCPU VIEWCPU CMD [ARG...]")
		os.Exit(2)
	}
	launchCPU, err1 := strconv.Atoi(os.Args[1])
	viewCPU, err2 := strconv.Atoi(os.Args[2])
	if err := errors.Join(err1, err2); err != nil {
		die(err)
	}
	must(unix.Unshare(unix.CLONE_FS))
	must(pin(viewCPU))
	probe := newUTSID()
	must(pin(launchCPU))
	for newUTSID() <= probe {
	}
	must(unix.Unshare(unix.CLONE_NEWNS))
	must(unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""))
	launch, err := os.Open("/proc/thread-self/ns/mnt")
	must(err)
	must(pin(viewCPU)) // for CMD, which inherits this thread's CPUs
	if err := bindOlder(launch, viewCPU); !errors.Is(err, unix.EINVAL) {
		fmt.Fprintf(os.Stderr, "nsorder: the kernel bound a namespace made on CPU %d in one made on CPU %d (%v): nothing to test\n", viewCPU, launchCPU, err)
		os.Exit(3)
	}
	launch.Close()
	path, err := lookPath(os.Args[3])
	must(err)
	die(syscall.Exec(path, os.Args[3:], os.Environ()))
}

// bindOlder makes a namespace on cpu (in a thread of its own) and tries to
// bind it in launch.
func bindOlder(launch *os.File, cpu int) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- func() error {
			if err := pin(cpu); err != nil {
				return err
			}
			if err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS); err != nil {
				return err
			}
			view, err := os.Open("/proc/thread-self/ns/mnt")
			if err != nil {
				return err
			}
			defer view.Close()
			if err := unix.Setns(int(launch.Fd()), unix.CLONE_NEWNS); err != nil {
				return err
			}
			dir, err := os.MkdirTemp("", "nsorder")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			if err := unix.Mount("tmpfs", dir, "tmpfs", 0, ""); err != nil {
				return err
			}
			defer unix.Unmount(dir, unix.MNT_DETACH)
			file := filepath.Join(dir, "view.mnt")
			if err := os.WriteFile(file, nil, 0o600); err != nil {
				return err
			}
			err = unix.Mount(fmt.Sprintf("/proc/self/fd/%d", view.Fd()), file, "", unix.MS_BIND, "")
			unix.Unmount(file, unix.MNT_DETACH)
			return err
		}()
	}()
	return <-errc
}

// newUTSID makes a UTS namespace and returns its id (NS_GET_ID).
func newUTSID() uint64 {
	must(unix.Unshare(unix.CLONE_NEWUTS))
	fd, err := unix.Open("/proc/thread-self/ns/uts", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	must(err)
	defer unix.Close(fd)
	var id uint64
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), 2<<30|8<<16|0xb7<<8|13, uintptr(unsafe.Pointer(&id))); e != 0 {
		die(fmt.Errorf("NS_GET_ID: %w", e))
	}
	return id
}

func pin(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	return unix.SchedSetaffinity(0, &set)
}

func lookPath(name string) (string, error) {
	if filepath.IsAbs(name) {
		return name, nil
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found on PATH", name)
}

func must(err error) {
	if err != nil {
		die(err)
	}
}

func die(err error) {
	fmt.Fprintln(os.Stderr, "nsorder:", err)
	os.Exit(1)
}
