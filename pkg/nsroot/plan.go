// Package nsroot carries out a Plan: a new mount namespace, the view
// assembled on a tmpfs, the root switch, the caller's credentials, the
// working directory and the exec. It is the only package of chos that makes
// namespace, mount, root and credential system calls; what to mount and why
// is decided elsewhere (package plan), as data.
package nsroot

import (
	"fmt"
	"strconv"
	"strings"
)

// Op is one kind of setup step.
type Op string

const (
	// OpBind binds a host path (Source) at Target inside the view.
	OpBind Op = "bind"
	// OpSymlink creates a symbolic link Target with content Source.
	OpSymlink Op = "symlink"
	// OpMkdir creates an empty directory Target on the view's tmpfs.
	OpMkdir Op = "mkdir"
	// OpFile creates a regular file Target on the view's tmpfs holding
	// Source as its content: a file the view adds, such as the snippet
	// that keeps chos on PATH in login shells.
	OpFile Op = "file"
	// OpOverlay mounts at Target a read-only overlay of the view's
	// directory Added on top of the tree's directory Source: how a view
	// adds files to a read-only tree without ever writing into it.
	OpOverlay Op = "overlay"
	// OpImage mounts the squashfs image file Source at Target, a directory
	// on the view's tmpfs, read-only and nodev (nosuid unless NoSuid is
	// off): by the kernel through a shared, self-clearing loop device when
	// chos is privileged, else by squashfuse. The image's entries are then
	// bound from there (InView).
	OpImage Op = "image"
)

func (o Op) String() string { return string(o) }

// Provision is a file a view must be able to bind over (an identity file)
// though the tree may lack it: if Source exists on the host and Path does
// not exist in the tree, an empty mount point is made for it in the
// overlay's Added directory.
type Provision struct {
	Path   string // inside the view, below the overlay's Target
	Source string // on the host
}

// Mount is one setup step. Targets are absolute paths inside the view and
// resolve within it: a symbolic link in a tree never points a mount at the
// host.
type Mount struct {
	Op     Op
	Source string
	Target string
	// File binds a regular file (the mount point is a file, not a directory).
	File      bool
	Recursive bool
	ReadOnly  bool
	NoSuid    bool
	NoDev     bool
	// NoFollow refuses a Source that is a symbolic link (tree entries: the
	// link is recreated as a link instead, so it resolves inside the view).
	NoFollow bool
	// Optional steps whose source or mount point is missing are skipped.
	Optional bool
	// SameFileAs, when set, requires Source to be the same file (device
	// and inode) as this path: a path is bound, but must still name the
	// file it named when the plan was made (/proc/self/exe for chos).
	SameFileAs string
	// Added is the view's directory an OpOverlay puts on top of Source.
	Added string
	// Provide are the mount points an OpOverlay makes where the tree
	// lacks them.
	Provide []Provision
	// InView: Source is a path inside the view being built (below an
	// OpImage's Target), resolved within it, not a host path.
	InView bool
	// HostRoot is, for an OpImage, where the host's root is seen from the
	// launching process ("" for /): a FUSE server for the image runs the
	// host's squashfuse from there.
	HostRoot string
	// Why says where the step comes from, for `chos plan` and errors.
	Why string
}

// Credentials are what the command runs as.
type Credentials struct {
	UID    int
	GID    int
	Groups []int
	// KeepCaps keeps root's capabilities: only for a caller who is root.
	KeepCaps bool
	// KeepBounding leaves the capability bounding set as it is, so that a
	// setuid-root program the command runs gets root's capabilities, as on
	// the host: only in trees whose admin allowed setuid programs.
	KeepBounding bool
	// NoNewPrivs forbids any gain of privilege through exec (setuid, file
	// capabilities) for the command and all its children.
	NoNewPrivs bool
}

// View is what a tree looks like from inside: the mounts of its namespace.
// It depends on the configuration and the tree only, never on who launches,
// so one view (and its cached namespace) serves every user of the tree.
type View struct {
	Tree     string // canonical tree name
	TreePath string
	// Host views are the host itself: no namespace, no mounts.
	Host bool
	// Root is the directory the view is assembled on.
	Root string
	// RootSource, when set, is bound (recursively) as the view's root
	// instead of a new tmpfs: the host's root, reached from inside a view.
	RootSource string
	Mounts     []Mount
	// Complete, when set, adds the steps whose listing costs I/O (the
	// top-level entries of an image tree): only a launch that builds the
	// view runs it (Finish), as the key of a cached view covers the
	// image's identity already. Never sent to a builder or a child.
	Complete func(*View) error `json:"-"`
	// Cache, when set, keeps the view's namespace for later launches and
	// enters it when it is already there: in a file below Dir in setuid
	// mode, in a keeper process of the caller's (Dir empty) in user
	// namespace mode.
	Cache *Cache
}

