package spec

import (
	"path"
	"strings"
	"time"
)

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
	// OuterHost is set when the launch comes from inside another view and
	// chos has moved to the host's root (nsroot.EnterHostRoot): where the
	// host's root is in that view (plan.HostDir). A privileged build first
	// makes it the root of its namespace, leaving the outer view behind.
	OuterHost string
	Mounts    []Mount
	// Cache, when set, keeps the view's namespace for later launches and
	// enters it when it is already there: in a file below Dir in setuid
	// mode, in a keeper process of the caller's (Dir empty) in user
	// namespace mode.
	Cache *Cache
	// Devices, when set, are the CDI devices the view shows (its OpDevices
	// step): their environment is then read from DeviceEnvFile in the
	// view and added to the command's.
	Devices *Devices
}

// KeptFor is how long a view kept for a user's user-namespace launches
// stays once the last launch using it has ended (a keeper: see
// nsroot.RunKeeper).
const KeptFor = 10 * time.Second

// Cache names the cached mount namespace of a view. A view's mounts are the
// same for every user (identity, cwd and environment are applied after
// entering), so the first launch of a tree builds it once and later launches
// enter it with setns: their cost no longer depends on the host's mount
// count. Key changes whenever anything the view was built from changes, so
// a stale namespace is simply never found.
type Cache struct {
	Dir  string // a root-owned directory; made an unbindable mount of its own
	Tree string
	Key  string
	// Variant names one of a tree's views that are kept side by side: a
	// view with devices, for one set of them ("" for the tree's plain
	// view). A new build replaces the views of its own variant only.
	Variant string
}

// File is the namespace file of this view.
func (c *Cache) File() string {
	return path.Join(c.Dir, Stem(c.Tree)+"."+c.FileKey()+".mnt")
}

// FileKey is the key as the view's file name has it: VARIANT-KEY for a
// variant.
func (c *Cache) FileKey() string {
	if c.Variant == "" {
		return c.Key
	}
	return c.Variant + "-" + c.Key
}

// VariantOf is the variant a cache file's key names ("" for none).
func VariantOf(fileKey string) string {
	v, _, ok := strings.Cut(fileKey, "-")
	if !ok {
		return ""
	}
	return v
}

// Stem makes a tree name (which may be a path) a file name: the stem of
// the names of its cached namespaces.
func Stem(tree string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, tree)
}

// MountSource is the tmpfs source name of a view's root. `chos current`
// reads it back from /proc/self/mountinfo: the namespace itself says which
// tree it shows, whatever $CHOS claims.
func MountSource(tree string) string { return "chos:" + tree }

// TreeFromMountSource is the inverse of MountSource.
func TreeFromMountSource(src string) (string, bool) {
	return strings.CutPrefix(src, "chos:")
}

// LayerDir is the directory of every view on which a user's identity
// layer mounts the files it binds over /etc/passwd and /etc/group.
const LayerDir = "/.chos/id"
