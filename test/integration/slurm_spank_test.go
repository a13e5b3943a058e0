package integration

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The SPANK plugin's own behaviour: what it does without chos's answer
// (loading, the --chos option, staying out of the way when no tree is
// selected, failing the job and not the node) and its half of the
// root-helper protocol, checked against a scripted stand-in for
// `chos prepare`. The end-to-end behaviour with the real chos is in
// slurm_test.go.

// spankPlugin is the installed plugin: `make install` builds it (when
// libslurm-dev's headers are there) with the installed chos compiled in.
func spankPlugin(t testing.TB) string {
	t.Helper()
	so := filepath.Join(h.prefix, "lib", "slurm", "chos_spank.so")
	if _, err := os.Stat(so); err != nil {
		t.Fatalf("make install did not install the SPANK plugin (is libslurm-dev installed?): %v", err)
	}
	return so
}

// wantNodeIdle checks that the node is (back to) idle: a job that failed
// must not drain it.
func (c *slurmCluster) wantNodeIdle(t testing.TB) {
	t.Helper()
	var state string
	if waitFor(30*time.Second, func() bool { state = c.nodeState(t); return state == "idle" }) {
		return
	}
	t.Errorf("the node is %q, not idle, 30 s after the job; reason: %s", state,
		run(t, c.root("sinfo", "-h", "-R", "-o", "%E")).stdout)
}

func TestSlurmPluginAddsChosOptionToSrunSbatchSalloc(t *testing.T) {
	c := slurm(t)
	so := spankPlugin(t)
	for _, cmd := range []string{"srun", "sbatch", "salloc"} {
		// Control: without the plugin, no --chos.
		if r := run(t, c.user(cmd, "--help")); strings.Contains(r.stdout, "--chos") {
			t.Errorf("%s --help lists --chos without the plugin:\n%s", cmd, r)
		}
	}
	c.setPlugstack(t, "required "+so+"\n")
	for _, cmd := range []string{"srun", "sbatch", "salloc"} {
		r := run(t, c.user(cmd, "--help"))
		if !wantStatus(t, r, 0) || !strings.Contains(r.stdout, "--chos=TREE") {
			t.Errorf("%s --help does not list --chos=TREE:\n%s", cmd, r)
		}
	}
}

// With no tree selected (no --chos, no $CHOS, no default=), the plugin
// runs nothing and the job runs on the host, as without it.
func TestSlurmPluginWithoutChosLeavesJobsOnTheHost(t *testing.T) {
	c := slurm(t)
	so := spankPlugin(t)
	// One line a task: os-release ID, mount namespace, no_new_privs, descriptors.
	probe := c.user("srun", "-n2", "sh", "-c", `echo "$(grep '^ID=' /etc/os-release) $(readlink /proc/self/ns/mnt) $(grep NoNewPrivs /proc/self/status | tr -d '\t') fds $(ls /proc/self/fd | sort -n | tr '\n' ' ')"`)
	without := run(t, probe)
	wantStatus(t, without, 0)

	// Control: a required plugin that cannot be loaded fails every job.
	c.setPlugstack(t, "required "+filepath.Join(h.base, "nonexistent", "chos_spank.so")+"\n")
	if r := run(t, c.user("srun", "echo", "ran")); r.status == 0 || strings.Contains(r.stdout, "ran") {
		t.Errorf("control: a job ran with a required plugin missing:\n%s", r)
	}

	// A chos that would fail every job it is asked about shows it is not asked.
	c.setPlugstack(t, fmt.Sprintf("required %s chos=%s\n", so, filepath.Join(h.base, "nonexistent", "chos")))
	with := run(t, probe)
	wantStatus(t, with, 0)
	hostNS, err := os.Readlink("/proc/self/ns/mnt")
	must(t, err)
	prefix := fmt.Sprintf("ID=%s %s NoNewPrivs:0 fds ", h.hostOSRelease["ID"], hostNS)
	lines := strings.Split(strings.TrimSuffix(with.stdout, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], prefix) || !strings.HasPrefix(lines[1], prefix) {
		t.Errorf("with the plugin and no tree, want %q... from both tasks:\n%s", prefix, with)
	}
	if with.stdout != without.stdout {
		t.Errorf("the tasks differ with the plugin loaded:\nwithout: %q\nwith:    %q", without.stdout, with.stdout)
	}
}

