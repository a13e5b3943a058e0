package integration

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// slurmCluster is a one-node Slurm cluster of the package's own: its own
// munged (own key and socket), slurmctld and slurmd on free loopback
// ports, every file under one root-owned directory. Nothing of the
// machine's Slurm or munge configuration is read or changed: every
// command runs with SLURM_CONF set to the private slurm.conf.
type slurmCluster struct {
	dir         string // root's, 0755: configuration, state, spool, logs, munge
	conf        string // slurm.conf (SLURM_CONF)
	plugstack   string // plugstack.conf, rewritten by tests (setPlugstack)
	node        string // NodeName: `hostname -s` ("" for a cluster of several nodes)
	mungeSocket string

	// nodes are the node names of a cluster of several (scripts/cluster),
	// each in namespaces of its own; hostLink is this machine's end of
	// the link to their network.
	nodes        []string
	hostLink     string
	jobContainer bool // each job in a mount namespace of its own (job_container/tmpfs)

	// extra is added to slurm.conf, and files are written next to it
	// (name -> content), for a variant of the cluster.
	extra string
	files map[string]string
	up    bool // it became idle: stop cancels its jobs

	daemons []*slurmDaemon // in start order
	before  map[string]map[string]fileState
}

// slurmDaemon is one daemon, run under the reaper (see reaperMain).
type slurmDaemon struct {
	name string
	log  string // where it writes its log (and its stdout and stderr)
	cmd  *exec.Cmd
	done chan struct{} // closed when the reaper has exited
}

// lazyCluster is a cluster started once, by the first test that asks.
type lazyCluster struct {
	once sync.Once
	c    *slurmCluster
	err  error
}

var (
	slurmMain      lazyCluster
	slurmContained lazyCluster
)

// slurm returns the package's Slurm cluster, started by the first test
// that asks for it and stopped by the package cleanups. A cluster that
// cannot start fails every test that asks for it.
func slurm(t testing.TB) *slurmCluster {
	t.Helper()
	return slurmMain.get(t, slurmCluster{})
}

// slurmWithContainer is a second cluster, beside the first: with
// PrologFlags=Contain, which gives every job an extern step, and Slurm's
// job_container/tmpfs, which gives every job a private /tmp.
func slurmWithContainer(t testing.TB) *slurmCluster {
	t.Helper()
	return slurmContained.get(t, slurmCluster{extra: "PrologFlags=Contain\nJobContainerType=job_container/tmpfs\n",
		files: map[string]string{"job_container.conf": "AutoBasePath=true\nBasePath=%DIR%/job_container\n"}})
}

// get starts the cluster described by proto, once.
func (l *lazyCluster) get(t testing.TB, proto slurmCluster) *slurmCluster {
	t.Helper()
	l.once.Do(func() {
		c := &proto
		// Registered first, so that a failed or interrupted start is undone too.
		if l.err = atExit(c.stop); l.err != nil {
			return
		}
		start := time.Now()
		if l.err = c.start(); l.err == nil {
			l.c = c
			fmt.Fprintf(os.Stderr, "integration: Slurm cluster in %s idle after %v\n", c.dir, time.Since(start).Round(time.Millisecond))
		}
	})
	if l.err != nil {
		t.Fatalf("the test Slurm cluster did not start: %v", l.err)
	}
	return l.c
}

// slurmDefaultPaths are where Debian's Slurm and munge keep files by
// default: the private cluster must leave each as it found it. (Not all of
// /etc: other tests of the package add users and restore files there
// while the cluster runs.)
var slurmDefaultPaths = []string{"/etc/slurm", "/etc/munge", "/run/munge", "/var/lib/munge", "/var/log/munge",
	"/run/slurm", "/var/run/slurm", "/var/lib/slurm", "/var/log/slurm", "/var/spool/slurmd", "/var/spool/slurmctld"}

