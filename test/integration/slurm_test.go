package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// End to end: Slurm jobs in chos trees, through the SPANK plugin and the
// real `chos prepare`. The plugin's own behaviour, without chos, is in
// slurm_spank_test.go.

// chosJobs is the cluster with the plugin loaded as a site would load it:
// required, the installed chos compiled in.
func chosJobs(t *testing.T) *slurmCluster {
	t.Helper()
	c := slurm(t)
	c.setPlugstack(t, "required "+spankPlugin(t)+"\n")
	return c
}

func TestSlurmStepRunsInTheSelectedTree(t *testing.T) {
	c := chosJobs(t)
	for _, tc := range []struct {
		name string
		call call
		id   string
	}{
		{"no tree: the host", c.user("srun", "cat", "/etc/os-release"), h.hostOSRelease["ID"]},
		{"--chos=one", c.user("srun", "--chos=one", "cat", "/etc/os-release"), h.osIDs["one"]},
		{"--chos=two", c.user("srun", "--chos=two", "cat", "/etc/os-release"), h.osIDs["two"]},
		{"CHOS=three", call{Args: []string{"srun", "cat", "/etc/os-release"}, Env: append(c.user().Env, "CHOS=three")}, h.osIDs["three"]},
		{"--chos wins over CHOS", call{Args: []string{"srun", "--chos=one", "cat", "/etc/os-release"}, Env: append(c.user().Env, "CHOS=three")}, h.osIDs["one"]},
		{"--chos=local", c.user("srun", "--chos=local", "cat", "/etc/os-release"), h.hostOSRelease["ID"]},
	} {
		t.Run(tc.name, func(t *testing.T) { wantOSID(t, run(t, tc.call), tc.id) })
	}
}

func TestSlurmBatchScriptRunsInTheTree(t *testing.T) {
	c := chosJobs(t)
	dir := filepath.Join(h.home, unique(t))
	userDir(t, dir)
	script := filepath.Join(dir, "job.sh")
	writeUserFile(t, script, "#!/bin/sh\n#SBATCH --chos=two\ncat /etc/os-release; pwd; echo \"$0\"\n", 0o755)
	for _, tc := range []struct {
		name string
		args []string
		id   string
	}{
		{"sbatch --chos=two --wrap", []string{"--chos=two", "--wrap", "cat /etc/os-release; pwd; echo \"$0\""}, h.osIDs["two"]},
		{"#SBATCH --chos=two in the script", []string{script}, h.osIDs["two"]},
		{"--chos=one wins over #SBATCH", []string{"--chos=one", script}, h.osIDs["one"]},
		// (the option then reaches the batch step only through Slurm's
		// copy of it in the job's environment)
		{"sbatch --export=NONE --chos=two", []string{"--export=NONE", "--chos=two", "--wrap", "cat /etc/os-release; pwd; echo \"$0\""}, h.osIDs["two"]},
		// control: the same job without chos runs on the host
		{"no tree", []string{"--wrap", "cat /etc/os-release; pwd; echo \"$0\""}, h.hostOSRelease["ID"]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job, state, r := c.batch(t, dir, []string{"PWD=" + dir}, tc.args...)
			if state != "COMPLETED" {
				t.Fatalf("job %s ended %q:\n%s", job, state, r)
			}
			out := filepath.Join(dir, "slurm-"+job+".out")
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("no batch output in the submit directory: %v\n%s", err, r)
			}
			if id := parseOSRelease(string(data))["ID"]; id != tc.id {
				t.Errorf("the batch script ran in %q, want %q:\n%s", id, tc.id, data)
			}
			lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
			if len(lines) < 2 || lines[len(lines)-2] != dir {
				t.Errorf("the batch script's cwd is not the submit directory %s:\n%s", dir, data)
			}
			// In a tree the script is reached through the host's root.
			wantPrefix := "/"
			if tc.id != h.hostOSRelease["ID"] {
				wantPrefix = "/.chos/host/"
			}
			if s := lines[len(lines)-1]; !strings.HasPrefix(s, wantPrefix+strings.TrimPrefix(c.dir, "/")+"/spool/") {
				t.Errorf("the batch script ran as %q, want it in slurmd's spool below %s", s, wantPrefix)
			}
		})
	}
}

