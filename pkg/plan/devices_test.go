package plan

import (
	"slices"
	"strings"
	"testing"

	"github.com/chos-hpc/chos/pkg/devices"
	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/ostree"
)

// gpuEdits are edits as nvidia-ctk writes them on a Debian host, plus a
// vendor library in a directory trees lack.
func gpuEdits() *devices.Edits {
	dev, spec := "nvidia.com/gpu=0", "/etc/cdi/nvidia.yaml"
	m := func(host, path string) devices.Mount {
		return devices.Mount{Host: host, Path: path, ReadOnly: true, Device: dev, Spec: spec}
	}
	return &devices.Edits{
		Mounts: []devices.Mount{
			m("/usr/lib/x86_64-linux-gnu/libcuda.so.550.54", "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54"),
			m("/usr/bin/nvidia-smi", "/usr/bin/nvidia-smi"),
			m("/usr/share/vulkan/icd.d/nvidia_icd.json", "/etc/vulkan/icd.d/nvidia_icd.json"),
			m("/run/nvidia-persistenced/socket", "/run/nvidia-persistenced/socket"),
			m("/lib/firmware/nvidia/550.54/gsp.bin", "/lib/firmware/nvidia/550.54/gsp.bin"),
			m("/opt/vendor/lib/libv.so.1.2", "/opt/vendor/lib/libv.so.1.2"),
		},
		Env:        []string{"NVIDIA_VISIBLE_DEVICES=void"},
		LoaderDirs: []string{"/usr/lib/x86_64-linux-gnu", "/opt/vendor/lib"},
		Links: []devices.Link{
			{Target: "libcuda.so.1", Path: "/usr/lib/x86_64-linux-gnu/libcuda.so", Device: dev, Spec: spec},
			{Target: "../card1", Path: "/dev/dri/by-path/pci-0000:01:00.0-card", Device: dev, Spec: spec},
			{Target: "libv.so.1", Path: "/opt/vendor/lib/libv.so", Device: dev, Spec: spec},
		},
		Notes: []string{"hook enable-cuda-compat of /etc/cdi/nvidia.yaml not performed: ..."},
	}
}

func deviceRequest(t *testing.T, edits *devices.Edits) Request {
	r := request(t, "el7")
	// a merged-/usr tree: /lib is a link into /usr; no /opt
	r.Entries = append(r.Entries, ostree.Entry{Name: "lib", Kind: ostree.Symlink, Target: "usr/lib"}, ostree.Entry{Name: "run", Kind: ostree.Dir})
	r.Devices = &DeviceRequest{Names: []string{"nvidia.com/gpu=0"}, Edits: edits}
	return r
}

// A device's files appear at their paths through overlays of the tree's
// top-level directories, without writing into the tree; what a host bind
// already shows is left to it; the loader cache and the environment are
// made for the view.
func TestDevicesAreShownThroughOverlaysAndTheLoaderCache(t *testing.T) {
	p := build(t, deviceRequest(t, gpuEdits()))
	if !slices.Equal(p.Devices, []string{"nvidia.com/gpu=0"}) {
		t.Errorf("view devices = %v", p.Devices)
	}
	usr, ok := find(p, "/usr")
	if !ok || usr.Op != nsroot.OpOverlay || usr.Added != "/.chos/add/usr" || usr.Source != "/os/el7/usr" || !usr.ReadOnly || !usr.NoSuid || !usr.NoDev {
		t.Fatalf("/usr = %+v, want an overlay of /.chos/add/usr on the tree's", usr)
	}
	want := []nsroot.Provision{
		{Path: "/usr/lib/x86_64-linux-gnu/libcuda.so", Link: "libcuda.so.1"},
		{Path: "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54", Source: "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54", Soname: true},
		{Path: "/usr/bin/nvidia-smi", Source: "/usr/bin/nvidia-smi"},
		{Path: "/usr/lib/firmware/nvidia/550.54/gsp.bin", Source: "/lib/firmware/nvidia/550.54/gsp.bin"}, // through the tree's /lib link
	}
	if !slices.Equal(usr.Provide, want) {
		t.Errorf("/usr provides %+v\nwant %+v", usr.Provide, want)
	}
	etc, _ := find(p, "/etc")
	if etc.Optional {
		t.Errorf("the /etc overlay may fall back to the tree's own: the loader cache would not show")
	}
	if !slices.Contains(etc.Provide, nsroot.Provision{Path: "/etc/vulkan/icd.d/nvidia_icd.json", Source: "/usr/share/vulkan/icd.d/nvidia_icd.json"}) {
		t.Errorf("/etc provides %+v", etc.Provide)
	}
	// the loader cache before the /etc overlay that shows it
	li := slices.IndexFunc(p.Mounts, func(m nsroot.Mount) bool { return m.Op == nsroot.OpLoaderCache })
	ei := slices.IndexFunc(p.Mounts, func(m nsroot.Mount) bool { return m.Target == "/etc" })
	if li < 0 || li > ei {
		t.Fatalf("loader cache at step %d, /etc at %d", li, ei)
	}
	lc := p.Mounts[li]
	wantLibs := []nsroot.Provision{
		{Path: "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54", Source: "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54"},
		{Path: "/opt/vendor/lib/libv.so.1.2", Source: "/opt/vendor/lib/libv.so.1.2", Soname: true}, // on the view's root: linked there
	}
	if lc.Source != "/os/el7" || lc.Target != "/.chos/etc/ld.so.cache" || !slices.Equal(lc.Provide, wantLibs) {
		t.Errorf("loader cache = %+v", lc)
	}
	// binds last, nosuid and nodev, read-only as the spec says
	for _, target := range []string{"/usr/bin/nvidia-smi", "/opt/vendor/lib/libv.so.1.2", "/usr/lib/firmware/nvidia/550.54/gsp.bin"} {
		m, ok := find(p, target)
		if !ok || m.Op != nsroot.OpBind || !m.NoSuid || !m.NoDev || !m.ReadOnly || !strings.Contains(m.Why, "nvidia.com/gpu=0, /etc/cdi/nvidia.yaml") {
			t.Errorf("%s: %+v", target, m)
		}
	}
	if _, ok := find(p, "/run/nvidia-persistenced/socket"); ok {
		t.Errorf("the persistenced socket is bound again: /run shows it")
	}
	if m, ok := find(p, "/opt/vendor/lib/libv.so"); !ok || m.Op != nsroot.OpSymlink || m.Source != "libv.so.1" {
		t.Errorf("link on the view's root: %+v", m)
	}
	if _, ok := find(p, "/dev/dri/by-path/pci-0000:01:00.0-card"); ok {
		t.Errorf("a link made in the host's /dev")
	}
	env, ok := find(p, nsroot.DeviceEnvFile)
	if !ok || env.Op != nsroot.OpFile || env.Source != "NVIDIA_VISIBLE_DEVICES=void\x00" {
		t.Errorf("environment file: %+v", env)
	}
	notes := strings.Join(p.Notes, "\n")
	for _, n := range []string{"enable-cuda-compat", "/run/nvidia-persistenced/socket of nvidia.com/gpu=0 is shown by the bind of /run", "link /dev/dri/by-path/pci-0000:01:00.0-card"} {
		if !strings.Contains(notes, n) {
			t.Errorf("notes lack %q:\n%s", n, notes)
		}
	}
	if !strings.Contains(p.String(), "ldcache   /os/el7/etc/ld.so.cache + 2 libraries -> /.chos/etc/ld.so.cache") {
		t.Errorf("chos plan does not show the loader cache:\n%s", p)
	}
}

