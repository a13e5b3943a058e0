package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The cached namespaces of a tree that has left the configuration are
// collected by the next launch that builds a view, and by `chos check` as
// root (README: "Namespace cache").
func TestStaleNamespacesOfRemovedTreesAreCollected(t *testing.T) {
	emptyCache(t)
	t.Cleanup(func() { emptyCache(t) })
	// a tree of its own path (a link to tree three), to be removed
	link := filepath.Join(h.base, unique(t))
	must(t, os.Symlink(h.trees["three"], link))
	t.Cleanup(func() { os.Remove(link) })
	withExtra := h.configText + "leaving:" + link + "\n"

	stale := func(t *testing.T) string {
		t.Helper()
		r := chos(t, "cache", "list")
		wantStatus(t, r, 0)
		return grepLines(r.stdout, "no such tree any more")
	}
	leave := func(t *testing.T) {
		t.Helper()
		setConfig(t, withExtra)
		wantOSID(t, chos(t, "exec", "leaving", "cat", "/etc/os-release"), "chosthree")
		setConfig(t, h.configText)
		// the control: listed as stale, and still mounted
		if s := stale(t); !strings.Contains(s, "leaving") || !strings.Contains(readMountinfo(t), filepath.Join(hostCacheDir(t), "leaving.")) {
			t.Fatalf("the removed tree's namespace is not there to collect: %q", s)
		}
	}
	gone := func(t *testing.T, after string) {
		t.Helper()
		if s := stale(t); s != "" {
			t.Errorf("after %s, still listed: %s", after, s)
		}
		if m := grepLines(readMountinfo(t), filepath.Join(hostCacheDir(t), "leaving.")); m != "" {
			t.Errorf("after %s, still mounted: %s", after, m)
		}
	}

	t.Run("launch that builds a view", func(t *testing.T) {
		leave(t)
		// the configuration changed: this launch builds tree two's view
		wantOSID(t, chos(t, "exec", "two", "cat", "/etc/os-release"), "chostwo")
		gone(t, "a launch")
	})
	t.Run("chos check as root", func(t *testing.T) {
		leave(t)
		// as a user, check reports it only (the control)
		r := chos(t, "check")
		if !strings.Contains(r.stdout, "stale") || stale(t) == "" {
			t.Errorf("chos check as a user did not report, or collected, the stale namespace:\n%s", r)
		}
		r = run(t, call{Root: true, Args: []string{h.chos, "check"}})
		if !strings.Contains(r.stdout, "dropped 1 cached namespaces of trees no longer configured") {
			t.Errorf("chos check as root did not say it collected:\n%s", r)
		}
		gone(t, "chos check as root")
		if lock := filepath.Join(hostCacheDir(t), "leaving.lock"); fileExists(lock) {
			t.Errorf("chos check as root left %s", lock)
		}
	})
}

func fileExists(p string) bool { _, err := os.Lstat(p); return err == nil }

// What a mount namespace that ended left in CACHEDIR/ns (its directory
// INODE and claim lock INODE.lock) is collected by the next view build,
// and by `chos check` as root; a namespace that still has a process keeps
// its own (the control). `chos cache drop` leaves no lock file behind.
func TestCacheOfAnEndedNamespaceIsCollected(t *testing.T) {
	emptyCache(t)
	t.Cleanup(func() { emptyCache(t) })
	nsDir := filepath.Join(h.cacheDir, "ns")
	u := call{}.account()
	// A launch from a mount namespace of its own, which stays while a
	// sleep of root's runs in it.
	other := start(t, call{Root: true, Args: []string{"unshare", "-m", "--propagation", "slave", "--", "sh", "-c",
		"setpriv --reuid " + u.name + " --regid " + u.group + " --init-groups -- " + h.chos + " exec one true && " +
			"echo ns=$(readlink /proc/self/ns/mnt) && echo ready && exec sleep 60"}})
	if !other.waitLine("ready", promptly) {
		t.Fatalf("the launch from another namespace did not run:\n%s", other.result())
	}
	ino := strings.TrimSuffix(strings.TrimPrefix(grepLines(other.result().stdout, "ns="), "ns=mnt:["), "]")
	dir := filepath.Join(nsDir, ino)
	for _, p := range []string{dir, dir + ".lock"} {
		if _, err := os.Lstat(p); err != nil {
			t.Fatalf("the other namespace's cache left no %s: %v", p, err)
		}
	}
	build := func(t *testing.T) {
		t.Helper()
		wantStatus(t, run(t, call{Root: true, Args: []string{h.chos, "cache", "drop", "two"}}), 0)
		wantOSID(t, chos(t, "exec", "two", "cat", "/etc/os-release"), h.osIDs["two"])
	}
	// Control: while the namespace lives, a build here keeps its cache.
	build(t)
	if _, err := os.Lstat(dir); err != nil {
		t.Fatalf("a build collected the cache of a namespace still in use: %v", err)
	}
	syscall.Kill(-other.pid, syscall.SIGKILL)
	other.wait(promptly)
	build(t)
	for _, p := range []string{dir, dir + ".lock"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s of the ended namespace is still there after a build", p)
		}
	}
	// chos cache drop: nothing left, lock files included.
	wantStatus(t, run(t, call{Root: true, Args: []string{h.chos, "cache", "drop"}}), 0)
	if des, err := os.ReadDir(nsDir); err == nil && len(des) > 0 {
		var names []string
		for _, de := range des {
			names = append(names, de.Name())
		}
		t.Errorf("after chos cache drop, %s holds %v", nsDir, names)
	}
}
