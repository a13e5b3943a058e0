package nsroot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/spec"
)

// childArg marks the re-executed chos that carries out a plan inside a new
// user namespace. It grants nothing: that process has only what the user
// namespace gives, which any user can make for themselves.
const childArg = "__chos_userns_child"

// IsUserNSChild says whether this process was started as RunInUserNS
// starts its child (argv: chos, childArg, the plan's descriptor).
func IsUserNSChild(args []string) bool { return len(args) >= 2 && args[1] == childArg }

// childRequest is what RunInUserNS sends its child: the plan, what chos
// was started with (the child restores it for the command), and whether
// the child shows the notes of its launch (--verbose).
type childRequest struct {
	Plan    spec.Plan
	Inherit Inherited
	Verbose bool
}

// RunInUserNS carries out p without privilege: a child in a new user and
// mount namespace (which a multithreaded Go process cannot enter in place)
// builds the view and execs the command, while this process stays in
// between. The child gets every descriptor this process inherited, at the
// same numbers, and its plan (bytes, not text: wire.go) on a pipe above
// them, which it closes before the exec. This process forwards signals,
// stops when the command stops and continues it when continued, dies with
// it (the child is killed if this process dies), and ends as it ends: with
// its exit status, or killed by the same signal. Its notes are what went
// wrong with an image's server while the command ran.
//
// A view with a Cache is kept (keeper_linux.go): the command's process is
// forked from this one and joins the kept view, and only when there is none
// does a keeper build it.
func RunInUserNS(p *spec.Plan, verbose bool) (int, []spec.Note, error) {
	// (The image server needs the image's entries; the child reads the
	// devices' specs, and shows what it left out of them as its other
	// notes.)
	if err := expandEntries(&p.View, Unprivileged); err != nil {
		return StatusFailed, nil, fmt.Errorf("setting up tree %s: %w", p.Tree, err)
	}
	// What the caller ignored, this process ignores too, as the command
	// will (a Go program dies by a SIGTERM it was started ignoring).
	start.ignoreAsCaller()
	var kept []spec.Note
	if p.Cache != nil {
		status, notes, ran, err := runKept(p, verbose)
		if ran {
			return status, notes, err
		}
		kept = notes
	}
	status, notes, err := runFresh(p, verbose)
	return status, append(kept, notes...), err
}

// runFresh is RunInUserNS with a view built for this launch alone.
func runFresh(p *spec.Plan, verbose bool) (int, []spec.Note, error) {
	images, err := newImageServer(&p.View)
	if err != nil {
		return StatusFailed, nil, err
	}
	defer images.close()
	need := userNSTasks + 1 // (the signal witness)
	if images != nil {
		need += imageTasks
	}
	if err := checkTaskRoom(os.Getuid(), need); err != nil {
		return StatusFailed, nil, err
	}
	// While it waits, this process runs little Go code: one processor
	// bounds the threads the runtime may still start (see checkTaskRoom).
	runtime.GOMAXPROCS(1)
	req := childRequest{Plan: *p, Inherit: start, Verbose: verbose}
	plan := req.encode()
	r, w, err := os.Pipe()
	if err != nil {
		return StatusFailed, nil, fmt.Errorf("making a pipe for the plan: %w", err)
	}
	files, planFD, err := childFiles(int(r.Fd()))
	if err != nil {
		r.Close()
		w.Close()
		return StatusFailed, nil, err
	}
	// The signals it forwards it catches before starting the child, so
	// that nothing is lost in between.
	sigs := catchForwarded(&req.Inherit)
	// (without one, the terminal tells group signals apart: see forward)
	wit, _ := startWitness()
	defer wit.stop()
	argv := []string{"chos", childArg, strconv.Itoa(planFD)}
	if images != nil {
		// The image server's socket, right above the plan.
		argv = append(argv, strconv.Itoa(len(files)))
		files = append(files, images.child.Fd())
	}
	// The child's own environment (the command's is in the plan): its Go
	// runtime on one processor and without a collector, which would start
	// threads of its own before the exec (see checkTaskRoom).
	pid, err := syscall.ForkExec("/proc/self/exe", argv,
		&syscall.ProcAttr{Env: []string{"GOMAXPROCS=1", "GOGC=off"}, Files: files, Sys: ownNamespaces()})
	r.Close()
	if err != nil {
		w.Close()
		return StatusFailed, nil, fmt.Errorf("starting a user namespace (see `chos check`): %w", err)
	}
	images.serve()
	c := &child{pid: pid}
	go func() {
		// The child reads it all before doing anything; if it is gone,
		// its status says why.
		w.Write(plan)
		w.Close()
	}()
	go c.forward(sigs, wit)
	ws, err := c.wait()
	notes := images.failures()
	wit.stop()
	status, err := endAs(ws, err)
	return status, notes, err
}

