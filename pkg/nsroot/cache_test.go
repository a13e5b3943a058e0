package nsroot

import (
	"errors"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/spec"
)

// A cache on a read-only file system, or one with no free inode, cannot
// take a new view: the launch builds a private one instead.
func TestCacheUnwritable(t *testing.T) {
	for _, tc := range []struct {
		name string
		sfs  unix.Statfs_t
		want error
	}{
		{"writable", unix.Statfs_t{Files: 100, Ffree: 10, Bavail: 10}, nil},
		{"read-only", unix.Statfs_t{Files: 100, Ffree: 10, Flags: unix.ST_RDONLY}, unix.EROFS},
		{"out of inodes", unix.Statfs_t{Files: 100, Ffree: 0, Bavail: 10}, unix.ENOSPC},
		{"no fixed number of inodes (btrfs)", unix.Statfs_t{Files: 0, Ffree: 0, Bavail: 10}, nil},
		// (a file takes an inode only: blocks may run out and views still
		// fit, as on a full tmpfs; the builder falls back if not)
		{"out of blocks", unix.Statfs_t{Files: 100, Ffree: 10, Bavail: 0}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := unwritable("/run/chos", &tc.sfs)
			if (err == nil) != (tc.want == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("unwritable = %v, want %v", err, tc.want)
			}
		})
	}
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Join(dir, "not", "yet")} {
		if err := CacheWritable(&spec.Cache{Dir: d}); err != nil {
			t.Errorf("Writable(%s) = %v", d, err)
		}
	}
}