// A chos that cannot run fails the job with a message on the user's
// stderr, before the command runs, and leaves the node idle: for srun and
// for the batch step of sbatch.
func TestSlurmPluginFailsTheJobNotTheNodeWhenChosCannotRun(t *testing.T) {
	c := slurm(t)
	missing := filepath.Join(h.base, "nonexistent", "chos")
	c.setPlugstack(t, fmt.Sprintf("required %s chos=%s\n", spankPlugin(t), missing))

	r := run(t, c.user("srun", "--chos=one", "echo", "ran"))
	if r.status == 0 || strings.Contains(r.stdout, "ran") {
		t.Errorf("the job ran although chos could not:\n%s", r)
	}
	if !strings.Contains(r.stderr, "chos: cannot run "+missing+": No such file or directory") {
		t.Errorf("no message naming %s on stderr:\n%s", missing, r)
	}
	c.wantNodeIdle(t)

	dir := filepath.Join(h.home, unique(t))
	userDir(t, dir)
	r = run(t, call{Args: []string{"sbatch", "--chos=one", "--wait", "--output=out", "--wrap", "echo ran"}, Dir: dir,
		Env: []string{"SLURM_CONF=" + c.conf}})
	out, _ := os.ReadFile(filepath.Join(dir, "out"))
	if r.status == 0 || strings.Contains(string(out), "ran") {
		t.Errorf("the batch job ran although chos could not (output %q):\n%s", out, r)
	}
	if !strings.Contains(string(out), "cannot run "+missing) {
		t.Errorf("the batch output %q does not say why the job failed:\n%s", out, r)
	}
	c.wantNodeIdle(t)
}

// fakeChos is a root-owned script standing in for `chos prepare` (which
// it is not: it decides nothing), to pin down the plugin's half of the
// protocol. It records how it was started in dir (args, env, fds, uid),
// then runs body, which answers on fd 3. Called for the submit-time check
// (--check, as the user, in srun, sbatch or salloc) it records in
// dir/check instead and runs checkBody, by default a plain yes.
type fakeChos struct {
	script, dir string
}

const fakeCheckYes = `printf 'tree=local\nenter=0\nend\n' >&3`

func (c *slurmCluster) fakeChos(t testing.TB, body string) fakeChos {
	t.Helper()
	return c.fakeChosChecking(t, body, fakeCheckYes)
}

func (c *slurmCluster) fakeChosChecking(t testing.TB, body, checkBody string) fakeChos {
	t.Helper()
	dir, err := os.MkdirTemp(c.dir, "fakechos-")
	must(t, err)
	must(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { os.RemoveAll(dir) })
	// the check runs as the user, who records there
	must(t, os.Mkdir(filepath.Join(dir, "check"), 0o755))
	must(t, os.Chown(filepath.Join(dir, "check"), h.uid, h.gid))
	f := fakeChos{script: filepath.Join(dir, "chos"), dir: dir}
	must(t, writeRootFile(f.script, fmt.Sprintf(`#!/bin/sh
d=%[1]s
case " $* " in *" --check "*) d=%[1]s/check ;; esac
printf '%%s\n' "$@" > $d/args
/bin/cat /proc/$$/environ > $d/env
cd $d && /usr/bin/find /proc/self/fd/ -mindepth 1 -fprintf $d/fds '%%f %%l\n'
/usr/bin/id -u > $d/uid
if [ $d = %[1]s ]; then
%[2]s
else
%[3]s
fi
`, dir, body, checkBody), 0o755))
	return f
}

// args is what the fake chos was called with in slurmstepd, nil if it
// was not called there.
func (f fakeChos) args() []string { return f.argsIn(f.dir) }

