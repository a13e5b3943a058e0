package nsroot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/spec"
)

// maxIdentityFile bounds what is read of a view's passwd or group file.
const maxIdentityFile = 64 << 20

// applyIdentity adds id's lines to the view's /etc/passwd and /etc/group.
// The calling thread must be in a mount namespace of its own whose root is
// the view (a private view, or a copy of a cached one): the files are
// written on a small tmpfs mounted on spec.LayerDir and bound over the
// view's, which stay as they are for everyone else.
func applyIdentity(id *spec.Layer) error {
	if id == nil || len(id.Passwd)+len(id.Group) == 0 {
		return nil
	}
	if err := unix.Mount("chos-identity", spec.LayerDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0755,size=64m"); err != nil {
		return fmt.Errorf("mounting a tmpfs on %s: %w", spec.LayerDir, err)
	}
	for _, f := range []struct {
		name  string
		lines []string
	}{{"passwd", id.Passwd}, {"group", id.Group}} {
		if len(f.lines) == 0 {
			continue
		}
		if err := extend("/etc/"+f.name, filepath.Join(spec.LayerDir, f.name), f.lines); err != nil {
			return err
		}
	}
	if err := unix.Mount("", spec.LayerDir, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("making %s read-only: %w", spec.LayerDir, err)
	}
	return nil
}

// extend writes file's content plus lines to copy, and binds copy over file.
// Root does this inside the view: file is reached without following any
// symbolic link (a link could lead root's read and bind to a file of the
// caller's choosing), and the bind goes on the very file read.
func extend(file, copyPath string, lines []string) error {
	var base []byte
	var target string
	// (without waiting: a tree's own file, where identity = leaves it, may
	// be a FIFO, which would hold root's builder and the tree's lock)
	fd, err := unix.Openat2(unix.AT_FDCWD, file, &unix.OpenHow{
		Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY, Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS})
	switch {
	case err == nil:
		f := os.NewFile(uintptr(fd), file)
		defer f.Close()
		if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("the view's %s is not a regular file: chos adds your entry to a plain file only", file)
		}
		if base, err = io.ReadAll(io.LimitReader(f, maxIdentityFile)); err != nil {
			return fmt.Errorf("reading the view's %s: %w", file, err)
		}
		target = fdPath(f) // the bind below: on this very file
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("the view has no %s to add your entry to (identity = in the tree's settings?)", file)
	case errors.Is(err, unix.ELOOP):
		return fmt.Errorf("the view's %s is reached through a symbolic link: chos adds your entry to a plain file only", file)
	default:
		return fmt.Errorf("reading the view's %s: %w", file, err)
	}
	var b bytes.Buffer
	b.Write(base)
	if len(base) > 0 && base[len(base)-1] != '\n' {
		b.WriteByte('\n')
	}
	b.WriteString(strings.Join(lines, "\n") + "\n")
	if err := os.WriteFile(copyPath, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", copyPath, err)
	}
	if err := os.Chmod(copyPath, 0o644); err != nil {
		return err
	}
	if err := unix.Mount(copyPath, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("binding %s on %s: %w", copyPath, file, err)
	}
	if err := unix.Mount("", file, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("making %s read-only: %w", file, err)
	}
	return nil
}

// layerDir keeps the cached identity layers, below the cache directory.
func layerDir(c *spec.Cache) string { return filepath.Join(c.Dir, "id") }

// layerPrefix starts the names of every layer of c's view for uid.
func layerPrefix(c *spec.Cache, uid int) string {
	return spec.Stem(c.Tree) + "." + c.FileKey() + "." + strconv.Itoa(uid) + "."
}

// layerFile is the namespace file of id's layer on c's view.
func layerFile(c *spec.Cache, id *spec.Layer) string {
	return filepath.Join(layerDir(c), layerPrefix(c, id.UID)+id.Key+".mnt")
}

// dropLayers unmounts and removes the layers whose names start with
// prefix, but keep.
func dropLayers(dir, prefix, keep string) {
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		p := filepath.Join(dir, de.Name())
		if strings.HasPrefix(de.Name(), prefix) && strings.HasSuffix(de.Name(), ".mnt") && p != keep {
			dropFile(p)
		}
	}
}
