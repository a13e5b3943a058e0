package nsroot

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// childArg marks the re-executed chos that carries out a plan inside a new
// user namespace. It grants nothing: that process has only what the user
// namespace gives, which any user can make for themselves.
const childArg = "__chos_userns_child"

// IsUserNSChild says whether this process was started by RunInUserNS.
func IsUserNSChild(args []string) bool { return len(args) == 2 && args[1] == childArg }

// planFD is where the child reads its plan.
const planFD = 3

// RunInUserNS carries out p without privilege: a child in a new user and
// mount namespace (which a multithreaded Go process cannot enter in place)
// builds the view and execs the command, while this process stays in
// between: it forwards signals, follows the child's job-control stops, dies
// with it (the child is killed if this process dies) and returns its status.
func RunInUserNS(p *Plan) (int, error) {
	if err := p.View.Finish(); err != nil {
		return StatusFailed, fmt.Errorf("setting up tree %s: %w", p.Tree, err)
	}
	images, err := newImageServer(&p.View)
	if err != nil {
		return StatusFailed, err
	}
	defer images.close()
	data, err := json.Marshal(p)
	if err != nil {
		return StatusFailed, fmt.Errorf("encoding the plan: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return StatusFailed, fmt.Errorf("making a pipe for the plan: %w", err)
	}
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{"chos", childArg},
		Env:         []string{},
		Stdin:       os.Stdin,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		ExtraFiles:  append([]*os.File{r}, images.childFiles()...),
		SysProcAttr: ownNamespaces(),
	}
	// Catch before starting, so that nothing is lost in between.
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return StatusFailed, fmt.Errorf("starting a user namespace (see `chos check`): %w", err)
	}
	r.Close()
	_, werr := w.Write(data)
	w.Close()
	if werr != nil {
		cmd.Process.Kill()
	}
	images.serve()
	pid := cmd.Process.Pid
	go forward(sigs, pid)
	status, err := wait(pid)
	images.report()
	return status, err
}

// forwarded are the signals the helper passes on: every standard catchable
// one but the synchronous faults (SEGV, BUS, FPE, ILL, TRAP, which concern
// the helper itself) and those the Go runtime uses (CHLD, URG, PROF,
// VTALRM). Asking Go for all signals instead costs milliseconds a launch.
var forwarded = []os.Signal{
	unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGABRT, unix.SIGUSR1, unix.SIGUSR2,
	unix.SIGPIPE, unix.SIGALRM, unix.SIGTERM, unix.SIGSTKFLT, unix.SIGCONT, unix.SIGTSTP,
	unix.SIGTTIN, unix.SIGTTOU, unix.SIGXCPU, unix.SIGXFSZ, unix.SIGWINCH, unix.SIGIO,
	unix.SIGPWR, unix.SIGSYS,
}

// forward passes signals to the child. Those a terminal sends to its whole
// foreground process group reach the child already; they are forwarded only
// when this process is not in the foreground of a terminal (a batch job, a
// `kill` from elsewhere), so that none arrives twice.
func forward(sigs <-chan os.Signal, pid int) {
	for s := range sigs {
		switch s {
		case unix.SIGINT, unix.SIGQUIT, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGWINCH:
			if inForeground() {
				continue
			}
		}
		unix.Kill(pid, s.(syscall.Signal))
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

// wait returns the child's exit status; a child that stops stops this
// process too, so that the shell's job control sees the job stop, and both
// go on when the shell continues the process group.
func wait(pid int) (int, error) {
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, unix.WUNTRACED, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return StatusFailed, fmt.Errorf("waiting for the command: %w", err)
		}
		switch {
		case ws.Stopped():
			unix.Kill(os.Getpid(), unix.SIGSTOP)
		case ws.Exited():
			return ws.ExitStatus(), nil
		case ws.Signaled():
			return 128 + int(ws.Signal()), nil
		}
	}
}

// RunUserNSChild is the child's side: it reads the plan and carries it out.
// It returns only on failure, with the status to exit with.
func RunUserNSChild() int {
	// Anyone can run chos with this argument. Executing a plan from a pipe
	// is only harmless where it grants nothing: in a user namespace of the
	// caller's own, never in a process with root's rights on the host (the
	// setuid binary called directly).
	if err := ownUserNamespace(); err != nil {
		fmt.Fprintf(os.Stderr, "chos: refusing to act as a user-namespace child: %v\n", err)
		return StatusFailed
	}
	f := os.NewFile(planFD, "plan")
	data, err := io.ReadAll(f)
	f.Close()
	var p Plan
	if err == nil {
		err = json.Unmarshal(data, &p)
	}
	if err != nil || len(data) == 0 {
		fmt.Fprintf(os.Stderr, "chos: reading the plan from the parent: %v\n", err)
		return StatusFailed
	}
	lerr := Launch(&p, UserNamespace)
	fmt.Fprintln(os.Stderr, "chos: "+lerr.Error())
	return lerr.Status
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
