package nsroot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/hostexec"
	"github.com/chos-hpc/chos/pkg/inroot"
	"github.com/chos-hpc/chos/pkg/ldcache"
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
// mount points and links the tree lacks. m.Source is a top-level directory
// of the tree: its parent is the tree's root, in which links resolve.
func overlay(root *os.File, m spec.Mount, libs *hostLibraries) error {
	m.NoFollow = true
	src, err := openSource(root, m, unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("opening overlay source: %w", err)
	}
	defer src.Close()
	if len(m.Provide) > 0 {
		tree, err := openSource(root, spec.Mount{Source: path.Dir(m.Source), InView: m.InView}, unix.O_DIRECTORY)
		if err != nil {
			return fmt.Errorf("opening the tree's root: %w", err)
		}
		defer tree.Close()
		made := make([]string, len(m.Provide))
		for i, pr := range m.Provide {
			if made[i], err = provide(root, tree, m, pr); err != nil {
				return fmt.Errorf("providing %s: %w", pr.Path, err)
			}
		}
		// Then the sonames, where no file of that name was provided.
		for i, pr := range m.Provide {
			if pr.Soname && made[i] != "" {
				lib, ok, err := libs.library(pr.Source)
				if err != nil {
					return err
				}
				if !ok {
					continue // not a library: no soname to link
				}
				if err := linkSoname(root, pr, lib.Soname, made[i]); err != nil {
					return fmt.Errorf("linking the soname of %s: %w", pr.Path, err)
				}
			}
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

// provide makes what pr needs in the overlay's top layer m.Added: an empty
// mount point when the host has pr.Source and the tree lacks pr.Path, or
// the link pr.Link. pr.Path is resolved as the tree's links resolve it;
// one that leads out of m.Target is left alone (the bind that follows
// resolves it in the view). It returns where pr.Path is in m.Added ("" when
// nothing applies), whether it made something there or not.
func provide(root, tree *os.File, m spec.Mount, pr spec.Provision) (string, error) {
	if pr.Path == m.Target || !strings.HasPrefix(pr.Path, m.Target+"/") {
		return "", fmt.Errorf("%s is not below %s", pr.Path, m.Target)
	}
	var fi os.FileInfo
	if pr.Link == "" {
		var err error
		if fi, err = os.Stat(pr.Source); err != nil {
			return "", nil // nothing to bind: the tree's own (or none) shows
		}
	}
	dir, err := inroot.Resolve(tree, path.Dir(pr.Path))
	if err != nil {
		return "", err
	}
	if dir != m.Target && !strings.HasPrefix(dir, m.Target+"/") {
		return "", nil
	}
	final := path.Join(dir, path.Base(pr.Path))
	added := path.Join(m.Added, strings.TrimPrefix(final, m.Target))
	// A link of the tree's (localtime into zoneinfo, resolv.conf into a
	// resolver's directory) is shadowed rather than followed: the bind
	// then lands on the file's own path, never on a file that other links
	// of the tree share, and a dangling link still gets one.
	var st unix.Stat_t
	if pr.Link == "" && unix.Fstatat(int(tree.Fd()), strings.TrimPrefix(final, "/"), &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if pr.Soname {
			h, err := inroot.MkdirAll(root, path.Dir(added), 0o755)
			if err != nil {
				return "", err
			}
			h.Close()
		}
		return added, nil // the tree has it: the bind goes over the tree's
	}
	parent, err := inroot.MkdirAll(root, path.Dir(added), 0o755)
	if err != nil {
		return "", err
	}
	defer parent.Close()
	name := path.Base(added)
	if unix.Fstatat(int(parent.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		return added, nil // made already (the same path named twice)
	}
	switch {
	case pr.Link != "":
		err = unix.Symlinkat(pr.Link, int(parent.Fd()), name)
	case fi.IsDir(): // (a host directory bound below /etc: /etc/slurm)
		err = unix.Mkdirat(int(parent.Fd()), name, 0o755)
	default:
		var fd int
		if fd, err = unix.Openat(int(parent.Fd()), name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644); err == nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		return "", &fs.PathError{Op: "create", Path: added, Err: err}
	}
	return added, nil
}

// linkSoname links soname, the soname of the library pr.Source, to it,
// next to added (where pr.Path is in the overlay's top layer), as ldconfig
// links a library's soname: over what the tree has of that name, unless
// the layer has something of that name already (a library a spec mounts).
func linkSoname(root *os.File, pr spec.Provision, soname, added string) error {
	if !fileName(soname) || soname == path.Base(pr.Path) {
		return nil // not a soname of its own: nothing to link
	}
	parent, err := inroot.Open(root, path.Dir(added), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer parent.Close()
	var st unix.Stat_t
	if unix.Fstatat(int(parent.Fd()), soname, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
		return nil
	}
	return unix.Symlinkat(path.Base(pr.Path), int(parent.Fd()), soname)
}

// hostLibraries reads the host libraries a view's device steps name, each
// once for the view: the overlays link their sonames, the loader cache
// lists them. Root reads a source only once checked lets it.
type hostLibraries struct {
	checked func(spec.Mount) error
	read    map[string]libraryRead
}

type libraryRead struct {
	lib hostexec.Library
	err error
}

func newHostLibraries(checked func(spec.Mount) error) *hostLibraries {
	return &hostLibraries{checked: checked, read: map[string]libraryRead{}}
}

// library is what the loader's cache records of the host library source;
// ok is false for a file that is not one (ldconfig skips it). err is the
// refusal of the source.
func (h *hostLibraries) library(source string) (lib hostexec.Library, ok bool, err error) {
	if err := h.checked(spec.Mount{Source: source}); err != nil {
		return hostexec.Library{}, false, err
	}
	r, seen := h.read[source]
	if !seen {
		r.lib, r.err = hostexec.ReadLibrary(source)
		h.read[source] = r
	}
	return r.lib, r.err == nil, nil
}

// fileName says whether a library's soname can name a file beside it.
func fileName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

// loaderCache writes at m.Target the tree's loader cache with the
// libraries m.Provide names added before any of the same name: each under
// its soname (its file name when it has none), at the path linkSoname
// gives it, with the flags ldconfig would give it. A file that is not a
// library, or of an architecture chos does not know, is left out, as
// ldconfig leaves out what it cannot read. A library with Soname lies on
// the view's own root, where its soname is linked to it here (in a tree
// directory, the overlay links it).
func loaderCache(root *os.File, m spec.Mount, libs *hostLibraries) error {
	tree, err := openSource(root, spec.Mount{Source: m.Source, InView: m.InView}, unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("opening the tree's root: %w", err)
	}
	defer tree.Close()
	c := ldcache.Empty()
	// The tree's file is whoever made the tree's: root opens it without
	// waiting (a FIFO there would hold the builder, and the tree's lock)
	// and reads it only if it is a regular file.
	f, err := inroot.Open(tree, "etc/ld.so.cache", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err == nil {
		if fi, serr := f.Stat(); serr != nil || !fi.Mode().IsRegular() {
			f.Close()
			return fmt.Errorf("the tree's /etc/ld.so.cache is not a regular file")
		}
	}
	switch {
	case err == nil:
		data, rerr := io.ReadAll(io.LimitReader(f, maxLoaderCache))
		f.Close()
		if rerr == nil {
			c, rerr = ldcache.Parse(data)
		}
		if rerr != nil {
			return fmt.Errorf("reading the tree's /etc/ld.so.cache: %w", rerr)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("opening the tree's /etc/ld.so.cache: %w", err)
	}
	for _, pr := range m.Provide {
		lib, ok, err := libs.library(pr.Source)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		flags, ok := ldcache.Flags(lib.Machine, lib.Is64, lib.Flags)
		if !ok {
			continue
		}
		name := lib.Soname
		if !fileName(name) {
			name = path.Base(pr.Path)
		}
		at := path.Join(path.Dir(pr.Path), name)
		if pr.Soname && name != path.Base(pr.Path) && !slices.ContainsFunc(m.Provide, func(o spec.Provision) bool { return o.Path == at }) {
			if err := symlink(root, spec.Mount{Source: path.Base(pr.Path), Target: at}); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("linking %s: %w", at, err)
			}
		}
		c.Add(ldcache.Entry{Flags: flags, Name: name, Path: at})
	}
	return addFile(root, spec.Mount{Target: m.Target, Source: string(c.Bytes())})
}

// maxLoaderCache bounds the tree's loader cache read (bytes): a few
// hundred kilobytes on a full distribution.
const maxLoaderCache = 64 << 20