func (c *slurmCluster) start() error {
	c.before = map[string]map[string]fileState{}
	for _, p := range slurmDefaultPaths {
		snap, err := snapshotIfPresent(p)
		if err != nil {
			return err
		}
		c.before[p] = snap
	}
	short, err := os.Hostname()
	if err != nil {
		return err
	}
	c.node, _, _ = strings.Cut(short, ".")
	if c.dir, err = os.MkdirTemp(h.base, "slurm-"); err != nil {
		return err
	}
	if err := os.Chmod(c.dir, 0o755); err != nil {
		return err
	}
	if c.nodes != nil {
		return c.startNodes()
	}
	c.conf = filepath.Join(c.dir, "slurm.conf")
	c.plugstack = filepath.Join(c.dir, "plugstack.conf")
	mungeDir := filepath.Join(c.dir, "munge")
	c.mungeSocket = filepath.Join(mungeDir, "munge.socket")
	for _, d := range []string{mungeDir, filepath.Join(c.dir, "state"), filepath.Join(c.dir, "spool")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}

	// munge: a private key, and munged as root with every path its own
	key := filepath.Join(mungeDir, "munge.key")
	if out, err := runSetup(30*time.Second, "/", "mungekey", "--create", "--keyfile="+key); err != nil {
		return fmt.Errorf("mungekey: %w\n%s", err, out)
	}
	if err := c.startDaemon("munged", filepath.Join(mungeDir, "munged.log"), "munged", "--foreground",
		"--socket="+c.mungeSocket, "--key-file="+key, "--pid-file="+filepath.Join(mungeDir, "munged.pid"),
		"--log-file="+filepath.Join(mungeDir, "munged.log"), "--seed-file="+filepath.Join(mungeDir, "munged.seed")); err != nil {
		return err
	}

	ctldPort, err := freePort()
	if err != nil {
		return err
	}
	slurmdPort, err := freePort()
	if err != nil {
		return err
	}
	if err := writeRootFile(c.plugstack, "", 0o644); err != nil {
		return err
	}
	if err := writeRootFile(c.conf, c.slurmConf(ctldPort, slurmdPort)+c.extra, 0o644); err != nil {
		return err
	}
	for name, content := range c.files {
		if err := writeRootFile(filepath.Join(c.dir, name), strings.ReplaceAll(content, "%DIR%", c.dir), 0o644); err != nil {
			return err
		}
	}
	if err := c.startDaemon("slurmctld", filepath.Join(c.dir, "slurmctld.log"), "slurmctld", "-D"); err != nil {
		return err
	}
	if err := c.startDaemon("slurmd", filepath.Join(c.dir, "slurmd.log"), "slurmd", "-D"); err != nil {
		return err
	}
	// (a fresh, busy 2-core machine: slurmctld's first scheduling pass and
	// slurmd's registration can take long)
	if err := c.waitIdle(2 * time.Minute); err != nil {
		return err
	}
	c.up = true
	return nil
}

// slurmConf is a minimal configuration: no cgroups, no accounting, the
// node and the controller on 127.0.0.1 (no DNS), root as SlurmUser. The
// node is declared with at least 2 CPUs; config_overrides keeps a
// smaller machine from being drained for it.
func (c *slurmCluster) slurmConf(ctldPort, slurmdPort int) string {
	cpus := runtime.NumCPU()
	if cpus < 2 {
		cpus = 2
	}
	return fmt.Sprintf(`# chos integration tests: a private one-node cluster
ClusterName=chositest
SlurmctldHost=%[1]s(127.0.0.1)
SlurmctldPort=%[3]d
SlurmdPort=%[4]d
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=%[5]s
StateSaveLocation=%[2]s/state
SlurmdSpoolDir=%[2]s/spool/slurmd.%%n
SlurmctldPidFile=%[2]s/slurmctld.pid
SlurmdPidFile=%[2]s/slurmd.pid
SlurmctldLogFile=%[2]s/slurmctld.log
SlurmdLogFile=%[2]s/slurmd.log
PlugStackConfig=%[6]s
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
MailProg=/bin/true
# RPCs wait longer than the default 10 s on a busy machine; a step's nodes
# are ready as soon as slurmd says so (no power saving)
MessageTimeout=60
SuspendTime=NONE
NodeName=%[1]s NodeAddr=127.0.0.1 CPUs=%[7]d RealMemory=100 State=UNKNOWN
PartitionName=debug Nodes=%[1]s Default=YES MaxTime=INFINITE State=UP
`, c.node, c.dir, ctldPort, slurmdPort, c.mungeSocket, c.plugstack, cpus)
}

