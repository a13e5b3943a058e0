package ostree

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/chos-hpc/chos/pkg/loopdev"
)

// mksquashfs builds an image of dir (squashfs-tools; CI installs it).
func mksquashfs(t *testing.T, dir, img string, comp ...string) {
	t.Helper()
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI must have mksquashfs (squashfs-tools)")
		}
		t.Skip("SKIPPING: no mksquashfs (squashfs-tools)")
	}
	args := append([]string{dir, img, "-noappend", "-no-progress", "-quiet"}, comp...)
	if out, err := exec.Command("mksquashfs", args...).CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
}

// imageTree is a small tree whose os-release is reached through a relative
// link, /bin through a link to usr/bin, and an absolute link points at the
// image's own root.
func imageTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"etc", "usr/bin", "usr/lib", "home"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"usr/lib/os-release": "NAME=\"Image Test\"\nPRETTY_NAME=\"Image Test 1\"\n",
		"usr/bin/sh":         "#!fake\n",
		"init":               "",
	}
	for f, content := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"etc/os-release": "../usr/lib/os-release",
		"bin":            "usr/bin",
		"etc/abs":        "/usr/lib",
		"etc/loop":       "loop",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestImageEntriesAreTheTreesTopLevel(t *testing.T) {
	dir := imageTree(t)
	for _, comp := range [][]string{nil, {"-comp", "zstd"}, {"-comp", "xz"}} {
		img := filepath.Join(t.TempDir(), "t.sqsh")
		mksquashfs(t, dir, img, comp...)
		got, err := Entries(img)
		if err != nil {
			t.Fatalf("%v: %v", comp, err)
		}
		want, err := Entries(dir)
		if err != nil {
			t.Fatal(err)
		}
		sort.Slice(got, func(i, j int) bool { return got[i].Name < got[j].Name })
		sort.Slice(want, func(i, j int) bool { return want[i].Name < want[j].Name })
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%v: entries of the image %+v, of the directory %+v", comp, got, want)
		}
	}
}

func TestImageFilesAreReadThroughItsOwnLinks(t *testing.T) {
	dir := imageTree(t)
	img := filepath.Join(t.TempDir(), "t.sqsh")
	mksquashfs(t, dir, img)
	if got := OSName(img); got != "Image Test 1" {
		t.Errorf("OSName of the image: %q", got)
	}
	if got, want := OSName(img), OSName(dir); got != want {
		t.Errorf("OSName: image %q, directory %q", got, want)
	}
	data, err := ReadInTree(img, "/etc/abs/os-release")
	if err != nil || string(data) != "NAME=\"Image Test\"\nPRETTY_NAME=\"Image Test 1\"\n" {
		t.Errorf("through an absolute link: %q, %v", data, err)
	}
	if fi, err := StatInTree(img, "/bin/sh"); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("/bin/sh through bin -> usr/bin: %v, %v", fi, err)
	}
	if fi, err := StatInTree(img, "/../../bin"); err != nil || !fi.IsDir() {
		t.Errorf(".. never leaves the image: %v, %v", fi, err)
	}
	if _, err := StatInTree(img, "/etc/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v, want ErrNotExist", err)
	}
	if _, err := StatInTree(img, "/etc/loop"); err == nil {
		t.Error("a link to itself resolved")
	}
	if _, err := ReadInTree(img, "/usr"); err == nil {
		t.Error("a directory read as a file")
	}
	tree := &Tree{Name: "img", Path: img}
	if err := Problem(tree, ""); err != nil {
		t.Errorf("Problem: %v", err)
	}
	os.Remove(filepath.Join(dir, "usr/bin/sh"))
	mksquashfs(t, dir, img)
	if err := Problem(tree, ""); err == nil {
		t.Error("an image without /bin/sh has no problem")
	}
}

func TestPlainFileIsNoImage(t *testing.T) {
	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, []byte("hello, this is not squashfs at all\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !IsImage(plain) {
		t.Fatal("a plain file is not taken for an image tree")
	}
	if _, err := Entries(plain); !errors.Is(err, loopdev.ErrNotSquashfs) {
		t.Errorf("entries of a plain file: %v, want ErrNotSquashfs", err)
	}
	if err := Problem(&Tree{Name: "p", Path: plain}, ""); !errors.Is(err, loopdev.ErrNotSquashfs) {
		t.Errorf("Problem: %v", err)
	}
	if IsImage(t.TempDir()) {
		t.Error("a directory is taken for an image")
	}
}

func TestImageIDChangesWhenTheImageIsReplaced(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "t.sqsh")
	mksquashfs(t, imageTree(t), img)
	a, err := StatImage(img)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := StatImage(img); b != a {
		t.Fatalf("identity not stable: %v, %v", a, b)
	}
	mksquashfs(t, imageTree(t), img+".new")
	if err := os.Rename(img+".new", img); err != nil {
		t.Fatal(err)
	}
	b, err := StatImage(img)
	if err != nil {
		t.Fatal(err)
	}
	if a.Stamp() == b.Stamp() {
		t.Errorf("a new image renamed over the old one has the same stamp %s", a.Stamp())
	}
	if _, err := StatImage(dir); err == nil {
		t.Error("a directory has an image identity")
	}
}

// A damaged image (its superblock intact) is an error naming it, never a
// crash of the reader.
func TestDamagedImageIsAnError(t *testing.T) {
	img := filepath.Join(t.TempDir(), "t.sqsh")
	mksquashfs(t, imageTree(t), img)
	good, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	for name, damage := range map[string]func([]byte) []byte{
		"overwritten": func(b []byte) []byte {
			for i := 96; i < len(b); i++ {
				b[i] = 0xab
			}
			return b
		},
		"truncated": func(b []byte) []byte { return b[:200] },
		"zeroed":    func(b []byte) []byte { return append(b[:96], make([]byte, len(b)-96)...) },
	} {
		bad := filepath.Join(t.TempDir(), name+".sqsh")
		if err := os.WriteFile(bad, damage(append([]byte{}, good...)), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Entries(bad)
		if err == nil || !errors.Is(err, loopdev.ErrNotSquashfs) || !strings.Contains(err.Error(), bad) {
			t.Errorf("%s image: %v, want ErrNotSquashfs naming %s", name, err, bad)
		}
		if got := OSName(bad); got != "" {
			t.Errorf("%s image: OS %q", name, got)
		}
	}
}

// unsquashfs reads an image with the caller's ids, except for a view root
// builds for everyone: then with root's only, so that no user can stop it
// and forge its output (the red team did, through pidfd_getfd).
func TestImageListingRunsAsTheCallerOrAsRootOnly(t *testing.T) {
	for _, c := range []struct {
		asRoot   bool
		uid, gid uint32
	}{
		{false, uint32(os.Getuid()), uint32(os.Getgid())},
		{true, 0, 0},
	} {
		cmd := (&Image{path: "/x.sqsh", asRoot: c.asRoot}).command([]string{Unsquashfs, "-lln", "/x.sqsh"})
		cred := cmd.SysProcAttr.Credential
		if cred == nil || cred.Uid != c.uid || cred.Gid != c.gid || len(cmd.Env) != 0 {
			t.Errorf("asRoot %v: credential %+v, env %q; want uid %d gid %d and no environment", c.asRoot, cred, cmd.Env, c.uid, c.gid)
		}
		if c.asRoot && (cred.NoSetGroups || cred.Groups == nil || len(cred.Groups) != 0) {
			t.Errorf("as root, the caller's supplementary groups are kept: %+v", cred)
		}
	}
}