// catchForwarded starts catching the signals the helper forwards (but
// those the caller ignored).
func catchForwarded(in *Inherited) chan os.Signal {
	var watched []os.Signal
	for _, s := range forwarded {
		if !in.Ignored.Has(int(s.(syscall.Signal))) {
			watched = append(watched, s)
		}
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, watched...)
	return sigs
}

// endAs returns the command's exit status, or ends this process by the
// signal that ended the command (nothing can be shown after).
func endAs(ws unix.WaitStatus, err error) (int, error) {
	if err != nil {
		return StatusFailed, err
	}
	if ws.Signaled() {
		dieBy(ws.Signal())
	}
	return ws.ExitStatus(), nil
}

// keptTasks is the room a launch that joins a kept view needs beyond this
// process's threads: the command, the signal witness, and this process's
// threads while it waits (see userNSTasks), with 2 to spare. keeperTasks
// is what starting a keeper adds: the process in between, the keeper and
// its Go runtime's threads (GOMAXPROCS=1), with 2 to spare.
const (
	keptTasks   = 6
	keeperTasks = 8
)

// runKept runs p's command in the kept view of p.Cache (keeper_linux.go,
// join_linux.go). ran is false when the launch builds a view of its own
// instead (the notes say why where that is worth knowing): no keeper can
// keep it, or the kept view does not show the working directory, or the
// soft open file limit chos was started with is unknown.
func runKept(p *spec.Plan, verbose bool) (status int, notes []spec.Note, ran bool, err error) {
	nofile, known := callerNofile()
	if !known {
		return 0, nil, false, nil // (the command would get the runtime's limit)
	}
	if len(p.Dir) >= unix.PathMax {
		// (entered in pieces, which the joining child cannot do: chdir)
		return 0, nil, false, nil
	}
	var images *imageServer
	k, err := dialKeeper(KeeperAddress(p.Cache, os.Getuid()))
	if errors.Is(err, errNoKeeper) {
		if images, err = newImageServer(&p.View); err != nil {
			return StatusFailed, nil, true, err
		}
		defer images.close()
		need := keptTasks + keeperTasks
		if images != nil {
			need += imageTasks
		}
		if err := checkTaskRoom(os.Getuid(), need); err != nil {
			return StatusFailed, nil, true, err
		}
		k, notes, err = startAndJoinKeeper(p, images)
		if err != nil {
			return StatusFailed, notes, true, err
		}
	} else if err != nil {
		return 0, []spec.Note{spec.Notef("not joining the kept view of tree %s: %v", p.Tree, err)}, false, nil
	} else if err := checkTaskRoom(os.Getuid(), keptTasks); err != nil {
		k.close()
		return StatusFailed, nil, true, err
	}
	if k == nil {
		return 0, notes, false, nil
	}
	// Held (close-on-exec) until the command ends: the keeper keeps the
	// view while it runs.
	defer k.close()
	if verbose {
		notes = append(notes, k.notes...)
	}
	// While it waits, this process runs little Go code: one processor
	// bounds the threads the runtime may still start (see checkTaskRoom).
	runtime.GOMAXPROCS(1)
	sigs := catchForwarded(&start)
	// (without one, the terminal tells group signals apart: see forward)
	wit, _ := startWitness()
	defer wit.stop()
	pid, lerr, private, err := startJoined(p, k.user, k.mnt, nofile)
	if err != nil || lerr != nil || private != "" {
		signal.Stop(sigs)
		close(sigs)
		wit.stop()
	}
	switch {
	case err != nil:
		return StatusFailed, notes, true, err
	case lerr != nil:
		return lerr.Status, notes, true, lerr
	case private != "":
		return 0, append(notes, spec.Notef("%s", private)), false, nil
	}
	c := &child{pid: pid}
	go c.forward(sigs, wit)
	ws, err := c.wait()
	notes = append(notes, images.failures()...)
	wit.stop()
	status, err = endAs(ws, err)
	return status, notes, true, err
}

