package devices

import (
	"slices"
	"strings"
	"testing"

	"github.com/chos-hpc/chos/pkg/config"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/plan"
	"github.com/chos-hpc/chos/pkg/spec"
)

// gpuEdits are edits as nvidia-ctk writes them on a Debian host, plus a
// vendor library in a directory trees lack.
func gpuEdits() *Edits {
	dev, spec := "nvidia.com/gpu=0", "/etc/cdi/nvidia.yaml"
	m := func(host, path string) Mount {
		return Mount{Host: host, Path: path, ReadOnly: true, Device: dev, Spec: spec}
	}
	return &Edits{
		Mounts: []Mount{
			m("/usr/lib/x86_64-linux-gnu/libcuda.so.550.54", "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54"),
			m("/usr/bin/nvidia-smi", "/usr/bin/nvidia-smi"),
			m("/usr/share/vulkan/icd.d/nvidia_icd.json", "/etc/vulkan/icd.d/nvidia_icd.json"),
			m("/run/nvidia-persistenced/socket", "/run/nvidia-persistenced/socket"),
			m("/lib/firmware/nvidia/550.54/gsp.bin", "/lib/firmware/nvidia/550.54/gsp.bin"),
			m("/opt/vendor/lib/libv.so.1.2", "/opt/vendor/lib/libv.so.1.2"),
		},
		Env:        []string{"NVIDIA_VISIBLE_DEVICES=void"},
		LoaderDirs: []string{"/usr/lib/x86_64-linux-gnu", "/opt/vendor/lib"},
		Links: []Link{
			{Target: "libcuda.so.1", Path: "/usr/lib/x86_64-linux-gnu/libcuda.so", Device: dev, Spec: spec},
			{Target: "../card1", Path: "/dev/dri/by-path/pci-0000:01:00.0-card", Device: dev, Spec: spec},
			{Target: "libv.so.1", Path: "/opt/vendor/lib/libv.so", Device: dev, Spec: spec},
		},
		Notes: []string{"hook enable-cuda-compat of /etc/cdi/nvidia.yaml not performed: ..."},
	}
}

