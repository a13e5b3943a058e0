package nsroot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestViewNamespaceBindsInLaunchNamespaceMadeOnAnotherCPU makes a launch's
// mount namespace on one CPU, newer than every id the other CPU hands out,
// then a view's namespace on the other CPU, and binds the view's namespace
// file in the launch's namespace, as publishing a cached view does. Without
// newerNamespaces the kernel refuses the bind (the control); with it, the
// bind works, for every pair of CPUs.
func TestViewNamespaceBindsInLaunchNamespaceMadeOnAnotherCPU(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: it makes mount namespaces and binds their files")
	}
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		t.Fatal(err)
	}
	var cpus []int
	for c := 0; c < len(allowed)*64; c++ {
		if allowed.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) < 2 {
		t.Skip("one CPU: its namespace ids follow creation order, nothing to check")
	}
	if len(cpus) > 4 {
		cpus = cpus[:4]
	}
	for _, launchCPU := range cpus {
		for _, viewCPU := range cpus {
			if launchCPU == viewCPU {
				continue
			}
			t.Run(fmt.Sprintf("launch on CPU %d, view on CPU %d", launchCPU, viewCPU), func(t *testing.T) {
				err := bindViewMadeOn(t.TempDir(), launchCPU, viewCPU, false)
				if !errors.Is(err, unix.EINVAL) {
					t.Fatalf("control: binding a view made without newerNamespaces: got %v, want EINVAL (the kernel's mnt_ns_loop)", err)
				}
				if err := bindViewMadeOn(t.TempDir(), launchCPU, viewCPU, true); err != nil {
					t.Fatalf("binding a view made after newerNamespaces: %v", err)
				}
			})
		}
	}
}

// bindViewMadeOn does it on a thread of its own, which ends with it (and
// its namespaces with the thread).
func bindViewMadeOn(dir string, launchCPU, viewCPU int, ordered bool) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		errc <- func() error {
			if err := unix.Unshare(unix.CLONE_FS); err != nil {
				return err
			}
			// The launch's namespace: made on launchCPU once its ids have
			// passed what viewCPU hands out now.
			if err := pin(viewCPU); err != nil {
				return err
			}
			probe, err := newUTSNamespaceID()
			if err != nil {
				return err
			}
			if err := pin(launchCPU); err != nil {
				return err
			}
			for id := uint64(0); id <= probe; {
				if id, err = newUTSNamespaceID(); err != nil {
					return err
				}
			}
			if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
				return err
			}
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				return err
			}
			if err := unix.Mount("tmpfs", dir, "tmpfs", 0, ""); err != nil {
				return err
			}
			file := filepath.Join(dir, "view.mnt")
			if err := os.WriteFile(file, nil, 0o600); err != nil {
				return err
			}
			launch, err := os.Open("/proc/thread-self/ns/mnt")
			if err != nil {
				return err
			}
			defer launch.Close()

			if err := pin(viewCPU); err != nil {
				return err
			}
			if ordered {
				done, err := newerNamespaces(launch)
				if err != nil {
					return err
				}
				defer done()
			}
			if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
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
			return unix.Mount(fdPath(view), file, "", unix.MS_BIND, "")
		}()
	}()
	return <-errc
}

func pin(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	return unix.SchedSetaffinity(0, &set)
}

// A view that cannot be cached is said once per mount namespace: a warning
// the first time, a note afterwards, and `chos check` reads the reason.
func TestUncachedViewIsWarnedOncePerNamespace(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "one.KEY.mnt")
	var first, second builderResult
	first.warnUncached(file, "not caching tree one: a reason")
	second.warnUncached(file, "not caching tree one: a reason")
	if !first.Private || len(first.Notes) != 1 || !first.Notes[0].Warning {
		t.Errorf("first launch: %+v, want a private view and a warning", first)
	}
	if !second.Private || len(second.Notes) != 1 || second.Notes[0].Warning {
		t.Errorf("second launch: %+v, want a private view and only a note", second)
	}
	if got := Uncached(dir); len(got) != 1 || got[0] != "not caching tree one: a reason" {
		t.Errorf("Uncached lists %q", got)
	}
	if err := DropCache(dir, "one"); err != nil {
		t.Fatal(err)
	}
	if got := Uncached(dir); len(got) != 0 {
		t.Errorf("after dropping tree one, Uncached still lists %q", got)
	}
}