// freePort is a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startDaemon starts argv as root under the reaper, in its own process
// group, with SLURM_CONF set, its output appended to log.
func (c *slurmCluster) startDaemon(name, log string, argv ...string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(self, argv...)
	cmd.Dir = "/"
	cmd.Env = append(rootEnv(), "SLURM_CONF="+c.conf, reaperEnv+"=1")
	cmd.Stdout, cmd.Stderr = out, out
	// Pdeathsig: a test binary killed outright (go test -timeout) still
	// stops its daemons.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := startOnDaemonThread(cmd); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	d := &slurmDaemon{name: name, log: log, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(d.done) }()
	c.daemons = append(c.daemons, d)
	return nil
}

// startOnDaemonThread starts cmd from one OS thread that lives as long
// as the test binary. The kernel sends Pdeathsig when the thread that
// forked a process exits, not the process, and Go ends a thread that a
// goroutine locked and left locked (tests that unshare do): a daemon forked
// from such a thread would be stopped in the middle of the run.
var startOnDaemonThread = func() func(*exec.Cmd) error {
	starts := make(chan func())
	go func() {
		runtime.LockOSThread() // never unlocked: the thread stays until the binary exits
		for start := range starts {
			start()
		}
	}()
	return func(cmd *exec.Cmd) error {
		done := make(chan error)
		starts <- func() { done <- cmd.Start() }
		return <-done
	}
}()

// waitIdle waits until the node is idle; on failure the error carries
// every daemon's log.
func (c *slurmCluster) waitIdle(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		for _, d := range c.daemons {
			select {
			case <-d.done:
				return fmt.Errorf("%s exited (%v) while the cluster started%s", d.name, d.cmd.ProcessState, c.logs())
			default:
			}
		}
		cmd := exec.Command("sinfo", "-h", "-n", c.node, "-o", "%T")
		cmd.Env = append(rootEnv(), "SLURM_CONF="+c.conf)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		r, err := runWithTimeout(cmd, 30*time.Second, nil)
		last = fmt.Sprintf("%v %s", err, r)
		if err == nil && r.status == 0 && strings.TrimSpace(r.stdout) == "idle" {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the node is not idle after %v; last sinfo: %s%s", timeout, last, c.logs())
}

// logs is every daemon's log, for a failure message.
func (c *slurmCluster) logs() string {
	var b strings.Builder
	logs := []string{}
	for _, d := range c.daemons {
		logs = append(logs, d.log)
	}
	if c.nodes != nil {
		more, _ := filepath.Glob(filepath.Join(c.dir, "log", "*"))
		logs = append(logs, more...)
	}
	for _, l := range logs {
		data, err := os.ReadFile(l)
		fmt.Fprintf(&b, "\n----- %s (%v) -----\n%s", l, err, data)
	}
	return b.String()
}

// stop cancels every job, stops the daemons (SIGTERM, then after 10 s
// SIGKILL for everything the reaper still has), removes the directory and
// checks that the machine is as before: no process of the cluster left, no
// file changed where Slurm and munge keep theirs by default.
func (c *slurmCluster) stop() error {
	var errs []error
	if c.up {
		r, err := runSetupEnv(30*time.Second, []string{"SLURM_CONF=" + c.conf}, "scancel", "--partition=debug")
		if err != nil {
			errs = append(errs, fmt.Errorf("scancel: %w\n%s", err, r))
		}
		if !waitFor(15*time.Second, func() bool {
			out, err := runSetupEnv(10*time.Second, []string{"SLURM_CONF=" + c.conf}, "squeue", "-h")
			return err == nil && strings.TrimSpace(out) == ""
		}) {
			errs = append(errs, errors.New("jobs still queued 15 s after scancel"))
		}
	}
	for i := len(c.daemons) - 1; i >= 0; i-- {
		if err := c.daemons[i].stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.conf != "" {
		if pids := c.processes(); len(pids) > 0 {
			for _, pid := range pids {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			errs = append(errs, fmt.Errorf("processes of the Slurm cluster left after it stopped (killed): %v", pids))
		}
	}
	if c.dir != "" && len(errs) > 0 {
		errs = append(errs, errors.New(c.logs()))
	}
	if c.hostLink != "" {
		if out, err := exec.Command("ip", "link", "show", c.hostLink).CombinedOutput(); err == nil {
			exec.Command("ip", "link", "del", c.hostLink).Run()
			errs = append(errs, fmt.Errorf("link %s of the cluster left after it stopped (deleted):\n%s", c.hostLink, out))
		}
	}
	if c.dir != "" {
		if err := removeUnmounted(c.dir); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range slurmDefaultPaths {
		before, ok := c.before[p]
		if !ok {
			continue
		}
		after, err := snapshotIfPresent(p)
		if err != nil {
			errs = append(errs, err)
		} else if d := diffSnapshots(before, after); len(d) > 0 {
			errs = append(errs, fmt.Errorf("the Slurm cluster changed %s: %v", p, d))
		}
	}
	return errors.Join(errs...)
}

// stop sends SIGTERM to the reaper (which passes it on to the daemon),
// and after 10 s SIGKILL to everything below the reaper, which then
// reaps it all and exits.
func (d *slurmDaemon) stop() error {
	pid := d.cmd.Process.Pid
	syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-d.done:
		return nil
	case <-time.After(10 * time.Second):
	}
	left := descendants(pid)
	for _, p := range left {
		syscall.Kill(p, syscall.SIGKILL)
	}
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(pid, syscall.SIGKILL)
		<-d.done
	}
	return fmt.Errorf("%s did not stop within 10 s of SIGTERM; killed %v", d.name, left)
}

// processes lists the live processes of this cluster: those started with
// its SLURM_CONF (daemons, steps, tasks, clients) or naming its directory.
func (c *slurmCluster) processes() []int {
	self := os.Getpid()
	return processes(func(pid int, read func(string) (string, bool)) bool {
		if pid == self || !alive(pid) {
			return false
		}
		env, _ := read("environ")
		cmdline, _ := read("cmdline")
		return strings.Contains("\x00"+env, "\x00SLURM_CONF="+c.conf+"\x00") || strings.Contains(cmdline, c.dir)
	})
}

// descendants lists every process below pid.
func descendants(pid int) []int {
	var out []int
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		for _, child := range childrenOf(queue[0]) {
			out = append(out, child)
			queue = append(queue, child)
		}
	}
	return out
}

// snapshotIfPresent is snapshotFiles, with nothing for a missing path.
func snapshotIfPresent(p string) (map[string]fileState, error) {
	if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
		return map[string]fileState{}, nil
	}
	return snapshotFiles(p)
}

