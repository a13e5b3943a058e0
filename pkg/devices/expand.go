package devices

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/chos-hpc/chos/pkg/spec"
)

// Complete reads the specs of the devices of v (v.Devices) and replaces
// v's spec.OpDevices step by the steps that show them (Expand): what the
// launch that builds a view with devices does, and only it. With asRoot
// (chos holds root's rights) the reader runs with every id 0 (see
// Helper). The notes say what was not performed, and why. A view without
// such a step is left as it is.
func Complete(v *spec.View, asRoot bool) ([]spec.Note, error) {
	i := slices.IndexFunc(v.Mounts, func(m spec.Mount) bool { return m.Op == spec.OpDevices })
	if i < 0 {
		return nil, nil
	}
	if v.Devices == nil {
		return nil, fmt.Errorf("a devices step without devices")
	}
	e, err := Read(v.Devices, v.Mounts[i].HostRoot, asRoot)
	if err != nil {
		return nil, err
	}
	return Expand(v, e), nil
}

// Read resolves the devices of d in their spec files (with d's Reader),
// interprets their edits (Interpret) and checks that the host's /dev,
// seen below hostRoot, has their nodes.
func Read(d *spec.Devices, hostRoot string, asRoot bool) (*Edits, error) {
	h := Helper{Path: d.Reader, AsRoot: asRoot, Trusted: d.Trusted}
	found, err := h.Resolve(d.SpecDirs, d.Names)
	if err != nil {
		return nil, err
	}
	e, err := Interpret(found)
	if err != nil {
		return nil, err
	}
	return e, CheckNodes(e.Nodes, hostRoot)
}

// WhyLoader marks the loader cache made for a view with devices.
const WhyLoader = "the devices' libraries for the tree's loader"

// Expand replaces v's spec.OpDevices step by the steps that show e, and
// says what it leaves out. A host path appears at its container path
// through an overlay of the tree's top-level directory it lies in (the
// tree is never written: the directory's bind becomes an overlay, /etc's
// overlay gets more), on the view's own root where the tree has no such
// directory, or not at all where a host bind already shows that very path
// (/dev, /run). Links likewise. The libraries of the loader directories
// go into a loader cache made for the view (before /etc's overlay, whose
// top layer shows it). The binds, links and the environment file take
// the step's place, last. Everything it adds or changes is OriginDevice.
func Expand(v *spec.View, e *Edits) []spec.Note {
	di := slices.IndexFunc(v.Mounts, func(m spec.Mount) bool { return m.Op == spec.OpDevices })
	if di < 0 {
		return nil
	}
	step := v.Mounts[di]
	host := func(p string) string { return path.Join("/", step.HostRoot, p) }
	tv := readTree(v.Mounts)
	var notes []spec.Note

	loaderDirs := map[string]bool{}
	for _, d := range e.LoaderDirs {
		loaderDirs[tv.resolveTop(d)] = true
	}
	provide := map[string][]spec.Provision{}
	var libs []spec.Provision
	var links, binds []spec.Mount
	for _, l := range e.Links {
		p := tv.resolveTop(l.Path)
		if b, rel, ok := tv.hostBindFor(p); ok {
			notes = append(notes, spec.Notef("link %s of %s not made: %s is the host's (%s is bound from the host)", l.Path, l.Device, path.Join(b.Target, rel), b.Target))
			continue
		}
		if _, onTree := tv.dirs[topOf(p)]; onTree {
			top := topOf(p)
			provide[top] = append(provide[top], spec.Provision{Path: p, Link: l.Target})
			continue
		}
		links = append(links, spec.Mount{Op: spec.OpSymlink, Source: l.Target, Target: p, Origin: spec.OriginDevice, Why: why(l.Device, l.Spec)})
	}
	for _, m := range e.Mounts {
		p := tv.resolveTop(m.Path)
		if b, rel, ok := tv.hostBindFor(p); ok && path.Join(b.Source, rel) == host(m.Host) {
			notes = append(notes, spec.Notef("%s of %s is shown by the bind of %s", m.Path, m.Device, b.Target))
			continue
		}
		lib := loaderDirs[path.Dir(p)] && isLibraryName(path.Base(p))
		top := topOf(p)
		_, onTree := tv.dirs[top]
		if onTree && path.Dir(p) != "/" {
			provide[top] = append(provide[top], spec.Provision{Path: p, Source: host(m.Host), Soname: lib})
		}
		if lib {
			// Soname on a library the view's root holds: linked there by
			// the loader cache's step (the overlay links the others).
			libs = append(libs, spec.Provision{Path: p, Source: host(m.Host), Soname: !onTree})
		}
		binds = append(binds, spec.Mount{
			Op: spec.OpBind, Source: host(m.Host), Target: p, Recursive: m.Recursive,
			ReadOnly: m.ReadOnly, NoSuid: true, NoDev: true, Origin: spec.OriginDevice, Why: why(m.Device, m.Spec),
		})
	}
	for _, n := range e.Notes {
		notes = append(notes, spec.Notef("%s", n))
	}

	ms := make([]spec.Mount, 0, len(v.Mounts)+len(links)+len(binds)+2)
	etcAdded, etcAt := path.Join(step.Added, "etc"), -1
	for i, m := range v.Mounts {
		if i == di {
			continue
		}
		name, ok := tv.dirOf(i)
		if ok && name == "etc" && m.Op == spec.OpOverlay {
			etcAdded, etcAt = m.Added, len(ms)
		}
		if ok && len(provide[name]) > 0 {
			if m.Op == spec.OpBind { // (an overlay already: /etc)
				m = spec.Mount{Op: spec.OpOverlay, Source: m.Source, InView: m.InView, Added: path.Join(step.Added, name),
					Target: m.Target, ReadOnly: true, NoSuid: m.NoSuid, NoDev: true, Why: m.Why}
			}
			m.Provide = append(slices.Clone(m.Provide), provide[name]...)
			m.Origin = spec.OriginDevice
			m.Why += ", with the devices' files"
		}
		ms = append(ms, m)
	}
	if len(e.LoaderDirs) > 0 {
		loader := spec.Mount{Op: spec.OpLoaderCache, Source: step.Source, InView: step.InView,
			Target: path.Join(etcAdded, "ld.so.cache"), Provide: libs, Origin: spec.OriginDevice, Why: WhyLoader}
		if etcAt < 0 {
			notes = append(notes, spec.Notef("tree %s has no /etc: its loader cannot be shown the devices' libraries", v.Tree))
			etcAt = len(ms)
		}
		ms = slices.Insert(ms, etcAt, loader)
	}
	ms = append(append(ms, links...), binds...)
	ms = append(ms, spec.Mount{Op: spec.OpFile, Source: spec.DeviceEnvContent(e.Env), Target: spec.DeviceEnvFile,
		Origin: spec.OriginDevice, Why: "the devices' environment"})
	v.Mounts = ms
	return notes
}

