package loopdev

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// mksquashfs builds a squashfs image of a small directory and returns its
// path. It needs squashfs-tools, not root.
func mksquashfs(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("mksquashfs")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("mksquashfs not found: .ci/run must install squashfs-tools")
		}
		t.Skip("mksquashfs not found (apt-get install squashfs-tools)")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "etc", "os-release"), []byte("ID=test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "img.sqsh")
	if out, err := exec.Command(bin, src, img, "-noappend", "-no-progress", "-quiet").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	return img
}

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func checkSquashfsPath(t *testing.T, path string) error {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return CheckSquashfs(f)
}

func TestCheckSquashfsAcceptsMksquashfsImage(t *testing.T) {
	if err := checkSquashfsPath(t, mksquashfs(t)); err != nil {
		t.Fatalf("a mksquashfs image is refused: %v", err)
	}
}

func TestCheckSquashfsRefusesOtherFiles(t *testing.T) {
	img, err := os.ReadFile(mksquashfs(t))
	if err != nil {
		t.Fatal(err)
	}
	version3 := append([]byte(nil), img...)
	version3[squashfsMajorOffset] = 3
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"plain file", []byte("#!/bin/sh\necho this is not an image, but it is long enough\n"), `starts with "#!/b"`},
		{"empty file", nil, "0 bytes"},
		{"magic only", []byte("hsqs"), "4 bytes"},
		{"big-endian magic", append([]byte("sqsh"), img[4:]...), `starts with "sqsh"`},
		{"version 3", version3, "version 3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := checkSquashfsPath(t, writeFile(t, c.data))
			if !errors.Is(err, ErrNotSquashfs) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("CheckSquashfs: %v; want ErrNotSquashfs saying %q", err, c.want)
			}
		})
	}
}

func TestCheckSquashfsKeepsOffset(t *testing.T) {
	f, err := os.Open(mksquashfs(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(7, 0); err != nil {
		t.Fatal(err)
	}
	if err := CheckSquashfs(f); err != nil {
		t.Fatal(err)
	}
	if off, _ := f.Seek(0, 1); off != 7 {
		t.Errorf("offset %d after CheckSquashfs, want 7", off)
	}
}

func TestHasFilesystem(t *testing.T) {
	procFilesystems := "nodev\tsysfs\nnodev\ttmpfs\n\text4\n\tsquashfs\nnodev\tfuse\n"
	path := writeFile(t, []byte(procFilesystems))
	for fs, want := range map[string]bool{"squashfs": true, "ext4": true, "tmpfs": true, "nodev": false, "squash": false, "xfs": false} {
		got, err := hasFilesystem(path, fs)
		if err != nil || got != want {
			t.Errorf("hasFilesystem(%q) = %v, %v; want %v", fs, got, err, want)
		}
	}
	if _, err := hasFilesystem(filepath.Join(t.TempDir(), "missing"), "squashfs"); err == nil {
		t.Error("a missing file is no error")
	}
}

func TestSameImageOnlyMatchesWholeFileReadOnlyAutoclear(t *testing.T) {
	st := &unix.Stat_t{Dev: 0x803, Ino: 4242}
	ours := unix.LoopInfo64{Device: 0x803, Inode: 4242, Flags: flags}
	cases := []struct {
		name string
		edit func(*unix.LoopInfo64)
		want bool
	}{
		{"as Attach sets it up", func(*unix.LoopInfo64) {}, true},
		{"plus partscan", func(i *unix.LoopInfo64) { i.Flags |= unix.LO_FLAGS_PARTSCAN }, true},
		{"other inode", func(i *unix.LoopInfo64) { i.Inode++ }, false},
		{"same inode on another file system", func(i *unix.LoopInfo64) { i.Device++ }, false},
		{"writable", func(i *unix.LoopInfo64) { i.Flags &^= unix.LO_FLAGS_READ_ONLY }, false},
		{"no autoclear", func(i *unix.LoopInfo64) { i.Flags &^= unix.LO_FLAGS_AUTOCLEAR }, false},
		{"offset", func(i *unix.LoopInfo64) { i.Offset = 4096 }, false},
		{"size limit", func(i *unix.LoopInfo64) { i.Sizelimit = 4096 }, false},
		{"encrypted", func(i *unix.LoopInfo64) { i.Encrypt_type = 1 }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info := ours
			c.edit(&info)
			if got := sameImage(&info, st); got != c.want {
				t.Errorf("sameImage = %v, want %v", got, c.want)
			}
		})
	}
}

func TestAttachRefusesNonRegularFile(t *testing.T) {
	dir, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	for name, attach := range map[string]func(*os.File) (*os.File, error){"Attach": Attach, "AttachShared": AttachShared} {
		if dev, err := attach(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			if dev != nil {
				dev.Close()
			}
			t.Errorf("%s of a directory: %v; want an error saying it is not a regular file", name, err)
		}
	}
}