// checkArgs is what it was called with for the submit-time check.
func (f fakeChos) checkArgs() []string { return f.argsIn(filepath.Join(f.dir, "check")) }

func (f fakeChos) argsIn(dir string) []string {
	data, err := os.ReadFile(filepath.Join(dir, "args"))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func (f fakeChos) record(t testing.TB, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(f.dir, name))
	if err != nil {
		t.Fatalf("the fake chos left no %s: %v", name, err)
	}
	return string(data)
}

// plugstack uses f as chos.
func (f fakeChos) plugstack(t testing.TB, extra string) string {
	return fmt.Sprintf("required %s chos=%s %s\n", spankPlugin(t), f.script, extra)
}

// jobIDs is the job and step a task printed as "JOB.STEP" on its first line.
func jobIDs(t testing.TB, r result) (job, step string) {
	t.Helper()
	first, _, _ := strings.Cut(r.stdout, "\n")
	job, step, ok := strings.Cut(first, ".")
	if !ok {
		t.Fatalf("no JOB.STEP line from the task:\n%s", r)
	}
	return job, step
}

// The plugin starts `chos prepare` exactly as the protocol says: its
// arguments, an empty environment, stdin and stdout on /dev/null, stderr
// a pipe, fd 3 a socket, nothing else, as root.
func TestSlurmPluginStartsChosPrepareAsTheProtocolSays(t *testing.T) {
	c := slurm(t)
	f := c.fakeChos(t, `printf 'tree=local\nenter=0\nnnp=0\nend\n' >&3`)
	c.setPlugstack(t, f.plugstack(t, "default=two"))
	dir := filepath.Join(h.home, unique(t))
	userDir(t, dir)

	r := run(t, call{Args: []string{"srun", "--chos=-one", "sh", "-c", `echo $SLURM_JOB_ID.$SLURM_STEP_ID`}, Dir: dir,
		Env: []string{"SLURM_CONF=" + c.conf, "PWD=" + dir, "CHOS=three"}})
	wantStatus(t, r, 0)
	job, step := jobIDs(t, r)
	groups := []string{}
	for _, g := range f.args() {
		if strings.HasPrefix(g, "--groups=") {
			groups = strings.Split(strings.TrimPrefix(g, "--groups="), ",")
		}
	}
	wantGIDs := []string{strconv.Itoa(h.gid)}
	for _, g := range h.extraGIDs {
		wantGIDs = append(wantGIDs, strconv.Itoa(g))
	}
	if !sameSet(groups, wantGIDs) {
		t.Errorf("--groups=%s, want the user's groups %v", strings.Join(groups, ","), wantGIDs)
	}
	want := []string{"prepare", "--service=slurm", "--user=" + h.user, "--uid=" + strconv.Itoa(h.uid), "--gid=" + strconv.Itoa(h.gid),
		"--groups=" + strings.Join(groups, ","), "--tree=-one", "--env-chos=three", "--default=two", "--cwd=" + dir,
		"--env-path=/usr/local/bin:/usr/bin:/bin", "--job=" + job, "--step=" + step}
	if got := f.args(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("chos was called with\n  %q\nwant\n  %q", got, want)
	}
	if env := f.record(t, "env"); env != "" {
		t.Errorf("chos was called with environment %q, want none", env)
	}
	if uid := f.record(t, "uid"); uid != "0\n" {
		t.Errorf("chos ran as uid %q, want root", uid)
	}
	// "fd target", as find saw its own: the shell's, and find's own (its
	// working directory, its output file, the directory it reads).
	fds := map[string]string{}
	for _, line := range strings.Split(f.record(t, "fds"), "\n") {
		if fd, target, ok := strings.Cut(line, " "); ok {
			fds[fd] = target
		}
	}
	for fd, target := range fds {
		ok := false
		switch fd {
		case "0", "1":
			ok = target == "/dev/null"
		case "2":
			ok = strings.HasPrefix(target, "pipe:")
		case "3":
			ok = strings.HasPrefix(target, "socket:")
		default:
			ok = target == f.dir || target == filepath.Join(f.dir, "fds") || regexp.MustCompile(`^/proc/[0-9]+/fd$`).MatchString(target)
		}
		if !ok {
			t.Errorf("chos got fd %s -> %s (all: %v)", fd, target, fds)
		}
	}
	if len(fds) < 4 {
		t.Errorf("chos's descriptors %v lack some of 0-3", fds)
	}

	// Without --chos and $CHOS, the default= is all it gets; without a
	// default either, it is not called (TestSlurmPluginWithoutChos...).
	r = run(t, call{Args: []string{"srun", "true"}, Dir: dir, Env: []string{"SLURM_CONF=" + c.conf, "PWD=" + dir}})
	wantStatus(t, r, 0)
	for _, a := range f.args() {
		if strings.HasPrefix(a, "--tree") || strings.HasPrefix(a, "--env-chos") {
			t.Errorf("chos got %s from a job with no --chos and no $CHOS: %q", a, f.args())
		}
	}
	if !contains(f.args(), "--default=two") {
		t.Errorf("chos did not get --default=two: %q", f.args())
	}
}