// deviceView is the view plan makes of a merged-/usr tree el7 (/lib is a
// link into /usr; no /opt) with a device: the step Expand expands.
func deviceView(t *testing.T, hostPrefix string) spec.View {
	t.Helper()
	f, err := config.Parse("/etc/chos", []byte("%SHELLS\nel7:/os/el7\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ostree.NewCatalog(&config.Set{Files: []*config.File{f}})
	if err != nil {
		t.Fatal(err)
	}
	tree, _ := c.Lookup("el7")
	return plan.View(plan.ViewRequest{Catalog: c, Tree: tree, Root: "/chos", Self: "/usr/bin/chos", HostPrefix: hostPrefix,
		Entries: []spec.Entry{
			{Name: "usr", Kind: spec.DirEntry}, {Name: "etc", Kind: spec.DirEntry}, {Name: "run", Kind: spec.DirEntry},
			{Name: "lib", Kind: spec.LinkEntry, Target: "usr/lib"}, {Name: "bin", Kind: spec.LinkEntry, Target: "usr/bin"},
		},
		Devices: &spec.Devices{Names: []string{"nvidia.com/gpu=0"}},
	})
}

func find(v spec.View, target string) (spec.Mount, bool) {
	for _, m := range v.Mounts {
		if m.Target == target {
			return m, true
		}
	}
	return spec.Mount{}, false
}

// A device's files appear at their paths through overlays of the tree's
// top-level directories, without writing into the tree; what a host bind
// already shows is left to it; the loader cache and the environment are
// made for the view.
func TestDevicesAreShownThroughOverlaysAndTheLoaderCache(t *testing.T) {
	v := deviceView(t, "")
	notes := Expand(&v, gpuEdits())
	usr, ok := find(v, "/usr")
	if !ok || usr.Op != spec.OpOverlay || usr.Added != "/.chos/add/usr" || usr.Source != "/os/el7/usr" || !usr.ReadOnly || !usr.NoSuid || !usr.NoDev || usr.Origin != spec.OriginDevice {
		t.Fatalf("/usr = %+v, want an overlay of /.chos/add/usr on the tree's, for the devices", usr)
	}
	want := []spec.Provision{
		{Path: "/usr/lib/x86_64-linux-gnu/libcuda.so", Link: "libcuda.so.1"},
		{Path: "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54", Source: "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54", Soname: true},
		{Path: "/usr/bin/nvidia-smi", Source: "/usr/bin/nvidia-smi"},
		{Path: "/usr/lib/firmware/nvidia/550.54/gsp.bin", Source: "/lib/firmware/nvidia/550.54/gsp.bin"}, // through the tree's /lib link
	}
	if !slices.Equal(usr.Provide, want) {
		t.Errorf("/usr provides %+v\nwant %+v", usr.Provide, want)
	}
	etc, _ := find(v, "/etc")
	if etc.Origin != spec.OriginDevice {
		t.Errorf("the /etc overlay may fall back to the tree's own: the loader cache would not show")
	}
	if !slices.Contains(etc.Provide, spec.Provision{Path: "/etc/vulkan/icd.d/nvidia_icd.json", Source: "/usr/share/vulkan/icd.d/nvidia_icd.json"}) {
		t.Errorf("/etc provides %+v", etc.Provide)
	}
	// the loader cache before the /etc overlay that shows it
	li := slices.IndexFunc(v.Mounts, func(m spec.Mount) bool { return m.Op == spec.OpLoaderCache })
	ei := slices.IndexFunc(v.Mounts, func(m spec.Mount) bool { return m.Target == "/etc" })
	if li < 0 || li > ei {
		t.Fatalf("loader cache at step %d, /etc at %d", li, ei)
	}
	lc := v.Mounts[li]
	wantLibs := []spec.Provision{
		{Path: "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54", Source: "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54"},
		{Path: "/opt/vendor/lib/libv.so.1.2", Source: "/opt/vendor/lib/libv.so.1.2", Soname: true}, // on the view's root: linked there
	}
	if lc.Source != "/os/el7" || lc.Target != "/.chos/etc/ld.so.cache" || !slices.Equal(lc.Provide, wantLibs) || lc.Origin != spec.OriginDevice {
		t.Errorf("loader cache = %+v", lc)
	}
	// binds last, nosuid and nodev, read-only as the spec says
	for _, target := range []string{"/usr/bin/nvidia-smi", "/opt/vendor/lib/libv.so.1.2", "/usr/lib/firmware/nvidia/550.54/gsp.bin"} {
		m, ok := find(v, target)
		if !ok || m.Op != spec.OpBind || !m.NoSuid || !m.NoDev || !m.ReadOnly || m.Origin != spec.OriginDevice || !strings.Contains(m.Why, "nvidia.com/gpu=0, /etc/cdi/nvidia.yaml") {
			t.Errorf("%s: %+v", target, m)
		}
	}
	if _, ok := find(v, "/run/nvidia-persistenced/socket"); ok {
		t.Errorf("the persistenced socket is bound again: /run shows it")
	}
	if m, ok := find(v, "/opt/vendor/lib/libv.so"); !ok || m.Op != spec.OpSymlink || m.Source != "libv.so.1" {
		t.Errorf("link on the view's root: %+v", m)
	}
	if _, ok := find(v, "/dev/dri/by-path/pci-0000:01:00.0-card"); ok {
		t.Errorf("a link made in the host's /dev")
	}
	env, ok := find(v, spec.DeviceEnvFile)
	if !ok || env.Op != spec.OpFile || env.Source != "NVIDIA_VISIBLE_DEVICES=void\x00" || v.Mounts[len(v.Mounts)-1].Target != spec.DeviceEnvFile {
		t.Errorf("environment file: %+v", env)
	}
	if slices.ContainsFunc(v.Mounts, func(m spec.Mount) bool { return m.Op == spec.OpDevices }) {
		t.Errorf("the devices step is left")
	}
	var texts []string
	for _, n := range notes {
		texts = append(texts, n.Text)
		if n.Warning {
			t.Errorf("a warning: %s", n.Text)
		}
	}
	all := strings.Join(texts, "\n")
	for _, n := range []string{"enable-cuda-compat", "/run/nvidia-persistenced/socket of nvidia.com/gpu=0 is shown by the bind of /run", "link /dev/dri/by-path/pci-0000:01:00.0-card"} {
		if !strings.Contains(all, n) {
			t.Errorf("notes lack %q:\n%s", n, all)
		}
	}
	p := spec.Plan{View: v}
	if !strings.Contains(p.String(), "ldcache   /os/el7/etc/ld.so.cache + 2 libraries -> /.chos/etc/ld.so.cache") {
		t.Errorf("chos plan does not show the loader cache:\n%s", p.String())
	}
}

// What the tree needs no overlay for stays as it was; a view without the
// devices step is left alone (the control).
func TestExpandChangesOnlyWhatDevicesNeed(t *testing.T) {
	v := deviceView(t, "")
	e := &Edits{Mounts: []Mount{{Host: "/opt/tool", Path: "/opt/tool", Device: "a.com/b=c", Spec: "/etc/cdi/a.json"}}}
	before := slices.Clone(v.Mounts[:len(v.Mounts)-1])
	Expand(&v, e)
	if !slices.EqualFunc(before, v.Mounts[:len(before)], equalSteps) {
		t.Errorf("steps before the devices' changed:\n%+v\nwant\n%+v", v.Mounts[:len(before)], before)
	}
	if usr, _ := find(v, "/usr"); usr.Op != spec.OpBind || usr.Origin != spec.OriginTree {
		t.Errorf("/usr = %+v, want the tree's bound", usr)
	}
	if tool, ok := find(v, "/opt/tool"); !ok || tool.Op != spec.OpBind || !tool.NoSuid {
		t.Errorf("/opt/tool = %+v", tool)
	}
	if slices.ContainsFunc(v.Mounts, func(m spec.Mount) bool { return m.Op == spec.OpLoaderCache }) {
		t.Errorf("a loader cache without a loader directory")
	}
	plain := deviceView(t, "")
	plain.Mounts = plain.Mounts[:len(plain.Mounts)-1]
	was := slices.Clone(plain.Mounts)
	if notes := Expand(&plain, gpuEdits()); notes != nil || !slices.EqualFunc(was, plain.Mounts, equalSteps) {
		t.Errorf("a view without the devices step changed: %v", notes)
	}
}

func equalSteps(a, b spec.Mount) bool {
	return a.Op == b.Op && a.Source == b.Source && a.Target == b.Target && a.Origin == b.Origin &&
		slices.Equal(a.Provide, b.Provide) && a.Added == b.Added && a.Flags() == b.Flags()
}

// From inside a view, the devices' host paths are the host's, below where
// the view shows it; what the host's binds show is recognised there too.
func TestDevicesFromInsideAViewAreTheHosts(t *testing.T) {
	v := deviceView(t, "/.chos/host")
	notes := Expand(&v, gpuEdits())
	if smi, _ := find(v, "/usr/bin/nvidia-smi"); smi.Source != "/.chos/host/usr/bin/nvidia-smi" {
		t.Errorf("nvidia-smi bound from %q", smi.Source)
	}
	if _, ok := find(v, "/run/nvidia-persistenced/socket"); ok {
		t.Errorf("the persistenced socket is bound again: /run shows it")
	}
	if len(notes) == 0 {
		t.Errorf("no notes")
	}
}