// Identity is what a view's /etc/passwd and /etc/group lack of the caller
// (a user known only to a directory service: LDAP, sssd, NIS): the lines
// added, in a mount namespace of this user's own on top of the view, so
// that names resolve in trees without a directory client, and never in
// another user's launch.
type Identity struct {
	UID int
	// Key names the user's layer in the cache: it covers the ids and
	// every line, so that changed groups or names give a new layer.
	Key    string
	Passwd []string // lines added to /etc/passwd
	Group  []string // lines added to /etc/group
}

// Process is what is applied per process on top of a view: who the
// command runs as, where, and what it is.
type Process struct {
	Creds Credentials
	// Identity is nil when the view's files already name the caller and
	// all their groups (every local user).
	Identity *Identity
	// Dir is the working directory; DirFallback are tried in order when it
	// does not exist in the view (login shells only).
	Dir         string
	DirFallback []string
	// DirID, when set, is the caller's working directory itself: Dir in
	// the view must be that very directory (a host directory bound at its
	// own place), not another one of the same name.
	DirID *FileID
	// Path is the program: absolute, or looked up in the PATH of Env inside
	// the view.
	Path string
	Argv []string
	Env  []string
	// Inherit is what chos was started with that the command must get
	// back (see RecordStart); filled in by Launch and RunInUserNS.
	Inherit Inherited
}

// FileID names a file by device and inode.
type FileID struct{ Dev, Ino uint64 }

// Inherited is the part of the caller's process state that exec(2) passes
// on but that chos's own start changes: the Go runtime catches signals the
// caller ignored and alters the signal mask, and a setuid exec caps the
// stack limit. Restored just before the command is executed.
type Inherited struct {
	Recorded bool
	Ignored  SignalSet // dispositions that were SIG_IGN
	Blocked  SignalSet // the signal mask
	// StackLimit, when not zero, is the soft RLIMIT_STACK (bytes, or
	// RLIM_INFINITY) that a setuid exec capped.
	StackLimit uint64
}

// SignalSet is a set of the signals 1 to 64: bit n-1 for signal n, as in
// the kernel's sigset_t.
type SignalSet uint64

// Has says whether sig is in the set.
func (s SignalSet) Has(sig int) bool { return sig >= 1 && sig <= 64 && s&(1<<(sig-1)) != 0 }

// With is the set with sig added.
func (s SignalSet) With(sig int) SignalSet {
	if sig < 1 || sig > 64 {
		return s
	}
	return s | 1<<(sig-1)
}

// Plan is everything a launch does, computed before any of it is done: the
// caller-independent view, and the process layer applied on top of it.
type Plan struct {
	View
	Process
	// Notes are things the user may want to know (skipped optional binds,
	// a missing shell); printed by `chos plan` and with --verbose.
	Notes []string
	// Verbose prints the optional steps skipped while assembling.
	Verbose bool
}

// MountSource is the tmpfs source name of a view's root. `chos current`
// reads it back from /proc/self/mountinfo: the namespace itself says which
// tree it shows, whatever $CHOS claims.
func MountSource(tree string) string { return "chos:" + tree }

// TreeFromMountSource is the inverse of MountSource.
func TreeFromMountSource(src string) (string, bool) {
	return strings.CutPrefix(src, "chos:")
}

// Finish runs Complete, once: the view then lists every step.
func (v *View) Finish() error {
	if v.Complete == nil {
		return nil
	}
	complete := v.Complete
	v.Complete = nil
	return complete(v)
}

func (m Mount) flags() string {
	var f []string
	for _, x := range []struct {
		on   bool
		name string
	}{{m.File, "file"}, {m.Recursive, "rec"}, {m.ReadOnly, "ro"}, {m.NoSuid, "nosuid"}, {m.NoDev, "nodev"}, {m.NoFollow, "nofollow"}, {m.Optional, "optional"}, {m.InView, "from the view"}} {
		if x.on {
			f = append(f, x.name)
		}
	}
	return strings.Join(f, ",")
}

