package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/spec"
)

// cachedState is a cached namespace as `chos cache` and `chos check` see it.
type cachedState struct {
	nsroot.CacheEntry
	tree    *ostree.Tree // nil when no configured tree has this name
	valid   bool
	devices bool // a view with devices, not checked
}

// cacheStates lists the cached namespaces and says which ones a launch
// would enter now: those whose key is the tree's current one.
func (cl *cmdline) cacheStates(cat *ostree.Catalog) ([]cachedState, error) {
	dir, err := cl.inv.Machine.CacheDir()
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
		byStem[spec.Stem(t.Name)] = t
	}
	out := make([]cachedState, 0, len(entries))
	for _, e := range entries {
		s := cachedState{CacheEntry: e, tree: byStem[e.Stem]}
		if s.tree != nil && spec.VariantOf(e.Key) != "" {
			// A view with devices: its key covers spec files a listing
			// does not read; its builder replaces it when they change.
			s.devices = true
		} else if s.tree != nil {
			key, ok := current[e.Stem]
			if !ok {
				key = cl.currentKey(cat, s.tree)
				current[e.Stem] = key
			}
			s.valid = key == e.Key && e.Mounted
		}
		out = append(out, s)
	}
	return out, nil
}

// currentKey is the key a launch of t would look for now ("" if none).
func (cl *cmdline) currentKey(cat *ostree.Catalog, t *ostree.Tree) string {
	if v, err := cl.inv.View(cat, t); err == nil && v.Cache != nil {
		return v.Cache.Key
	}
	return ""
}

func (cl *cmdline) cmdCacheList(_ context.Context, c *cli.Command) error {
	userns := cl.inv.Privilege.UserNS
	if err := cl.drop(); err != nil {
		return err
	}
	if userns {
		fmt.Println("no cache: this chos runs in userns mode, where every launch builds its own view")
		return nil
	}
	cat, _, err := cl.inv.Catalog()
	if err != nil {
		return fail(statusFailed, err)
	}
	states, err := cl.cacheStates(cat)
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
	cl.printImagesInUse(w, cat)
	return w.Flush()
}

func (cl *cmdline) cmdCacheDrop(_ context.Context, c *cli.Command) error {
	if cl.inv.Caller.UID != 0 {
		return fail(statusFailed, fmt.Errorf("only root may drop cached namespaces"))
	}
	if c.NArg() > 1 {
		return fail(statusUsage, fmt.Errorf("usage: chos cache drop [NAME]"))
	}
	tree := ""
	if name := c.Args().First(); name != "" {
		cat, _, err := cl.inv.Catalog()
		if err != nil {
			return fail(statusFailed, err)
		}
		t, ok := cat.Lookup(name)
		if !ok {
			return fail(statusFailed, &ostree.UnknownTreeError{Name: name, From: "argument", Valid: cat.NameList()})
		}
		tree = t.Name
	}
	dir, err := cl.inv.Machine.CacheDir()
	if err == nil {
		err = nsroot.DropCache(dir, tree)
	}
	if err != nil {
		return fail(statusFailed, err)
	}
	return nil
}
