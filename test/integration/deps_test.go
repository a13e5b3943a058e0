package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// scripts/deps installs what `make test` and the other goals need. A test
// cannot uninstall the machine, so the missing packages and the missing
// apt are made with stand-ins for dpkg-query and apt-get on PATH; the
// machine's own state is the control (everything there: silent, quick).
func TestDepsSaysWhatItInstallsOrWhatIsMissing(t *testing.T) {
	dir := filepath.Join(h.tmp, "deps-"+unique(t))
	must(t, os.MkdirAll(filepath.Join(dir, "bin"), 0o755))
	t.Cleanup(func() { os.RemoveAll(dir) })
	deps := filepath.Join(dir, "deps")
	copyFile(t, filepath.Join(h.repo, "scripts", "deps"), deps, 0o755)
	// a bin of the tools deps uses, without dpkg-query and apt-get
	for _, tool := range []string{"bash", "sed", "sort", "tr", "mktemp", "rm", "grep", "head", "cat"} {
		p, err := exec.LookPath(tool)
		must(t, err)
		must(t, os.Symlink(p, filepath.Join(dir, "bin", tool)))
	}
	noApt := "PATH=" + filepath.Join(dir, "bin")
	// dpkg-query that knows no package, apt-get that only logs its calls
	fakes := filepath.Join(dir, "fakes")
	must(t, os.MkdirAll(fakes, 0o755))
	must(t, os.WriteFile(filepath.Join(fakes, "dpkg-query"), []byte("#!/bin/sh\nexit 1\n"), 0o755))
	aptLog := filepath.Join(dir, "apt.log")
	must(t, os.WriteFile(filepath.Join(fakes, "apt-get"), []byte("#!/bin/sh\necho \"$@\" >>"+aptLog+"\n"), 0o755))
	nothingInstalled := "PATH=" + fakes + ":" + filepath.Join(dir, "bin")

	t.Run("control: all there, silent and quick, as root and as a user", func(t *testing.T) {
		for _, c := range []call{{Root: true, Args: []string{deps, "test"}}, {Args: []string{deps, "test"}}} {
			start := time.Now()
			r := run(t, c)
			wantStatus(t, r, 0)
			if r.stdout+r.stderr != "" {
				t.Errorf("deps said something with everything installed:\n%s", r)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("deps took %v with everything installed", took)
			}
		}
	})
	t.Run("no apt: names the packages and stops", func(t *testing.T) {
		r := run(t, call{Root: true, Args: []string{deps, "test"}, Env: []string{noApt}})
		wantStatus(t, r, 1)
		if !strings.HasPrefix(r.stderr, "deps: no apt-get here: make test needs") || !strings.Contains(r.stderr, "slurmctld") ||
			strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("want one line naming the packages:\n%s", r)
		}
	})
	t.Run("missing, as a user: names them and stops", func(t *testing.T) {
		r := run(t, call{Args: []string{deps, "bench"}, Env: []string{nothingInstalled}})
		wantStatus(t, r, 1)
		if !strings.HasPrefix(r.stderr, "deps: make bench needs") || !strings.Contains(r.stderr, "bubblewrap") ||
			!strings.Contains(r.stderr, "as root") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("want one line naming what is missing:\n%s", r)
		}
		if _, err := os.Stat(aptLog); err == nil {
			t.Errorf("apt-get ran for a user")
		}
	})
	t.Run("missing, as root: one line, then apt-get install, no update first", func(t *testing.T) {
		r := run(t, call{Root: true, Args: []string{deps, "demo"}, Env: []string{nothingInstalled}})
		wantStatus(t, r, 0)
		if r.stdout != "deps: installing for make demo: busybox-static make util-linux\n" {
			t.Errorf("want one line naming what it installs:\n%s", r)
		}
		calls := readFile(t, aptLog)
		if !strings.HasPrefix(calls, "install ") || strings.Contains(calls, "update") {
			t.Errorf("apt-get was called as:\n%s", calls)
		}
	})
	t.Run("unknown goal", func(t *testing.T) {
		r := run(t, call{Root: true, Args: []string{deps, "tset"}})
		wantStatus(t, r, 1)
		if !strings.Contains(r.stderr, "unknown goal 'tset'") {
			t.Errorf("want the goal named:\n%s", r)
		}
	})
}
