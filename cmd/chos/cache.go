package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/chos-hpc/chos/pkg/build"
	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/plan"
)

// cacheDir is where launches from this mount namespace keep their views
// (CACHEDIR/ns/INODE: every mount namespace has a cache of its own). When
// the namespace cannot be told, there is none: a directory shared by such
// namespaces would undo the separation.
func (st *state) cacheDir() (string, error) {
	if st.nsCacheDir == "" {
		dir, err := nsroot.NamespaceCacheDir(filepath.Join(build.CacheDir, "ns"))
		if err != nil {
			return "", fmt.Errorf("finding this mount namespace's cache: %w", err)
		}
		st.nsCacheDir = dir
	}
	return st.nsCacheDir, nil
}

// cachedState is a cached namespace as `chos cache` and `chos check` see it.
type cachedState struct {
	nsroot.CacheEntry
	tree    *ostree.Tree // nil when no configured tree has this name
	valid   bool
	devices bool // a view with devices, not checked
}

// cacheStates lists the cached namespaces and says which ones a launch
// would enter now: those whose key is the tree's current one.
func (st *state) cacheStates(cat *ostree.Catalog) ([]cachedState, error) {
	dir, err := st.cacheDir()
	if err != nil {
		return nil, err
	}
	entries, err := nsroot.ListCache(dir)
	if err != nil {
		return nil, err
	}
	current := map[string]string{} // stem -> current key
	byStem := map[string]*ostree.Tree{}
	for _, t := range cat.Trees {
		byStem[nsroot.StemOf(t.Name)] = t
	}
	out := make([]cachedState, 0, len(entries))
	for _, e := range entries {
		s := cachedState{CacheEntry: e, tree: byStem[e.Stem]}
		if s.tree != nil && nsroot.VariantOf(e.Key) != "" {
			// A view with devices: its key covers spec files a listing
			// does not read; its builder replaces it when they change.
			s.devices = true
		} else if s.tree != nil {
			key, ok := current[e.Stem]
			if !ok {
				key = st.currentKey(cat, s.tree)
				current[e.Stem] = key
			}
			s.valid = key == e.Key && e.Mounted
		}
		out = append(out, s)
	}
	return out, nil
}

// currentKey is the key a launch of t would look for now ("" if none).
func (st *state) currentKey(cat *ostree.Catalog, t *ostree.Tree) string {
	req, err := st.viewRequest(cat, t)
	if err != nil {
		return ""
	}
	v := plan.View(req)
	if c := st.cacheFor(cat, t, &v, nil); c != nil {
		return c.Key
	}
	return ""
}

func (st *state) cmdCacheList(_ context.Context, c *cli.Command) error {
	userns := st.userns
	if err := st.dropPrivilege(); err != nil {
		return err
	}
	if userns {
		fmt.Println("no cache: this chos runs in userns mode, where every launch builds its own view")
		return nil
	}
	cat, err := st.catalog()
	if err != nil {
		return fail(statusFailed, err)
	}
	states, err := st.cacheStates(cat)
	if err != nil {
		return fail(statusFailed, err)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TREE\tAGE\tSTATE\tFILE")
	for _, s := range states {
		name, state := s.Stem, "stale: no such tree any more"
		if s.tree != nil {
			name, state = s.tree.Name, "stale: configuration or tree changed since"
			if !s.Mounted {
				state = "not a namespace in this mount namespace"
			}
			if s.valid {
				state = "valid"
			}
			if s.devices && s.Mounted {
				name, state = s.tree.Name+" (devices)", "with devices: rebuilt when its spec files change"
			}
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", name, time.Since(s.Built).Round(time.Second), state, s.File)
	}
	st.printImagesInUse(w, cat)
	return w.Flush()
}

func (st *state) cmdCacheDrop(_ context.Context, c *cli.Command) error {
	if st.uid != 0 {
		return fail(statusFailed, fmt.Errorf("only root may drop cached namespaces"))
	}
	if c.NArg() > 1 {
		return fail(statusUsage, fmt.Errorf("usage: chos cache drop [NAME]"))
	}
	tree := ""
	if name := c.Args().First(); name != "" {
		cat, err := st.catalog()
		if err != nil {
			return fail(statusFailed, err)
		}
		t, ok := cat.Lookup(name)
		if !ok {
			return fail(statusFailed, &ostree.UnknownTreeError{Name: name, From: "argument", Valid: cat.NameList()})
		}
		tree = t.Name
	}
	dir, err := st.cacheDir()
	if err == nil {
		err = nsroot.DropCache(dir, tree)
	}
	if err != nil {
		return fail(statusFailed, err)
	}
	return nil
}
