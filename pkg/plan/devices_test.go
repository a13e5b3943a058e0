package plan

import (
	"slices"
	"strings"
	"testing"

	"github.com/chos-hpc/chos/pkg/spec"
)

func gpu(names ...string) *spec.Devices {
	return &spec.Devices{Names: names, SpecDirs: []string{"/etc/cdi", "/var/run/cdi"}, Specs: []string{"/etc/cdi/nvidia.yaml"},
		Reader: "/usr/libexec/chos/chos-cdi", Trusted: true}
}

// A view with devices ends with the step the launch that builds it
// expands, on the tree (the image's, from the view, for an image tree);
// without devices there is none.
func TestDevicesAreOneStepLast(t *testing.T) {
	for _, c := range []struct {
		name    string
		devices *spec.Devices
		image   bool
		want    *spec.Mount
	}{
		{"a directory tree", gpu("nvidia.com/gpu=0"), false, &spec.Mount{Op: spec.OpDevices, Source: "/os/el7", Added: AddedRoot,
			NoSuid: true, Origin: spec.OriginDevice, Why: "CDI devices"}},
		{"an image tree", gpu("nvidia.com/gpu=0"), true, &spec.Mount{Op: spec.OpDevices, Source: ImageDir, InView: true, Added: AddedRoot,
			NoSuid: true, Origin: spec.OriginDevice, Why: "CDI devices"}},
		{"no devices (control)", nil, false, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := request(t, "el7")
			if c.image {
				r, _ = imageRequest(t, "el7")
			}
			r.Devices = c.devices
			v := build(t, r).View
			last := v.Mounts[len(v.Mounts)-1]
			n := 0
			for _, m := range v.Mounts {
				if m.Op == spec.OpDevices || m.Origin == spec.OriginDevice {
					n++
				}
			}
			switch {
			case c.want == nil && (n != 0 || v.Devices != nil):
				t.Errorf("%d device steps, devices %+v, without devices", n, v.Devices)
			case c.want != nil && (n != 1 || last.Op != spec.OpDevices):
				t.Errorf("%d device steps, the last %+v", n, last)
			case c.want != nil && (!equalMount(last, *c.want) || v.Devices != c.devices):
				t.Errorf("devices step %+v\nwant %+v (devices %+v)", last, *c.want, v.Devices)
			}
		})
	}
}

func equalMount(a, b spec.Mount) bool {
	return a.Op == b.Op && a.Source == b.Source && a.InView == b.InView && a.Added == b.Added && a.NoSuid == b.NoSuid &&
		a.HostRoot == b.HostRoot && a.Origin == b.Origin && a.Why == b.Why && a.Target == b.Target
}

// Views with devices are cached beside the plain one, one per set of
// devices, and keyed by what their specs would make of them: the devices,
// where and how their specs are read, and the spec files' stamps.
func TestDeviceViewsHaveKeysAndVariantsOfTheirOwn(t *testing.T) {
	key := func(d *spec.Devices, stamps ...string) string {
		r := request(t, "el7")
		r.Devices = d
		v := View(r.ViewRequest)
		var all []string
		for _, m := range v.Mounts {
			all = append(all, StampedSpecs(&v, m)...)
		}
		if d != nil && !slices.Equal(all, d.Specs) {
			t.Errorf("stamped spec files %v, want %v", all, d.Specs)
		}
		return CacheKey("digest", &v, stamps)
	}
	base := key(gpu("nvidia.com/gpu=0"), "spec 1")
	untrusted := gpu("nvidia.com/gpu=0")
	untrusted.Trusted = false
	otherSpec := gpu("nvidia.com/gpu=0")
	otherSpec.Specs = append(otherSpec.Specs, "/var/run/cdi/amd.json")
	for _, c := range []struct {
		name string
		key  string
		same bool
	}{
		{"the same devices and specs (control)", key(gpu("nvidia.com/gpu=0"), "spec 1"), true},
		{"the plain view", key(nil, "spec 1"), false},
		{"another device", key(gpu("nvidia.com/gpu=1"), "spec 1"), false},
		{"one more device", key(gpu("nvidia.com/gpu=0", "nvidia.com/gpu=1"), "spec 1"), false},
		{"a regenerated spec", key(gpu("nvidia.com/gpu=0"), "spec 2"), false},
		{"one more spec file", key(otherSpec, "spec 1"), false},
		{"specs read without the trust rule", key(untrusted, "spec 1"), false},
	} {
		if (c.key == base) != c.same {
			t.Errorf("%s: key %s, base %s", c.name, c.key, base)
		}
	}
	for _, c := range []struct {
		a, b *spec.Devices
		same bool
	}{
		{gpu("a.com/b=c"), gpu("a.com/b=c"), true},
		{gpu("a.com/b=c"), gpu("a.com/b=d"), false},
		{gpu("a.com/b=c"), gpu("a.com/b=c", "a.com/b=d"), false},
	} {
		va, _ := DeviceVariant(c.a)
		vb, _ := DeviceVariant(c.b)
		if (va == vb) != c.same || strings.Trim(va, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != "" {
			t.Errorf("variants of %v and %v: %q, %q", c.a.Names, c.b.Names, va, vb)
		}
	}
	// The names as they are: selections whose hashes could collide never
	// share a variant.
	for _, c := range []struct{ a, b []string }{
		{[]string{"a.com/b=c,d"}, []string{"a.com/b=c", "d"}},
		{[]string{"a.com/b=Z2c"}, []string{"a.com/b=,"}},
		{[]string{"a.com/b=-"}, []string{"a.com/b=Z2d"}},
	} {
		va, _ := DeviceVariant(&spec.Devices{Names: c.a})
		vb, _ := DeviceVariant(&spec.Devices{Names: c.b})
		if va == vb {
			t.Errorf("%q and %q share the variant %q", c.a, c.b, va)
		}
	}
	if v, ok := DeviceVariant(nil); v != "" || !ok {
		t.Errorf("the plain view has a variant")
	}
	if _, ok := DeviceVariant(&spec.Devices{Names: []string{"a.com/b=" + strings.Repeat("x", 200)}}); ok {
		t.Errorf("a variant too long for a file name")
	}
}
