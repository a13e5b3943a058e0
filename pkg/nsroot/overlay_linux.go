package nsroot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/inroot"
	"github.com/chos-hpc/chos/pkg/spec"
)

// errNoOverlay: the kernel has no overlay file system here (or refuses it
// in this namespace); the tree's directory is bound as it is instead.
var errNoOverlay = errors.New("overlay file system unavailable")

// addFile writes m.Source as the content of a new file m.Target on the
// view's tmpfs.
func addFile(root *os.File, m spec.Mount) error {
	if err := onViewRoot(root, m.Target); err != nil {
		return err
	}
	parent, err := inroot.MkdirAll(root, path.Dir(m.Target), 0o755)
	if err != nil {
		return err
	}
	defer parent.Close()
	dir, err := inroot.Open(root, path.Dir(m.Target), unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer dir.Close()
	fd, err := unix.Openat(int(dir.Fd()), path.Base(m.Target), unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return &fs.PathError{Op: "create", Path: m.Target, Err: err}
	}
	f := os.NewFile(uintptr(fd), m.Target)
	defer f.Close()
	if _, err := f.WriteString(m.Source); err != nil {
		return fmt.Errorf("writing %s: %w", m.Target, err)
	}
	return nil
}

// overlay mounts m.Added (a directory of the view) on top of m.Source (the
// tree's directory) at m.Target, read-only, after making in m.Added the
// mount points the tree lacks.
func overlay(root *os.File, m spec.Mount) error {
	m.NoFollow = true
	src, err := openSource(root, m, unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("opening overlay source: %w", err)
	}
	defer src.Close()
	for _, pr := range m.Provide {
		if err := provide(root, src, m, pr); err != nil {
			return err
		}
	}
	added, err := inroot.Open(root, m.Added, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("opening %s: %w", m.Added, err)
	}
	defer added.Close()
	dst, err := mountpoint(root, m.Target, true)
	if err != nil {
		return err
	}
	defer dst.Close()
	flags := uintptr(unix.MS_RDONLY)
	if m.NoSuid {
		flags |= unix.MS_NOSUID
	}
	if m.NoDev {
		flags |= unix.MS_NODEV
	}
	// Both layers by descriptor: what was checked is what is stacked.
	opts := "lowerdir=" + fdPath(added) + ":" + fdPath(src)
	err = unix.Mount("chos-overlay", fdPath(dst.point), "overlay", flags, opts)
	switch {
	case errors.Is(err, unix.ENODEV):
		return errNoOverlay
	case err != nil:
		return fmt.Errorf("mounting an overlay of %s and %s: %w", m.Added, m.Source, err)
	}
	return nil
}

// provide makes an empty mount point for pr in the overlay's top layer
// when the host has pr.Source and the tree does not have pr.Path.
func provide(root, src *os.File, m spec.Mount, pr spec.Provision) error {
	rel := strings.TrimPrefix(strings.TrimPrefix(pr.Path, m.Target), "/")
	if rel == "" || rel == pr.Path {
		return fmt.Errorf("%s is not below %s", pr.Path, m.Target)
	}
	fi, err := os.Stat(pr.Source)
	if err != nil {
		return nil // nothing to bind: the tree's own (or none) shows
	}
	// A link of the tree's (localtime into zoneinfo, resolv.conf into a
	// resolver's directory) is shadowed rather than followed: the bind
	// then lands on the identity file's own path, never on a file that
	// other links of the tree share, and a dangling link still gets one.
	var st unix.Stat_t
	if err := unix.Fstatat(int(src.Fd()), rel, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return nil // the tree has it: the bind goes over the tree's
	}
	if h, err := inroot.Open(root, path.Join(m.Added, rel), unix.O_PATH); err == nil {
		h.Close()
		return nil
	}
	if fi.IsDir() { // (a host directory bound below /etc: /etc/slurm)
		h, err := inroot.MkdirAll(root, path.Join(m.Added, rel), 0o755)
		if err == nil {
			h.Close()
		}
		return err
	}
	return addFile(root, spec.Mount{Target: path.Join(m.Added, rel)})
}