// runSetupEnv is runSetup (as root, in /) with extra environment.
func runSetupEnv(timeout time.Duration, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = "/"
	cmd.Env = mergeEnv(rootEnv(), env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r, err := runWithTimeout(cmd, timeout, nil)
	if err == nil && r.status != 0 {
		err = fmt.Errorf("exit status %d", r.status)
	}
	return r.stdout + r.stderr, err
}

// user is a Slurm client command run as the test user.
func (c *slurmCluster) user(args ...string) call {
	return call{Args: args, Env: []string{"SLURM_CONF=" + c.conf}}
}

// root is a Slurm client command run as root.
func (c *slurmCluster) root(args ...string) call {
	return call{Args: args, Env: []string{"SLURM_CONF=" + c.conf}, Root: true}
}

// nodeState is the node's state as sinfo reports it (idle, drained...).
func (c *slurmCluster) nodeState(t testing.TB) string {
	t.Helper()
	args := []string{"sinfo", "-h", "-o", "%T"} // (one line per state: "idle" when all are)
	if c.node != "" {
		args = append(args, "-n", c.node)
	}
	r := run(t, c.root(args...))
	wantStatus(t, r, 0)
	return strings.TrimSpace(r.stdout)
}

// setPlugstack replaces plugstack.conf for one test (empty afterwards).
// Slurm reads it at every job step, in srun and sbatch as in slurmstepd.
func (c *slurmCluster) setPlugstack(t testing.TB, text string) {
	t.Helper()
	must(t, writeRootFile(c.plugstack, text, 0o644))
	t.Cleanup(func() {
		if err := writeRootFile(c.plugstack, "", 0o644); err != nil {
			t.Errorf("emptying %s: %v", c.plugstack, err)
		}
	})
}

// The reaper: slurmd's job steps (slurmstepd) are orphaned on purpose and
// the machine's PID 1 does not reap orphans. Each daemon therefore runs
// under this test binary started again as a child subreaper, which reaps
// every orphan below it, passes SIGTERM and SIGINT on to the daemon, and
// exits with the daemon's status once nothing is left below it.
const reaperEnv = "CHOS_ITEST_REAPER"

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER of prctl(2).
const prSetChildSubreaper = 36

func init() {
	if os.Getenv(reaperEnv) == "1" {
		os.Exit(reaperMain(os.Args[1:]))
	}
}

func reaperMain(argv []string) int {
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
		fmt.Fprintln(os.Stderr, "reaper: PR_SET_CHILD_SUBREAPER:", e)
		return 1
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	path, err := exec.LookPath(argv[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "reaper:", err)
		return 127
	}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, reaperEnv+"=") {
			env = append(env, kv)
		}
	}
	p, err := os.StartProcess(path, argv, &os.ProcAttr{Env: env, Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "reaper:", err)
		return 127
	}
	go func() {
		for s := range sigs {
			p.Signal(s)
		}
	}()
	status := 1
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil { // ECHILD: nothing left
			return status
		}
		if pid == p.Pid {
			status = ws.ExitStatus()
			if ws.Signaled() {
				status = 128 + int(ws.Signal())
			}
		}
	}
}

