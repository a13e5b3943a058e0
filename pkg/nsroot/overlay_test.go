package nsroot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/ldcache"
	"github.com/chos-hpc/chos/pkg/spec"
)

func mkTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		switch {
		case content == "/":
			os.MkdirAll(full, 0o755)
		case len(content) > 2 && content[:2] == "->":
			if err := os.Symlink(content[2:], full); err != nil {
				t.Fatal(err)
			}
		default:
			os.WriteFile(full, []byte(content), 0o644)
		}
	}
}

func open(t *testing.T, dir string) *os.File {
	t.Helper()
	f, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// What a view adds to a tree directory lands in the overlay's top layer,
// where the tree's links lead, and never in the tree.
func TestProvideMakesMountPointsAndLinksInTheTopLayer(t *testing.T) {
	tree, view, host := t.TempDir(), t.TempDir(), t.TempDir()
	mkTree(t, tree, map[string]string{
		"usr/lib/x86_64-linux-gnu/libz.so.1": "tree's",
		"usr/lib/x86_64-linux-gnu/libold.so": "->libz.so.1",
		"lib":                                "->usr/lib",
		"usr/bin":                            "/",
		"var/run":                            "->/run",
	})
	mkTree(t, host, map[string]string{"libcuda.so.550": "elf", "smi": "x", "share/": "/"})
	root, th := open(t, view), open(t, tree)
	m := spec.Mount{Op: spec.OpOverlay, Source: filepath.Join(tree, "usr"), Target: "/usr", Added: "/.chos/add/usr"}
	for _, tc := range []struct {
		pr   spec.Provision
		made string // in the top layer; "" nothing
		kind uint32
	}{
		{spec.Provision{Path: "/usr/lib/x86_64-linux-gnu/libcuda.so.550", Source: filepath.Join(host, "libcuda.so.550")}, "/.chos/add/usr/lib/x86_64-linux-gnu/libcuda.so.550", unix.S_IFREG},
		{spec.Provision{Path: "/usr/lib64/libcuda.so.550", Source: filepath.Join(host, "libcuda.so.550")}, "/.chos/add/usr/lib64/libcuda.so.550", unix.S_IFREG}, // a directory the tree lacks
		{spec.Provision{Path: "/usr/share/nvidia", Source: filepath.Join(host, "share")}, "/.chos/add/usr/share/nvidia", unix.S_IFDIR},
		{spec.Provision{Path: "/usr/lib/x86_64-linux-gnu/libcuda.so", Link: "libcuda.so.1"}, "/.chos/add/usr/lib/x86_64-linux-gnu/libcuda.so", unix.S_IFLNK},
		{spec.Provision{Path: "/usr/lib/x86_64-linux-gnu/libold.so", Source: filepath.Join(host, "smi")}, "/.chos/add/usr/lib/x86_64-linux-gnu/libold.so", unix.S_IFREG}, // the tree's link shadowed
		{spec.Provision{Path: "/usr/lib/x86_64-linux-gnu/libz.so.1", Source: filepath.Join(host, "smi")}, "", 0},                                                         // the tree has it: bound over
		{spec.Provision{Path: "/usr/bin/missing-on-host", Source: filepath.Join(host, "nope")}, "", 0},                                                                   // nothing to bind
	} {
		added, err := provide(root, th, m, tc.pr)
		if err != nil {
			t.Errorf("%s: %v", tc.pr.Path, err)
			continue
		}
		var st unix.Stat_t
		err = unix.Lstat(filepath.Join(view, tc.made), &st)
		switch {
		case tc.made == "" && added != "" && unix.Lstat(filepath.Join(view, added), &st) == nil:
			t.Errorf("%s: made %s", tc.pr.Path, added)
		case tc.made != "" && (err != nil || st.Mode&unix.S_IFMT != tc.kind || added != tc.made):
			t.Errorf("%s: %s (%v, mode %o), want %s", tc.pr.Path, added, err, st.Mode, tc.made)
		}
	}
	// a path the tree's links lead out of /usr is left to the bind
	mv := spec.Mount{Op: spec.OpOverlay, Source: filepath.Join(tree, "var"), Target: "/var", Added: "/.chos/add/var"}
	if added, err := provide(root, th, mv, spec.Provision{Path: "/var/run/x/socket", Source: filepath.Join(host, "smi")}); err != nil || added != "" {
		t.Errorf("/var/run/x/socket: %q, %v", added, err)
	}
	// the tree itself is untouched
	var names []string
	filepath.Walk(tree, func(p string, _ os.FileInfo, _ error) error { names = append(names, p); return nil })
	if len(names) != 10 {
		t.Errorf("the tree changed: %v", names)
	}
}

// The loader cache made for a view is the tree's with the device's library
// found first by its soname; a library with a soname of its own gets the
// soname linked to it.
func TestLoaderCacheAddsTheLibrariesToTheTreesCache(t *testing.T) {
	tree, view := t.TempDir(), t.TempDir()
	// a real library of this machine stands for a device's
	lib := "/lib/x86_64-linux-gnu/libm.so.6"
	if _, err := os.Stat(lib); err != nil {
		t.Skip("no " + lib + " on this machine") // (the integration tests run the real thing)
	}
	orig := ldcache.Empty()
	orig.Add(ldcache.Entry{Flags: ldcache.X8664, Name: "libm.so.6", Path: "/lib/x86_64-linux-gnu/libm.so.6"})
	orig.Add(ldcache.Entry{Flags: ldcache.X8664, Name: "libc.so.6", Path: "/lib/x86_64-linux-gnu/libc.so.6"})
	mkTree(t, tree, map[string]string{"etc/ld.so.cache": string(orig.Bytes())})
	root := open(t, view)
	m := spec.Mount{Op: spec.OpLoaderCache, Source: tree, Target: "/.chos/etc/ld.so.cache",
		Provide: []spec.Provision{{Path: "/opt/vendor/lib/libmvendor.so.6.1", Source: lib, Soname: true}, {Path: "/opt/vendor/lib/notes.txt", Source: "/etc/hostname"}}}
	if err := loaderCache(root, m, newHostLibraries(func(spec.Mount) error { return nil })); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(view, ".chos/etc/ld.so.cache"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ldcache.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := c.Lookup("libm.so.6", ldcache.X8664); !ok || e.Path != "/opt/vendor/lib/libm.so.6" {
		t.Errorf("libm.so.6 found as %+v, want the device's", e)
	}
	if e, ok := c.Lookup("libc.so.6", ldcache.X8664); !ok || e.Path != "/lib/x86_64-linux-gnu/libc.so.6" {
		t.Errorf("the tree's libc.so.6 lost: %+v", e)
	}
	if len(c.Entries) != 3 {
		t.Errorf("entries %+v", c.Entries)
	}
	if l, err := os.Readlink(filepath.Join(view, "opt/vendor/lib/libm.so.6")); err != nil || l != "libmvendor.so.6.1" {
		t.Errorf("soname link on the view's root: %q, %v", l, err)
	}
	// a tree without a cache gets one of the devices' libraries alone
	os.Remove(filepath.Join(tree, "etc/ld.so.cache"))
	view2 := t.TempDir()
	if err := loaderCache(open(t, view2), m, newHostLibraries(func(spec.Mount) error { return nil })); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(filepath.Join(view2, ".chos/etc/ld.so.cache"))
	if c, err := ldcache.Parse(data); err != nil || len(c.Entries) != 1 {
		t.Errorf("cache of a tree without one: %+v, %v", c, err)
	}
}

// The tree's loader cache is the tree maker's: a FIFO there must not hold
// root's builder (nothing would ever write to it), nor anything else than
// a regular file be read. Control: TestLoaderCacheAddsTheLibrariesToTheTreesCache.
func TestLoaderCacheRefusesATreesCacheThatIsNoFile(t *testing.T) {
	tree := t.TempDir()
	mkTree(t, tree, map[string]string{"etc/hostname": "x\n"})
	if err := unix.Mkfifo(filepath.Join(tree, "etc/ld.so.cache"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := spec.Mount{Op: spec.OpLoaderCache, Source: tree, Target: "/.chos/etc/ld.so.cache"}
	done := make(chan error, 1)
	go func() {
		done <- loaderCache(open(t, t.TempDir()), m, newHostLibraries(func(spec.Mount) error { return nil }))
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("a FIFO as the tree's loader cache: %v, want a refusal", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("loaderCache still waits on the tree's FIFO after 3 s")
	}
}
