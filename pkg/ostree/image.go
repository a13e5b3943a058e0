package ostree

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"

	"github.com/chos-hpc/chos/pkg/loopdev"
)

// An image tree is a tree whose path names a squashfs image file rather
// than a directory (Shifter, enroot, Charliecloud and Apptainer ship OS
// trees so: one file on a parallel file system instead of millions). Its
// files are read here without mounting it, through go-diskfs's squashfs
// reader; a launch mounts it (package nsroot).

// IsImage says whether a tree's path (as this process reaches it) names an
// image file: anything but a directory that exists is taken for one, so
// that a plain file is refused as "not a squashfs image" rather than as a
// missing directory.
func IsImage(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// ImageID identifies the file an image path names now: a new file renamed
// over it, or any change to it in place (which changes its ctime), gives
// another ID. Times in nanoseconds since the epoch.
type ImageID struct {
	Path     string
	Dev, Ino uint64
	Size     int64
	Mtime    int64
	Ctime    int64
}

// StatImage returns the identity of the image file p (links followed).
func StatImage(p string) (ImageID, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		return ImageID{}, fmt.Errorf("image %s: %w", p, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return ImageID{}, fmt.Errorf("image %s is not a regular file", p)
	}
	return ImageID{Path: p, Dev: st.Dev, Ino: st.Ino, Size: st.Size,
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}, nil
}

// Stamp is the identity as one string, for a cache key.
func (id ImageID) Stamp() string {
	return fmt.Sprintf("image %s %d:%d size %d mtime %d ctime %d", id.Path, id.Dev, id.Ino, id.Size, id.Mtime, id.Ctime)
}

// Image is an image tree opened for reading without mounting.
type Image struct {
	f  *os.File
	fs *squashfs.FileSystem
}

// maxImageLinks bounds the symbolic links followed in one lookup (ELOOP).
const maxImageLinks = 40

// OpenImage opens the squashfs image p. Errors wrap loopdev.ErrNotSquashfs
// for a file that is not one, or say what could not be read.
func OpenImage(p string) (*Image, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("opening image: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("image %s is not a regular file", p)
	}
	if err == nil {
		err = loopdev.CheckSquashfs(f)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	var sq *squashfs.FileSystem
	err = safely(p, func() (err error) {
		sq, err = squashfs.Read(file.New(f, true), fi.Size(), 0, 0)
		return err
	})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s cannot be read: %v", loopdev.ErrNotSquashfs, p, err)
	}
	return &Image{f: f, fs: sq}, nil
}

// Close releases the image file.
func (im *Image) Close() error { return im.f.Close() }

// safely runs fn, turning a panic of the reader on a damaged image into
// an error naming the image.
func safely(image string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %s cannot be read: %v", loopdev.ErrNotSquashfs, image, r)
		}
	}()
	return fn()
}

// Entries lists the top level of the image, as Entries lists a directory.
func (im *Image) Entries() (entries []Entry, err error) {
	err = safely(im.f.Name(), func() (err error) { entries, err = im.entries(); return err })
	return entries, err
}

func (im *Image) entries() ([]Entry, error) {
	des, err := im.fs.ReadDir(".")
	if err != nil {
		return nil, fmt.Errorf("%w: listing %s: %v", loopdev.ErrNotSquashfs, im.f.Name(), err)
	}
	out := make([]Entry, 0, len(des))
	for _, de := range des {
		info, err := de.Info()
		if err != nil {
			return nil, fmt.Errorf("listing image %s: %v", im.f.Name(), err)
		}
		e := Entry{Name: de.Name()}
		switch {
		case info.Mode().IsDir():
			e.Kind = Dir
		case info.Mode().IsRegular():
			e.Kind = File
		case info.Mode()&fs.ModeSymlink != 0:
			e.Kind = Symlink
			if e.Target = linkTarget(info); e.Target == "" {
				return nil, fmt.Errorf("reading link %s in image %s: empty target", de.Name(), im.f.Name())
			}
		default:
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// ReadFile reads a small file inside the image (at most 1 MiB), links
// resolved within the image as a process inside it would see them.
func (im *Image) ReadFile(p string) (data []byte, err error) {
	err = safely(im.f.Name(), func() (err error) { data, err = im.readFile(p); return err })
	return data, err
}

func (im *Image) readFile(p string) ([]byte, error) {
	rel, info, err := im.resolve(p)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: p, Err: errors.New("not a regular file")}
	}
	f, err := im.fs.Open(rel)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<20))
}

// Stat describes a path inside the image, links followed within it.
func (im *Image) Stat(p string) (info fs.FileInfo, err error) {
	err = safely(im.f.Name(), func() (err error) { _, info, err = im.resolve(p); return err })
	return info, err
}

// resolve follows p inside the image: absolute links restart at the
// image's root, ".." never leaves it. It returns the resolved path (in
// go-diskfs's form: relative, "." for the root) and what it names. A
// missing component is fs.ErrNotExist.
func (im *Image) resolve(p string) (string, fs.FileInfo, error) {
	pending := strings.Split(p, "/")
	cur := "." // resolved so far: no links left in it
	var info fs.FileInfo
	links := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			info = nil
			continue
		}
		next, err := im.child(cur, c)
		if err != nil {
			return "", nil, &fs.PathError{Op: "stat", Path: p, Err: err}
		}
		if next.Mode()&fs.ModeSymlink != 0 {
			if links++; links > maxImageLinks {
				return "", nil, &fs.PathError{Op: "stat", Path: p, Err: syscall.ELOOP}
			}
			target := linkTarget(next)
			if strings.HasPrefix(target, "/") {
				cur = "."
			}
			pending = append(strings.Split(target, "/"), pending...)
			info = nil
			continue
		}
		cur = path.Join(cur, c)
		info = next
	}
	if info == nil {
		st, err := im.fs.Stat(cur)
		if err != nil {
			return "", nil, &fs.PathError{Op: "stat", Path: p, Err: err}
		}
		info = st
	}
	return cur, info, nil
}

// child finds the entry name in the image's directory dir.
func (im *Image) child(dir, name string) (fs.FileInfo, error) {
	des, err := im.fs.ReadDir(dir)
	if err != nil {
		// go-diskfs says "not a directory" and "not found" in words only.
		if st, serr := im.fs.Stat(dir); serr == nil && !st.IsDir() {
			return nil, syscall.ENOTDIR
		}
		return nil, err
	}
	for _, de := range des {
		if de.Name() == name {
			return de.Info()
		}
	}
	return nil, fs.ErrNotExist
}

func linkTarget(info fs.FileInfo) string {
	if st, ok := info.Sys().(*squashfs.StatT); ok {
		return st.LinkTarget
	}
	return ""
}

// withImage runs fn on the image p, opened for the length of the call.
func withImage(p string, fn func(*Image) error) error {
	im, err := OpenImage(p)
	if err != nil {
		return err
	}
	defer im.Close()
	return fn(im)
}

// ImageEntries lists the top level of the image p.
func ImageEntries(p string) (entries []Entry, err error) {
	err = withImage(p, func(im *Image) error {
		entries, err = im.Entries()
		return err
	})
	return entries, err
}
