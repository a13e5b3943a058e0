package ostree

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/chos-hpc/chos/pkg/loopdev"
	"github.com/chos-hpc/chos/pkg/spec"
	"github.com/chos-hpc/chos/pkg/trust"
)

// An image tree is a tree whose path names a squashfs image file rather
// than a directory (Shifter, enroot, Charliecloud and Apptainer ship OS
// trees so: one file on a parallel file system instead of millions). Its
// files are read here without mounting it; a launch mounts it (package
// nsroot).

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
	return imageID(p, &st), nil
}

// imageID is the identity of image file p, which stat(2) described as st.
func imageID(p string, st *syscall.Stat_t) ImageID {
	return ImageID{Path: p, Dev: st.Dev, Ino: st.Ino, Size: st.Size,
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}
}

// Stamp is the identity as one string, for a cache key.
func (id ImageID) Stamp() string {
	return fmt.Sprintf("image %s %d:%d size %d mtime %d ctime %d", id.Path, id.Dev, id.Ino, id.Size, id.Mtime, id.Ctime)
}

// Image is an image tree opened for reading without mounting, through
// unsquashfs(1) of squashfs-tools (listing with -lln, reading with -cat),
// run with the caller's real ids and an empty environment: a small program
// run for the few commands that read an image (list, check, login shells,
// the first launch), instead of a squashfs reader linked into chos, whose
// decompressors every launch would initialise.
type Image struct {
	path string
	// asRoot: unsquashfs runs with root's ids (ImageEntriesAsRoot).
	asRoot bool
}

// Unsquashfs is the program images are read with.
var Unsquashfs = "/usr/bin/unsquashfs"

// UnsquashfsCommand is the command line that runs Unsquashfs with args.
// Inside a view, the tree may have no squashfs-tools (or other ones): the
// caller then runs the host's through the host's own loader (hostexec).
var UnsquashfsCommand = DirectUnsquashfs

// DirectUnsquashfs runs Unsquashfs itself: where the process's root is
// the host's.
func DirectUnsquashfs(args ...string) ([]string, error) {
	return append([]string{Unsquashfs}, args...), nil
}

// maxImageLinks bounds the symbolic links followed in one lookup (ELOOP).
const maxImageLinks = 40

// OpenImage checks that p is a squashfs image and returns it for reading.
// Errors wrap loopdev.ErrNotSquashfs for a file that is not one, or say
// what could not be read.
func OpenImage(p string) (*Image, error) {
	if err := checkImageFile(p); err != nil {
		return nil, err
	}
	im := &Image{path: p}
	if _, err := im.list("/", 1); err != nil {
		return nil, err
	}
	return im, nil
}

// checkImageFile says why p is not a squashfs image file, or nil.
func checkImageFile(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("opening image: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("image %s is not a regular file", p)
	}
	if err == nil {
		err = loopdev.CheckSquashfs(f)
	}
	return err
}

// Close is there for symmetry: nothing stays open.
func (im *Image) Close() error { return nil }

// node is one line of `unsquashfs -lln`.
type node struct {
	mode   fs.FileMode
	target string // of a link
}

// run runs unsquashfs with args and returns its standard output.
func (im *Image) run(args ...string) ([]byte, error) {
	argv, err := UnsquashfsCommand(args...)
	if err != nil {
		return nil, fmt.Errorf("reading image %s needs %s (squashfs-tools): %w", im.path, Unsquashfs, err)
	}
	// Root parses an image for someone else only if the kernel may mount
	// it, so only root can have written it: views root builds list it as
	// root, and a root helper reading as a user (chos prepare, with the
	// user's effective ids) starts unsquashfs with its real ids, root's.
	if im.asRoot || (os.Getuid() == 0 && os.Geteuid() != 0) {
		if err := trust.CheckPath(im.path); trust.IsUntrusted(err) {
			return nil, fmt.Errorf("refusing to read image %s as root: %w", im.path, err)
		}
	}
	cmd := im.command(argv)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errOut.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("reading image %s needs %s (squashfs-tools): %w", im.path, Unsquashfs, err)
		}
		return nil, fmt.Errorf("%w: %s cannot be read: %s", loopdev.ErrNotSquashfs, im.path, msg)
	}
	return out.Bytes(), nil
}

