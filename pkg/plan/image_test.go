package plan

import (
	"reflect"
	"testing"

	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/ostree"
)

// imageRequest is request() for el7 as an image tree whose entries are
// listed only when asked (and counted).
func imageRequest(t *testing.T, tree string, listed *int) Request {
	t.Helper()
	r := request(t, tree)
	entries := r.Entries
	r.Entries = nil
	r.Image = &ostree.ImageID{Path: r.Tree.Path, Dev: 1, Ino: 2, Size: 3, Mtime: 4, Ctime: 5}
	r.ListEntries = func() ([]ostree.Entry, error) { *listed++; return entries, nil }
	return r
}

func TestImageViewMountsTheImageAndBindsItsEntriesFromThere(t *testing.T) {
	listed := 0
	r := imageRequest(t, "el7", &listed)
	p := build(t, r)
	if listed != 0 {
		t.Fatalf("building the plan listed the image %d times; only building the view may", listed)
	}
	if _, ok := find(p, "/usr"); ok {
		t.Fatal("the plan binds entries before the image was listed")
	}
	img, ok := find(p, ImageDir)
	want := nsroot.Mount{Op: nsroot.OpImage, Source: "/os/el7", Target: ImageDir, ReadOnly: true,
		NoSuid: true, NoDev: true, Why: WhyImage}
	if !ok || !reflect.DeepEqual(img, want) {
		t.Errorf("image step %+v, want %+v", img, want)
	}
	if p.Mounts[0].Target != HostDir || p.Mounts[1].Op != nsroot.OpImage {
		t.Errorf("the image is not mounted right after the host root: %+v", p.Mounts[:2])
	}
	key := CacheKey("d", &p.View, nil)

	if err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := p.Finish(); err != nil || listed != 1 {
		t.Fatalf("Finish listed the image %d times (err %v), want once", listed, err)
	}
	usr, _ := find(p, "/usr")
	wantUsr := nsroot.Mount{Op: nsroot.OpBind, Source: ImageDir + "/usr", InView: true, Target: "/usr", Recursive: true,
		ReadOnly: true, NoSuid: true, NoDev: true, NoFollow: true, Why: WhyTree}
	if !reflect.DeepEqual(usr, wantUsr) {
		t.Errorf("/usr: %+v, want %+v", usr, wantUsr)
	}
	etc, _ := find(p, "/etc")
	if etc.Op != nsroot.OpOverlay || etc.Source != ImageDir+"/etc" || !etc.InView {
		t.Errorf("/etc is not an overlay on the image's etc: %+v", etc)
	}
	if bin, _ := find(p, "/bin"); bin.Op != nsroot.OpSymlink || bin.Source != "usr/bin" {
		t.Errorf("/bin: %+v", bin)
	}
	for _, m := range p.Mounts {
		if m.InView && m.Op == nsroot.OpBind && m.Why != WhyTree {
			t.Errorf("a host bind from the view: %+v", m)
		}
	}

	// Control: the same tree as a directory binds host paths.
	dir := build(t, request(t, "el7"))
	if usr, _ := find(dir, "/usr"); usr.InView || usr.Source != "/os/el7/usr" {
		t.Errorf("directory tree /usr: %+v", usr)
	}
	if CacheKey("d", &dir.View, nil) == key {
		t.Error("an image tree and a directory tree share a cache key")
	}
}

func TestImageOfASetuidTreeKeepsSetuid(t *testing.T) {
	listed := 0
	p := build(t, imageRequest(t, "suid", &listed))
	if img, _ := find(p, ImageDir); img.NoSuid || !img.NoDev || !img.ReadOnly {
		t.Errorf("setuid = allow image: %+v", img)
	}
}

func TestImageFromInsideAViewRunsItsServerFromTheHost(t *testing.T) {
	listed := 0
	r := imageRequest(t, "el7", &listed)
	r.HostPrefix = HostDir
	p := build(t, r)
	img, _ := find(p, ImageDir)
	if img.Source != HostDir+"/os/el7" || img.HostRoot != HostDir {
		t.Errorf("image step from inside a view: %+v", img)
	}
}
