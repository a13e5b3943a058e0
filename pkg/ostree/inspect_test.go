package ostree

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A file a launch reads inside a tree (/etc/chos.conf, /etc/passwd,
// /etc/os-release) is the tree maker's: a FIFO there must not hold the
// launch, nor anything but a regular file be read. Control: a regular file
// is read.
func TestReadInTreeReadsOnlyRegularFiles(t *testing.T) {
	tree := t.TempDir()
	if err := os.MkdirAll(filepath.Join(tree, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "etc/os-release"), []byte("ID=x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(tree, "etc/chos.conf"), 0o644); err != nil {
		t.Fatal(err)
	}
	if data, err := ReadInTree(tree, "/etc/os-release"); err != nil || string(data) != "ID=x\n" {
		t.Fatalf("control: reading a regular file: %q, %v", data, err)
	}
	for _, p := range []string{"/etc/chos.conf", "/etc"} {
		done := make(chan error, 1)
		go func() { _, err := ReadInTree(tree, p); done <- err }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("ReadInTree(%s) read what is no regular file", p)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("ReadInTree(%s) still waits after 3 s", p)
		}
	}
}

// TreeStamps, from one stat, says what Stamp and StatImage say apart.
func TestTreeStampsAreStampAndImageStamp(t *testing.T) {
	dir := t.TempDir()
	image := filepath.Join(dir, "tree.sqfs")
	if err := os.WriteFile(image, []byte("hsqs"), 0o644); err != nil {
		t.Fatal(err)
	}
	id, err := StatImage(image)
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "gone")
	for _, tc := range []struct {
		path string
		want []string
	}{
		{dir, []string{Stamp(dir)}},
		{image, []string{Stamp(image), id.Stamp()}},
		{missing, []string{Stamp(missing)}},
	} {
		if got := TreeStamps(tc.path); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("TreeStamps(%s) = %q, want %q", tc.path, got, tc.want)
		}
	}
}