// The reply is applied in every task: the environment, no_new_privs; a
// host reply (enter=0) keeps the task on the host.
func TestSlurmPluginAppliesTheReplyInEveryTask(t *testing.T) {
	c := slurm(t)
	f := c.fakeChos(t, `printf 'tree=local\nenter=0\nnnp=1\nsetenv=CHOS=local\nsetenv=CHOS_ITEST=a=b  c\nend\n' >&3`)
	c.setPlugstack(t, f.plugstack(t, ""))
	probe := []string{"sh", "-c", `echo "CHOS=$CHOS CHOS_ITEST=$CHOS_ITEST $(grep NoNewPrivs /proc/self/status | tr -d '\t') $(readlink /proc/self/ns/mnt)"`}
	hostNS, err := os.Readlink("/proc/self/ns/mnt")
	must(t, err)

	// Control: the same job without --chos gets none of it.
	r := run(t, c.user(append([]string{"srun", "-n2"}, probe...)...))
	if want := strings.Repeat("CHOS= CHOS_ITEST= NoNewPrivs:0 "+hostNS+"\n", 2); r.stdout != want {
		t.Errorf("control: without --chos, want %q:\n%s", want, r)
	}
	r = run(t, c.user(append([]string{"srun", "-n2", "--chos=one"}, probe...)...))
	wantStatus(t, r, 0)
	if want := strings.Repeat("CHOS=local CHOS_ITEST=a=b  c NoNewPrivs:1 "+hostNS+"\n", 2); r.stdout != want {
		t.Errorf("want %q from each task:\n%s", want, r)
	}
}

// A batch step passes its script; argv0= replaces the script the task
// runs (the same script, as seen from inside the view).
func TestSlurmPluginPassesTheBatchScriptAndAppliesArgv0(t *testing.T) {
	c := slurm(t)
	other := filepath.Join(c.dir, "other-script-"+randHex(4))
	must(t, writeRootFile(other, "#!/bin/sh\necho other script\n", 0o755))
	t.Cleanup(func() { os.Remove(other) })
	f := c.fakeChos(t, `printf 'tree=local\nenter=0\nnnp=0\nargv0=`+other+`\nend\n' >&3`)
	c.setPlugstack(t, f.plugstack(t, ""))
	dir := filepath.Join(h.home, unique(t))
	userDir(t, dir)

	r := run(t, call{Args: []string{"sbatch", "--chos=one", "--parsable", "--wait", "--output=out", "--wrap", "echo wrapped script"},
		Dir: dir, Env: []string{"SLURM_CONF=" + c.conf}})
	wantStatus(t, r, 0)
	if out, _ := os.ReadFile(filepath.Join(dir, "out")); string(out) != "other script\n" {
		t.Errorf("the batch step ran %q, want the script named by argv0=:\n%s", out, r)
	}
	job := strings.TrimSpace(r.stdout)
	args := f.args()
	if !contains(args, "--step=batch") || !contains(args, "--job="+job) {
		t.Errorf("want --job=%s --step=batch: %q", job, args)
	}
	var script string
	for _, a := range args {
		if s, ok := strings.CutPrefix(a, "--batch-script="); ok {
			script = s
		}
	}
	if !strings.HasPrefix(script, filepath.Join(c.dir, "spool")+"/") || !strings.HasSuffix(script, "/slurm_script") {
		t.Errorf("--batch-script=%q is not the script in slurmd's spool %s: %q", script, filepath.Join(c.dir, "spool"), args)
	}
}

