package integration

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The debootstrapped Debian 11 trees shared by the tests: built once per
// machine by scripts/mkdebiantree (into /var/cache/chos-test, kept between
// runs), checked once per run of this package.
type debianBuild struct {
	once sync.Once
	path string
	err  string
}

var (
	debian    debianBuild // minbase
	debianGCC debianBuild // minbase, gcc and libc6-dev
)

// debianTree is the path of a Debian 11 (bullseye) minbase tree, root's and
// reachable through root-owned directories only. Tests must not change it:
// it outlives the run. The first call may take a few minutes (debootstrap).
func debianTree(t testing.TB) string {
	t.Helper()
	return debian.get(t)
}

// debianGCCTree is a Debian 11 tree like debianTree's with a C compiler,
// for programs built inside a tree.
func debianGCCTree(t testing.TB) string {
	t.Helper()
	return debianGCC.get(t, "--include", "gcc,libc6-dev", "/var/cache/chos-test/bullseye-gcc")
}

func (d *debianBuild) get(t testing.TB, args ...string) string {
	t.Helper()
	d.once.Do(func() {
		cmd := exec.Command("bash", append([]string{"scripts/mkdebiantree"}, args...)...)
		cmd.Dir, cmd.Env = h.repo, rootEnv()
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		start := time.Now()
		r, err := runWithTimeout(cmd, 30*time.Minute, nil)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		switch {
		case err != nil || r.status != 0:
			d.err = "scripts/mkdebiantree failed (" + errString(err) + "):\n" + r.String()
		case len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "/"):
			d.err = "scripts/mkdebiantree printed no path:\n" + r.String()
		default:
			d.path = lines[len(lines)-1]
			if err := checkRootOwnedPath(d.path); err != nil {
				d.err = "the Debian tree: " + err.Error()
			}
		}
		if r.stderr != "" || time.Since(start) > 10*time.Second {
			t.Logf("scripts/mkdebiantree %s (%v):\n%s", strings.Join(args, " "), time.Since(start).Round(time.Second), r.stderr)
		}
	})
	if d.err != "" {
		t.Fatal(d.err)
	}
	return d.path
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// A debootstrapped tree runs through chos: the program sees Debian 11 where
// the host is Debian 12.
func TestDebianTreeRunsThroughChos(t *testing.T) {
	tree := debianTree(t)
	setConfig(t, h.configText+"debian:"+tree+"\n")

	host, err := os.ReadFile("/etc/debian_version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(host), "12.") {
		t.Fatalf("the host's /etc/debian_version is %q: these tests expect a Debian 12 host", host)
	}
	cases := []struct{ tree, wantPrefix string }{
		{"debian", "11."},
		{"local", "12."}, // control: the same command, on the host
	}
	for _, c := range cases {
		t.Run(c.tree, func(t *testing.T) {
			r := chos(t, "exec", c.tree, "cat", "/etc/debian_version")
			if wantStatus(t, r, 0) && !strings.HasPrefix(r.stdout, c.wantPrefix) {
				t.Errorf("/etc/debian_version in %s is %q, want %s*:\n%s", c.tree, r.stdout, c.wantPrefix, r)
			}
		})
	}
	// the tree's own programs run (coreutils 8.32 in Debian 11, 9.1 on the
	// host), as the user
	r := chos(t, "exec", "debian", "sh", "-c", "id -u; cat --version")
	lines := strings.Split(r.stdout, "\n")
	if wantStatus(t, r, 0) && (len(lines) < 2 || lines[0] != strconv.Itoa(h.uid) || lines[1] != "cat (GNU coreutils) 8.32") {
		t.Errorf("uid and cat in the Debian tree: %q, want %d and cat (GNU coreutils) 8.32:\n%s", r.stdout, h.uid, r)
	}
}
