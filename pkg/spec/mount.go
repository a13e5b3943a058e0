// Package spec holds what a launch is made of, as plain data: the view of
// a tree (its setup steps), the identity layer of one user on it, and the
// process applied on top. The policy (packages plan and launch) computes
// it; the executor (package nsroot) carries it out; `chos plan` prints it.
// It makes no system call, as runc keeps libcontainer/configs apart from
// what executes it.
package spec

import "strings"

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
	// OpLoaderCache writes at Target, a file on the view's tmpfs shown as
	// the tree's /etc/ld.so.cache, the tree's own cache (read inside the
	// tree whose root is Source) with the libraries Provide names added
	// (Path where the view shows them, Source on the host): the tree's
	// dynamic loader then finds a device's libraries as it finds its own,
	// without anything run from the tree or written into it.
	OpLoaderCache Op = "ldcache"
)

func (o Op) String() string { return string(o) }

// Origin says what a step is for, as code tells steps apart (the cache key
// stamps some by device and inode); Why says it to people.
type Origin string

const (
	// OriginHostRoot is the host's root, shown in every view.
	OriginHostRoot Origin = "host root"
	// OriginImage mounts an image tree's image.
	OriginImage Origin = "image"
	// OriginTree is an entry of the tree itself.
	OriginTree Origin = "tree"
	// OriginBind is a host bind: a default one, the site's or the tree's.
	OriginBind Origin = "bind"
	// OriginIdentity is a host identity file (/etc/passwd, /etc/hosts...).
	OriginIdentity Origin = "identity"
	// OriginSelf is the chos binary itself.
	OriginSelf Origin = "self"
	// OriginAdded is what the view adds of its own: directories and files
	// on its tmpfs.
	OriginAdded Origin = "added"
	// OriginDevice is what CDI devices add (View.Devices): their files,
	// links, the loader cache and the environment, and the overlays of the
	// tree's directories that show them (which, unlike /etc's for the
	// identity files alone, cannot fall back to the tree's own).
	OriginDevice Origin = "device"
)

// Provision is a file a view must be able to bind over (an identity file,
// a device's library) though the tree may lack it: if Source exists on the
// host and Path does not exist in the tree, an empty mount point is made
// for it in the overlay's Added directory, with the directories leading to
// it. Path is resolved as the tree's own links resolve it; one that leads
// out of the overlay's Target is left to the bind that follows.
type Provision struct {
	Path   string // inside the view, below the overlay's Target
	Source string // on the host
	// Link, when set, makes Path a symbolic link with this content
	// instead (over whatever the tree has there), and Source is unused.
	Link string
	// Soname: Source is a shared library; its soname is also linked to
	// Path, as ldconfig links it, where the tree has no such file.
	Soname bool
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
	// file it named when the plan was made (SelfExe for chos).
	SameFileAs string
	// Added is the view's directory an OpOverlay puts on top of Source
	// (for an OpDevices step, the one below which the overlays it makes
	// get theirs).
	Added string
	// Provide are the mount points an OpOverlay makes where the tree
	// lacks them, and the libraries an OpLoaderCache adds.
	Provide []Provision
	// Except are the entries an OpEntries step leaves out.
	Except []string
	// InView: Source is a path inside the view being built (below an
	// OpImage's Target), resolved within it, not a host path.
	InView bool
	// HostRoot is, for an OpImage or OpDevices step, where the host's root
	// is seen from the launching process ("" for /): a FUSE server for the
	// image runs the host's squashfuse from there; a device's host paths
	// are taken below it.
	HostRoot string
	// Origin is what the step is for; Why says where it comes from, for
	// `chos plan` and errors.
	Origin Origin
	Why    string
}

// Flags are the step's flags as `chos plan` and errors show them.
func (m Mount) Flags() string {
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

// SelfExe is chos's own binary, as each process of it reaches it.
const SelfExe = "/proc/self/exe"
