package spec

import (
	"path"
	"slices"
)

// OpEntries stands for the steps that show each top-level entry of the
// tree whose root is Source: ExpandEntries turns it into them once the
// entries are listed. A plan lists a directory tree's entries itself; an
// image tree's are listed only by the launch that builds its view (the key
// of a cached view covers the image's identity instead), after its OpImage
// step has mounted the image on Source (InView).
const OpEntries Op = "entries"

// EntryKind is the type of a top-level entry of a tree.
type EntryKind int

const (
	DirEntry EntryKind = iota
	FileEntry
	LinkEntry
)

// Entry is a top-level entry of a tree: each is bound into the view on its
// own so that the view's root stays a tmpfs only chos writes to.
type Entry struct {
	Name   string
	Kind   EntryKind
	Target string // of a link
}

// ExpandEntries is what the OpEntries step m makes of a tree's entries: a
// link recreated as a link (so that it resolves inside the view), etc
// shown through an overlay with the view's Added files (and the mount
// points m.Provide), every other entry bound read-only with m's NoSuid,
// none of those m.Except names (a host bind covers them).
func ExpandEntries(m Mount, entries []Entry) []Mount {
	ms := make([]Mount, 0, len(entries))
	for _, e := range entries {
		if slices.Contains(m.Except, e.Name) {
			continue
		}
		source, target := path.Join(m.Source, e.Name), "/"+e.Name
		switch {
		case e.Name == "etc" && e.Kind == DirEntry:
			ms = append(ms, Mount{Op: OpOverlay, Source: source, InView: m.InView, Added: m.Added, Target: target,
				ReadOnly: true, NoSuid: m.NoSuid, NoDev: true, Provide: m.Provide, Origin: OriginTree, Why: m.Why})
		case e.Kind == LinkEntry:
			ms = append(ms, Mount{Op: OpSymlink, Source: e.Target, Target: target, Origin: OriginTree, Why: m.Why})
		default:
			ms = append(ms, Mount{Op: OpBind, Source: source, InView: m.InView, Target: target,
				Recursive: e.Kind == DirEntry, ReadOnly: true, NoSuid: m.NoSuid, NoDev: true, NoFollow: true,
				Origin: OriginTree, Why: m.Why})
		}
	}
	return ms
}