// command is the unsquashfs process: with the caller's own ids (never a
// setuid chos's root), so that an image is read only where its user could
// read it; or, for a view root builds for everyone, with root's ids only,
// so that no user can stop it and forge what it prints.
func (im *Image) command(argv []string) *exec.Cmd {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{}
	cmd.Dir = "/"
	cred := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid()), NoSetGroups: true}
	if im.asRoot {
		cred = &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	return cmd
}

// list returns the nodes on the way to p (absolute, without links), down
// to depth components, keyed by their absolute path ("/" for the root).
func (im *Image) list(p string, depth int) (map[string]node, error) {
	args := []string{"-lln", "-max-depth", fmt.Sprint(depth), "-d", "", im.path}
	if rel := strings.TrimPrefix(p, "/"); rel != "" {
		args = append(args, rel)
	}
	out, err := im.run(args...)
	if err != nil {
		return nil, err
	}
	nodes := map[string]node{}
	for _, line := range strings.Split(string(out), "\n") {
		// drwxr-xr-x 0/0 257 2026-11-29 23:18 /etc
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mode, ok := parseMode(f[0])
		if !ok {
			continue
		}
		rest := line
		for i := 0; i < 5; i++ { // skip mode, ids, size, date, time
			rest = strings.TrimLeft(rest, " ")
			if j := strings.IndexByte(rest, ' '); j >= 0 {
				rest = rest[j:]
			} else {
				rest = ""
			}
		}
		name := strings.TrimPrefix(rest, " ")
		n := node{mode: mode}
		if mode&fs.ModeSymlink != 0 {
			name, n.target, _ = strings.Cut(name, " -> ")
		}
		if name == "" {
			name = "/"
		}
		nodes[name] = n
	}
	return nodes, nil
}

// parseMode reads the type of ls's mode column (drwxr-xr-x).
func parseMode(s string) (fs.FileMode, bool) {
	if len(s) != 10 {
		return 0, false
	}
	var m fs.FileMode
	switch s[0] {
	case 'd':
		m = fs.ModeDir
	case 'l':
		m = fs.ModeSymlink
	case '-':
	case 'c', 'b', 'p', 's':
		m = fs.ModeIrregular
	default:
		return 0, false
	}
	for i, c := range s[1:] {
		if c != '-' {
			m |= 1 << (8 - i)
		}
	}
	return m, true
}

// Entries lists the top level of the image, as Entries lists a directory.
func (im *Image) Entries() ([]spec.Entry, error) {
	nodes, err := im.list("/", 1)
	if err != nil {
		return nil, err
	}
	var out []spec.Entry
	for name, n := range nodes {
		if name == "/" {
			continue
		}
		e := spec.Entry{Name: strings.TrimPrefix(name, "/")}
		switch {
		case n.mode.IsDir():
			e.Kind = spec.DirEntry
		case n.mode.IsRegular():
			e.Kind = spec.FileEntry
		case n.mode&fs.ModeSymlink != 0:
			e.Kind, e.Target = spec.LinkEntry, n.target
		default:
			continue
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ReadFile reads a small file inside the image (at most 1 MiB), links
// resolved within the image as a process inside it would see them.
func (im *Image) ReadFile(p string) ([]byte, error) {
	final, info, err := im.resolve(p)
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: p, Err: errors.New("not a regular file")}
	}
	data, err := im.run("-cat", im.path, strings.TrimPrefix(final, "/"))
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: p, Err: err}
	}
	if len(data) > 1<<20 {
		data = data[:1<<20]
	}
	return data, nil
}