// Whatever goes wrong on chos's side fails the job, before its command
// runs, with a message on the user's stderr, and never the node.
func TestSlurmPluginFailsTheJobOnRefusalsAndBadReplies(t *testing.T) {
	c := slurm(t)
	for _, tc := range []struct {
		name, body, want string
	}{
		{"refusal", `printf 'error=unknown OS tree "nope"; valid names: one, two\nend\n' >&3; exit 125`,
			`chos: unknown OS tree "nope"; valid names: one, two`},
		{"refusal with status 0", `printf 'error=refused\nend\n' >&3`, "chos: refused"},
		{"failure without reply", `echo "chos: something broke" >&2; exit 2`, "exit status 2: something broke"},
		{"success without reply", `exit 0`, `the reply does not end with "end"`},
		{"no end", `printf 'tree=local\nenter=0\n' >&3`, `the reply does not end with "end"`},
		{"text after end", `printf 'tree=local\nenter=0\nend\nnnp=1\n' >&3`, `text after "end"`},
		{"unknown key", `printf 'tree=local\nenter=0\nmount=/x\nend\n' >&3`, "an unknown key in the reply"},
		{"enter=1 without descriptor", `printf 'tree=one\nenter=1\nnnp=1\nend\n' >&3`, "enter= and the descriptor sent do not agree"},
		{"no enter", `printf 'tree=one\nnnp=1\nend\n' >&3`, "enter= and the descriptor sent do not agree"},
		{"bad nnp", `printf 'tree=local\nenter=0\nnnp=yes\nend\n' >&3`, "take 0 or 1"},
		{"relative argv0", `printf 'tree=local\nenter=0\nargv0=x\nend\n' >&3`, "argv0= is not an absolute path"},
		{"bad setenv", `printf 'tree=local\nenter=0\nsetenv=NOVALUE\nend\n' >&3`, "a bad setenv= line"},
		{"too long", `head -c 70000 /dev/zero | tr '\0' x >&3`, "reply longer than 65536 bytes"},
		{"killed", `kill -KILL $$`, "killed by signal 9"},
		{"timeout", `exec sleep 60`, "no answer within 1 s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := c.fakeChos(t, tc.body)
			c.setPlugstack(t, f.plugstack(t, "timeout=1"))
			r := run(t, c.user("srun", "--chos=one", "echo", "ran"))
			if f.args() == nil {
				t.Fatalf("the fake chos was not called:\n%s", r)
			}
			if r.status == 0 || strings.Contains(r.stdout, "ran") {
				t.Errorf("the job ran:\n%s", r)
			}
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, r)
			}
			c.wantNodeIdle(t)
		})
	}
}

// Bad plugstack.conf options fail every job with a message naming them.
func TestSlurmPluginRefusesBadPlugstackOptions(t *testing.T) {
	c := slurm(t)
	so := spankPlugin(t)
	for _, opt := range []string{"chos=relative/chos", "timeout=0", "timeout=x", "defaults=one", "default="} {
		t.Run(opt, func(t *testing.T) {
			c.setPlugstack(t, "required "+so+" "+opt+"\n")
			r := run(t, c.user("srun", "echo", "ran"))
			if r.status == 0 || strings.Contains(r.stdout, "ran") || !strings.Contains(r.stderr, opt) {
				t.Errorf("want a failed job and a message naming %q:\n%s", opt, r)
			}
		})
	}
}

// A stand-in that sends a descriptor: the test binary started again by a
// fake chos script, with the path to open and send in fakeSendEnv.
const fakeSendEnv = "CHOS_ITEST_FAKE_PREPARE_SEND"

