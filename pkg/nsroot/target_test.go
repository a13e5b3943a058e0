package nsroot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// needRoot stops a test that needs root (directories owned by root,
// limits raised) unless it runs as root: a failure in CI, a skip elsewhere.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI runs the unit tests as root")
	}
	t.Skip("SKIPPING: needs root (directories owned by root)")
}

// A view made of plain directories: a root-only part (the view's own, a
// tree's) and a directory anyone may write (a bind of /tmp or /scratch),
// with links a user made there.
func targetView(t *testing.T) (root *os.File, dir string) {
	t.Helper()
	dir = t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"etc", "usr/lib", "scratch/real", "var"} {
		must(os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	must(os.Chmod(filepath.Join(dir, "scratch"), 0o1777))
	must(os.Chown(filepath.Join(dir, "scratch", "real"), 65534, 65534)) // a user's own directory
	must(os.WriteFile(filepath.Join(dir, "etc", "passwd"), nil, 0o644))
	for link, to := range map[string]string{
		"lib":              "usr/lib",     // a tree's own link, in a root-only directory
		"var/run":          "/etc",        // absolute: resolves in the view
		"etc/localtime":    "/usr/lib/tz", // a link as the target itself
		"scratch/x":        "/etc",        // a user's link in a writable directory
		"scratch/passwd":   "/etc/passwd",
		"scratch/real/up":  "../..", // (made by root here, but in the user's directory)
		"scratch/loop":     "loop",
		"usr/lib/escape":   "../../../../../..",
		"usr/lib/loop-one": "loop-two",
		"usr/lib/loop-two": "loop-one",
	} {
		must(os.Symlink(to, filepath.Join(dir, link)))
	}
	f, err := os.Open(dir)
	must(err)
	t.Cleanup(func() { f.Close() })
	return f, dir
}

func TestResolveTargetFollowsOnlyLinksNoUserMade(t *testing.T) {
	needRoot(t)
	root, dir := targetView(t)
	cases := []struct {
		target  string
		want    string   // the path found, relative to dir ("" if none)
		missing []string // what is missing below the deepest directory
		err     string   // a part of the error, if one
	}{
		{target: "/etc/passwd", want: "etc/passwd"},
		{target: "/lib/new", missing: []string{"new"}},
		{target: "/var/run/passwd", want: "etc/passwd"},
		{target: "/usr/lib/escape/etc/passwd", want: "etc/passwd"},
		{target: "/scratch/real/mnt", missing: []string{"mnt"}},
		{target: "/nonexistent/a/b", missing: []string{"nonexistent", "a", "b"}},
		{target: "/etc/localtime", err: "etc/localtime is a symbolic link"},
		{target: "/scratch/passwd", err: "scratch/passwd is a symbolic link"},
		{target: "/scratch/x/passwd", err: "in a directory others than root may write"},
		{target: "/scratch/real/up/etc/passwd", err: "in a directory others than root may write"},
		{target: "/usr/lib/loop-one/x", err: "too many levels of symbolic links"},
		{target: "/etc/passwd/x", err: "not a directory"},
	}
	for _, c := range cases {
		t.Run(c.target, func(t *testing.T) {
			parent, name, found, missing, err := resolveTarget(root, c.target)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("resolveTarget: %v, want an error saying %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer parent.Close()
			if found != nil {
				defer found.Close()
			}
			if c.want != "" {
				var got, want unix.Stat_t
				if found == nil || unix.Fstat(int(found.Fd()), &got) != nil || unix.Lstat(filepath.Join(dir, c.want), &want) != nil ||
					got.Ino != want.Ino || filepath.Base(c.want) != name {
					t.Errorf("found %v named %q, want %s", found, name, c.want)
				}
			}
			if strings.Join(missing, "/") != strings.Join(c.missing, "/") {
				t.Errorf("missing %q, want %q", missing, c.missing)
			}
		})
	}
	// Control: a user's link is one, and leads where the checks above
	// say chos does not go.
	if data, err := os.ReadFile(filepath.Join(dir, "scratch", "x", "passwd")); err != nil || data == nil {
		t.Fatalf("control: the link in the writable directory does not lead to etc/passwd: %v", err)
	}
	if _, _, _, _, err := resolveTarget(root, "/scratch/x/passwd"); !errors.Is(err, errUserLink) {
		t.Errorf("a user's link: %v, want errUserLink", err)
	}
}
