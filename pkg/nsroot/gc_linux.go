package nsroot

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// CollectStale drops the cached namespaces in dir of trees that are no
// longer configured (configured says, by a tree's file stem, whether it
// still is), with their identity layers, and returns the files dropped. dir
// is this mount namespace's cache directory (NamespaceCacheDir); it does
// nothing before a launch has made it a mount here.
//
// It takes no lock, so that a launching process, which its user can stop,
// never holds one (see builder_linux.go). Racing with a builder that
// publishes a tree just added back costs at most one more build: unmount
// and unlink are each atomic, and a file left unmounted is rebuilt over.
// With locks (root's own processes only: `chos check`), it also removes the
// lock files of those trees, each under its lock, skipping any held, and
// what namespaces that ended left (collectEnded).
func CollectStale(dir string, configured func(stem string) bool, locks bool) ([]string, error) {
	if locks {
		collectEnded(filepath.Dir(dir))
	}
	if _, isMount, err := mountID(dir); err != nil || !isMount {
		return nil, nil
	}
	entries, err := ListCache(dir)
	if err != nil {
		return nil, err
	}
	var dropped []string
	var errs []error
	for _, e := range entries {
		if configured(e.Stem) {
			continue
		}
		if err := dropFile(e.File); err != nil {
			errs = append(errs, err)
			continue
		}
		dropLayers(filepath.Join(dir, "id"), e.Stem+".", "")
		dropped = append(dropped, e.File)
	}
	if locks {
		des, _ := os.ReadDir(dir)
		for _, de := range des {
			if stem, ok := strings.CutSuffix(de.Name(), ".lock"); ok && !configured(stem) {
				removeFreeLock(filepath.Join(dir, de.Name()))
			}
		}
	}
	return dropped, errors.Join(errs...)
}

// removeFreeLock unlinks a lock file that nobody holds, while holding it.
func removeFreeLock(file string) {
	f, err := os.OpenFile(file, os.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
		os.Remove(file)
	}
}

// collectEnded removes what mount namespaces that ended left in base (the
// cache's ns directory): their directories INODE, which hold only plain
// files once the namespace is gone, and their claim locks INODE.lock. A
// namespace counts as alive while a process is in it (/proc/PID/ns/mnt,
// which root reads for every process) or its directory is a mount here
// (this namespace's own, or one it inherited). A namespace kept alive only
// by a bind of its namespace file (a Slurm job's, between steps) loses its
// cached views to this: its next launch builds them again. Claims held by
// a builder are skipped, never waited for. Root's only: builders and
// `chos check`.
func collectEnded(base string) {
	des, err := os.ReadDir(base)
	if err != nil {
		return
	}
	live := liveMountNamespaces()
	for _, de := range des {
		ino, isLock := strings.CutSuffix(de.Name(), ".lock")
		if _, err := strconv.ParseUint(ino, 10, 64); err != nil || live[ino] {
			continue
		}
		dir := filepath.Join(base, ino)
		if isLock {
			if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
				removeFreeLock(dir + ".lock")
			}
			continue
		}
		if _, isMount, err := mountID(dir); err != nil || isMount {
			continue
		}
		removeEnded(dir)
	}
}

// removeEnded removes the directory of an ended namespace, and its claim
// lock, under that lock.
func removeEnded(dir string) {
	claim, err := os.OpenFile(dir+".lock", os.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == nil {
		defer claim.Close()
		if unix.Flock(int(claim.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			return // a builder of a new namespace with that number
		}
	}
	if os.RemoveAll(dir) == nil && claim != nil {
		os.Remove(dir + ".lock")
	}
}

// liveMountNamespaces are the inode numbers of the mount namespaces that
// processes are in.
func liveMountNamespaces() map[string]bool {
	live := map[string]bool{}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if p.Name()[0] < '0' || p.Name()[0] > '9' {
			continue
		}
		link, err := os.Readlink("/proc/" + p.Name() + "/ns/mnt")
		if err != nil {
			continue
		}
		if ino, ok := strings.CutPrefix(link, "mnt:["); ok {
			live[strings.TrimSuffix(ino, "]")] = true
		}
	}
	return live
}
