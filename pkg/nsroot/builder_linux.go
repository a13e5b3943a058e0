package nsroot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/spec"
)

// A cached view is built and published by a builder: chos itself, executed
// again with every uid and gid 0, in a session of its own, with no
// terminal and none of the caller's descriptors. The launching process
// holds no lock while it waits for it. A user can stop their own chos
// (SIGSTOP), let its stderr fill up, or kill it, but cannot signal, trace
// or block a process whose ids are all root's: so no user can keep the
// tree's lock, and with it every other user's first launch, held.

// builderArg marks the builder's invocation. Only root can start one:
// it refuses to run unless every uid it has is 0.
const builderArg = "__chos_build_view"

// IsViewBuilder says whether this process was started as a builder.
func IsViewBuilder(args []string) bool { return len(args) == 2 && args[1] == builderArg }

// The builder reads its View from fd 3 and writes its result on fd 4.
const (
	builderInFD  = 3
	builderOutFD = 4
)

// builderTimeout bounds a build: a tree on a hung file server must not
// keep a launch waiting forever.
const builderTimeout = 5 * time.Minute

// builderRequest is what a builder is asked to build: a view, and the
// identity layer of one user on it (nil for none).
type builderRequest struct {
	View  spec.View
	Layer *spec.Layer
}

type builderResult struct {
	Notes []spec.Note
	// Private: the cache cannot be used (another namespace owns it, or
	// publishing failed): the launch builds a view of its own.
	Private bool
	Err     string
}

// runBuilder starts a builder for v (and id) and waits for its result.
// The notes of completing v come first.
func runBuilder(v *spec.View, id *spec.Layer) (res builderResult, err error) {
	notes, err := completeView(v, Privileged)
	if err != nil {
		return res, err
	}
	defer func() { res.Notes = append(notes, res.Notes...) }()
	inR, inW, err := os.Pipe()
	if err != nil {
		return res, fmt.Errorf("starting the view builder: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return res, fmt.Errorf("starting the view builder: %w", err)
	}
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       []string{"chos", builderArg},
		Env:        []string{},
		Dir:        "/",
		ExtraFiles: []*os.File{inR, outW},
		SysProcAttr: &syscall.SysProcAttr{
			Credential: &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}},
			Setsid:     true,
		},
	}
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return res, fmt.Errorf("starting the view builder: %w", err)
	}
	go func() {
		req := builderRequest{View: *v, Layer: id}
		inW.Write(req.encode())
		inW.Close()
	}()
	done := make(chan error, 1)
	go func() {
		data, err := io.ReadAll(outR)
		outR.Close()
		if err == nil {
			err = res.decode(data)
		}
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(builderTimeout):
		cmd.Process.Kill()
		err = fmt.Errorf("no result after %v", builderTimeout)
	}
	cmd.Wait()
	if err != nil {
		return res, fmt.Errorf("building the view of tree %s: %w", v.Tree, err)
	}
	if res.Err != "" {
		return res, fmt.Errorf("%s", res.Err)
	}
	return res, nil
}

// RunViewBuilder is the builder's side: it builds and publishes the view
// it is given and reports to the launch that started it, which shows what
// went wrong; what it returns is for whoever else started it.
func RunViewBuilder() error {
	if r, e, s := unix.Getresuid(); r != 0 || e != 0 || s != 0 {
		return fmt.Errorf("refusing to build a view for the cache: only root may (uids %d/%d/%d)", r, e, s)
	}
	// What is created in the cache has the modes chos chose, whatever
	// umask the launching user had.
	unix.Umask(0o022)
	detachFromCaller()
	var req builderRequest
	in := os.NewFile(builderInFD, "view")
	data, err := io.ReadAll(in)
	in.Close()
	if err == nil {
		err = req.decode(data)
	}
	v := req.View
	out := os.NewFile(builderOutFD, "result")
	var res builderResult
	switch {
	case err != nil:
		res.Err = fmt.Sprintf("reading the view to build: %v", err)
	case v.Cache == nil:
		res.Err = "the view to build has no cache"
	default:
		if res, err = buildAndPublish(&v, req.Layer); err != nil {
			res.Err = err.Error()
		}
	}
	// Written after the lock is released: a launcher that does not read
	// blocks only this process, which holds nothing any more.
	out.Write(res.encode())
	out.Close()
	if res.Err != "" {
		return errors.New(res.Err)
	}
	return nil
}

// detachFromCaller gives up what the builder inherited from the user who
// started it and that could slow or stall a view every user waits for:
// descriptors the caller left open across exec (Go's exec keeps those
// without close-on-exec), a nice value, an idle or batch scheduling class,
// a CPU affinity, and cgroups, which a user may have been delegated and
// could freeze (systemd's Delegate=, cgroup.freeze or the v1 freezer).
// (Its resource limits stay the caller's.)
func detachFromCaller() {
	// The root cgroup of every hierarchy: only root may move there.
	if mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2")); err == nil {
		pid := []byte(strconv.Itoa(os.Getpid()))
		for _, m := range mounts {
			if m.Root == "/" {
				os.WriteFile(filepath.Join(m.Mountpoint, "cgroup.procs"), pid, 0)
			}
		}
	}
	// The caller's descriptors are those that survived exec: without
	// close-on-exec. (The Go runtime's own, such as the cgroup files it
	// rereads for GOMAXPROCS, have it and must stay.)
	if fds, err := inheritedFDs(); err == nil {
		for _, fd := range fds {
			if fd > builderOutFD {
				unix.Close(fd)
			}
		}
	}
	// Each is a thread's own: applied to every thread the runtime has.
	var all unix.CPUSet
	for i := 0; i < len(all)*64; i++ {
		all.Set(i) // (the kernel keeps the CPUs the cpuset allows)
	}
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		unix.Setpriority(unix.PRIO_PROCESS, tid, 0)
		unix.SchedSetAttr(tid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: 0 /* SCHED_OTHER */}, 0)
		unix.SchedSetaffinity(tid, &all)
	}
}