// salloc's command runs where salloc runs; every step of the allocation
// (srun inside it) runs in the tree, and all of them in the same view.
func TestSlurmSallocStepsRunInTheTree(t *testing.T) {
	c := chosJobs(t)
	r := run(t, c.user("salloc", "-n2", "--chos=two", "sh", "-c",
		`srun -n1 grep ^ID= /etc/os-release; srun -n1 readlink /proc/self/ns/mnt; srun -n2 readlink /proc/self/ns/mnt; grep ^ID= /etc/os-release`))
	if !wantStatus(t, r, 0) {
		return
	}
	hostNS, err := os.Readlink("/proc/self/ns/mnt")
	must(t, err)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("want 5 lines (3 steps, 4 tasks, and salloc's own command):\n%s", r)
	}
	if lines[0] != "ID="+h.osIDs["two"] {
		t.Errorf("the first step ran in %q, want tree two:\n%s", lines[0], r)
	}
	if ns := lines[1]; ns == hostNS || lines[2] != ns || lines[3] != ns {
		t.Errorf("want the steps in one view, not the host's %s:\n%s", hostNS, r)
	}
	if lines[4] != "ID="+h.hostOSRelease["ID"] {
		t.Errorf("salloc's own command ran in %q, want the host, where salloc runs:\n%s", lines[4], r)
	}
}

func TestSlurmTasksShareOneMountNamespace(t *testing.T) {
	c := chosJobs(t)
	hostNS, err := os.Readlink("/proc/self/ns/mnt")
	must(t, err)
	r := run(t, c.user("srun", "-n2", "--chos=one", "readlink", "/proc/self/ns/mnt"))
	wantStatus(t, r, 0)
	lines := strings.Fields(r.stdout)
	if len(lines) != 2 || lines[0] != lines[1] || lines[0] == hostNS {
		t.Errorf("want one mount namespace, not the host's %s, for both tasks:\n%s", hostNS, r)
	}
}

// uid, groups, cwd and the exit status are the job's, as without chos.
func TestSlurmStepKeepsIdentityCwdAndStatus(t *testing.T) {
	c := chosJobs(t)
	dir := filepath.Join(h.home, unique(t))
	userDir(t, dir)
	r := run(t, call{Args: []string{"srun", "--chos=one", "sh", "-c", "id -u; id -G; pwd"}, Dir: dir, Env: append(c.user().Env, "PWD="+dir)})
	if wantStatus(t, r, 0) {
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		want := []string{strconv.Itoa(h.gid)}
		for _, g := range h.extraGIDs {
			want = append(want, strconv.Itoa(g))
		}
		if len(lines) != 3 || lines[0] != strconv.Itoa(h.uid) || !sameSet(strings.Fields(lines[1]), want) || lines[2] != dir {
			t.Errorf("want uid %d, groups %v, cwd %s:\n%s", h.uid, want, dir, r)
		}
	}
	// Each status differs from the others, and is the one the same job
	// gives without chos.
	for _, tc := range []struct {
		script string
		status int
	}{
		{"exit 0", 0},
		{"exit 3", 3},
		{"kill -TERM $$", 128 + int(syscall.SIGTERM)},
		{"kill -KILL $$", 128 + int(syscall.SIGKILL)},
	} {
		t.Run(tc.script, func(t *testing.T) {
			wantStatus(t, run(t, c.user("srun", "sh", "-c", tc.script)), tc.status)
			wantStatus(t, run(t, c.user("srun", "--chos=one", "sh", "-c", tc.script)), tc.status)
			wantStatus(t, run(t, c.user("srun", "-n2", "--chos=two", "sh", "-c", tc.script)), tc.status)
		})
	}
}

// wantOneChosLine checks that a job's stderr has exactly one line from
// chos ("... error: chos: MESSAGE", as Slurm prefixes it) and that it says
// want.
func wantOneChosLine(t testing.TB, stderr, want string) {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "error: chos: ") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Errorf("want exactly one chos line saying %q, got %q in:\n%s", want, lines, stderr)
	}
}

