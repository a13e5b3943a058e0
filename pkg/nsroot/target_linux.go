package nsroot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Where a step mounts. A mount target lies in the view: on its own tmpfs,
// in the tree, or below a host directory bound into it, where users may
// write (/tmp, /home, a scratch file system). Root must never mount where
// a user's symbolic link points: on a file of the view every user of the
// tree then sees (/etc/...), or in another user's home. So a target's own
// last component is never followed, and a link on the way to it is
// followed only where no user can have made it.

// maxTargetLinks bounds the links followed to one target (ELOOP).
const maxTargetLinks = 40

// errNotOnView refuses to create a mount point outside the view's tmpfs.
var errNotOnView = errors.New("missing, and chos creates mount points only on the view's own root")

// errUserLink is a mount target reached through, or being, a symbolic link.
var errUserLink = errors.New("symbolic link")

// mountPoint is an opened mount target, with the directory that holds it
// and its name there: what is mounted on it is reached again through them
// (a path could lead elsewhere by then).
type mountPoint struct {
	dir   *os.File // O_PATH
	name  string
	point *os.File // O_PATH
}

func (mp *mountPoint) Close() {
	mp.point.Close()
	mp.dir.Close()
}

// top opens what is mounted on the point now.
func (mp *mountPoint) top() (*os.File, error) {
	fd, err := unix.Openat(int(mp.dir.Fd()), mp.name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: mp.name, Err: err}
	}
	return os.NewFile(uintptr(fd), mp.name), nil
}