func init() {
	if path := os.Getenv(fakeSendEnv); path != "" {
		os.Exit(fakePrepareSend(path))
	}
}

// fakePrepareSend answers on fd 3 with enter=1 and path's descriptor.
func fakePrepareSend(path string) int {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 125
	}
	if err := syscall.Sendmsg(3, []byte("tree=fake\nenter=1\nnnp=0\nend\n"), syscall.UnixRights(int(f.Fd())), nil, 0); err != nil {
		fmt.Fprintln(os.Stderr, "sendmsg:", err)
		return 125
	}
	return 0
}

// Each task enters the mount namespace sent (any: here one the test made,
// with a tmpfs of its own on /mnt), and only a mount namespace.
func TestSlurmPluginEntersTheMountNamespaceSent(t *testing.T) {
	c := slurm(t)
	self, err := os.Executable()
	must(t, err)
	ns := start(t, call{Root: true, Args: []string{"unshare", "--mount", "--propagation", "private", "sh", "-c",
		"mount -t tmpfs chos-itest-ns /mnt && echo in the namespace sent > /mnt/marker && echo ready && exec sleep 300"}})
	if !ns.waitLine("ready", 10*time.Second) {
		return
	}
	nsID, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", ns.pid))
	must(t, err)
	probe := []string{"srun", "-n2", "--chos=one", "sh", "-c", `echo "$(readlink /proc/self/ns/mnt) $(cat /mnt/marker) fds $(ls /proc/self/fd | sort -n | tr '\n' ' ')"`}
	// Control: without the plugin, the host's namespace, without the marker.
	baseline := run(t, c.user(append([]string{"srun", "-n2"}, probe[3:]...)...))
	hostNS, _ := os.Readlink("/proc/self/ns/mnt")
	if !strings.HasPrefix(baseline.stdout, hostNS+"  fds ") {
		t.Fatalf("control: want the host's namespace %s and no marker:\n%s", hostNS, baseline)
	}

	for _, tc := range []struct{ name, send, want string }{
		{"mount namespace", fmt.Sprintf("/proc/%d/ns/mnt", ns.pid), ""},
		{"network namespace", fmt.Sprintf("/proc/%d/ns/net", ns.pid), "the descriptor sent is not a mount namespace"},
		{"regular file", c.conf, "the descriptor sent is not a mount namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := c.fakeChos(t, fmt.Sprintf("exec /usr/bin/env %s=%s %s", fakeSendEnv, tc.send, self))
			c.setPlugstack(t, f.plugstack(t, ""))
			r := run(t, c.user(probe...))
			if tc.want != "" {
				if r.status == 0 || !strings.Contains(r.stderr, tc.want) {
					t.Errorf("want a failed job and %q:\n%s", tc.want, r)
				}
				return
			}
			wantStatus(t, r, 0)
			// the same descriptors as without the plugin: the namespace's is not passed on
			want := strings.Repeat(nsID+" in the namespace sent"+strings.TrimPrefix(strings.SplitN(baseline.stdout, "\n", 2)[0], hostNS+" ")+"\n", 2)
			if r.stdout != want {
				t.Errorf("want %q:\n%s", want, r)
			}
		})
	}
}