// queued is every job Slurm knows of that has not ended.
func (c *slurmCluster) queued(t testing.TB) string {
	t.Helper()
	// A job that ended is COMPLETING until slurmd says it is done, which a
	// busy machine may take a while to: only what stays is queued.
	var out string
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		r := run(t, c.root("squeue", "-h", "-o", "%i %T"))
		wantStatus(t, r, 0)
		out = strings.TrimSpace(r.stdout)
		completing := out != ""
		for _, l := range strings.Split(out, "\n") {
			completing = completing && strings.HasSuffix(l, " COMPLETING")
		}
		if !completing || time.Now().After(end) {
			return out
		}
	}
}

// waitJobEnd waits until job has ended and returns its state (COMPLETED,
// FAILED...). Faster than sbatch --wait, which polls every few seconds.
func (c *slurmCluster) waitJobEnd(t testing.TB, job string) string {
	t.Helper()
	var state string
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		r := run(t, c.root("scontrol", "-o", "show", "job", job))
		if m := regexp.MustCompile(`JobState=(\S+)`).FindStringSubmatch(r.stdout); m != nil {
			state = m[1]
		}
		switch state {
		case "", "PENDING", "CONFIGURING", "RUNNING", "COMPLETING":
		default:
			return state
		}
	}
	t.Fatalf("job %s still %q after 30 s", job, state)
	return ""
}

// batch submits a batch job as the user from dir and waits for its end:
// its id and final state ("" if sbatch failed).
func (c *slurmCluster) batch(t testing.TB, dir string, env []string, args ...string) (job, state string, r result) {
	t.Helper()
	r = run(t, call{Args: append([]string{"sbatch", "--parsable"}, args...), Dir: dir, Env: append(c.user().Env, env...)})
	if !wantStatus(t, r, 0) {
		return "", "", r
	}
	job = strings.TrimSpace(r.stdout)
	return job, c.waitJobEnd(t, job), r
}

// restrictedConfig forbids tree two to the user (users=) and tree three
// (groups=); one stays open to all.
func restrictedConfig() string {
	return h.configText + "%TREE two\nusers = root\n%TREE three\ngroups = root\n"
}

// An unknown or forbidden tree is refused when the job is submitted, with
// chos's one-line message, by sbatch and salloc: nothing is queued and the
// node stays idle. srun's step starts at once and refuses it itself (one
// chos run less for every srun): the same one line, and the node idle.
func TestSlurmUnknownOrForbiddenTreeIsRefusedAtSubmit(t *testing.T) {
	c := chosJobs(t)
	setConfig(t, restrictedConfig())
	// Control: a tree the user may use runs under the same configuration.
	wantOSID(t, run(t, c.user("srun", "--chos=one", "cat", "/etc/os-release")), h.osIDs["one"])
	for _, tc := range []struct {
		name string
		env  []string
		opt  []string
		want string
	}{
		{"unknown tree", nil, []string{"--chos=chos-itest-nosuchtree"}, `unknown OS tree "chos-itest-nosuchtree"`},
		{"unknown tree in CHOS", []string{"CHOS=chos-itest-nosuchtree"}, nil, `unknown OS tree "chos-itest-nosuchtree"`},
		{"users= forbids", nil, []string{"--chos=two"}, "you may not use tree two"},
		{"groups= forbids", nil, []string{"--chos=three"}, "you may not use tree three"},
	} {
		for _, cmd := range [][]string{{"srun", "echo", "ran"}, {"sbatch", "--wrap", "echo ran"}, {"salloc", "echo", "ran"}} {
			t.Run(tc.name+"/"+cmd[0], func(t *testing.T) {
				args := append(append([]string{cmd[0]}, tc.opt...), cmd[1:]...)
				r := run(t, call{Args: args, Env: append(c.user().Env, tc.env...)})
				if r.status == 0 || strings.Contains(r.stdout+r.stderr, "ran") || strings.Contains(r.stdout, "Submitted") ||
					strings.Contains(r.stderr, "Granted") {
					t.Errorf("the job was accepted:\n%s", r)
				}
				wantOneChosLine(t, r.stderr, tc.want)
				refuser := cmd[0] + ": error: chos: "
				if cmd[0] == "srun" {
					refuser = "slurmstepd"
				}
				if !strings.Contains(r.stderr, refuser) {
					t.Errorf("want %q to refuse the job:\n%s", refuser, r)
				}
				if q := c.queued(t); q != "" {
					t.Errorf("jobs queued after a refusal: %s", q)
				}
			})
		}
	}
	c.wantNodeIdle(t)

	// Control: the user named in users= may use the tree.
	setConfig(t, h.configText+"%TREE two\nusers = root "+h.user+"\n")
	wantOSID(t, run(t, c.user("srun", "--chos=two", "cat", "/etc/os-release")), h.osIDs["two"])
}

