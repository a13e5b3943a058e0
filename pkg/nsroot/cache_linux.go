package nsroot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/spec"
)

// lockFile is the file builders of c's tree lock.
func lockFileOf(c *spec.Cache) string { return filepath.Join(c.Dir, spec.Stem(c.Tree)+".lock") }

// enterCachedView puts the calling thread in the cached namespace of v,
// having a builder process build and publish it first when there is none.
// The launching process itself never holds the cache's locks: its caller
// can stop it (SIGSTOP) or block it on a full stderr, and must not be able
// to stall other users' launches so (see builder_linux.go).
func enterCachedView(v *spec.View, id *spec.Layer) (use ViewUse, notes []spec.Note, err error) {
	// setns(CLONE_NEWNS) refuses a thread that shares its root and cwd with
	// the other threads of the process.
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return "", nil, fmt.Errorf("unsharing file system attributes: %w", err)
	}
	c := v.Cache
	use = UsedCached
	// A view replaced between the build and the entry (the configuration
	// changed meanwhile) is built again, a bounded number of times.
	for attempt := 0; attempt < 3; attempt++ {
		file := c.File()
		if id != nil {
			file = layerFile(c, id)
		}
		if entered, err := enterCached(file); entered || err != nil {
			return use, notes, err
		}
		res, ns, err := runBuilder(v, id)
		notes = append(notes, res.Notes...)
		if err != nil {
			return "", notes, err
		}
		if ns != nil {
			// The cache cannot be used: the builder hands back what it built.
			defer ns.Close()
			return UsedFresh, notes, enterNamespace(ns)
		}
		if res.Built {
			use = UsedBuilt
		}
	}
	// Rebuilt as often without being entered: a view of this launch's own.
	more, err := enterBuiltView(v, id)
	return UsedFresh, append(notes, more...), err
}

// buildAndPublish is the builder's side: under the tree's lock, it builds
// the view in a namespace of its own and binds that namespace on the cache
// file, unless a concurrent builder already did; then, for id, the user's
// identity layer on a copy of it, likewise. When the result cannot be
// published, it returns the namespace it built, for the launch to enter.
func buildAndPublish(v *spec.View, id *spec.Layer) (res builderResult, ns *os.File, err error) {
	c := v.Cache
	// A cache that cannot be written (read-only, full) is not the
	// launch's failure: it builds a private view instead.
	if err := ownCacheDir(c.Dir); err != nil {
		return buildUncached(v, id, fmt.Sprintf("not caching tree %s: %v", v.Tree, err))
	}
	lock, err := lockTree(c)
	if err != nil {
		return buildUncached(v, id, fmt.Sprintf("not caching tree %s: %v", v.Tree, err))
	}
	defer lock.Close()
	if id != nil {
		// (in the host's namespace: the view's root is read-only)
		if err := mkdirMode(layerDir(c), 0o755); err != nil {
			return buildUncached(v, id, fmt.Sprintf("not caching tree %s: creating %s: %v", v.Tree, layerDir(c), err))
		}
	}
	host, err := os.Open("/proc/thread-self/ns/mnt")
	if err != nil {
		return res, nil, fmt.Errorf("opening the host mount namespace: %w", err)
	}
	defer host.Close()
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return res, nil, fmt.Errorf("unsharing file system attributes: %w", err)
	}
	// Concurrent first launches of one tree: one builds, the others find
	// what it built.
	if !isNamespace(c.File()) {
		// A build is rare and costs far more: the time to collect what
		// namespaces that ended left.
		collectEnded(filepath.Dir(c.Dir))
		done, order := newerNamespaces(host)
		res.Notes, err = assemble(v, Privileged)
		if order == nil {
			done()
		}
		if err != nil {
			return res, nil, err
		}
		if err := publish(c, host, c.File(), func() { dropOlderViews(c) }); err != nil {
			res.warnUncached(c.File(), fmt.Sprintf("not caching tree %s: %v", v.Tree, errors.Join(err, order)))
			return privateResult(res)
		}
		res.Built = true
	} else if id != nil {
		if _, err := enterCached(c.File()); err != nil {
			return res, nil, err
		}
	}
	if id == nil || isNamespace(layerFile(c, id)) {
		return res, nil, nil
	}
	// The layer: a copy of the view (this thread is in it now) with the
	// user's lines added.
	done, order := newerNamespaces(host)
	err = unix.Unshare(unix.CLONE_NEWNS)
	if order == nil {
		done()
	}
	if err != nil {
		return res, nil, fmt.Errorf("unsharing the mount namespace: %w", err)
	}
	if err := applyIdentity(id); err != nil {
		return res, nil, err
	}
	file := layerFile(c, id)
	if err := publish(c, host, file, func() { dropLayers(layerDir(c), layerPrefix(c, id.UID), file) }); err != nil {
		res.warnUncached(file, fmt.Sprintf("not caching your names on tree %s: %v", v.Tree, errors.Join(err, order)))
		return privateResult(res)
	}
	return res, nil, nil
}