// At submit, sbatch and salloc run `chos prepare --check` as the user, with
// the selection only (no identity: chos takes the caller's), an empty
// environment and the protocol's descriptors; a refusal stops the
// submission with chos's line, before any job exists. srun does not: its
// step starts at once and asks chos itself.
func TestSlurmPluginChecksTheTreeAtSubmitAsTheUser(t *testing.T) {
	c := slurm(t)
	yes := c.fakeChos(t, `printf 'tree=local\nenter=0\nend\n' >&3`)
	c.setPlugstack(t, yes.plugstack(t, "default=two"))

	// The selection, as the job makes it, and nothing else.
	r := run(t, call{Args: []string{"salloc", "--chos=-one", "true"}, Env: append(c.user().Env, "CHOS=three")})
	wantStatus(t, r, 0)
	if got, want := yes.checkArgs(), []string{"prepare", "--service=slurm", "--check", "--tree=-one", "--env-chos=three", "--default=two"}; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the check was called with\n  %q\nwant\n  %q", got, want)
	}
	rec := func(name string) string {
		data, err := os.ReadFile(filepath.Join(yes.dir, "check", name))
		must(t, err)
		return string(data)
	}
	if uid := rec("uid"); uid != strconv.Itoa(h.uid)+"\n" {
		t.Errorf("the check ran as uid %q, want the user's %d", uid, h.uid)
	}
	if env := rec("env"); env != "" {
		t.Errorf("the check got environment %q, want none", env)
	}
	for _, line := range strings.Split(strings.TrimSpace(rec("fds")), "\n") {
		fd, target, _ := strings.Cut(line, " ")
		if (fd == "3" && !strings.HasPrefix(target, "socket:")) || (fd == "2" && !strings.HasPrefix(target, "pipe:")) ||
			((fd == "0" || fd == "1") && target != "/dev/null") {
			t.Errorf("the check got fd %s -> %s", fd, target)
		}
	}

	no := c.fakeChosChecking(t, `printf 'tree=local\nenter=0\nend\n' >&3`,
		`printf 'error=you may not use tree x\nend\n' >&3; exit 125`)
	c.setPlugstack(t, no.plugstack(t, ""))
	for _, cmd := range [][]string{{"sbatch", "--chos=x", "--wrap", "echo ran"}, {"salloc", "--chos=x", "echo", "ran"}} {
		r := run(t, c.user(cmd...))
		if r.status == 0 || strings.Contains(r.stdout+r.stderr, "ran") || !strings.Contains(r.stderr, cmd[0]+": error: chos: you may not use tree x\n") {
			t.Errorf("want %s refused with chos's line:\n%s", cmd[0], r)
		}
	}
	if no.args() != nil {
		t.Errorf("slurmstepd asked chos although the check refused: %q", no.args())
	}
	if q := run(t, c.root("squeue", "-h")); q.stdout != "" {
		t.Errorf("jobs queued: %s", q.stdout)
	}
	// srun leaves the tree to its step (which this fake chos lets run on
	// the host): no check at submit.
	os.Remove(filepath.Join(no.dir, "check", "args"))
	r = run(t, c.user("srun", "--chos=x", "echo", "ran"))
	if r.status != 0 || !strings.Contains(r.stdout, "ran") || no.checkArgs() != nil {
		t.Errorf("srun ran the submit-time check (%q), want its step to decide:\n%s", no.checkArgs(), r)
	}
	// Control: with no tree selected, not even the refusing check is asked.
	os.Remove(filepath.Join(no.dir, "check", "args"))
	wantStatus(t, run(t, c.user("srun", "true")), 0)
	if no.checkArgs() != nil {
		t.Errorf("the check ran for a job that selects no tree: %q", no.checkArgs())
	}
}

// srun loads plugstack.conf's plugins inside trees too, with the tree's
// own libc: the plugin uses nothing newer than glibc 2.17 (RHEL 7).
func TestSlurmPluginNeedsNoGlibcNewerThan2_17(t *testing.T) {
	f, err := elf.Open(spankPlugin(t))
	must(t, err)
	defer f.Close()
	syms, err := f.ImportedSymbols()
	must(t, err)
	var glibc int
	for _, s := range syms {
		if v, ok := strings.CutPrefix(s.Version, "GLIBC_2."); ok {
			minor, _, _ := strings.Cut(v, ".")
			n, err := strconv.Atoi(minor)
			must(t, err)
			glibc++
			if n > 17 {
				t.Errorf("%s needs %s (glibc %s)", s.Name, s.Version, strings.TrimPrefix(s.Version, "GLIBC_"))
			}
		}
	}
	if glibc == 0 { // control: the versions are read at all
		t.Errorf("no GLIBC_ versioned symbols found in %s: %v", spankPlugin(t), syms)
	}
}