// mountpoint opens, creating it if needed, a directory or file at target
// inside the view (see resolveTarget). chos creates mount points only on
// the view's own tmpfs: never inside a tree (read-only anyway) and never on
// a host file system bound into the view, where root would be creating
// files in places users can write to.
func mountpoint(root *os.File, target string, dir bool) (*mountPoint, error) {
	parent, name, found, missing, err := resolveTarget(root, target)
	if err != nil {
		return nil, fmt.Errorf("mount point %s: %w", target, err)
	}
	if found != nil {
		return &mountPoint{dir: parent, name: name, point: found}, nil
	}
	var rootSt, st unix.Stat_t
	if err := unix.Fstat(int(root.Fd()), &rootSt); err != nil {
		parent.Close()
		return nil, fmt.Errorf("inspecting the view's root: %w", err)
	}
	if err := unix.Fstat(int(parent.Fd()), &st); err != nil || st.Dev != rootSt.Dev {
		parent.Close()
		above := strings.TrimSuffix(target, "/"+strings.Join(missing, "/"))
		return nil, fmt.Errorf("mount point %s: %w (%s is not)", target, errNotOnView, above)
	}
	for i, c := range missing {
		last := i == len(missing)-1
		if c == ".." {
			parent.Close()
			return nil, fmt.Errorf("making mount point %s: .. below a missing directory", target)
		}
		var err error
		if last && !dir {
			var fd int
			if fd, err = unix.Openat(int(parent.Fd()), c, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644); err == nil {
				unix.Close(fd)
			}
		} else if err = unix.Mkdirat(int(parent.Fd()), c, 0o755); err == unix.EEXIST {
			err = nil
		}
		var next int
		if err == nil {
			next, err = unix.Openat(int(parent.Fd()), c, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		if err != nil {
			parent.Close()
			return nil, fmt.Errorf("making mount point: %w", &fs.PathError{Op: "create", Path: target, Err: err})
		}
		h := os.NewFile(uintptr(next), c)
		if last {
			return &mountPoint{dir: parent, name: c, point: h}, nil
		}
		parent.Close()
		parent = h
	}
	parent.Close()
	return nil, fmt.Errorf("mount point %s: nothing to mount on", target)
}

// resolveTarget finds target inside the view whose root is root, component
// by component from directory descriptors, as a process whose root the
// view is would: ".." never leaves the view, an absolute link starts again
// at its root. A symbolic link on the way is followed only from a
// directory owned by root and writable by no one else (the view's own, a
// tree's): one in a directory a user may write is refused. target itself
// is never followed: a link there is refused too. It returns the directory
// holding target, target's name in it and target opened (O_PATH); or, when
// a component is missing, the deepest directory found and the components
// from the missing one on (found nil).
func resolveTarget(root *os.File, target string) (dir *os.File, name string, found *os.File, missing []string, err error) {
	self, err := unix.Openat(int(root.Fd()), ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", nil, nil, fmt.Errorf("opening the view's root: %w", err)
	}
	stack := []*os.File{os.NewFile(uintptr(self), "/")} // the directories walked, from the root down
	defer func() {
		for _, d := range stack {
			if d != dir {
				d.Close()
			}
		}
	}()
	walked := func() string { // for errors
		var names []string
		for _, d := range stack[1:] {
			names = append(names, d.Name())
		}
		return "/" + strings.Join(names, "/")
	}
	pending := strings.Split(target, "/")
	links := 0
	for {
		pending = trimEmpty(pending)
		if len(pending) == 0 {
			return nil, "", nil, nil, fmt.Errorf("resolves to %s, a directory on its own way", walked())
		}
		c := pending[0]
		pending = trimEmpty(pending[1:])
		cur := stack[len(stack)-1]
		if c == ".." {
			if len(stack) > 1 {
				cur.Close()
				stack = stack[:len(stack)-1]
			}
			continue
		}
		fd, err := unix.Openat(int(cur.Fd()), c, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT {
			return cur, "", nil, append([]string{c}, pending...), nil
		}
		if err != nil {
			return nil, "", nil, nil, &fs.PathError{Op: "open", Path: path.Join(walked(), c), Err: err}
		}
		f := os.NewFile(uintptr(fd), c)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			f.Close()
			return nil, "", nil, nil, &fs.PathError{Op: "fstat", Path: path.Join(walked(), c), Err: err}
		}
		switch {
		case st.Mode&unix.S_IFMT == unix.S_IFLNK:
			link, err := readlinkFD(fd)
			f.Close()
			here := path.Join(walked(), c)
			switch {
			case err != nil:
				return nil, "", nil, nil, &fs.PathError{Op: "readlink", Path: here, Err: err}
			case len(pending) == 0:
				return nil, "", nil, nil, fmt.Errorf("%s is a %w (to %s): chos never mounts on one", here, errUserLink, link)
			case !rootsOnly(cur):
				return nil, "", nil, nil, fmt.Errorf("%s is a %w (to %s) in a directory others than root may write: chos does not follow it", here, errUserLink, link)
			}
			if links++; links > maxTargetLinks {
				return nil, "", nil, nil, &fs.PathError{Op: "open", Path: target, Err: unix.ELOOP}
			}
			if strings.HasPrefix(link, "/") {
				for _, d := range stack[1:] {
					d.Close()
				}
				stack = stack[:1]
			}
			pending = append(strings.Split(link, "/"), pending...)
		case len(pending) == 0:
			return cur, c, f, nil, nil
		case st.Mode&unix.S_IFMT != unix.S_IFDIR:
			f.Close()
			return nil, "", nil, nil, &fs.PathError{Op: "open", Path: path.Join(walked(), c), Err: unix.ENOTDIR}
		default:
			stack = append(stack, f)
		}
	}
}

// rootsOnly says whether only root may change the directory dir: owned by
// root, not writable by group or others (pkg/trust's rule).
func rootsOnly(dir *os.File) bool {
	var st unix.Stat_t
	return unix.Fstat(int(dir.Fd()), &st) == nil && st.Uid == 0 && st.Mode&0o022 == 0
}

func readlinkFD(fd int) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// trimEmpty drops leading empty and "." components.
func trimEmpty(comps []string) []string {
	for len(comps) > 0 && (comps[0] == "" || comps[0] == ".") {
		comps = comps[1:]
	}
	return comps
}
