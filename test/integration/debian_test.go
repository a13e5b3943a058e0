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
// runs), each from its recipe (scripts/recipes), checked once per run of
// this package.
type debianBuild struct {
	once sync.Once
	path string
	err  string
}

var debianBuilds struct {
	sync.Mutex
	byRecipe map[string]*debianBuild
}

// debianTree is the path of a Debian 11 (bullseye) minbase tree, root's and
// reachable through root-owned directories only. Tests must not change it:
// it outlives the run. The first call may take a few minutes (debootstrap).
func debianTree(t testing.TB) string {
	t.Helper()
	return recipeTree(t, "")
}

// mpiTree is a Debian 11 tree with gcc and Open MPI (recipe bullseye-mpi),
// like debianTree.
func mpiTree(t testing.TB) string {
	t.Helper()
	return recipeTree(t, "scripts/recipes/bullseye-mpi")
}

// debianGCCTree is a Debian 11 tree like debianTree's with a C compiler,
// for programs built inside a tree: mpiTree's, which has one.
func debianGCCTree(t testing.TB) string {
	t.Helper()
	return mpiTree(t)
}

// recipeTree is the tree of a recipe of scripts/recipes ("" for the default).
func recipeTree(t testing.TB, recipe string) string {
	t.Helper()
	debianBuilds.Lock()
	if debianBuilds.byRecipe == nil {
		debianBuilds.byRecipe = map[string]*debianBuild{}
	}
	b := debianBuilds.byRecipe[recipe]
	if b == nil {
		b = &debianBuild{}
		debianBuilds.byRecipe[recipe] = b
	}
	debianBuilds.Unlock()
	b.once.Do(func() {
		args := []string{"scripts/mkdebiantree"}
		if recipe != "" {
			args = append(args, "--recipe", recipe)
		}
		cmd := exec.Command("bash", args...)
		cmd.Dir, cmd.Env = h.repo, rootEnv()
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		start := time.Now()
		r, err := runWithTimeout(cmd, 30*time.Minute, nil)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		switch {
		case err != nil || r.status != 0:
			b.err = "scripts/mkdebiantree failed (" + errString(err) + "):\n" + r.String()
		case len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "/"):
			b.err = "scripts/mkdebiantree printed no path:\n" + r.String()
		default:
			b.path = lines[len(lines)-1]
			if err := checkRootOwnedPath(b.path); err != nil {
				b.err = "the Debian tree: " + err.Error()
			}
		}
		if r.stderr != "" || time.Since(start) > 10*time.Second {
			t.Logf("%s (%v):\n%s", strings.Join(args, " "), time.Since(start).Round(time.Second), r.stderr)
		}
	})
	if b.err != "" {
		t.Fatal(b.err)
	}
	return b.path
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