// A tree that became unknown or forbidden while the job waited fails the
// job when it starts, with chos's one line in its stderr, and never the
// node.
func TestSlurmUnknownOrForbiddenTreeFailsTheJobNotTheNode(t *testing.T) {
	c := chosJobs(t)
	for _, tc := range []struct {
		name, chos, atSubmit, atStart, want string
	}{
		{"forbidden by users=", "two", h.configText, restrictedConfig(), "you may not use tree two"},
		{"forbidden by groups=", "three", h.configText, restrictedConfig(), "you may not use tree three"},
		{"unknown", "later", h.configText + "later:" + h.trees["one"] + "\n", h.configText, `unknown OS tree "later"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(h.home, unique(t))
			userDir(t, dir)
			setConfig(t, tc.atSubmit)
			r := run(t, call{Args: []string{"sbatch", "--hold", "--parsable", "--chos=" + tc.chos, "--output=out", "--wrap", "echo ran"},
				Dir: dir, Env: c.user().Env})
			// (held: the configuration changes before it starts)
			if !wantStatus(t, r, 0) {
				return
			}
			job := strings.TrimSpace(r.stdout)
			setConfig(t, tc.atStart)
			wantStatus(t, run(t, c.user("scontrol", "release", job)), 0)
			if state := c.waitJobEnd(t, job); state != "FAILED" {
				t.Errorf("job %s ended %s, want FAILED", job, state)
			}
			out, err := os.ReadFile(filepath.Join(dir, "out"))
			must(t, err)
			if strings.Contains(string(out), "ran") {
				t.Errorf("the job ran:\n%s", out)
			}
			wantOneChosLine(t, string(out), tc.want)
			c.wantNodeIdle(t)
		})
	}
	// srun is not checked at submit: its step fails.
	t.Run("srun in an allocation", func(t *testing.T) {
		r := run(t, c.user("salloc", "--chos=one", "srun", "--chos=chos-itest-nosuchtree", "echo", "ran"))
		if r.status == 0 || strings.Contains(r.stdout, "ran") || !strings.Contains(r.stderr, "slurmstepd") {
			t.Errorf("want the step, not srun, to refuse the tree:\n%s", r)
		}
		wantOneChosLine(t, r.stderr, `unknown OS tree "chos-itest-nosuchtree"`)
		c.wantNodeIdle(t)
	})
	// Control: the same job, with the configuration unchanged, runs.
	dir := filepath.Join(h.home, unique(t))
	userDir(t, dir)
	_, state, r := c.batch(t, dir, nil, "--chos=two", "--output=out", "--wrap", "echo ran")
	out, _ := os.ReadFile(filepath.Join(dir, "out"))
	if state != "COMPLETED" || string(out) != "ran\n" {
		t.Errorf("control: the job did not run (%s, output %q):\n%s", state, out, r)
	}
}

// slurmstepd runs a job whose working directory it cannot enter in /tmp
// instead; in a tree that lacks the directory, chos fails the job.
func TestSlurmJobCwdMissingInTheTreeFailsTheJob(t *testing.T) {
	c := chosJobs(t)
	// On the host only: trees see /home and /tmp of the host, not /var/lib.
	dir := filepath.Join(h.base, unique(t))
	must(t, os.Mkdir(dir, 0o755))
	must(t, os.Chown(dir, h.uid, h.gid))
	t.Cleanup(func() { os.RemoveAll(dir) })
	env := append(c.user().Env, "PWD="+dir)
	want := "working directory " + dir + " is not available in tree one"

	// Control: without a tree, the job runs there.
	r := run(t, call{Args: []string{"srun", "pwd"}, Dir: dir, Env: env})
	if wantStatus(t, r, 0) && r.stdout != dir+"\n" {
		t.Errorf("control: want %s:\n%s", dir, r)
	}
	r = run(t, call{Args: []string{"srun", "--chos=one", "pwd"}, Dir: dir, Env: env})
	if r.status == 0 || r.stdout != "" {
		t.Errorf("the job ran (in /tmp?):\n%s", r)
	}
	wantOneChosLine(t, r.stderr, want)

	_, state, r := c.batch(t, dir, []string{"PWD=" + dir}, "--chos=one", "--output="+dir+"/out", "--wrap", "pwd")
	out, _ := os.ReadFile(filepath.Join(dir, "out"))
	if state != "FAILED" || strings.Contains(string(out), "/tmp") {
		t.Errorf("the batch job ran (%s, output %q):\n%s", state, out, r)
	}
	wantOneChosLine(t, string(out), want)
	c.wantNodeIdle(t)
}

// In a tree, chos is on the job's PATH (last), as `chos exec` puts it; on
// the host it is taken off.
func TestSlurmJobsFindChosOnPath(t *testing.T) {
	c := chosJobs(t)
	probe := []string{"sh", "-c", `echo "$PATH"; command -v chos || echo none`}
	for _, tc := range []struct {
		name, path, opt, want string
	}{
		{"no tree (control)", "/usr/local/bin:/usr/bin:/bin", "", "/usr/local/bin:/usr/bin:/bin\nnone\n"},
		{"a tree", "/usr/local/bin:/usr/bin:/bin", "--chos=one", "/usr/local/bin:/usr/bin:/bin:/.chos/bin\n/.chos/bin/chos\n"},
		{"submitted from inside a tree, to the host", "/usr/bin:/bin:/.chos/bin", "--chos=local", "/usr/bin:/bin\nnone\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"srun"}
			if tc.opt != "" {
				args = append(args, tc.opt)
			}
			r := run(t, call{Args: append(args, probe...), Env: append(c.user().Env, "PATH="+tc.path)})
			if wantStatus(t, r, 0) && r.stdout != tc.want {
				t.Errorf("want %q:\n%s", tc.want, r)
			}
		})
	}
}

// hostMountChanges lists the mount table lines only in before or only in
// after, leaving out chos's cache pins (rebuilt whenever /etc/passwd
// changes, which other tests of the machine do) and other test runs'
// directories.
func hostMountChanges(before, after string) (onlyBefore, onlyAfter []string) {
	ignore := func(lines []string) []string {
		var out []string
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) < 5 {
				continue
			}
			mp := unescapeMountinfo(f[4])
			ours := mp == h.base || strings.HasPrefix(mp, h.base+"/")
			if (ours && strings.HasPrefix(mp, h.cacheDir+"/")) || (!ours && strings.HasPrefix(mp, "/var/lib/chos-itest-")) {
				continue
			}
			out = append(out, l)
		}
		return out
	}
	a, b := lineDiff(before, after)
	return ignore(a), ignore(b)
}

// Jobs leave the host's mount table as they found it, apart from the
// cache's own pins under h.cacheDir made by the first launches.
func TestSlurmJobsLeaveHostMountTable(t *testing.T) {
	c := chosJobs(t)
	jobs := []call{
		c.user("srun", "--chos=one", "true"),
		c.user("srun", "-n2", "--chos=two", "true"),
		c.user("srun", "--chos=three", "sh", "-c", "exit 3"),
		c.user("salloc", "--chos=two", "srun", "-n2", "true"),
		c.user("srun", "--chos=one", h.chos, "exec", "two", "true"),
	}
	batch := func() { c.batch(t, "", nil, "--chos=one", "--output=/dev/null", "--wrap", "true") }
	for _, j := range jobs { // warm the cache
		run(t, j)
	}
	batch()
	// A job that fails when it starts, with what it prepared.
	setConfig(t, h.configText+"later:"+h.trees["one"]+"\n")
	held := run(t, c.user("sbatch", "--hold", "--parsable", "--chos=later", "--output=/dev/null", "--wrap", "true"))
	wantStatus(t, held, 0)
	restoreConfig(t)()

	before := readMountinfo(t)
	for i := 0; i < 2; i++ {
		for _, j := range jobs {
			run(t, j)
		}
		batch()
	}
	wantStatus(t, run(t, c.user("scontrol", "release", strings.TrimSpace(held.stdout))), 0)
	c.waitJobEnd(t, strings.TrimSpace(held.stdout))
	if onlyBefore, onlyAfter := hostMountChanges(before, readMountinfo(t)); len(onlyBefore)+len(onlyAfter) > 0 {
		t.Errorf("the host's mount table changed:\nonly before: %q\nonly after:  %q", onlyBefore, onlyAfter)
	}
	for _, mp := range mountsUnder(h.base) {
		if !(mp == h.cacheDir || strings.HasPrefix(mp, h.cacheDir+"/")) {
			t.Errorf("mount %s on the host", mp)
		}
	}

	// Control: a mount made on the host is seen.
	mp := filepath.Join(h.base, unique(t))
	must(t, os.Mkdir(mp, 0o755))
	t.Cleanup(func() { os.Remove(mp) })
	must(t, syscall.Mount("chos-itest", mp, "tmpfs", 0, ""))
	t.Cleanup(func() { syscall.Unmount(mp, syscall.MNT_DETACH) }) // (if the test stops before its unmount)
	after := readMountinfo(t)
	must(t, syscall.Unmount(mp, 0))
	if _, onlyAfter := hostMountChanges(before, after); len(onlyAfter) != 1 || !strings.Contains(onlyAfter[0], mp) {
		t.Errorf("control: a tmpfs mounted on %s is not seen: %q", mp, onlyAfter)
	}
}

// The prefix form needs no plugin: chos exec in every task, with the
// plugin loaded or not, and from inside a tree the plugin chose (chos is
// on PATH there).
func TestSlurmPrefixFormRunsChosExecInEveryTask(t *testing.T) {
	c := slurm(t)
	host, err := os.Hostname()
	must(t, err)
	for _, tc := range []struct{ name, plugstack string }{
		{"without the plugin", ""},
		{"with the plugin", "required " + spankPlugin(t) + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.setPlugstack(t, tc.plugstack)
			// (-O: four tasks on a node that may have two CPUs)
			r := run(t, c.user("srun", "-n4", "-O", h.chos, "exec", "one", "hostname"))
			if wantStatus(t, r, 0) && r.stdout != strings.Repeat(host+"\n", 4) {
				t.Errorf("want %q four times:\n%s", host, r)
			}
			r = run(t, c.user("srun", "-n2", h.chos, "exec", "one", "cat", "/etc/os-release"))
			wantStatus(t, r, 0)
			if n := strings.Count(r.stdout, "ID="+h.osIDs["one"]+"\n"); n != 2 {
				t.Errorf("want tree one's os-release from both tasks (%d):\n%s", n, r)
			}
			// Control: without chos exec, the tasks see the host.
			r = run(t, c.user("srun", "-n2", "cat", "/etc/os-release"))
			if strings.Contains(r.stdout, h.osIDs["one"]) {
				t.Errorf("control: tree one's os-release without chos:\n%s", r)
			}
		})
	}
	t.Run("from the tree the plugin chose", func(t *testing.T) {
		c.setPlugstack(t, "required "+spankPlugin(t)+"\n")
		r := run(t, c.user("srun", "-n2", "--chos=two", "chos", "exec", "one", "cat", "/etc/os-release"))
		wantStatus(t, r, 0)
		if n := strings.Count(r.stdout, "ID="+h.osIDs["one"]+"\n"); n != 2 {
			t.Errorf("want tree one's os-release from both tasks (%d):\n%s", n, r)
		}
	})
}

// slurmClientTree is a tree that runs the host's Slurm client: a busybox
// tree with mount points for the binds of slurmClientConfig, as a site
// prepares its trees. Built for the calling test.
func slurmClientTree(t testing.TB, c *slurmCluster) (path, triplet string) {
	t.Helper()
	libc, _ := filepath.Glob("/usr/lib/*-linux-gnu*/libc.so.6")
	if len(libc) == 0 {
		t.Fatal("no /usr/lib/TRIPLET/libc.so.6 on the host")
	}
	triplet = filepath.Base(filepath.Dir(libc[0]))
	path = filepath.Join(h.base, "trees", unique(t))
	if out, err := runSetup(2*time.Minute, h.repo, "scripts/mkbusyboxtree", path, "chosslurm", "Chos Test Slurm client"); err != nil {
		t.Fatalf("mkbusyboxtree: %v\n%s", err, out)
	}
	t.Cleanup(func() { os.RemoveAll(path) })
	for _, d := range []string{"usr/lib/" + triplet, strings.TrimPrefix(c.dir, "/"), strings.TrimPrefix(h.prefix, "/") + "/lib/slurm"} {
		must(t, os.MkdirAll(filepath.Join(path, d), 0o755))
	}
	for _, cmd := range slurmCommands {
		must(t, writeRootFile(filepath.Join(path, "usr/bin", cmd), "", 0o644))
	}
	must(t, os.Symlink("usr/lib", filepath.Join(path, "lib")))
	return path, triplet
}

var slurmCommands = []string{"srun", "sbatch", "squeue", "sinfo", "scontrol"}

// slurmClientConfig adds tree slurmc at path with what Slurm's commands
// need: the client and its libraries (here the host's, with the host's
// libc), the configuration and munge's socket (here both in the cluster's
// directory; on a site /etc/slurm and /run/munge), and the plugin
// directory plugstack.conf names.
func slurmClientConfig(c *slurmCluster, path, triplet string) string {
	conf := h.configText + "slurmc:" + path + "\n%TREE slurmc\n" +
		"bind = /usr/lib/" + triplet + " /usr/lib/" + triplet + " ro\n" +
		"bind = /usr/lib64 /lib64 ro\n" +
		"bind = " + c.dir + " " + c.dir + " ro\n" +
		"bind = " + h.prefix + "/lib/slurm " + h.prefix + "/lib/slurm ro\n"
	for _, cmd := range slurmCommands {
		conf += "bind = /usr/bin/" + cmd + " /usr/bin/" + cmd + " ro\n"
	}
	return conf
}

// Slurm's commands work from inside a tree that has the site's binds:
// steps started there run in that tree ($CHOS), the submit-time check
// uses chos as the tree shows it, and a batch job in the tree runs
// several steps.
func TestSlurmCommandsWorkInsideATreeWithTheSiteBinds(t *testing.T) {
	c := chosJobs(t)
	path, triplet := slurmClientTree(t, c)
	setConfig(t, slurmClientConfig(c, path, triplet))
	inTree := func(args ...string) call { return c.user(append([]string{h.chos, "exec", "slurmc"}, args...)...) }

	// Control: a tree without those binds has no srun.
	wantStatus(t, run(t, c.user(h.chos, "exec", "one", "srun", "true")), 127)

	wantOSID(t, run(t, inTree("srun", "cat", "/etc/os-release")), "chosslurm")
	wantOSID(t, run(t, inTree("srun", "--chos=local", "cat", "/etc/os-release")), h.hostOSRelease["ID"])
	c.wantNodeIdle(t) // (the steps above may still be completing)
	if r := run(t, inTree("sinfo", "-h", "-n", c.node, "-o", "%T")); wantStatus(t, r, 0) && strings.TrimSpace(r.stdout) != "idle" {
		t.Errorf("sinfo in the tree: want idle:\n%s", r)
	}
	r := run(t, inTree("srun", "--chos=chos-itest-nosuchtree", "true"))
	if r.status == 0 {
		t.Errorf("a step for an unknown tree was accepted from inside a tree:\n%s", r)
	}
	wantOneChosLine(t, r.stderr, `unknown OS tree "chos-itest-nosuchtree"`)

	// A batch job in the tree: its script runs squeue and two steps there.
	dir := filepath.Join(h.home, unique(t))
	userDir(t, dir)
	job, state, r := c.batch(t, dir, nil, "--chos=slurmc", "--output=out", "--wrap",
		`squeue -h -j $SLURM_JOB_ID -o %i; srun grep ^ID= /etc/os-release; srun readlink /proc/self/ns/mnt; readlink /proc/self/ns/mnt`)
	out, _ := os.ReadFile(filepath.Join(dir, "out"))
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if state != "COMPLETED" || len(lines) != 4 || lines[0] != job || lines[1] != "ID=chosslurm" || lines[2] != lines[3] {
		t.Errorf("want the job id, the tree's ID and the script's own view twice; %s, output:\n%s\n%s", state, out, r)
	}
}