// String renders the plan for people, one step a line.
func (p *Plan) String() string {
	var b strings.Builder
	if p.Host {
		fmt.Fprintf(&b, "tree      %s (the host: no namespace)\n", p.Tree)
	} else {
		fmt.Fprintf(&b, "tree      %s (%s), assembled at %s\n", p.Tree, p.TreePath, p.Root)
		if p.Cache != nil && p.Cache.Dir == "" {
			fmt.Fprintf(&b, "keep      join the view a process of yours keeps (%s) if there is one, else build as below in a user namespace and keep it until %v after your last launch of it ends\n", p.Cache.Key, KeeperIdle)
		} else if p.Cache != nil {
			fmt.Fprintf(&b, "cache     enter %s if it exists, else build as below and keep it there\n", p.Cache.File())
		}
		fmt.Fprintf(&b, "unshare   mount namespace, host mounts slave\n")
		if p.RootSource != "" {
			fmt.Fprintf(&b, "bind      %s -> /  [rec]\n", p.RootSource)
		} else {
			fmt.Fprintf(&b, "tmpfs     /  (%s)\n", MountSource(p.Tree))
		}
		for _, m := range p.Mounts {
			switch m.Op {
			case OpBind:
				fmt.Fprintf(&b, "bind      %s -> %s  [%s]  (%s)\n", m.Source, m.Target, m.flags(), m.Why)
			case OpSymlink:
				fmt.Fprintf(&b, "symlink   %s -> %s  (%s)\n", m.Target, m.Source, m.Why)
			case OpMkdir:
				fmt.Fprintf(&b, "mkdir     %s  (%s)\n", m.Target, m.Why)
			case OpFile:
				fmt.Fprintf(&b, "file      %s  %d bytes  (%s)\n", m.Target, len(m.Source), m.Why)
			case OpImage:
				fmt.Fprintf(&b, "image     %s -> %s  [%s]  (%s; a shared loop device when setuid, squashfuse in a user namespace)\n", m.Source, m.Target, m.flags(), m.Why)
			case OpOverlay:
				fmt.Fprintf(&b, "overlay   %s + %s -> %s  [%s]  (%s)\n", m.Added, m.Source, m.Target, m.flags(), m.Why)
				for _, pr := range m.Provide {
					fmt.Fprintf(&b, "            mount point %s if the tree lacks it and %s exists\n", pr.Path, pr.Source)
				}
			}
		}
		if p.RootSource == "" {
			fmt.Fprintf(&b, "remount   / read-only\n")
		}
		fmt.Fprintf(&b, "pivot     %s becomes /, old root detached\n", p.Root)
	}
	groups := make([]string, len(p.Creds.Groups))
	for i, g := range p.Creds.Groups {
		groups[i] = strconv.Itoa(g)
	}
	caps := "none"
	switch {
	case p.Creds.KeepCaps:
		caps = "kept (caller is root)"
	case p.Creds.KeepBounding:
		caps = "none, bounding set kept (setuid = allow)"
	}
	fmt.Fprintf(&b, "identity  uid=%d gid=%d groups=%s capabilities=%s no_new_privs=%t\n",
		p.Creds.UID, p.Creds.GID, strings.Join(groups, ","), caps, p.Creds.NoNewPrivs)
	if id := p.Identity; id != nil {
		fmt.Fprintf(&b, "names     a layer of your own on the view (%s): /etc/passwd + %d line(s), /etc/group + %d line(s)\n",
			id.Key, len(id.Passwd), len(id.Group))
		for _, l := range id.Passwd {
			fmt.Fprintf(&b, "            passwd  %s\n", l)
		}
		for _, l := range id.Group {
			fmt.Fprintf(&b, "            group   %s\n", l)
		}
	}
	fmt.Fprintf(&b, "cwd       %s", p.Dir)
	if p.DirID != nil {
		fmt.Fprintf(&b, " (yours: device %d inode %d)", p.DirID.Dev, p.DirID.Ino)
	}
	for _, d := range p.DirFallback {
		fmt.Fprintf(&b, " | %s", d)
	}
	fmt.Fprintf(&b, "\nexec      %s %q\n", p.Path, p.Argv)
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "note      %s\n", n)
	}
	return b.String()
}