// The control: without devices, the tree's directories are bound as they
// are, /etc may fall back to the tree's own, and nothing more is made.
func TestNoDevicesNoDeviceSteps(t *testing.T) {
	r := deviceRequest(t, gpuEdits())
	r.Devices = nil
	p := build(t, r)
	if usr, _ := find(p, "/usr"); usr.Op != nsroot.OpBind {
		t.Errorf("/usr = %+v, want the tree's bound", usr)
	}
	if etc, _ := find(p, "/etc"); !etc.Optional {
		t.Errorf("/etc overlay not optional without devices")
	}
	for _, m := range p.Mounts {
		if m.Op == nsroot.OpLoaderCache || m.Target == nsroot.DeviceEnvFile || strings.HasPrefix(m.Why, "device ") {
			t.Errorf("a device step without devices: %+v", m)
		}
	}
	if len(p.Devices) != 0 {
		t.Errorf("devices = %v", p.Devices)
	}
}

// A cached launch does not read specs: the key covers the devices asked
// for, and the steps wait for the launch that builds the view.
func TestDeviceViewsResolveOnlyWhenBuilt(t *testing.T) {
	r := deviceRequest(t, nil)
	resolved := 0
	r.Devices.Resolve = func() (*devices.Edits, error) { resolved++; return gpuEdits(), nil }
	v := View(r.ViewRequest)
	if resolved != 0 || v.Complete == nil {
		t.Fatalf("resolved %d times before Finish", resolved)
	}
	plain := View(request(t, "el7").ViewRequest)
	if CacheKey("d", &v, nil) == CacheKey("d", &plain, nil) {
		t.Errorf("a view with devices has the plain view's key")
	}
	other := deviceRequest(t, nil)
	other.Devices.Names = []string{"nvidia.com/gpu=1"}
	ov := View(other.ViewRequest)
	if CacheKey("d", &v, nil) == CacheKey("d", &ov, nil) {
		t.Errorf("views with other devices have one key")
	}
	if err := v.Finish(); err != nil || resolved != 1 {
		t.Fatalf("Finish: %v, resolved %d times", err, resolved)
	}
	if !slices.ContainsFunc(v.Mounts, func(m nsroot.Mount) bool { return m.Op == nsroot.OpLoaderCache }) {
		t.Errorf("no loader cache after Finish")
	}
	if DeviceVariant(nil) != "" || DeviceVariant([]string{"a/b=c"}) == DeviceVariant([]string{"a/b=d"}) || len(DeviceVariant([]string{"a/b=c"})) != 15 {
		t.Errorf("variants: %q %q", DeviceVariant([]string{"a/b=c"}), DeviceVariant([]string{"a/b=d"}))
	}
}
