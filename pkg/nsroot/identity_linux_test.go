package nsroot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Where a tree's own /etc/passwd is the view's (identity = leaves it out),
// root's builder reads the tree maker's file: a FIFO there must not hold
// it (and the tree's lock), nor be read. Control: a plain file is read; its
// copy then goes where none can be written, so nothing is ever bound.
func TestExtendReadsOnlyARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo, plain := filepath.Join(dir, "fifo"), filepath.Join(dir, "plain")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, []byte("root:x:0:0::/root:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nowhere := filepath.Join(dir, "missing", "copy") // (writing it fails before any mount)
	for _, c := range []struct {
		file, want string
	}{
		{fifo, "not a regular file"},
		{plain, "writing " + nowhere}, // control
	} {
		done := make(chan error, 1)
		go func() { done <- extend(c.file, nowhere, []string{"u:x:5000:5000::/home/u:/bin/sh"}) }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("extend(%s): %v, want an error saying %q", c.file, err, c.want)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("extend(%s) still waits after 3 s", c.file)
		}
	}
}