// treeView is what Expand needs to know of the steps before it: the
// tree's top-level directories and links, and the host binds.
type treeView struct {
	mounts []spec.Mount
	dirs   map[string]int    // a directory of the tree -> its step
	links  map[string]string // a link of the tree -> its content
	binds  []spec.Mount
}

func readTree(ms []spec.Mount) treeView {
	tv := treeView{mounts: ms, dirs: map[string]int{}, links: map[string]string{}}
	for i, m := range ms {
		name, top := strings.CutPrefix(m.Target, "/")
		top = top && name != "" && !strings.Contains(name, "/")
		switch {
		case m.Origin == spec.OriginBind && m.Op == spec.OpBind:
			tv.binds = append(tv.binds, m)
		case !top || m.Origin != spec.OriginTree:
		case m.Op == spec.OpOverlay || (m.Op == spec.OpBind && m.Recursive):
			tv.dirs[name] = i
		case m.Op == spec.OpSymlink:
			tv.links[name] = m.Source
		}
	}
	return tv
}

// dirOf names the tree's top-level directory step i shows, if it shows one.
func (tv treeView) dirOf(i int) (string, bool) {
	name := strings.TrimPrefix(tv.mounts[i].Target, "/")
	j, ok := tv.dirs[name]
	return name, ok && j == i
}

// resolveTop resolves a path's top-level link as the tree has it (/lib ->
// usr/lib in a merged-/usr tree): where the path then lies in the view.
func (tv treeView) resolveTop(p string) string {
	for i := 0; i < 8; i++ {
		top, rest, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
		target, ok := tv.links[top]
		if !ok {
			return p
		}
		p = path.Join("/", target, rest)
	}
	return p
}

// hostBindFor finds the host bind that shows p: the deepest whose
// destination is p or above it; rel is p below it.
func (tv treeView) hostBindFor(p string) (spec.Mount, string, bool) {
	var best spec.Mount
	found := false
	for _, b := range tv.binds {
		if (p == b.Target || strings.HasPrefix(p, b.Target+"/")) && (!found || len(b.Target) > len(best.Target)) {
			best, found = b, true
		}
	}
	if !found {
		return best, "", false
	}
	return best, strings.TrimPrefix(strings.TrimPrefix(p, best.Target), "/"), true
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

func why(device, spec string) string { return "device " + device + ", " + spec }