// buildUncached builds v (with id's lines) privately where its cache
// cannot take it (read-only, out of space or inodes, broken), and hands it
// back, with the warning.
func buildUncached(v *spec.View, id *spec.Layer, warning string) (builderResult, *os.File, error) {
	private := *v
	private.Cache = nil
	res, ns, err := buildPrivate(&private, id)
	res.warnUncached(v.Cache.File(), warning)
	return res, ns, err
}

// privateResult hands back the namespace the calling thread is in (a view
// that could not be published), for the launch to enter.
func privateResult(res builderResult) (builderResult, *os.File, error) {
	res.Private = true
	ns, err := os.Open("/proc/thread-self/ns/mnt")
	if err != nil {
		return res, nil, fmt.Errorf("opening the view's namespace: %w", err)
	}
	return res, ns, nil
}

// CacheWritable says why a view could not be published in c's directory
// now, or nil: its file system is read-only or has no free inode (each
// view is a new file). A launch about to build one asks first, to build a
// private view instead with one warning (the builder falls back too, on
// what this cannot foresee, such as a directory without room for one more
// entry).
func CacheWritable(c *spec.Cache) error {
	for dir := c.Dir; ; dir = filepath.Dir(dir) {
		var sfs unix.Statfs_t
		err := unix.Statfs(dir, &sfs)
		if errors.Is(err, unix.ENOENT) && dir != "/" {
			continue // (made when the view is built)
		}
		if err != nil {
			return nil // the builder will say
		}
		return unwritable(dir, &sfs)
	}
}

// unwritable says why no file can be made on the file system of dir, as
// statfs(2) describes it, or nil.
func unwritable(dir string, sfs *unix.Statfs_t) error {
	switch {
	case sfs.Flags&unix.ST_RDONLY != 0:
		return &fs.PathError{Op: "cache directory", Path: dir, Err: unix.EROFS}
	case sfs.Files > 0 && sfs.Ffree == 0: // (0 files: no fixed number, as btrfs)
		return fmt.Errorf("cache directory %s: no free inode: %w", dir, unix.ENOSPC)
	}
	return nil
}

// uncachedSuffix marks, beside a view's namespace file, a view that could
// not be cached from this mount namespace; it holds the reason.
const uncachedSuffix = ".uncached"

// warnUncached makes the launch enter the view privately, with a warning the
// first time in this mount namespace (a Slurm job's namespace, a login
// session's) and a note afterwards: every launch of a thousand-task job
// would otherwise repeat it. `chos check` reports the marks.
func (res *builderResult) warnUncached(file, warning string) {
	res.Private = true
	mark := strings.TrimSuffix(file, ".mnt") + uncachedSuffix
	f, err := os.OpenFile(mark, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			res.Notes = append(res.Notes, spec.Notef("%s", warning))
			return
		}
	} else {
		f.WriteString(warning + "\n")
		f.Close()
	}
	res.Notes = append(res.Notes, spec.Warning("%s", warning))
}

// Uncached lists why views could not be cached from the namespace whose
// cache directory is dir (the marks warnUncached leaves), one line each.
func Uncached(dir string) []string {
	var out []string
	for _, m := range uncachedMarks(dir, "") {
		if b, err := os.ReadFile(m); err == nil {
			out = append(out, strings.TrimSpace(string(b)))
		}
	}
	return out
}

// uncachedMarks are the marks of views (in dir) and layers (in dir/id)
// whose names start with prefix.
func uncachedMarks(dir, prefix string) []string {
	views, _ := filepath.Glob(filepath.Join(dir, prefix+"*"+uncachedSuffix))
	layers, _ := filepath.Glob(filepath.Join(dir, "id", prefix+"*"+uncachedSuffix))
	return append(views, layers...)
}

// isNamespace says whether file holds a namespace (a published view).
func isNamespace(file string) bool {
	var sfs unix.Statfs_t
	return unix.Statfs(file, &sfs) == nil && sfs.Type == unix.NSFS_MAGIC
}

// lockTree takes the tree's build lock, waiting for it. Who may hold it:
// builders (root's processes no user can signal, which end by themselves
// after builderTimeout) and root's `chos cache drop`; no process of a
// user's. Identity layers are published under it too. Its file and
// directory get their modes from chos, not from anyone's umask.
func lockTree(c *spec.Cache) (*os.File, error) {
	if err := mkdirMode(c.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating cache directory: %w", err)
	}
	return lockFile(lockFileOf(c))
}

