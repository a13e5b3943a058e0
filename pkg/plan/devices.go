package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
	"strings"

	"github.com/chos-hpc/chos/pkg/config"
	"github.com/chos-hpc/chos/pkg/devices"
	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/ostree"
)

// DeviceRequest is the CDI devices a launch asks for (package devices).
// What they are, Edits, is the same for every user who asks for them: it
// is part of the view. A launch that enters a cached view needs none of it
// (the stamps of the spec files stand for it in the key): Resolve, which
// reads the specs, runs only where the view is built.
type DeviceRequest struct {
	Names   []string // qualified names, sorted
	Edits   *devices.Edits
	Resolve func() (*devices.Edits, error)
	// Stamps identify the spec files (devices.SpecFile.Stamp), for the
	// cache key.
	Stamps []string
}

// AddedRoot holds, in a view with devices, what the view adds to the
// tree's other top-level directories, as AddedDir does for /etc: the top
// layers of their overlays (/.chos/add/usr on the tree's /usr).
const AddedRoot = "/.chos/add"

// WhyLoader marks the loader cache made for a view with devices.
const WhyLoader = "the devices' libraries for the tree's loader"

// DeviceVariant names the cached view of a tree with these devices: views
// with other devices, and the tree's plain view, are kept beside it.
func DeviceVariant(names []string) string {
	if len(names) == 0 {
		return ""
	}
	h := sha256.Sum256([]byte(strings.Join(names, "\x00")))
	return "dev" + hex.EncodeToString(h[:])[:12]
}

// deviceSteps is where a view puts the devices' edits.
type deviceSteps struct {
	// provide are the mount points and links made in the overlay of each
	// top-level directory of the tree ("etc" included).
	provide map[string][]nsroot.Provision
	loader  *nsroot.Mount  // the loader cache; nil without update-ldcache
	last    []nsroot.Mount // links on the view's root, binds, the environment
	notes   []string
}

// placeDevices decides how the view shows e: a host path at its container
// path, through the overlay of the tree's top-level directory it lies in
// (the tree is never written), on the view's own root where the tree has
// no such directory, or not at all where a host bind already shows that
// very path (/dev, /run). Links likewise. The libraries of the loader
// directories go into the loader cache made for the view.
func placeDevices(r ViewRequest, t *ostree.Tree, binds []config.Bind, host func(string) string) *deviceSteps {
	e := r.Devices.Edits
	ds := &deviceSteps{provide: map[string][]nsroot.Provision{}}
	dirs := map[string]bool{}
	for _, en := range r.Entries {
		if en.Kind == ostree.Dir {
			dirs[en.Name] = true
		}
	}
	loaderDirs := map[string]bool{}
	for _, d := range e.LoaderDirs {
		loaderDirs[resolveTop(d, r.Entries)] = true
	}
	var libs []nsroot.Provision
	var links, binding []nsroot.Mount
	for _, l := range e.Links {
		p := resolveTop(l.Path, r.Entries)
		if b, rel, ok := hostBindFor(p, binds); ok {
			ds.notes = append(ds.notes, "link "+l.Path+" of "+l.Device+" not made: "+path.Join(b.Dest, rel)+" is the host's ("+b.Dest+" is bound from the host)")
			continue
		}
		if top := topOf(p); dirs[top] {
			ds.provide[top] = append(ds.provide[top], nsroot.Provision{Path: p, Link: l.Target})
			continue
		}
		links = append(links, nsroot.Mount{Op: nsroot.OpSymlink, Source: l.Target, Target: p, Why: why2(l.Device, l.Spec)})
	}
	for _, m := range e.Mounts {
		p := resolveTop(m.Path, r.Entries)
		if b, rel, ok := hostBindFor(p, binds); ok && path.Join(b.Source, rel) == m.Host {
			ds.notes = append(ds.notes, m.Path+" of "+m.Device+" is shown by the bind of "+b.Dest)
			continue
		}
		lib := loaderDirs[path.Dir(p)] && isLibraryName(path.Base(p))
		top := topOf(p)
		onTree := dirs[top] && !coveredBy(top, binds)
		if onTree && path.Dir(p) != "/" {
			ds.provide[top] = append(ds.provide[top], nsroot.Provision{Path: p, Source: host(m.Host), Soname: lib})
		}
		if lib {
			// Soname on a library the view's root holds: linked there
			// by the loader cache's step (the overlay links the others).
			libs = append(libs, nsroot.Provision{Path: p, Source: host(m.Host), Soname: !onTree})
		}
		binding = append(binding, nsroot.Mount{
			Op: nsroot.OpBind, Source: host(m.Host), Target: p, Recursive: m.Recursive,
			ReadOnly: m.ReadOnly, NoSuid: true, NoDev: true, Why: why2(m.Device, m.Spec),
		})
	}
	if len(e.LoaderDirs) > 0 {
		src := nsroot.Mount{Source: host(t.Path)}
		if r.Image != nil {
			src = nsroot.Mount{Source: ImageDir, InView: true}
		}
		ds.loader = &nsroot.Mount{Op: nsroot.OpLoaderCache, Source: src.Source, InView: src.InView,
			Target: path.Join(AddedDir, "ld.so.cache"), Provide: libs, Why: WhyLoader}
		if !dirs["etc"] {
			ds.notes = append(ds.notes, "tree "+t.Name+" has no /etc: its loader cannot be shown the devices' libraries")
		}
	}
	ds.last = append(append(links, binding...), nsroot.Mount{
		Op: nsroot.OpFile, Source: nsroot.EnvFileContent(e.Env), Target: nsroot.DeviceEnvFile, Why: "the devices' environment",
	})
	ds.notes = append(ds.notes, e.Notes...)
	return ds
}

// resolveTop resolves a path's top-level link as the tree has it (/lib ->
// usr/lib in a merged-/usr tree): where the path then lies in the view.
func resolveTop(p string, entries []ostree.Entry) string {
	for i := 0; i < 8; i++ {
		top, rest, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
		var link *ostree.Entry
		for j := range entries {
			if entries[j].Name == top && entries[j].Kind == ostree.Symlink {
				link = &entries[j]
			}
		}
		if link == nil {
			return p
		}
		p = path.Join("/", link.Target, rest)
	}
	return p
}

// hostBindFor finds the host bind that shows p: the deepest whose
// destination is p or above it; rel is p below it.
func hostBindFor(p string, binds []config.Bind) (config.Bind, string, bool) {
	var best config.Bind
	found := false
	for _, b := range binds {
		if (p == b.Dest || strings.HasPrefix(p, b.Dest+"/")) && (!found || len(b.Dest) > len(best.Dest)) {
			best, found = b, true
		}
	}
	if !found {
		return best, "", false
	}
	return best, strings.TrimPrefix(strings.TrimPrefix(p, best.Dest), "/"), true
}

// coveredBy says whether a host bind replaces the tree's top-level entry.
func coveredBy(top string, binds []config.Bind) bool {
	for _, b := range binds {
		if b.Dest == "/"+top {
			return true
		}
	}
	return false
}

func topOf(p string) string {
	top, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	return top
}

// isLibraryName says whether ldconfig looks at a file of that name: lib*
// or ld-* with .so in it (glibc elf/ldconfig.c, search_dir).
func isLibraryName(n string) bool {
	return (strings.HasPrefix(n, "lib") || strings.HasPrefix(n, "ld-")) && strings.Contains(n, ".so")
}

func why2(device, spec string) string { return "device " + device + ", " + spec }
