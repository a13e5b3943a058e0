package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/loopdev"
)

// squashCompression is what squashImage compresses with: zstd at level 1
// built the Debian tree's image in 1-2 s, 67 MB (gzip: 15 s, 62 MB; lz4:
// 2 s, 87 MB) on 2 cores. Debian 12's kernel reads it (CONFIG_SQUASHFS_ZSTD).
var squashCompression = []string{"-comp", "zstd", "-Xcompression-level", "1"}

var imagesDir = buildOnce(func() (string, error) {
	dir := filepath.Join(h.base, "images")
	err := os.Mkdir(dir, 0o755)
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		return "", fmt.Errorf("making %s: %w", dir, err)
	}
	return dir, nil
})

// squashImage builds a squashfs image of srcDir with mksquashfs (ownership
// and modes as in srcDir) and returns its path: a file of root's, 0644, in
// a root-owned 0755 directory under h.base, removed after the test.
func squashImage(t testing.TB, srcDir string) string {
	t.Helper()
	img := filepath.Join(imagesDir.get(t), unique(t)+".sqsh")
	args := append([]string{srcDir, img, "-noappend", "-no-progress", "-quiet"}, squashCompression...)
	cmd := exec.Command("mksquashfs", args...)
	cmd.Dir, cmd.Env = "/", rootEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t.Cleanup(func() { os.Remove(img) })
	r, err := runWithTimeout(cmd, 10*time.Minute, nil)
	if err != nil || r.status != 0 {
		t.Fatalf("mksquashfs (package squashfs-tools) of %s: %v\n%s", srcDir, err, r)
	}
	if err := os.Chmod(img, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkRootOwnedPath(img); err != nil {
		t.Fatal(err)
	}
	return img
}

// squashImage makes images of the busybox and the Debian tree that the
// kernel mounts and that show the tree they were made of (with its
// timings and sizes in the log, for docs).
func TestSquashImageOfTreesMounts(t *testing.T) {
	needLoopSquashfs(t)
	cases := []struct {
		name, tree, file, wantPrefix string
	}{
		{"busybox", h.trees["one"], "etc/os-release", "NAME=\"" + h.osNames["one"] + "\"\nID=" + h.osIDs["one"] + "\n"},
		{"debian", debianTree(t), "etc/debian_version", "11."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			img := squashImage(t, c.tree)
			took := time.Since(start)
			fi, err := os.Stat(img)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("image of %s: %.1f MB in %v", c.tree, float64(fi.Size())/1e6, took.Round(10*time.Millisecond))

			dev, err := loopdev.Attach(openImage(t, img))
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			mnt := mountDir(t)
			var data []byte
			err = inMountNamespace(func() error {
				if err := mountSquashfs(dev.Name(), mnt); err != nil {
					return err
				}
				defer unix.Unmount(mnt, 0)
				var err error
				data, err = os.ReadFile(filepath.Join(mnt, c.file))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(data), c.wantPrefix) {
				t.Errorf("%s in the image of %s: %q, want %q...", c.file, c.tree, data, c.wantPrefix)
			}
			want, _ := os.ReadFile(filepath.Join(c.tree, c.file))
			if string(data) != string(want) {
				t.Errorf("%s differs between the image (%q) and the tree (%q)", c.file, data, want)
			}
		})
	}
}
