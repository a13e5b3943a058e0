package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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
	r := run(t, call{Args: []string{"sbatch", "--chos=two", "--parsable", "--wait", "--wrap", "cat /etc/os-release; pwd"},
		Dir: dir, Env: append(c.user().Env, "PWD="+dir)})
	if !wantStatus(t, r, 0) {
		return
	}
	out := filepath.Join(dir, "slurm-"+strings.TrimSpace(r.stdout)+".out")
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("no batch output in the submit directory: %v\n%s", err, r)
	}
	if id := parseOSRelease(string(data))["ID"]; id != h.osIDs["two"] {
		t.Errorf("the batch script ran in %q, want %q:\n%s", id, h.osIDs["two"], data)
	}
	if !strings.HasSuffix(string(data), "\n"+dir+"\n") {
		t.Errorf("the batch script's cwd is not the submit directory %s:\n%s", dir, data)
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
	wantStatus(t, run(t, c.user("srun", "--chos=one", "sh", "-c", "exit 3")), 3)
	wantStatus(t, run(t, c.user("srun", "--chos=one", "sh", "-c", "kill -TERM $$")), 143)
}

// An unknown tree fails the job with chos's message on stderr, the
// command never runs, and the node stays idle.
func TestSlurmUnknownTreeFailsTheJobNotTheNode(t *testing.T) {
	c := chosJobs(t)
	r := run(t, c.user("srun", "--chos=chos-itest-nosuchtree", "echo", "ran"))
	if r.status == 0 || strings.Contains(r.stdout, "ran") {
		t.Errorf("the job ran:\n%s", r)
	}
	if !strings.Contains(r.stderr, "chos-itest-nosuchtree") {
		t.Errorf("stderr does not name the tree:\n%s", r)
	}
	wantValidNames(t, r, "one", "two", "three")
	c.wantNodeIdle(t)
}

// Jobs leave the host's mount table as they found it, apart from the
// cache's own pins under h.cacheDir made by the first launches.
func TestSlurmJobsLeaveHostMountTable(t *testing.T) {
	c := chosJobs(t)
	jobs := []call{
		c.user("srun", "--chos=one", "true"),
		c.user("srun", "-n2", "--chos=two", "true"),
		c.user("srun", "--chos=chos-itest-nosuchtree", "true"),
		c.user("srun", "--chos=three", "sh", "-c", "exit 3"),
	}
	for _, j := range jobs { // warm the cache
		run(t, j)
	}
	before := readMountinfo(t)
	for i := 0; i < 3; i++ {
		for _, j := range jobs {
			run(t, j)
		}
	}
	if onlyBefore, onlyAfter := lineDiff(before, readMountinfo(t)); len(onlyBefore)+len(onlyAfter) > 0 {
		t.Errorf("the host's mount table changed:\nonly before: %q\nonly after:  %q", onlyBefore, onlyAfter)
	}
	for _, mp := range mountsUnder(h.base) {
		if !(mp == h.cacheDir || strings.HasPrefix(mp, h.cacheDir+"/")) {
			t.Errorf("mount %s on the host", mp)
		}
	}
}

// The prefix form needs no plugin: chos exec in every task.
func TestSlurmPrefixFormRunsChosExecInEveryTask(t *testing.T) {
	c := slurm(t)
	host, err := os.Hostname()
	must(t, err)
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
}
