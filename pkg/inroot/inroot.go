// Package inroot opens and creates paths inside a directory tree the way a
// process whose root it is would see them: symbolic links, absolute ones
// included, resolve within the tree and never onto the host. It uses
// openat2(RESOLVE_IN_ROOT) (Linux 5.6), and filepath-securejoin's
// pathrs-lite on older kernels only: pathrs-lite mounts a private procfs
// for its checks, which costs far more than a launch can afford.
package inroot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync/atomic"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

var noOpenat2 atomic.Bool

// Open opens p (absolute or relative to root) inside root, an open
// directory. flags are open(2) flags; O_CLOEXEC is added.
func Open(root *os.File, p string, flags int) (*os.File, error) {
	p = strings.TrimLeft(path.Clean("/"+p), "/")
	if p == "" {
		p = "."
	}
	if !noOpenat2.Load() {
		how := &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
		for {
			fd, err := unix.Openat2(int(root.Fd()), p, how)
			if err == unix.EAGAIN || err == unix.EINTR {
				continue // a rename raced with the lookup; try again
			}
			if errors.Is(err, unix.ENOSYS) {
				noOpenat2.Store(true)
				break
			}
			if err != nil {
				return nil, &fs.PathError{Op: "open", Path: p, Err: err}
			}
			return os.NewFile(uintptr(fd), path.Join(root.Name(), p)), nil
		}
	}
	h, err := pathrs.OpenatInRoot(root, p)
	if err != nil || flags&unix.O_PATH != 0 {
		return h, err
	}
	defer h.Close()
	return pathrs.Reopen(h, flags)
}

// OpenPath opens a directory tree's path given as a string.
func OpenPath(root, p string, flags int) (*os.File, error) {
	r, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return Open(r, p, flags)
}

// MkdirAll creates the missing directories of p inside root and returns an
// O_PATH handle of p.
func MkdirAll(root *os.File, p string, mode os.FileMode) (*os.File, error) {
	p = strings.TrimLeft(path.Clean("/"+p), "/")
	if h, err := Open(root, p, unix.O_PATH|unix.O_DIRECTORY); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return h, err
	}
	parent, err := Open(root, ".", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	done := ""
	for _, name := range strings.Split(p, "/") {
		done = path.Join(done, name)
		next, err := Open(root, done, unix.O_PATH|unix.O_DIRECTORY)
		if errors.Is(err, fs.ErrNotExist) {
			if err := unix.Mkdirat(int(parent.Fd()), name, uint32(mode.Perm())); err != nil && err != unix.EEXIST {
				parent.Close()
				return nil, &fs.PathError{Op: "mkdir", Path: "/" + done, Err: err}
			}
			next, err = Open(root, done, unix.O_PATH|unix.O_DIRECTORY)
		}
		parent.Close()
		if err != nil {
			return nil, fmt.Errorf("creating /%s: %w", done, err)
		}
		parent = next
	}
	return parent, nil
}

// maxLinks bounds the links Resolve follows, as the kernel's ELOOP does.
const maxLinks = 40

// Resolve is the path p names inside root, an open directory, as Open
// resolves it (absolute links from root, ".." never above it), as far as
// root has it: from the first missing component on, p is kept as it is.
// It names what Open cannot: where a path not made yet would be.
func Resolve(root *os.File, p string) (string, error) {
	pending := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	cur, links := "/", 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		var st unix.Stat_t
		err := unix.Fstatat(int(root.Fd()), strings.TrimPrefix(next, "/"), &st, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, unix.ENOENT) {
			return path.Join(append([]string{next}, pending...)...), nil
		}
		if err != nil {
			return "", &fs.PathError{Op: "stat", Path: next, Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			cur = next
			continue
		}
		if links++; links > maxLinks {
			return "", &fs.PathError{Op: "resolve", Path: p, Err: unix.ELOOP}
		}
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(int(root.Fd()), strings.TrimPrefix(next, "/"), buf)
		if err != nil {
			return "", &fs.PathError{Op: "readlink", Path: next, Err: err}
		}
		target := string(buf[:n])
		if path.IsAbs(target) {
			cur = "/"
		}
		pending = append(strings.Split(target, "/"), pending...)
	}
	return cur, nil
}
