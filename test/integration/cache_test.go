package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// The setuid chos keeps each tree's view as a mount namespace in the cache
// directory and enters it on later launches (README: "Namespace cache").

// emptyCache empties the cache as root (`chos cache drop`, which must
// succeed) and checks nothing of it is left mounted.
func emptyCache(t testing.TB) {
	t.Helper()
	r := run(t, call{Root: true, Args: []string{h.chos, "cache", "drop"}})
	wantStatus(t, r, 0)
	if strings.Contains(readMountinfo(t), h.cacheDir) {
		t.Fatalf("after `chos cache drop`, %s is still mounted:\n%s", h.cacheDir, grepLines(readMountinfo(t), h.cacheDir))
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// hostCacheDir is where launches from the host's mount namespace (this
// test's) keep their views: CACHEDIR/ns/INODE.
func hostCacheDir(t testing.TB) string {
	t.Helper()
	link, err := os.Readlink("/proc/self/ns/mnt")
	must(t, err)
	return filepath.Join(h.cacheDir, "ns", strings.TrimSuffix(strings.TrimPrefix(link, "mnt:["), "]"))
}

// nsID is the mount namespace a launch of tree runs in.
func nsID(t testing.TB, args ...string) string {
	t.Helper()
	r := chos(t, append(args, "readlink", "/proc/self/ns/mnt")...)
	if !wantStatus(t, r, 0) {
		return ""
	}
	return strings.TrimSpace(r.stdout)
}

// validCached counts the cached namespaces `chos cache` calls valid for tree.
func validCached(t testing.TB, tree string) int {
	t.Helper()
	r := chos(t, "cache", "list")
	wantStatus(t, r, 0)
	n := 0
	for _, l := range strings.Split(r.stdout, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == tree && f[2] == "valid" {
			n++
		}
	}
	return n
}

func TestCacheSecondLaunchEntersTheSameNamespace(t *testing.T) {
	emptyCache(t)
	first := nsID(t, "exec", "one")
	second := nsID(t, "exec", "one")
	other := nsID(t, "exec", "two")
	if first == "" || first != second {
		t.Errorf("two launches of one: namespaces %q and %q, want the same (cached)", first, second)
	}
	if other == first {
		t.Errorf("tree two entered tree one's namespace %s", first)
	}
	if n := validCached(t, "one"); n != 1 {
		t.Errorf("chos cache lists %d valid namespaces of one, want 1", n)
	}
	if fresh := nsID(t, "exec", "--fresh", "one"); fresh == first {
		t.Errorf("--fresh entered the cached namespace %s", first)
	}
	// What the cached view shows is still tree one, and its own host's mine.
	wantOSID(t, chos(t, "exec", "one", "cat", "/etc/os-release"), h.osIDs["one"])
}

func TestCacheIsRebuiltWhenItsSourcesChange(t *testing.T) {
	bindDir := filepath.Join(h.base, "cachebind-"+unique(t))
	if err := os.Mkdir(bindDir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(bindDir)
	cases := []struct {
		name   string
		change func(t *testing.T) (undo func())
	}{
		{"configuration changed", func(t *testing.T) func() {
			setConfig(t, h.configText+"\n# a comment is a change too\n")
			return restoreConfig(t)
		}},
		{"bind list changed", func(t *testing.T) func() {
			setConfig(t, h.configText+"\n%BIND\n"+bindDir+" /cachebind\n")
			return restoreConfig(t)
		}},
		{"tree directory replaced", func(t *testing.T) func() {
			tree := h.trees["one"]
			old := tree + ".before-" + unique(t)
			if err := os.Rename(tree, old); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("cp", "-a", old, tree).CombinedOutput(); err != nil {
				t.Fatalf("copying the tree: %v %s", err, out)
			}
			return func() {
				os.RemoveAll(tree)
				if err := os.Rename(old, tree); err != nil {
					t.Errorf("restoring tree one: %v", err)
				}
			}
		}},
		{"identity file replaced", func(t *testing.T) func() {
			// useradd and passwd replace /etc/group by rename: a cached view
			// must not keep showing the old file.
			r := run(t, call{Root: true, Args: []string{"sh", "-c", "cp -p /etc/group /etc/group.chostest && mv /etc/group.chostest /etc/group"}})
			wantStatus(t, r, 0)
			return func() {}
		}},
	}
	// The setuid chos's cached view, and the view a keeper keeps for the
	// user's user-namespace launches.
	for _, m := range []struct {
		name string
		ns   func(t testing.TB) string
	}{
		{"setuid", func(t testing.TB) string { return nsID(t, "exec", "one") }},
		{"userns", func(t testing.TB) string { return usernsNS(t, "exec", "one") }},
	} {
		for _, c := range cases {
			t.Run(m.name+"/"+c.name, func(t *testing.T) {
				emptyCache(t)
				before := m.ns(t)
				if again := m.ns(t); again != before {
					t.Fatalf("control: unchanged sources gave namespaces %s and %s", before, again)
				}
				undo := c.change(t)
				after := m.ns(t)
				undo()
				if after == "" || after == before {
					t.Errorf("after %s the launch entered the old namespace %s", c.name, before)
				}
			})
		}
	}
	// Once everything is back, a new launch must not enter a view built from
	// the changed sources.
	emptyCache(t)
}

func TestCacheConcurrentFirstLaunchesAllSucceed(t *testing.T) {
	emptyCache(t)
	const n = 64
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = chos(t, "exec", "two", "readlink", "/proc/self/ns/mnt")
		}(i)
	}
	wg.Wait()
	ids := map[string]int{}
	for i, r := range results {
		if r.status != 0 {
			t.Errorf("launch %d of %d: %s", i, n, r)
			continue
		}
		ids[strings.TrimSpace(r.stdout)]++
	}
	if len(ids) != 1 {
		t.Errorf("64 concurrent first launches ran in %d namespaces, want 1 (built once): %v", len(ids), ids)
	}
	if v := validCached(t, "two"); v != 1 {
		t.Errorf("after 64 concurrent first launches, %d valid cached namespaces of two, want 1", v)
	}
	files := grepLines(readMountinfo(t), filepath.Join(hostCacheDir(t), "two."))
	if c := strings.Count(files, "\n") + 1; files == "" || c != 1 {
		t.Errorf("%d namespace mounts for tree two on the host, want 1:\n%s", c, files)
	}
}

// A file system mounted on the host after the cache was built reaches the
// cached view through slave propagation. The host's / is private here, so
// the test binds a shared directory of its own into the trees.
func TestCacheSeesHostMountsMadeLater(t *testing.T) {
	shared := filepath.Join(h.base, "shared-"+unique(t))
	if err := os.MkdirAll(filepath.Join(shared, "later"), 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(shared)
	for _, args := range [][]string{{"--bind", shared, shared}, {"--make-shared", shared}} {
		r := run(t, call{Root: true, Args: append([]string{"mount"}, args...)})
		wantStatus(t, r, 0)
	}
	defer run(t, call{Root: true, Args: []string{"umount", "-R", shared}})
	setConfig(t, h.configText+"\n%BIND\n"+shared+" /shared\n")
	defer restoreConfig(t)()
	emptyCache(t)
	defer emptyCache(t)

	built := nsID(t, "exec", "one")
	if r := chos(t, "exec", "one", "ls", "/shared/later"); r.status != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("control: /shared/later should be empty before the mount: %s", r)
	}
	r := run(t, call{Root: true, Args: []string{"sh", "-c", fmt.Sprintf("mount -t tmpfs chostest %s/later && echo mounted-later > %s/later/flag", shared, shared)}})
	wantStatus(t, r, 0)
	if now := nsID(t, "exec", "one"); now != built {
		t.Fatalf("the launch after the host mount did not use the cached namespace (%s, then %s)", built, now)
	}
	r = chos(t, "exec", "one", "cat", "/shared/later/flag")
	wantStatus(t, r, 0)
	if strings.TrimSpace(r.stdout) != "mounted-later" {
		t.Errorf("a host mount made after the cache was built is not visible inside: %s", r)
	}
}

func TestCacheDropLeavesHostMountTableAsBefore(t *testing.T) {
	emptyCache(t)
	before := readMountinfo(t)
	for _, tree := range []string{"one", "two", "three"} {
		wantStatus(t, chos(t, "exec", tree, "true"), 0)
	}
	if during := readMountinfo(t); during == before {
		t.Fatalf("control: launches cached nothing on the host (no mount in %s)", h.cacheDir)
	}
	emptyCache(t)
	if after := readMountinfo(t); after != before {
		onlyBefore, onlyAfter := lineDiff(before, after)
		t.Errorf("host mount table differs after dropping the cache:\nonly before: %v\nonly after: %v", onlyBefore, onlyAfter)
	}
}

// The view is shared; what is the caller's (identity, cwd, environment)
// must be each caller's own.
func TestCacheNeverCarriesOneUsersStateToAnother(t *testing.T) {
	emptyCache(t)
	dir := filepath.Join(h.home, "cwd-"+unique(t))
	userDir(t, dir)
	a := run(t, call{Args: []string{h.chos, "exec", "one", "sh", "-c", "readlink /proc/self/ns/mnt; id -u; pwd; echo FOO=$FOO"},
		Dir: dir, Env: []string{"FOO=user-a"}})
	wantStatus(t, a, 0)
	b := run(t, call{Root: true, Dir: "/tmp", Env: []string{"PATH=/usr/bin:/bin"},
		Args: []string{"setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "--", h.chos, "exec", "one", "sh", "-c", "readlink /proc/self/ns/mnt; id -u; pwd; echo FOO=$FOO"}})
	wantStatus(t, b, 0)
	la, lb := strings.Split(strings.TrimSpace(a.stdout), "\n"), strings.Split(strings.TrimSpace(b.stdout), "\n")
	if len(la) != 4 || len(lb) != 4 {
		t.Fatalf("unexpected output:\n%s\n%s", a, b)
	}
	if la[0] != lb[0] {
		t.Fatalf("control: the two users did not share the cached namespace (%s, %s)", la[0], lb[0])
	}
	want := []string{"65534", "/tmp", "FOO="}
	for i, w := range want {
		if lb[i+1] != w {
			t.Errorf("second user in the cached view: line %d is %q, want %q (first user's was %q)", i+2, lb[i+1], w, la[i+1])
		}
	}
	if la[1] != fmt.Sprint(h.uid) || la[2] != dir || la[3] != "FOO=user-a" {
		t.Errorf("first user: %q", la)
	}
}

func TestCacheIsNotUsedForTreesThatOptOut(t *testing.T) {
	setConfig(t, h.configText+"\n%TREE three\ncache = no\n")
	defer restoreConfig(t)()
	emptyCache(t)
	// (Namespace ids of launches that have ended are reused, so they
	// cannot tell two fresh launches apart: look at the cache itself.)
	for i := 0; i < 3; i++ {
		wantOSID(t, chos(t, "exec", "three", "cat", "/etc/os-release"), h.osIDs["three"])
	}
	if strings.Contains(readMountinfo(t), filepath.Join(hostCacheDir(t), "three.")) || validCached(t, "three") != 0 {
		t.Error("cache = no: a namespace of three was cached")
	}
	wantStatus(t, chos(t, "exec", "two", "true"), 0)
	if validCached(t, "two") != 1 {
		t.Error("control: tree two, which does not opt out, was not cached")
	}
}

// TestCacheWorksInANamespaceMadeOnAnotherCPU launches from a mount
// namespace made on one CPU with the launch on another (an `unshare -m`, a
// Slurm job's job_container/tmpfs namespace, a container): since Linux
// 6.18 namespace ids come in per-CPU batches, and the kernel binds a view's
// namespace only where it is newer. testdata/nsorder makes the namespace so
// that every namespace made on the launch's CPU is older, and fails unless
// the kernel then refuses such a bind (the control). The second launch must
// enter the view the first one built and cached, with no warning.
func TestCacheWorksInANamespaceMadeOnAnotherCPU(t *testing.T) {
	nsorder := buildTestProgram(t, t.TempDir(), "nsorder")
	cpus := allowedCPUs(t)
	if len(cpus) < 2 {
		t.Fatalf("needs two CPUs to make namespace ids out of order; this machine lets the test use %v", cpus)
	}
	u := call{}.account()
	script := `set -e
` + h.chos + ` exec one readlink /proc/self/ns/mnt
` + h.chos + ` exec one readlink /proc/self/ns/mnt
` + h.chos + ` cache list`
	for _, launchCPU := range cpus {
		for _, viewCPU := range cpus {
			if launchCPU == viewCPU {
				continue
			}
			t.Run(fmt.Sprintf("namespace made on CPU %d, launch on CPU %d", launchCPU, viewCPU), func(t *testing.T) {
				r := run(t, call{Root: true, Args: []string{nsorder, strconv.Itoa(launchCPU), strconv.Itoa(viewCPU),
					"setpriv", "--reuid", u.name, "--regid", u.group, "--init-groups", "--", "sh", "-c", script}})
				if !wantStatus(t, r, 0) {
					return
				}
				lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
				if len(lines) < 3 || lines[0] != lines[1] {
					t.Errorf("two launches ran in namespaces %q, want one, cached:\n%s", lines[:min(2, len(lines))], r)
				}
				if strings.Contains(r.stderr, "not caching") {
					t.Errorf("the launch did not cache its view:\n%s", r)
				}
				if !strings.Contains(r.stdout, "valid") {
					t.Errorf("chos cache list in that namespace shows no valid view:\n%s", r)
				}
			})
		}
	}
}

// allowedCPUs are the CPUs this test may run on.
func allowedCPUs(t testing.TB) []int {
	t.Helper()
	var set unix.CPUSet
	must(t, unix.SchedGetaffinity(0, &set))
	var cpus []int
	for c := 0; c < len(set)*64 && len(cpus) < 4; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}