// startJoined starts p's command in the namespaces open at user and mnt
// (forkJoin) and returns its pid once it is executed. Otherwise nothing
// ran, and lerr says why as Launch would have, or private why the launch
// builds a view of its own instead.
func startJoined(p *spec.Plan, user, mnt int, nofile unix.Rlimit) (pid int, lerr *LaunchError, private string, err error) {
	r, w, err := os.Pipe()
	if err != nil {
		return 0, nil, "", fmt.Errorf("making a pipe for the command's start: %w", err)
	}
	defer r.Close()
	s, cands, err := prepareJoin(p, user, mnt, int(w.Fd()), nofile)
	if err != nil {
		w.Close()
		return 0, nil, "", fmt.Errorf("preparing the command: %w", err)
	}
	upid, errno := forkJoin(s)
	w.Close()
	if errno != 0 {
		return 0, nil, "", fmt.Errorf("starting the command in tree %s: %w", p.Tree, errno)
	}
	var rep joinReport
	if n, _ := io.ReadFull(r, unsafe.Slice((*byte)(unsafe.Pointer(&rep)), unsafe.Sizeof(rep))); n == 0 {
		return int(upid), nil, "", nil
	}
	// Stopped before the exec: nothing ran.
	reapChild(int(upid))
	lerr, private = joinError(p, cands, rep)
	return 0, lerr, private, nil
}

// childFiles maps the child's descriptors: each one this process inherited
// (open and not close-on-exec: chos opens all of its own close-on-exec) at
// its own number, the others closed, and extra right above the highest.
func childFiles(extra int) (files []uintptr, extraFD int, err error) {
	inherited, err := inheritedFDs()
	if err != nil {
		return nil, 0, fmt.Errorf("listing your descriptors: %w", err)
	}
	top := 2
	if n := len(inherited); n > 0 && inherited[n-1] > top {
		top = inherited[n-1]
	}
	files = make([]uintptr, top+2)
	for i := range files {
		files[i] = ^uintptr(0) // closed in the child
	}
	for _, fd := range inherited {
		files[fd] = uintptr(fd)
	}
	files[top+1] = uintptr(extra)
	return files, top + 1, nil
}

// inheritedFDs are this process's descriptors an exec keeps (those
// without close-on-exec), in order.
func inheritedFDs() ([]int, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			fds = append(fds, fd)
		}
	}
	sort.Ints(fds)
	return fds, nil
}

// forwarded are the signals the helper passes on: every standard catchable
// one but the synchronous faults (SEGV, BUS, FPE, ILL, TRAP, which concern
// the helper itself), SIGCONT (the helper continues the command itself
// when it is continued: see suspend) and those the Go runtime uses (CHLD,
// URG, PROF, VTALRM). Asking Go for all signals instead costs milliseconds
// a launch.
var forwarded = []os.Signal{
	unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGABRT, unix.SIGUSR1, unix.SIGUSR2,
	unix.SIGPIPE, unix.SIGALRM, unix.SIGTERM, unix.SIGSTKFLT, unix.SIGTSTP,
	unix.SIGTTIN, unix.SIGTTOU, unix.SIGXCPU, unix.SIGXFSZ, unix.SIGWINCH, unix.SIGIO,
	unix.SIGPWR, unix.SIGSYS,
}

// child is the command, as the helper waits for it and signals it.
type child struct {
	pid  int
	mu   sync.Mutex
	gone bool // reaped: its pid may be another process's now
}

func (c *child) signal(sig syscall.Signal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.gone {
		unix.Kill(c.pid, sig)
	}
}

