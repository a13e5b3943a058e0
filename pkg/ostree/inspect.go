package ostree

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/inroot"
	"github.com/chos-hpc/chos/pkg/spec"
)

// OpenInTree opens a path inside a tree the way a process inside it would
// see it: symbolic links (absolute ones included) resolve within the tree,
// never onto the host.
func OpenInTree(root, p string) (*os.File, error) {
	return inroot.OpenPath(root, p, os.O_RDONLY)
}

// ReadInTree reads a small file inside a tree (at most 1 MiB); root may
// name an image tree. The file must be a regular one, opened without
// waiting: a tree's maker could put a FIFO there, which would hold every
// launch that reads it.
func ReadInTree(root, p string) ([]byte, error) {
	if IsImage(root) {
		var data []byte
		err := withImage(root, func(im *Image) (err error) { data, err = im.ReadFile(p); return err })
		return data, err
	}
	f, err := inroot.OpenPath(root, p, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: p, Err: errors.New("not a regular file")}
	}
	return io.ReadAll(io.LimitReader(f, 1<<20))
}

// StatInTree stats a path inside a tree, following links within it; root
// may name an image tree.
func StatInTree(root, p string) (fs.FileInfo, error) {
	if IsImage(root) {
		var fi fs.FileInfo
		err := withImage(root, func(im *Image) (err error) { fi, err = im.Stat(p); return err })
		return fi, err
	}
	h, err := inroot.OpenPath(root, p, unix.O_PATH)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return h.Stat()
}

// OSName returns a one-line description of the OS a tree (directory or
// image) holds, from os-release, redhat-release or debian_version, or "" if
// none says.
func OSName(root string) string {
	if IsImage(root) {
		var name string
		withImage(root, func(im *Image) error { name = osName(im.ReadFile); return nil })
		return name
	}
	return osName(func(p string) ([]byte, error) { return ReadInTree(root, p) })
}

func osName(read func(p string) ([]byte, error)) string {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if data, err := read(p); err == nil {
			if name := osReleaseName(string(data)); name != "" {
				return name
			}
		}
	}
	if data, err := read("/etc/redhat-release"); err == nil {
		return strings.TrimSpace(firstLine(string(data)))
	}
	if data, err := read("/etc/debian_version"); err == nil {
		return "Debian " + strings.TrimSpace(firstLine(string(data)))
	}
	return ""
}

func osReleaseName(content string) string {
	vals := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(content))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if ok {
			vals[k] = strings.Trim(v, `"'`)
		}
	}
	if v := vals["PRETTY_NAME"]; v != "" {
		return v
	}
	return strings.TrimSpace(vals["NAME"] + " " + vals["VERSION_ID"])
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

// Problem returns why a tree cannot be used, or nil (the error does not
// name the tree: callers do): its path must be a
// directory, or a squashfs image, with a /bin/sh (the least a login shell
// or `sh -c` job needs). hostPrefix is where the host's root is seen from
// here ("" on the host).
func Problem(t *Tree, hostPrefix string) error {
	if t.Host {
		return nil
	}
	root := filepath.Join("/", hostPrefix, t.Path)
	fi, err := os.Stat(root)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		err := withImage(root, func(im *Image) error {
			_, err := im.Stat("/bin/sh")
			return err
		})
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("no /bin/sh in image %s", t.Path)
		case err != nil:
			return err
		}
		return nil
	}
	if _, err := StatInTree(root, "/bin/sh"); err != nil {
		return fmt.Errorf("no /bin/sh in %s: %w", t.Path, errors.Unwrap(err))
	}
	return nil
}

// Entries lists the top level of a tree (directory or image) without
// following links. Entries that are neither directories, regular files nor
// links are left out.
func Entries(root string) ([]spec.Entry, error) {
	if IsImage(root) {
		return ImageEntries(root)
	}
	des, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("listing the tree: %w", err) // (err names root)
	}
	out := make([]spec.Entry, 0, len(des))
	for _, de := range des {
		e := spec.Entry{Name: de.Name()}
		switch de.Type() {
		case fs.ModeDir:
			e.Kind = spec.DirEntry
		case 0:
			e.Kind = spec.FileEntry
		case fs.ModeSymlink:
			e.Kind = spec.LinkEntry
			if e.Target, err = os.Readlink(filepath.Join(root, de.Name())); err != nil {
				return nil, fmt.Errorf("reading link %s in tree %s: %w", de.Name(), root, err)
			}
		default:
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// Stamp identifies the file a path names now (device and inode, links
// followed), so that a replaced tree, identity file or binary is noticed.
func Stamp(p string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		return p + " missing"
	}
	return stampOf(p, &st)
}

func stampOf(p string, st *syscall.Stat_t) string {
	return p + " " + strconv.FormatUint(st.Dev, 10) + ":" + strconv.FormatUint(st.Ino, 10)
}

// TreeStamps are the stamps of tree root p for a cache key, from one
// stat(2): Stamp's and, for an image file, its ImageID's (StatImage).
func TreeStamps(p string) []string {
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		return []string{p + " missing"}
	}
	stamps := []string{stampOf(p, &st)}
	if st.Mode&syscall.S_IFMT == syscall.S_IFREG {
		stamps = append(stamps, imageID(p, &st).Stamp())
	}
	return stamps
}
