package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// One voice for warnings: what chos warns about on the command line, the
// same launch through the PAM module shows the session's user (pam_info)
// and through the SPANK plugin writes on the job's stderr, from the same
// `chos prepare` (docs/PREPARE-PROTOCOL.md, warning=).

// unpublishable puts a directory where the cached view of tree is kept, so
// that no launch can publish it (as a namespace file that cannot be bound,
// or a full cache, make it): a launch builds a private view, and warns,
// the first time in the mount namespace (then only notes it: a job of a
// thousand tasks says it once). It returns the warning's start, as the
// command line shows it, and a reset: the cache of tree dropped and the
// directory put back, for the next launch to warn again. The directory
// goes with the test.
func unpublishable(t *testing.T, tree string) (warning string, reset func()) {
	t.Helper()
	drop := func() { wantStatus(t, run(t, call{Root: true, Args: []string{h.chos, "cache", "drop", tree}}), 0) }
	drop()
	r := chos(t, "plan", tree, "--", "true")
	m := regexp.MustCompile(`(?m)^cache +enter (\S+) if it exists`).FindStringSubmatch(r.stdout)
	if !wantStatus(t, r, 0) || m == nil {
		t.Fatalf("no cached view in the plan of %s:\n%s", tree, r)
	}
	reset = func() {
		t.Helper()
		os.RemoveAll(m[1])
		drop()
		must(t, os.MkdirAll(filepath.Join(m[1], "in-the-way"), 0o755))
	}
	t.Cleanup(func() {
		os.RemoveAll(m[1])
		drop()
	})
	reset()
	return "chos: warning: not caching tree " + tree + ": ", reset
}

func TestWarningsReachTheCommandLinePAMAndSlurmUsers(t *testing.T) {
	show := "session optional pam_exec.so stdout " + where(t)
	pam := pamService(t, pamChos(t), show)
	clearDotfile(t)

	// Control: nothing to warn about, nothing said, on every path.
	for name, r := range map[string]result{
		"command line": chos(t, "exec", "one", "true"),
		"PAM session":  pamtesterAs(t, pam, h.user, []string{"-ECHOS=one"}, nil),
	} {
		if !wantStatus(t, r, 0) || strings.Contains(r.stdout+r.stderr, "warning") {
			t.Errorf("control, %s: want no warning:\n%s", name, r)
		}
	}

	warning, reset := unpublishable(t, "one")
	r := chos(t, "exec", "one", "cat", "/etc/os-release")
	wantOSID(t, r, h.osIDs["one"])
	if strings.Count(r.stderr, warning) != 1 {
		t.Errorf("command line: want the warning %q once:\n%s", warning, r)
	}

	// The PAM module shows it to the user (pamtester prints what
	// pam_info says), and the session is in the tree all the same.
	reset()
	r = pamtesterAs(t, pam, h.user, []string{"-ECHOS=one"}, nil)
	if wantStatus(t, r, 0) && strings.Count(r.stdout+r.stderr, warning) != 1 {
		t.Errorf("PAM session: want the warning %q once:\n%s", warning, r)
	}
	if id, tree := whereShown(r.stdout); id != h.osIDs["one"] || tree != "one" {
		t.Errorf("PAM session in ID=%s CHOS=%s, want tree one:\n%s", id, tree, r)
	}

	// The Slurm plugin writes it on the job's stderr, once per step.
	c := chosJobs(t)
	reset()
	r = run(t, c.user("srun", "-n2", "--chos=one", "cat", "/etc/os-release"))
	if wantStatus(t, r, 0) && strings.Count(r.stderr, warning) != 1 {
		t.Errorf("Slurm job: want the warning %q once on its stderr:\n%s", warning, r)
	}
	if !strings.Contains(r.stdout, "ID="+h.osIDs["one"]) {
		t.Errorf("Slurm job not in tree one:\n%s", r)
	}
}