// forward passes signals to the child, those sent to this process alone:
// one sent to its whole group, or to every process of its cgroup, reached
// the child too (it shares the group), and would arrive twice. The witness
// tells them apart (see witness_linux.go). Without it, those a terminal
// sends to its foreground process group are told by whether this process
// is in the foreground of one: interrupt, quit and resize are forwarded
// only when it is not. The job control stops are forwarded only when it
// has no terminal at all (a batch job, where they come from kill(2)), and
// then only those the witness lacks at once: the SIGCONT of a shell's `bg`
// discards every stop pending in the group, the witness's too, and a stop
// forwarded after it would stop the command again.
func (c *child) forward(sigs <-chan os.Signal, w *witness) {
	for s := range sigs {
		sig := s.(syscall.Signal)
		switch sig {
		case unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU:
			if hasTerminal() {
				continue
			}
			if w != nil {
				pending, err := w.has(sig)
				if err == nil && pending {
					err = w.takeBack(sig)
				}
				if err != nil {
					w = nil
				} else if pending {
					continue
				}
			}
			c.signal(sig)
			continue
		}
		if w != nil {
			group, err := w.reachedGroup(sig)
			if err == nil {
				if !group {
					c.signal(sig)
				}
				continue
			}
			w = nil
		}
		switch sig {
		case unix.SIGINT, unix.SIGQUIT, unix.SIGWINCH:
			if inForeground() {
				continue
			}
		}
		c.signal(sig)
	}
}

// inForeground says whether this process group owns its terminal.
func inForeground() bool {
	tty, err := os.Open("/dev/tty")
	if err != nil {
		return false
	}
	defer tty.Close()
	fg, err := unix.IoctlGetInt(int(tty.Fd()), unix.TIOCGPGRP)
	return err == nil && fg == unix.Getpgrp()
}

// hasTerminal says whether this process has a controlling terminal.
func hasTerminal() bool {
	fd, err := unix.Open("/dev/tty", unix.O_RDONLY|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// Codes of a child's state change (si_code of SIGCHLD).
const (
	cldExited  = 1
	cldKilled  = 2
	cldDumped  = 3
	cldStopped = 5
)

// childState is what waitid says of a child.
type childState struct{ code, pid, status int32 }

func waitChild(pid, options int) (childState, error) {
	var si unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &si, options, nil)
		if err != unix.EINTR {
			if err != nil {
				return childState{}, err
			}
			break
		}
	}
	// The SIGCHLD fields follow si_signo, si_errno and si_code, aligned
	// as a pointer: si_pid, si_uid, si_status.
	raw := unsafe.Pointer(&si)
	off := (3*4 + unsafe.Sizeof(uintptr(0)) - 1) &^ (unsafe.Sizeof(uintptr(0)) - 1)
	return childState{
		code:   si.Code,
		pid:    *(*int32)(unsafe.Add(raw, off)),
		status: *(*int32)(unsafe.Add(raw, off+8)),
	}, nil
}

// reapChild waits for the child pid to end and collects it.
func reapChild(pid int) (unix.WaitStatus, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err != unix.EINTR {
			return ws, err
		}
	}
}

// wait follows the child until it ends and returns how. A child that stops
// stops this process too (see suspend). Its state is looked at without
// being collected (WNOWAIT): a stop no longer reported is over, and the
// pid stays the child's until it is reaped here, after which nothing is
// forwarded.
func (c *child) wait() (unix.WaitStatus, error) {
	for {
		st, err := waitChild(c.pid, unix.WEXITED|unix.WSTOPPED|unix.WNOWAIT)
		if err != nil {
			return 0, fmt.Errorf("waiting for the command: %w", err)
		}
		switch st.code {
		case cldStopped:
			c.suspend(syscall.Signal(st.status))
		case cldExited, cldKilled, cldDumped:
			return c.reap()
		}
	}
}

// reap collects the ended child; nothing is sent to its pid after.
func (c *child) reap() (unix.WaitStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ws, err := reapChild(c.pid)
	if err != nil {
		return 0, fmt.Errorf("waiting for the command: %w", err)
	}
	c.gone = true
	return ws, nil
}

// suspend stops this process as the command stopped (by the same signal,
// so that the shell reports the job as it would the command), so that the
// shell's job control sees the job stop; when continued, it continues the
// command. A command no longer stopped (the SIGCONT that continued this
// process's group continued it already) is left alone.
func (c *child) suspend(sig syscall.Signal) {
	if st, err := waitChild(c.pid, unix.WSTOPPED|unix.WNOHANG|unix.WNOWAIT); err != nil || st.pid == 0 {
		return
	}
	if !stopBy(sig) {
		unix.Kill(os.Getpid(), unix.SIGSTOP)
	}
	c.signal(unix.SIGCONT)
}

