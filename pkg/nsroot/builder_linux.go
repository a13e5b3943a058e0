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

// Every view a privileged chos enters is built by a builder: chos itself,
// executed again with every uid and gid 0, in a session of its own, with
// no terminal, none of the caller's descriptors, and the resource limits,
// scheduling, I/O priority, timer slack and cgroups chos chose rather than
// the caller's. A cached view is published by the builder, under the
// tree's lock, for every later launch; a private one (--fresh, cache = no,
// a launch from inside a view) is handed back to the launching process as
// a namespace descriptor. The launching process takes no lock, mounts
// nothing and sets up no loop device itself: a user can stop their own
// chos (SIGSTOP), let its stderr fill up, or kill it, but cannot signal,
// trace or block a process whose ids are all root's. So no user can keep
// a lock that another user's launch waits for: the tree's build lock, the
// cache directory's claim, the lock on /dev/loop-control.

// builderArg marks the builder's invocation. Only root can start one:
// it refuses to run unless every uid it has is 0.
const builderArg = "__chos_build_view"

// IsViewBuilder says whether this process was started as a builder.
func IsViewBuilder(args []string) bool { return len(args) == 2 && args[1] == builderArg }

// The builder reads its View from fd 3 (a pipe) and writes its result on
// fd 4, a socket, with the descriptor of the namespace it built attached
// when the launch is to enter it directly.
const (
	builderInFD  = 3
	builderOutFD = 4
)

// builderTimeout bounds a build: a tree on a hung file server must not
// keep a launch waiting forever. The builder also ends itself after it,
// whether or not its launcher is still there to kill it: a stopped
// launcher must not leave a builder holding the tree's lock.
const builderTimeout = 5 * time.Minute

// builderRequest is what a builder is asked to build: a view, and the
// identity layer of one user on it (nil for none). A view without a Cache
// is private: built for the launching process only.
type builderRequest struct {
	View  spec.View
	Layer *spec.Layer
}

type builderResult struct {
	Notes []spec.Note
	// Private: the cache cannot be used (another namespace owns it, or
	// publishing failed): the launch enters the namespace handed back.
	Private bool
	// Built: this builder built and published the view (not a
	// concurrent one, nor only the identity layer).
	Built bool
	Err   string
}

// runBuilder starts a builder for v (and id) and waits for its result, and
// for the namespace it hands back (nil when it published the view). The
// notes of completing v come first.
func runBuilder(v *spec.View, id *spec.Layer) (res builderResult, ns *os.File, err error) {
	notes, err := completeView(v, Privileged)
	if err != nil {
		return res, nil, err
	}
	defer func() { res.Notes = append(notes, res.Notes...) }()
	inR, inW, err := os.Pipe()
	if err != nil {
		return res, nil, fmt.Errorf("starting the view builder: %w", err)
	}
	sv, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		inR.Close()
		inW.Close()
		return res, nil, fmt.Errorf("starting the view builder: %w", err)
	}
	outR, outW := os.NewFile(uintptr(sv[0]), "builder result"), os.NewFile(uintptr(sv[1]), "result")
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
		return res, nil, fmt.Errorf("starting the view builder: %w", err)
	}
	go func() {
		req := builderRequest{View: *v, Layer: id}
		inW.Write(req.encode())
		inW.Close()
	}()
	type reply struct {
		data []byte
		ns   *os.File
		err  error
	}
	done := make(chan reply, 1)
	go func() {
		var r reply
		r.data, r.ns, r.err = receiveResult(outR)
		outR.Close()
		done <- r
	}()
	var r reply
	select {
	case r = <-done:
	case <-time.After(builderTimeout):
		cmd.Process.Kill()
		r = <-done // (the builder's end is closed now)
		if r.ns != nil {
			r.ns.Close()
		}
		r = reply{err: fmt.Errorf("no result after %v", builderTimeout)}
	}
	cmd.Wait()
	if r.err == nil {
		r.err = res.decode(r.data)
	}
	switch {
	case r.err != nil:
		r.err = fmt.Errorf("building the view of tree %s: %w", v.Tree, r.err)
	case res.Err != "":
		r.err = errors.New(res.Err)
	}
	if r.err != nil && r.ns != nil {
		r.ns.Close()
		r.ns = nil
	}
	return res, r.ns, r.err
}

// receiveResult reads a builder's result to the end, and the namespace
// descriptor that comes with it, if any.
func receiveResult(sock *os.File) (data []byte, ns *os.File, err error) {
	fd := int(sock.Fd())
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return data, ns, err
		}
		for _, fd := range receivedFDs(oob[:oobn]) {
			if ns == nil {
				ns = os.NewFile(uintptr(fd), "the view's namespace")
			} else {
				unix.Close(fd)
			}
		}
		if n == 0 {
			return data, ns, nil
		}
		data = append(data, buf[:n]...)
	}
}

// receivedFDs are the descriptors an SCM_RIGHTS message carried.
func receivedFDs(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if got, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, got...)
		}
	}
	return fds
}

// enterNamespace puts the calling thread in the mount namespace ns, at its
// root.
func enterNamespace(ns *os.File) error {
	// setns(CLONE_NEWNS) refuses a thread that shares its root and cwd with
	// the other threads of the process.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unsharing file system attributes: %w", err)
	}
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("entering the view's namespace: %w", err)
	}
	return unix.Chdir("/")
}