// The cluster itself: jobs run as the user who submits them, batch output
// lands in the submit directory, and exit statuses and deaths by signal
// come back through srun and sbatch --wait as they would without Slurm.
func TestSlurmClusterRunsJobsAsTheUser(t *testing.T) {
	c := slurm(t)
	uid := strconv.Itoa(h.uid)

	t.Run("srun -n2 runs every task as the user", func(t *testing.T) {
		r := run(t, c.user("srun", "-n2", "id", "-u"))
		wantStatus(t, r, 0)
		if r.stdout != uid+"\n"+uid+"\n" {
			t.Errorf("want uid %s from each of 2 tasks:\n%s", uid, r)
		}
		// Control: submitted by root, the same job prints 0 twice.
		r = run(t, c.root("srun", "-n2", "id", "-u"))
		if wantStatus(t, r, 0) && r.stdout != "0\n0\n" {
			t.Errorf("control: as root, want uid 0 from each of 2 tasks:\n%s", r)
		}
	})

	t.Run("sbatch --wait writes its output in the submit directory", func(t *testing.T) {
		dir := filepath.Join(h.home, unique(t))
		userDir(t, dir)
		r := run(t, call{Args: []string{"sbatch", "--parsable", "--wait", "--wrap", "id -u; pwd"}, Dir: dir,
			Env: []string{"SLURM_CONF=" + c.conf}})
		if !wantStatus(t, r, 0) {
			return
		}
		job := strings.TrimSpace(r.stdout)
		out := filepath.Join(dir, "slurm-"+job+".out")
		data, err := os.ReadFile(out)
		if err != nil {
			ents, _ := os.ReadDir(dir)
			t.Fatalf("no batch output %s (%v); the submit directory has %v:\n%s", out, err, ents, r)
		}
		if want := uid + "\n" + dir + "\n"; string(data) != want {
			t.Errorf("%s has %q, want %q", out, data, want)
		}
		fi, err := os.Stat(out)
		must(t, err)
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != h.uid {
			t.Errorf("%s is owned by uid %d, want the user's %d", out, st.Uid, h.uid)
		}
	})

	// Each status is told apart from the others, so a status lost on the
	// way (every job seen as 0, say) fails.
	for _, tc := range []struct {
		name   string
		args   []string
		status int
	}{
		{"srun exit 0", []string{"srun", "sh", "-c", "exit 0"}, 0},
		{"srun exit 3", []string{"srun", "sh", "-c", "exit 3"}, 3},
		{"srun -n2 exit 3", []string{"srun", "-n2", "sh", "-c", "exit 3"}, 3},
		{"srun death by SIGTERM", []string{"srun", "sh", "-c", "kill -TERM $$"}, 128 + int(syscall.SIGTERM)},
		{"srun death by SIGKILL", []string{"srun", "sh", "-c", "kill -KILL $$"}, 128 + int(syscall.SIGKILL)},
		{"sbatch --wait exit 3", []string{"sbatch", "--wait", "--output=/dev/null", "--wrap", "exit 3"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantStatus(t, run(t, c.user(tc.args...)), tc.status)
		})
	}
}