// stopBy stops this process by a job control signal, which it otherwise
// catches or ignores, and returns once it is continued; false for other
// signals.
func stopBy(sig syscall.Signal) bool {
	if sig != unix.SIGTSTP && sig != unix.SIGTTIN && sig != unix.SIGTTOU {
		return false
	}
	var old sigaction
	if rtSigaction(int(sig), &sigaction{sigDfl}, &old) != nil {
		return false
	}
	unix.Kill(os.Getpid(), sig) // this process stops before the call returns
	rtSigaction(int(sig), &old, nil)
	return true
}

// dieBy ends this process by sig, as the command ended: the caller's wait
// sees death by that signal, not an exit status (without a core dump of
// its own: a dumped core is the command's).
func dieBy(sig syscall.Signal) {
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	setDisposition(int(sig), sigDfl)
	setThreadMask(unix.SIG_UNBLOCK, SignalSet(0).With(int(sig)))
	unix.Tgkill(unix.Getpid(), unix.Gettid(), sig)
	// A signal whose default is not to end the process cannot have ended
	// the command: exit as a shell reports it.
	os.Exit(128 + int(sig))
}

// ReadChildPlan is the child's side: the plan RunInUserNS sent, for the
// child to carry out (Enter with UserNamespace, then Exec), and whether to
// show its notes. What the parent was started with becomes what this
// process restores for the command: it is the same launch.
func ReadChildPlan(args []string) (p *spec.Plan, verbose bool, err error) {
	// Anyone can run chos with this argument. Executing a plan from a pipe
	// is only harmless where it grants nothing: in a user namespace of the
	// caller's own, never in a process with root's rights on the host (the
	// setuid binary called directly).
	if err := ownUserNamespace(); err != nil {
		return nil, false, fmt.Errorf("refusing to act as a user-namespace child: %w", err)
	}
	fd := -1
	if len(args) == 3 || len(args) == 4 {
		fd, _ = strconv.Atoi(args[2])
	}
	if len(args) == 4 && !useImageServer(args[3]) {
		return nil, false, fmt.Errorf("%s: bad image server descriptor %q", childArg, args[3])
	}
	if fd < 3 {
		return nil, false, fmt.Errorf("%s takes the plan's descriptor, above 2: %q", childArg, args[1:])
	}
	// Read whole, and closed before the exec: the number is the caller's.
	f := os.NewFile(uintptr(fd), "plan")
	data, err := io.ReadAll(f)
	f.Close()
	var req childRequest
	if err == nil {
		err = req.decode(data)
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading the plan from the parent: %w", err)
	}
	start = req.Inherit
	return &req.Plan, req.Verbose, nil
}

// ownNamespaces is how the child is started: in a new user and mount
// namespace mapping only the caller's uid and gid, to themselves.
func ownNamespaces() *syscall.SysProcAttr {
	uid, gid := os.Getuid(), os.Getgid()
	return &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER | unix.CLONE_NEWNS,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}},
		// setgroups stays denied: an unprivileged user may not drop the
		// groups that deny them access.
		GidMappingsEnableSetgroups: false,
		// The child runs as the caller's uid, not root, inside the new
		// namespace: its re-exec would drop the capabilities the namespace
		// gave unless they are ambient. It drops them all itself before
		// executing the command.
		AmbientCaps: []uintptr{unix.CAP_SYS_ADMIN, unix.CAP_SETPCAP},
		Pdeathsig:   unix.SIGKILL,
	}
}

// ProbeUserNS starts `chos --version` in namespaces made exactly as for a
// launch, to tell whether the kernel allows them.
func ProbeUserNS() error {
	cmd := &exec.Cmd{Path: "/proc/self/exe", Args: []string{"chos", "--version"}, SysProcAttr: ownNamespaces()}
	return cmd.Run()
}

// ownUserNamespace checks that this process is not setuid-elevated and runs
// in a user namespace that maps only its own ids, as RunInUserNS makes it.
func ownUserNamespace() error {
	r, e, s := unix.Getresuid()
	if r != e || e != s {
		return fmt.Errorf("running setuid (uids %d/%d/%d)", r, e, s)
	}
	data, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return fmt.Errorf("reading uid_map: %w", err)
	}
	var inside, outside, count uint64
	if _, err := fmt.Sscan(string(data), &inside, &outside, &count); err != nil || count != 1 {
		return fmt.Errorf("not in a user namespace of one's own (uid_map %q)", strings.TrimSpace(string(data)))
	}
	return nil
}
