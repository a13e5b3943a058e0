package nsroot

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
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

// A tree's views with devices are kept beside its plain view: a new build
// replaces the views of its own variant only, and dropping the tree drops
// them all.
func TestCacheVariantsReplaceOnlyTheirOwn(t *testing.T) {
	files := []string{"el7.k1.mnt", "el7.devaaa-k2.mnt", "el7.devbbb-k3.mnt", "el9.k4.mnt", "el9.devaaa-k5.mnt"}
	for _, tc := range []struct {
		name string
		c    spec.Cache
		file string   // the cache's own file
		left []string // what a build of it leaves
	}{
		{"plain view", spec.Cache{Tree: "el7", Key: "k9"}, "el7.k9.mnt",
			[]string{"el7.devaaa-k2.mnt", "el7.devbbb-k3.mnt", "el9.devaaa-k5.mnt", "el9.k4.mnt"}},
		{"a variant", spec.Cache{Tree: "el7", Variant: "devaaa", Key: "k9"}, "el7.devaaa-k9.mnt",
			[]string{"el7.devbbb-k3.mnt", "el7.k1.mnt", "el9.devaaa-k5.mnt", "el9.k4.mnt"}},
		{"the same key again (control: nothing dropped)", spec.Cache{Tree: "el7", Variant: "devbbb", Key: "k3"}, "el7.devbbb-k3.mnt", files},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range files {
				os.WriteFile(filepath.Join(dir, f), nil, 0o600)
			}
			tc.c.Dir = dir
			if got := filepath.Base(tc.c.File()); got != tc.file {
				t.Errorf("File() = %s, want %s", got, tc.file)
			}
			dropOlderViews(&tc.c)
			entries, _ := ListCache(dir)
			var left []string
			for _, e := range entries {
				left = append(left, filepath.Base(e.File))
				if e.Stem != "el7" && e.Stem != "el9" {
					t.Errorf("%s: stem %q, want the tree's", e.File, e.Stem)
				}
			}
			want := slices.Clone(tc.left)
			slices.Sort(want)
			if !slices.Equal(left, want) {
				t.Errorf("left %v, want %v", left, want)
			}
		})
	}
	for key, want := range map[string]string{"k1": "", "devaaa-k2": "devaaa", "": ""} {
		if got := spec.VariantOf(key); got != want {
			t.Errorf("VariantOf(%q) = %q, want %q", key, got, want)
		}
	}
	// dropping a tree drops its variants, and only its own
	dir := t.TempDir()
	for _, f := range files {
		os.WriteFile(filepath.Join(dir, f), nil, 0o600)
	}
	if err := DropCache(dir, "el7"); err != nil {
		t.Fatal(err)
	}
	entries, _ := ListCache(dir)
	if len(entries) != 2 || entries[0].Stem != "el9" || entries[1].Stem != "el9" {
		t.Errorf("after dropping el7: %+v", entries)
	}
}
