package inroot

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func openRoot(t *testing.T, dir string) *os.File {
	t.Helper()
	r, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestOpenResolvesLinksInsideTheRoot(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("host"), 0o644)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "secret"), []byte("tree"), 0o644)
	os.Symlink(filepath.Join("/", "secret"), filepath.Join(root, "etc", "abs"))
	os.Symlink("../../../../../../secret", filepath.Join(root, "etc", "dotdot"))
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "etc", "escape"))
	r := openRoot(t, root)
	for name, want := range map[string]string{"etc/abs": "tree", "etc/dotdot": "tree", "/../../secret": "tree"} {
		f, err := Open(r, name, os.O_RDONLY)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		buf := make([]byte, 8)
		n, _ := f.Read(buf)
		f.Close()
		if string(buf[:n]) != want {
			t.Errorf("%s read %q, want %q", name, buf[:n], want)
		}
	}
	if f, err := Open(r, "etc/escape", os.O_RDONLY); err == nil {
		f.Close()
		t.Error("a link to a host path opened the host's file (or anything) instead of failing inside the root")
	}
}

func TestMkdirAllCreatesInsideTheRoot(t *testing.T) {
	root := t.TempDir()
	os.Symlink("/elsewhere", filepath.Join(root, "link"))
	r := openRoot(t, root)
	h, err := MkdirAll(r, "/a/b/c", 0o755)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	if fi, err := os.Stat(filepath.Join(root, "a/b/c")); err != nil || !fi.IsDir() {
		t.Errorf("a/b/c not created: %v", err)
	}
	// A dangling link is not created through: mount points are only made
	// where nothing is in the way.
	if h, err := MkdirAll(r, "link/x", 0o755); err == nil {
		h.Close()
		t.Error("MkdirAll created a directory through a dangling link")
	}
	if _, err := os.Stat("/elsewhere"); err == nil {
		t.Error("MkdirAll followed a link out of the root")
	}
}

// Paths resolve as the tree's links resolve them, never onto the host, and
// as far as the tree has them.
func TestResolveFollowsTheTreesLinksWithinIt(t *testing.T) {
	tree := t.TempDir()
	for _, d := range []string{"usr/lib/x86_64-linux-gnu", "var", "run"} {
		os.MkdirAll(filepath.Join(tree, d), 0o755)
	}
	for name, target := range map[string]string{
		"lib":        "usr/lib",
		"usr/lib64":  "/usr/lib", // absolute: from the tree's root
		"var/run":    "../run",
		"usr/escape": "../../../../../etc", // ".." stops at the tree's root
		"loop":       "loop",
	} {
		if err := os.Symlink(target, filepath.Join(tree, name)); err != nil {
			t.Fatal(err)
		}
	}
	r := openRoot(t, tree)
	for in, want := range map[string]string{
		"/usr/lib/x86_64-linux-gnu":     "/usr/lib/x86_64-linux-gnu",
		"/lib/x86_64-linux-gnu":         "/usr/lib/x86_64-linux-gnu",
		"/usr/lib64/x86_64-linux-gnu/z": "/usr/lib/x86_64-linux-gnu/z",
		"/var/run/nvidia/socket":        "/run/nvidia/socket",
		"/usr/escape/passwd":            "/etc/passwd",
		"/opt/vendor/lib":               "/opt/vendor/lib",
		"/":                             "/",
	} {
		got, err := Resolve(r, in)
		if err != nil || got != want {
			t.Errorf("Resolve(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := Resolve(r, "/loop/x"); err == nil {
		t.Errorf("a link loop resolved")
	}
}
