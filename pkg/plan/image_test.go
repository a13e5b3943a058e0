package plan

import (
	"reflect"
	"testing"

	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/spec"
)

// imageRequest is request() for tree as an image tree, whose entries a
// plan does not know.
func imageRequest(t *testing.T, tree string) (Request, []spec.Entry) {
	t.Helper()
	r := request(t, tree)
	entries := r.Entries
	r.Entries = nil
	r.Image = &ostree.ImageID{Path: r.Tree.Path, Dev: 1, Ino: 2, Size: 3, Mtime: 4, Ctime: 5}
	return r, entries
}

func TestImageViewMountsTheImageAndBindsItsEntriesFromThere(t *testing.T) {
	r, entries := imageRequest(t, "el7")
	p := build(t, r)
	if _, ok := find(p, "/usr"); ok {
		t.Fatal("the plan binds entries it cannot know before the image is listed")
	}
	img, ok := find(p, ImageDir)
	want := spec.Mount{Op: spec.OpImage, Source: "/os/el7", Target: ImageDir, ReadOnly: true,
		NoSuid: true, NoDev: true, Origin: spec.OriginImage, Why: "image tree"}
	if !ok || !reflect.DeepEqual(img, want) {
		t.Errorf("image step %+v, want %+v", img, want)
	}
	if p.Mounts[0].Target != HostDir || p.Mounts[1].Op != spec.OpImage {
		t.Errorf("the image is not mounted right after the host root: %+v", p.Mounts[:2])
	}
	// What stands for the entries: data, listed where the view is built.
	var step spec.Mount
	for _, m := range p.Mounts {
		if m.Op == spec.OpEntries {
			step = m
		}
	}
	if step.Source != ImageDir || !step.InView || !step.NoSuid || step.Origin != spec.OriginTree {
		t.Fatalf("entries step %+v, want the image's, from the view", step)
	}

	got := spec.ExpandEntries(step, entries)
	at := map[string]spec.Mount{}
	for _, m := range got {
		at[m.Target] = m
	}
	wantUsr := spec.Mount{Op: spec.OpBind, Source: ImageDir + "/usr", InView: true, Target: "/usr", Recursive: true,
		ReadOnly: true, NoSuid: true, NoDev: true, NoFollow: true, Origin: spec.OriginTree, Why: "tree"}
	if !reflect.DeepEqual(at["/usr"], wantUsr) {
		t.Errorf("/usr: %+v, want %+v", at["/usr"], wantUsr)
	}
	if etc := at["/etc"]; etc.Op != spec.OpOverlay || etc.Source != ImageDir+"/etc" || !etc.InView || len(etc.Provide) == 0 {
		t.Errorf("/etc is not an overlay on the image's etc: %+v", etc)
	}
	if bin := at["/bin"]; bin.Op != spec.OpSymlink || bin.Source != "usr/bin" {
		t.Errorf("/bin: %+v", bin)
	}
	if _, ok := at["/proc"]; ok {
		t.Errorf("the image's /proc is bound over the host's: %+v", got)
	}
	// The same steps as the directory tree's, but from the view.
	dir := build(t, request(t, "el7"))
	for target, m := range at {
		d, _ := find(dir, target)
		d.Source = ImageDir + d.Source[len("/os/el7"):]
		if d.Op != spec.OpSymlink {
			d.InView = true
		} else {
			d.Source = m.Source
		}
		if !reflect.DeepEqual(m, d) {
			t.Errorf("%s: from the image %+v, from the directory %+v", target, m, d)
		}
	}
	// Control: the directory tree binds host paths, under another key.
	if usr, _ := find(dir, "/usr"); usr.InView || usr.Source != "/os/el7/usr" {
		t.Errorf("directory tree /usr: %+v", usr)
	}
	if CacheKey("d", &dir.View, nil) == CacheKey("d", &p.View, nil) {
		t.Error("an image tree and a directory tree share a cache key")
	}
}

func TestImageOfASetuidTreeKeepsSetuid(t *testing.T) {
	r, _ := imageRequest(t, "suid")
	p := build(t, r)
	if img, _ := find(p, ImageDir); img.NoSuid || !img.NoDev || !img.ReadOnly {
		t.Errorf("setuid = allow image: %+v", img)
	}
	for _, m := range p.Mounts {
		if m.Op == spec.OpEntries && m.NoSuid {
			t.Errorf("setuid = allow image's entries: %+v", m)
		}
	}
}

func TestImageFromInsideAViewRunsItsServerFromTheHost(t *testing.T) {
	r, _ := imageRequest(t, "el7")
	r.HostPrefix = HostDir
	p := build(t, r)
	img, _ := find(p, ImageDir)
	if img.Source != HostDir+"/os/el7" || img.HostRoot != HostDir {
		t.Errorf("image step from inside a view: %+v", img)
	}
}
