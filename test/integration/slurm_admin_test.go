package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// What a site's Slurm configuration does to chos jobs: `chos check` on it,
// and the behaviours chos_spank(8) documents for the settings it warns of.

// slurmCheckLines are the "slurm" lines of `chos check` run as the user
// with SLURM_CONF=conf, and its exit status.
func slurmCheckLines(t testing.TB, conf string) ([]string, int) {
	t.Helper()
	r := run(t, call{Args: []string{h.chos, "check"}, Env: []string{"SLURM_CONF=" + conf}})
	var lines []string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l[min(len(l), 5):], "slurm:") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		t.Errorf("chos check says nothing about Slurm:\n%s", r)
	}
	return lines, r.status
}

func TestChosCheckReportsTheSlurmPlugin(t *testing.T) {
	c := slurm(t)
	so := spankPlugin(t)
	incDir := filepath.Join(c.dir, "plugstack.conf.d")
	must(t, os.MkdirAll(incDir, 0o755))
	t.Cleanup(func() { os.RemoveAll(incDir) })
	must(t, writeRootFile(filepath.Join(incDir, "chos.conf"), "required "+so+" default=two\n", 0o644))
	for _, tc := range []struct {
		name, plugstack string
		status          int
		want            string // the one slurm line
	}{
		{"not configured", "", 0, "warn slurm: " + c.plugstack + " does not load chos_spank.so"},
		{"required", "required " + so + "\n", 0, "ok   slurm: " + c.plugstack + ":1: required " + so + " runs " + h.chos},
		{"through an include", "include plugstack.conf.d/*.conf\n", 0,
			"ok   slurm: " + incDir + "/chos.conf:1: required " + so + " runs " + h.chos + ", default=two"},
		{"optional", "optional " + so + "\n", 0, "warn slurm: " + c.plugstack + ":1: chos_spank.so is optional"},
		{"plugin missing", "required " + filepath.Join(c.dir, "nonexistent", "chos_spank.so") + "\n", 1, "FAIL slurm: " + c.plugstack + ":1: open "},
		{"chos= missing", "required " + so + " chos=/nonexistent/chos\n", 1, "FAIL slurm: " + c.plugstack + ":1: the plugin runs /nonexistent/chos"},
		{"chos= another chos", "required " + so + " chos=" + h.chosUserns + "\n", 0, "warn slurm: " + c.plugstack + ":1: the plugin runs " + h.chosUserns + ", not this chos"},
		{"default= no tree", "required " + so + " default=chos-itest-nosuchtree\n", 1, "FAIL slurm: " + c.plugstack + ":1: default=chos-itest-nosuchtree names no tree"},
		{"bad option", "required " + so + " defaults=one\n", 1, `FAIL slurm: ` + c.plugstack + `:1: unknown option "defaults=one"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.setPlugstack(t, tc.plugstack)
			lines, status := slurmCheckLines(t, c.conf)
			if status != tc.status || len(lines) != 1 || !strings.HasPrefix(lines[0], tc.want) {
				t.Errorf("want status %d and one line %q..., got %d: %q", tc.status, tc.want, status, lines)
			}
		})
	}
	t.Run("no Slurm here", func(t *testing.T) {
		lines, status := slurmCheckLines(t, filepath.Join(c.dir, "nonexistent.conf"))
		if status != 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "ok   slurm: no Slurm configuration") {
			t.Errorf("got %d: %q", status, lines)
		}
	})
}

// Why the plugin must be required: Slurm ignores an optional plugin's
// errors, at submit and in the task alike, so a job whose tree chos
// refuses runs on the host.
func TestSlurmOptionalPluginFailsOpen(t *testing.T) {
	c := slurm(t)
	c.setPlugstack(t, "optional "+spankPlugin(t)+"\n")
	wantOSID(t, run(t, c.user("srun", "--chos=chos-itest-nosuchtree", "cat", "/etc/os-release")), h.hostOSRelease["ID"])
	// Control: required, the same job fails.
	c.setPlugstack(t, "required "+spankPlugin(t)+"\n")
	if r := run(t, c.user("srun", "--chos=chos-itest-nosuchtree", "cat", "/etc/os-release")); r.status == 0 {
		t.Errorf("control: a required plugin let the job run:\n%s", r)
	}
}

// job_container/tmpfs gives each job a private /tmp; a job in a tree gets
// the tree's view instead, with the host's /tmp (chos_spank(8)), and
// `chos check` says so.
func TestSlurmTreeViewReplacesJobContainerTmp(t *testing.T) {
	c := slurmWithContainer(t)
	c.setPlugstack(t, "required "+spankPlugin(t)+"\n")
	marker := filepath.Join("/tmp", unique(t))
	t.Cleanup(func() { os.Remove(marker) })
	probe := "echo x > " + marker + " && cat " + marker

	// Control: without a tree, the job's /tmp is its own.
	r := run(t, c.user("srun", "sh", "-c", probe))
	wantStatus(t, r, 0)
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("control: the job without a tree wrote the host's %s: job_container/tmpfs is not in effect", marker)
	}
	r = run(t, c.user("srun", "--chos=one", "sh", "-c", probe))
	wantStatus(t, r, 0)
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the job in a tree did not write the host's %s (%v): chos_spank(8) says it does", marker, err)
	}

	lines, _ := slurmCheckLines(t, c.conf)
	found := false
	for _, l := range lines {
		found = found || strings.HasPrefix(l, "warn slurm: "+c.conf+": JobContainerType=job_container/tmpfs")
	}
	if !found {
		t.Errorf("chos check does not warn of job_container/tmpfs: %q", lines)
	}
}

// With PrologFlags=Contain every job has an extern step (its processes:
// one sleep, and what pam_slurm_adopt adds). chos is never asked for it,
// and it stays on the host, even with a default= tree that moves every
// other step.
func TestSlurmExternStepIsNeverMoved(t *testing.T) {
	c := slurmWithContainer(t)
	f := c.fakeChos(t, `echo "$*" >> $d/calls; printf 'tree=local\nenter=0\nend\n' >&3`)
	c.setPlugstack(t, f.plugstack(t, "default=one"))
	r := run(t, c.user("salloc", "sh", "-c", `squeue -h -s -j $SLURM_JOB_ID -o %i; srun true`))
	if !wantStatus(t, r, 0) {
		return
	}
	job, _, _ := strings.Cut(strings.TrimSpace(r.stdout), ".")
	if !strings.Contains(r.stdout, job+".extern") { // control: there is one
		t.Fatalf("no extern step in the job:\n%s", r)
	}
	calls, err := os.ReadFile(filepath.Join(f.dir, "calls"))
	must(t, err)
	if !strings.Contains(string(calls), "--job="+job+" --step=0") || strings.Contains(string(calls), "--step=4294967295") ||
		strings.Contains(string(calls), "extern") {
		t.Errorf("want chos asked for step 0 only:\n%s", calls)
	}

	// End to end: the extern step's process is in the host's mount
	// namespace while a step of the same job is in the tree's.
	c.setPlugstack(t, "required "+spankPlugin(t)+" default=one\n")
	// (salloc runs its command in a process group of its own: it must end
	// by itself, when the test creates done)
	done := filepath.Join(h.tmp, unique(t))
	b := start(t, c.user("salloc", "sh", "-c", `srun readlink /proc/self/ns/mnt; echo ready; while [ ! -e `+done+` ]; do sleep 0.1; done`))
	t.Cleanup(func() {
		must(t, os.WriteFile(done, nil, 0o644))
		b.wait(20 * time.Second)
		os.Remove(done)
	})
	if !b.waitLine("ready", 20*time.Second) {
		return
	}
	stepNS := strings.SplitN(b.result().stdout, "\n", 2)[0]
	hostNS, err := os.Readlink("/proc/self/ns/mnt")
	must(t, err)
	if stepNS == hostNS {
		t.Errorf("control: the step ran on the host, not in default=one")
	}
	extern := processes(func(pid int, read func(string) (string, bool)) bool {
		cmdline, _ := read("cmdline")
		env, _ := read("environ")
		return cmdline == "sleep\x00100000000\x00" && strings.Contains("\x00"+env, "\x00SLURM_CONF="+c.conf+"\x00")
	})
	if len(extern) != 1 {
		t.Fatalf("want the extern step's one sleep process, found %v", extern)
	}
	if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", extern[0])); err != nil || ns != hostNS {
		t.Errorf("the extern step is in %s (%v), want the host's %s", ns, err, hostNS)
	}
}