// lockFile opens (creating it, mode 0600) and exclusively locks the lock
// file at path. Lock files are removed while others may wait on them
// (cache drop, collection): a lock won on a file no longer at path locks
// nothing, so it is taken again on the file that is there now.
func lockFile(path string) (*os.File, error) {
	for {
		lock, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, fmt.Errorf("opening cache lock: %w", err)
		}
		if err := lock.Chmod(0o600); err != nil {
			lock.Close()
			return nil, fmt.Errorf("opening cache lock: %w", err)
		}
		if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
			lock.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		var held, now unix.Stat_t
		if unix.Fstat(int(lock.Fd()), &held) == nil && unix.Lstat(path, &now) == nil &&
			held.Dev == now.Dev && held.Ino == now.Ino {
			return lock, nil
		}
		lock.Close()
	}
}

// mkdirMode creates dir and its missing parents with exactly mode.
func mkdirMode(dir string, mode os.FileMode) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirMode(parent, mode); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, mode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return os.Chmod(dir, mode)
}

// enterCached joins the namespace kept in file, if there is one.
func enterCached(file string) (bool, error) {
	fd, err := unix.Open(file, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return false, nil // (a broken cache directory holds none either)
	}
	if err != nil {
		return false, fmt.Errorf("opening cached namespace %s: %w", file, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNS); err != nil {
		// Not a namespace (a leftover file of an interrupted publish):
		// build anew, publishing replaces it.
		if errors.Is(err, unix.EINVAL) {
			return false, nil
		}
		return false, fmt.Errorf("entering cached namespace %s: %w", file, err)
	}
	return true, unix.Chdir("/")
}

// NamespaceCacheDir is the cache directory of launches made from the
// calling thread's mount namespace: base/INODE, one per mount namespace.
// A container, a job's private namespace or an `unshare -m` thus keeps a
// cache of its own (its views are built from its own mounts), and never
// claims, enters or disturbs the host's.
func NamespaceCacheDir(base string) (string, error) {
	link, err := os.Readlink("/proc/thread-self/ns/mnt")
	if err != nil {
		return "", fmt.Errorf("reading this mount namespace: %w", err)
	}
	ino, ok := strings.CutPrefix(link, "mnt:[")
	if ino, ok = strings.CutSuffix(ino, "]"); !ok || ino == "" {
		return "", fmt.Errorf("reading this mount namespace: unexpected %q", link)
	}
	return filepath.Join(base, ino), nil
}

func mountID(dir string) (id string, isMountRoot bool, err error) {
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS|unix.STATX_MNT_ID, &stx); err != nil {
		return "", false, fmt.Errorf("inspecting cache directory: %w", err)
	}
	if stx.Mode&unix.S_IFMT != unix.S_IFDIR || stx.Uid != 0 {
		return "", false, fmt.Errorf("cache directory %s must be a directory owned by root", dir)
	}
	isMountRoot = stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
	return fmt.Sprint(stx.Mnt_id), isMountRoot, nil
}

// ownCacheDir makes this namespace's cache directory a private, unbindable
// mount of its own. Namespace files bound below it then never propagate
// into views (which a shared host / would attempt, and fail) and are never
// copied by the recursive binds of / and /run that views make. A directory
// left by a namespace that ended (inode numbers come again) holds only
// plain files: launches find no namespace in them and build anew.
func ownCacheDir(dir string) error {
	if err := mkdirMode(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("creating cache directory: %w", err)
	}
	// Builders of two trees may come here together: one binds. The claim
	// lock is held by builders only (and skipped, never waited for, by
	// collectEnded and `chos cache drop`).
	claim, err := lockFile(dir + ".lock")
	if err != nil {
		return err
	}
	defer claim.Close()
	if err := mkdirMode(dir, 0o755); err != nil {
		return fmt.Errorf("creating cache directory: %w", err)
	}
	if _, isMount, err := mountID(dir); err != nil || isMount {
		return err
	}
	// chos before 0.2 made the parent itself an unbindable mount, in which
	// nothing can be bound: its views are dropped (running processes keep
	// theirs) and the directory is a plain one again.
	if _, isMount, err := mountID(filepath.Dir(dir)); err == nil && isMount {
		if entries, err := ListCache(filepath.Dir(dir)); err == nil {
			for _, e := range entries {
				dropFile(e.File)
			}
		}
		unix.Unmount(filepath.Dir(dir), unix.MNT_DETACH)
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("binding cache directory %s on itself: %w", dir, err)
	}
	if err := unix.Mount("", dir, "", unix.MS_UNBINDABLE, ""); err != nil {
		return fmt.Errorf("making cache directory %s unbindable: %w", dir, err)
	}
	return nil
}