// enterBuiltView has a builder build a private view of v, with id's lines,
// and puts the calling thread in it.
func enterBuiltView(v *spec.View, id *spec.Layer) (notes []spec.Note, err error) {
	private := *v
	private.Cache = nil
	res, ns, err := runBuilder(&private, id)
	if err != nil {
		return res.Notes, err
	}
	if ns == nil {
		return res.Notes, fmt.Errorf("building the view of tree %s: the builder handed back no namespace", v.Tree)
	}
	defer ns.Close()
	return res.Notes, enterNamespace(ns)
}

// RunViewBuilder is the builder's side: it builds the view it is given,
// publishes it or hands it back, and reports to the launch that started
// it, which shows what went wrong; what it returns is for whoever else
// started it.
func RunViewBuilder() error {
	if r, e, s := unix.Getresuid(); r != 0 || e != 0 || s != 0 {
		return fmt.Errorf("refusing to build a view for the cache: only root may (uids %d/%d/%d)", r, e, s)
	}
	time.AfterFunc(builderTimeout, func() { os.Exit(StatusFailed) })
	out := os.NewFile(builderOutFD, "result")
	var res builderResult
	var ns *os.File
	if err := takeChosLimits(); err != nil {
		res.Err = err.Error()
		sendResult(out, &res, nil)
		return err
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
	switch {
	case err != nil:
		res.Err = fmt.Sprintf("reading the view to build: %v", err)
	case v.OuterHost != "":
		err = leaveOuterView(v.OuterHost)
	}
	switch {
	case res.Err != "":
	case err != nil:
		res.Err = err.Error()
	case v.Cache == nil:
		res, ns, err = buildPrivate(&v, req.Layer)
	default:
		res, ns, err = buildAndPublish(&v, req.Layer)
	}
	if err != nil {
		res.Err = err.Error()
	}
	// Written after the lock is released: a launcher that does not read
	// blocks only this process, which holds nothing any more.
	sendResult(out, &res, ns)
	if res.Err != "" {
		return errors.New(res.Err)
	}
	return nil
}

// sendResult writes a builder's result on out, with ns attached (nil:
// none), and closes out.
func sendResult(out *os.File, res *builderResult, ns *os.File) {
	data := res.encode()
	var oob []byte
	if ns != nil && res.Err == "" {
		oob = unix.UnixRights(int(ns.Fd()))
	}
	if n, err := unix.SendmsgN(int(out.Fd()), data, oob, nil, 0); err == nil && n < len(data) {
		out.Write(data[n:])
	}
	out.Close()
}

// buildPrivate builds v (with id's lines) in a namespace of its own and
// returns that namespace.
func buildPrivate(v *spec.View, id *spec.Layer) (res builderResult, ns *os.File, err error) {
	if res.Notes, err = assemble(v, Privileged); err != nil {
		return res, nil, err
	}
	if v.RootSource == "" {
		if err := applyIdentity(id); err != nil {
			return res, nil, err
		}
	}
	ns, err = os.Open("/proc/thread-self/ns/mnt")
	if err != nil {
		return res, nil, fmt.Errorf("opening the view's namespace: %w", err)
	}
	return res, ns, nil
}

// leaveOuterView puts the calling thread in a copy of its mount namespace
// whose root is hostDir, the host's root as the view this builder was
// started from shows it (plan.HostDir), and drops the rest of that view
// from it: nothing of the tree stays reachable, or pinned, in the view
// built next, and a launch entering that view lands on its root (setns
// starts at the root of the namespace, not at a process's chroot).
func leaveOuterView(hostDir string) error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unsharing the mount namespace: %w", err)
	}
	self, err := os.Open("/proc/thread-self/ns/mnt")
	if err != nil {
		return fmt.Errorf("opening the new mount namespace: %w", err)
	}
	defer self.Close()
	// Re-entering its own namespace moves the thread from the host's root
	// (where chos put itself: EnterHostRoot) to the namespace's: the outer
	// view, whose mount is then the one pivot_root can replace.
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("entering the new mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("making the outer view's mounts slave: %w", err)
	}
	return pivot(hostDir)
}

// detachFromCaller gives up what the builder inherited from the user who
// started it and that could slow or stall a view every user waits for:
// descriptors the caller left open across exec (Go's exec keeps those
// without close-on-exec), a nice value, an idle or batch scheduling class,
// a CPU affinity, an idle I/O priority class, a timer slack that stretches
// every sleep and timeout, an OOM score that makes it the first process
// killed, and cgroups, which a user may have been delegated and could
// freeze (systemd's Delegate=, cgroup.freeze or the v1 freezer). (Its
// resource limits are chos's: takeChosLimits.)
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
		// IOPRIO_WHO_PROCESS, IOPRIO_CLASS_NONE: from the nice value.
		unix.Syscall(unix.SYS_IOPRIO_SET, 1, uintptr(tid), 0)
		// (0 would restore the slack the thread was created with: the
		// caller's)
		os.WriteFile("/proc/self/task/"+t.Name()+"/timerslack_ns", []byte(defaultTimerSlack), 0)
	}
	os.WriteFile("/proc/self/oom_score_adj", []byte("0"), 0)
}

// defaultTimerSlack is the kernel's timer slack for a process nobody
// changed (50 µs, init's), in nanoseconds.
const defaultTimerSlack = "50000"
