package nsroot

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A cached view is published by binding its mount namespace's file in the
// namespace the launch came from. The kernel allows that only when the
// view's namespace id is greater than the binding process's own
// (mnt_ns_loop in fs/namespace.c: a namespace may only hold newer ones, so
// that no two hold each other). Since Linux 6.18 namespace ids come from a
// cookie handed out in per-CPU batches of 4096 (gen_cookie_next in
// include/linux/cookie.h), so a namespace made now on one CPU can get a
// smaller id than one made earlier on another: a view built there cannot
// be bound, and every launch from such a namespace (a Slurm job's
// job_container/tmpfs namespace, a container, `unshare -m`) built a view
// of its own. newerNamespaces removes the dependence on where the
// namespace was made: it keeps the thread on one CPU and has that CPU hand
// out ids until they pass the given namespace's, so that the namespaces
// this thread makes next are newer than it.

// nsGetID is NS_GET_ID (_IOR(0xb7, 13, __u64), Linux 6.18): a namespace's
// id, from the same sequence for every type of namespace.
const nsGetID = 2<<30 | 8<<16 | 0xb7<<8 | 13

// idBatch is the kernel's COOKIE_LOCAL_BATCH: a CPU takes a new batch, newer
// than every id handed out before, at most this many ids later.
const idBatch = 4096

// namespaceID is the id of the namespace open at fd. ENOTTY (or EINVAL)
// means a kernel before 6.18, whose mount namespace ids follow creation
// order.
func namespaceID(fd int) (uint64, error) {
	var id uint64
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), nsGetID, uintptr(unsafe.Pointer(&id))); e != 0 {
		return 0, e
	}
	return id, nil
}

// newerNamespaces makes the namespaces the calling thread creates until
// done is called newer than the namespace open in than, so that they can
// be bound in it. It pins the thread to the CPU it runs on and, where that
// CPU's batch of ids is older, creates and drops UTS namespaces (a few
// microseconds each, at most one batch: about 15 ms) until its ids pass.
// done gives the thread its CPUs and UTS namespace back. On a kernel
// without namespace ids it does nothing: there they follow creation order.
// The thread must be locked and privileged (CAP_SYS_ADMIN).
func newerNamespaces(than *os.File) (done func(), err error) {
	floor, err := namespaceID(int(than.Fd()))
	if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
		return func() {}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the id of the launch's mount namespace: %w", err)
	}
	var cpus unix.CPUSet
	if err := unix.SchedGetaffinity(0, &cpus); err != nil {
		return nil, fmt.Errorf("reading the CPU affinity: %w", err)
	}
	uts, err := os.Open("/proc/thread-self/ns/uts")
	if err != nil {
		return nil, fmt.Errorf("opening the UTS namespace: %w", err)
	}
	var cpu uintptr
	if _, _, e := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), 0, 0); e != 0 {
		uts.Close()
		return nil, fmt.Errorf("reading the current CPU: %w", e)
	}
	done = func() {
		unix.Setns(int(uts.Fd()), unix.CLONE_NEWUTS)
		uts.Close()
		unix.SchedSetaffinity(0, &cpus)
	}
	var one unix.CPUSet
	one.Set(int(cpu))
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		done()
		return nil, fmt.Errorf("pinning the thread to CPU %d: %w", cpu, err)
	}
	// (Three batches: the first new batch is newer than every id handed
	// out before it; the rest is margin against a changed batch size.)
	for n := 0; n < 3*idBatch; n++ {
		id, err := newUTSNamespaceID()
		if err != nil {
			done()
			return nil, err
		}
		if id > floor {
			return done, nil
		}
	}
	done()
	return nil, fmt.Errorf("namespace ids on CPU %d stay below the launch's mount namespace's (%d)", cpu, floor)
}

// newUTSNamespaceID moves the thread into a new UTS namespace (the
// cheapest kind to make) and returns its id.
func newUTSNamespaceID() (uint64, error) {
	if err := unix.Unshare(unix.CLONE_NEWUTS); err != nil {
		return 0, fmt.Errorf("making a namespace id: %w", err)
	}
	fd, err := unix.Open("/proc/thread-self/ns/uts", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("opening the UTS namespace: %w", err)
	}
	defer unix.Close(fd)
	id, err := namespaceID(fd)
	if err != nil {
		return 0, fmt.Errorf("reading a namespace id: %w", err)
	}
	return id, nil
}