// Stat describes a path inside the image, links followed within it.
func (im *Image) Stat(p string) (fs.FileInfo, error) {
	_, info, err := im.resolve(p)
	return info, err
}

// resolve follows p inside the image: absolute links restart at the
// image's root, ".." never leaves it. It returns the resolved absolute
// path and what it names. A missing component is fs.ErrNotExist.
func (im *Image) resolve(p string) (string, fs.FileInfo, error) {
	cur := "/"
	pending := strings.Split(p, "/")
	for links := 0; ; links++ {
		if links > maxImageLinks {
			return "", nil, &fs.PathError{Op: "stat", Path: p, Err: syscall.ELOOP}
		}
		// Everything left, listed at once: one run per link followed.
		var comps []string
		for _, c := range pending {
			switch c {
			case "", ".":
			case "..":
				if len(comps) > 0 {
					comps = comps[:len(comps)-1]
				} else {
					cur = path.Dir(cur)
				}
			default:
				comps = append(comps, c)
			}
		}
		want := path.Join(append([]string{cur}, comps...)...)
		nodes, err := im.list(want, depth(want))
		if err != nil {
			return "", nil, err
		}
		at := cur
		pending = nil
		for i, c := range comps {
			next := path.Join(at, c)
			n, ok := nodes[next]
			if !ok {
				// A listing does not go through links: the entry may be
				// one, which only its directory's listing shows.
				if parent, ok := nodes[at]; ok && !parent.mode.IsDir() {
					return "", nil, &fs.PathError{Op: "stat", Path: p, Err: syscall.ENOTDIR}
				}
				kids, err := im.list(at, depth(at)+1)
				if err != nil {
					return "", nil, err
				}
				if n, ok = kids[next]; !ok {
					return "", nil, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
				}
				if n.mode&fs.ModeSymlink == 0 {
					return "", nil, &fs.PathError{Op: "stat", Path: p, Err: fmt.Errorf("listing %s: inconsistent", next)}
				}
			}
			if n.mode&fs.ModeSymlink != 0 {
				base := at
				if strings.HasPrefix(n.target, "/") {
					base = "/"
				}
				cur, pending = base, append(strings.Split(n.target, "/"), comps[i+1:]...)
				break
			}
			at = next
		}
		if pending == nil {
			n := nodes[at]
			return at, imageInfo{name: path.Base(at), mode: n.mode}, nil
		}
	}
}

// depth is the number of components of an absolute path ("/" has none).
func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// imageInfo is what a listing says of a file.
type imageInfo struct {
	name string
	mode fs.FileMode
}

func (i imageInfo) Name() string       { return i.name }
func (i imageInfo) Size() int64        { return 0 }
func (i imageInfo) Mode() fs.FileMode  { return i.mode }
func (i imageInfo) ModTime() time.Time { return time.Time{} }
func (i imageInfo) IsDir() bool        { return i.mode.IsDir() }
func (i imageInfo) Sys() any           { return nil }

// withImage runs fn on the image p, opened for the length of the call.
func withImage(p string, fn func(*Image) error) error {
	im, err := OpenImage(p)
	if err != nil {
		return err
	}
	defer im.Close()
	return fn(im)
}

// ImageEntries lists the top level of the image p, read with the caller's
// ids.
func ImageEntries(p string) (entries []spec.Entry, err error) {
	err = withImage(p, func(im *Image) error {
		entries, err = im.Entries()
		return err
	})
	return entries, err
}

// ImageEntriesAsRoot lists the top level of the image p for a view that
// root builds and other users enter: unsquashfs runs with root's ids only
// (the process must hold root). Its output becomes mount steps, so a
// process of the caller's, which the caller could stop and whose output it
// could take over (pidfd_getfd), must never produce it.
func ImageEntriesAsRoot(p string) ([]spec.Entry, error) {
	if err := checkImageFile(p); err != nil {
		return nil, err
	}
	im := &Image{path: p, asRoot: true}
	return im.Entries()
}
