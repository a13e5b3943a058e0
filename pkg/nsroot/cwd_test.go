package nsroot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// deepDir makes a directory below base whose path is longer than PATH_MAX,
// made in pieces (mkdir itself refuses such a path), and returns it.
func deepDir(t *testing.T, base string, length int) string {
	t.Helper()
	dir, err := os.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	path := base
	name := strings.Repeat("d", 200)
	for len(path) < length {
		if err := unix.Mkdirat(int(dir.Fd()), name, 0o755); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		dir.Close()
		dir = os.NewFile(uintptr(fd), name)
		path += "/" + name
	}
	dir.Close()
	return path
}

// A working directory longer than PATH_MAX is named, entered and checked
// by device and inode, where getcwd(2) and chdir(2) give up.
func TestLongWorkingDirectory(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	long := deepDir(t, base, 4500)
	here, err := os.Open(".")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { unix.Fchdir(int(here.Fd())); here.Close() }()

	// control: the system calls alone fail
	if err := unix.Chdir(long); !errors.Is(err, unix.ENAMETOOLONG) {
		t.Fatalf("chdir(%d bytes) = %v, want ENAMETOOLONG: the test proves nothing", len(long), err)
	}
	if err := chdir(long); err != nil {
		t.Fatalf("chdir: %v", err)
	}
	if _, err := unix.Getwd(); err == nil {
		t.Fatal("getcwd works in a directory longer than PATH_MAX: the test proves nothing")
	}
	got, err := Getwd(nil)
	if err != nil || got != long {
		t.Fatalf("Getwd = %d bytes %v, want %d bytes", len(got), err, len(long))
	}
	id, err := CwdID(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := isDir(long, id); err != nil {
		t.Errorf("isDir(the working directory) = %v", err)
	}
	var other *errOtherDir
	if err := isDir(filepath.Dir(long), id); !errors.As(err, &other) {
		t.Errorf("isDir(its parent) = %v, want another directory", err)
	}
	if _, err := openDir(long + "/missing/" + strings.Repeat("x", 300)); !errors.Is(err, unix.ENOENT) {
		t.Errorf("openDir(missing) = %v, want ENOENT", err)
	}
	if err := unix.Chdir("/"); err != nil {
		t.Fatal(err)
	}
	if got, err := Getwd(nil); got != "/" || err != nil {
		t.Errorf("Getwd in / = %q, %v", got, err)
	}
}