// publish binds the calling thread's (new) namespace on c.File() in the
// host's namespace, drops older namespaces of the same tree, and comes back.
func publish(c *spec.Cache, host *os.File, file string, dropOthers func()) error {
	view, err := os.Open("/proc/thread-self/ns/mnt")
	if err != nil {
		return fmt.Errorf("opening the view's namespace: %w", err)
	}
	defer view.Close()
	if err := unix.Setns(int(host.Fd()), unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("returning to the host namespace: %w", err)
	}
	perr := bindNamespace(view, file)
	if perr == nil {
		dropOthers()
	}
	if err := unix.Setns(int(view.Fd()), unix.CLONE_NEWNS); err != nil {
		// Cannot go on in the host namespace with root's rights: stop.
		panic(fmt.Sprintf("chos: re-entering the view of %s: %v", c.Tree, err))
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	return perr
}

func bindNamespace(view *os.File, file string) error {
	dropFile(file) // a leftover of an interrupted publish
	fd, err := unix.Open(file, unix.O_CREAT|unix.O_EXCL|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("creating %s: %w", file, err)
	}
	unix.Close(fd)
	if err := unix.Mount(fdPath(view), file, "", unix.MS_BIND, ""); err != nil {
		os.Remove(file)
		return fmt.Errorf("binding the namespace on %s: %w", file, err)
	}
	return nil
}

// dropOlderViews drops the other views of c's tree and variant, and every
// identity layer on them: processes in them keep them; no new launch
// enters them.
func dropOlderViews(c *spec.Cache) {
	entries, _ := ListCache(c.Dir)
	for _, e := range entries {
		if e.Stem == spec.Stem(c.Tree) && e.Key != c.FileKey() && spec.VariantOf(e.Key) == c.Variant {
			dropFile(e.File)
			dropLayers(layerDir(c), e.Stem+"."+e.Key+".", "")
		}
	}
}

// CacheEntry is one cached namespace.
type CacheEntry struct {
	File  string
	Stem  string // the tree name as a file name
	Key   string // as the file name has it (spec.Cache.FileKey)
	Built time.Time
	// Mounted: the file holds a namespace in this mount namespace (it is
	// a plain file where the cache is not owned).
	Mounted bool
}

// ListCache lists the cached namespaces in dir.
func ListCache(dir string) ([]CacheEntry, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	var out []CacheEntry
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), ".mnt")
		if !ok {
			continue
		}
		i := strings.LastIndexByte(name, '.')
		if i < 0 {
			continue
		}
		e := CacheEntry{File: filepath.Join(dir, de.Name()), Stem: name[:i], Key: name[i+1:]}
		if fi, err := de.Info(); err == nil {
			e.Built = fi.ModTime()
		}
		var sfs unix.Statfs_t
		e.Mounted = unix.Statfs(e.File, &sfs) == nil && sfs.Type == unix.NSFS_MAGIC
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out, nil
}

// stemPrefix starts the names of a tree's layers ("" for every tree).
func stemPrefix(tree string) string {
	if tree == "" {
		return ""
	}
	return spec.Stem(tree) + "."
}

// DropCache removes the cached namespaces of a tree (all when tree is ""),
// and with all of them the cache directory's own mount, so that the host's
// mount table is as it was before the first launch. Processes running in a
// dropped namespace are not affected.
func DropCache(dir, tree string) error {
	// A builder at work publishes under its tree's lock: wait for it, so
	// that nothing it publishes outlives the drop (builders are root's, and
	// bounded: builderTimeout). The lock files go too, each removed while
	// held (a builder waiting on one takes the next: lockFile).
	locks, _ := filepath.Glob(filepath.Join(dir, stemPrefix(tree)+"*lock"))
	for _, l := range locks {
		f, err := os.OpenFile(l, os.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		defer f.Close()
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			return fmt.Errorf("locking %s: %w", l, err)
		}
		defer os.Remove(l)
	}
	entries, err := ListCache(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if tree == "" || e.Stem == spec.Stem(tree) {
			if err := dropFile(e.File); err != nil {
				errs = append(errs, err)
			}
		}
	}
	dropLayers(filepath.Join(dir, "id"), stemPrefix(tree), "")
	for _, m := range uncachedMarks(dir, stemPrefix(tree)) {
		os.Remove(m)
	}
	if tree != "" || len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting %s: %w", dir, err)
	}
	// What namespaces that ended left (plain files; in a namespace still
	// alive, its cached views are detached and built again there).
	base := filepath.Dir(dir)
	others, _ := os.ReadDir(base)
	for _, o := range others {
		p := filepath.Join(base, o.Name())
		if o.IsDir() && p != dir {
			if _, isMount, err := mountID(p); err == nil && !isMount {
				os.RemoveAll(p)
			}
		} else if strings.HasSuffix(o.Name(), ".lock") && p != dir+".lock" {
			os.Remove(p)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	removeFreeLock(dir + ".lock")
	return nil
}

func dropFile(file string) error {
	if err := unix.Unmount(file, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting %s: %w", file, err)
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", file, err)
	}
	return nil
}
