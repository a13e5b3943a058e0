package nsroot

import (
	"errors"
	"os"
	"path/filepath"
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
// lock files of those trees, each under its lock, skipping any held.
func CollectStale(dir string, configured func(stem string) bool, locks bool) ([]string, error) {
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
