package launch

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chos-hpc/chos/pkg/plan"
)

// A host command called from inside a view runs the configured host
// program on the host, with the caller's arguments and environment,
// $CHOS included; a name no %HOSTCMD line gives is not one (the vsys form
// then takes it).
func TestHostCommandRunsTheHostsProgramOnTheHost(t *testing.T) {
	h := newHost(t, site+"%HOSTCMD\n/usr/bin/srun\n")
	inv := h.inv(uidAlice, setuid, "CHOS=deb", "SLURM_JOB_ID=42")
	inv.HostPrefix = plan.HostDir
	must(t, os.MkdirAll(filepath.Join(h.root, plan.HostDir), 0o755))
	must(t, os.Symlink(filepath.Join(h.root, "etc"), filepath.Join(h.root, plan.HostDir, "etc")))
	for _, c := range []struct {
		name string
		argv []string
		ok   bool
	}{
		{"srun", []string{"srun", "-N3", "hostname"}, true},
		{"srun by its path in the view", []string{"/.chos/bin/srun", "-N3"}, true},
		{"sbatch, not configured", []string{"sbatch", "job.sh"}, false},
		{"a tree's name (vsys)", []string{"deb", "true"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, ok, err := inv.PrepareHostCommand(filepath.Base(c.argv[0]), c.argv)
			if ok != c.ok || err != nil {
				t.Fatalf("ok %v, %v; want ok %v", ok, err, c.ok)
			}
			if !ok {
				return
			}
			p := l.Plan
			if p.RootSource != plan.HostDir || p.Path != "/usr/bin/srun" || !slices.Equal(p.Argv, c.argv) {
				t.Errorf("plan: root %q, path %q, argv %q; want the host's /usr/bin/srun with argv %q", p.RootSource, p.Path, p.Argv, c.argv)
			}
			if !slices.Equal(p.Env, inv.Caller.Env) {
				t.Errorf("environment %q, want the caller's %q", p.Env, inv.Caller.Env)
			}
			if e := l.Record.Event; e.Via != "hostcmd" || e.Tree != "local" {
				t.Errorf("record %+v", e)
			}
		})
	}
	// A configuration that cannot be read is refused, not taken for a tree name.
	h.write("/etc/chos", site+"%HOSTCMD\nsrun\n")
	if _, ok, err := inv.PrepareHostCommand("srun", []string{"srun"}); !ok || err == nil || !strings.Contains(err.Error(), "not absolute") {
		t.Errorf("a bad configuration: ok %v, %v", ok, err)
	}
}
