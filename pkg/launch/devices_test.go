package launch

import (
	"slices"
	"strings"
	"testing"

	"github.com/chos-hpc/chos/pkg/build"
	"github.com/chos-hpc/chos/pkg/plan"
	"github.com/chos-hpc/chos/pkg/spec"
)

// The test host with CDI specs in /etc/cdi: the tree el7 allows one GPU
// by name, deb every GPU, every tree the vendor's fuse device (%CDI).
const deviceSite = site + `%CDI
spec-dirs = /etc/cdi /var/run/cdi
devices = chos-test.example/dev=fuse
%TREE el7
devices = nvidia.com/gpu=all
%TREE deb
devices = nvidia.com/gpu=*
`

func deviceHost(t *testing.T) *host {
	h := newHost(t, deviceSite)
	h.write("/etc/cdi/nvidia.yaml", "cdiVersion: 0.6.0\n")
	h.write("/var/run/cdi/test.json", "{}")
	h.write("/etc/cdi/notes.txt", "not a spec")
	return h
}

// What a user may ask for: the tree's rules, then %CDI's; by --device, or
// $CHOS_DEVICES when no --device is given; nothing on the host. A refusal
// names the device and the rules (or what is wrong with the name).
func TestDevicesAUserMayAskFor(t *testing.T) {
	for _, c := range []struct {
		name    string
		tree    string
		env     string   // $CHOS_DEVICES
		lists   []string // --device options
		login   bool     // chos login, which has only the variable
		want    []string // the view's devices
		refused string
	}{
		{"a device the tree names", "el7", "", []string{"nvidia.com/gpu=all"}, false, []string{"nvidia.com/gpu=all"}, ""},
		{"a device %CDI allows in every tree", "el7", "", []string{"chos-test.example/dev=fuse"}, false, []string{"chos-test.example/dev=fuse"}, ""},
		{"sorted, without duplicates", "deb", "", []string{"nvidia.com/gpu=1,nvidia.com/gpu=0", "nvidia.com/gpu=1"}, false,
			[]string{"nvidia.com/gpu=0", "nvidia.com/gpu=1"}, ""},
		{"=* allows every device of the kind", "deb", "", []string{"nvidia.com/gpu=3"}, false, []string{"nvidia.com/gpu=3"}, ""},
		{"=all is one device, not every one", "el7", "", []string{"nvidia.com/gpu=0"}, false, nil,
			"device nvidia.com/gpu=0 is not allowed in tree el7; it allows nvidia.com/gpu=all ("},
		{"a tree without rules: %CDI's only", "suid", "", []string{"nvidia.com/gpu=all"}, false, nil,
			"device nvidia.com/gpu=all is not allowed in tree suid; it allows chos-test.example/dev=fuse"},
		{"not a device's name", "el7", "", []string{"nvidia.com/gpu"}, false, nil, `device "nvidia.com/gpu": `},
		{"$CHOS_DEVICES without --device", "el7", "nvidia.com/gpu=all", nil, false, []string{"nvidia.com/gpu=all"}, ""},
		{"--device over $CHOS_DEVICES", "el7", "nvidia.com/gpu=0", []string{"chos-test.example/dev=fuse"}, false,
			[]string{"chos-test.example/dev=fuse"}, ""},
		{"$CHOS_DEVICES refused as --device is", "el7", "nvidia.com/gpu=0", nil, false, nil, "device nvidia.com/gpu=0 is not allowed in tree el7"},
		{"chos login: $CHOS_DEVICES", "el7", "nvidia.com/gpu=all", nil, true, []string{"nvidia.com/gpu=all"}, ""},
		{"the host shows its own devices", "local", "", []string{"nvidia.com/gpu=0"}, false, nil, ""},
		{"nothing asked", "el7", "", nil, false, nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := deviceHost(t)
			env := []string{"CHOS=" + c.tree}
			if c.env != "" {
				env = append(env, "CHOS_DEVICES="+c.env)
			}
			inv := h.inv(uidAlice, setuid, env...)
			var l *Launch
			var err error
			if c.login {
				l, err = inv.PrepareLogin()
			} else {
				l, err = prepare(t, inv, Request{Tree: c.tree, Argv: []string{"true"}, Devices: c.lists})
			}
			if c.refused != "" {
				if err == nil || !strings.Contains(err.Error(), c.refused) || l.Record.Event.Refused != err.Error() {
					t.Fatalf("got %v (recorded %q), want a refusal %q", err, l.Record.Event.Refused, c.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			if d := l.Plan.Devices; d != nil {
				got = d.Names
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("devices %v, want %v", got, c.want)
			}
			steps := 0
			for _, m := range l.Plan.Mounts {
				if m.Op == spec.OpDevices {
					steps++
				}
			}
			if (steps == 1) != (c.want != nil) || steps > 1 {
				t.Errorf("%d devices steps", steps)
			}
		})
	}
}

// Spec files are read as the configuration is: installed setuid, only
// what root alone could have written (also once root is given up), and
// the launch that builds the view reads them so. A user's spec file
// refuses the launch, naming it, where root must vouch for it.
func TestDeviceSpecsAreRootsToVouchForWhenSetuid(t *testing.T) {
	for _, c := range []struct {
		name      string
		p         Privilege
		mode      string // --mode
		trusted   bool
		userSpec  bool
		refused   string
		wantSpecs []string
	}{
		{"setuid", setuid, "", true, false, "", []string{"/etc/cdi/nvidia.yaml", "/var/run/cdi/test.json"}},
		{"setuid, a user's spec", setuid, "", true, true, "refusing CDI spec ", nil},
		{"setuid forced to userns, a user's spec", setuid, "userns", true, true, "refusing CDI spec ", nil},
		{"root itself, a user's spec", rootself, "", false, true, "", []string{"/etc/cdi/nvidia.yaml", "/var/run/cdi/test.json"}},
		{"user namespaces, a user's spec", userns, "", false, true, "", []string{"/etc/cdi/nvidia.yaml", "/var/run/cdi/test.json"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := deviceHost(t)
			if c.userSpec {
				h.m.userSpecs = []string{"/var/run/cdi/test.json"}
			}
			uid := uidAlice
			if c.p == rootself {
				uid = 0
			}
			inv, err := h.inv(uid, c.p).WithMode(c.mode)
			must(t, err)
			l, err := prepare(t, inv, Request{Tree: "el7", Argv: []string{"true"}, Devices: []string{"nvidia.com/gpu=all"}})
			if len(h.m.specsAsRoot) == 0 || slices.Contains(h.m.specsAsRoot, !c.trusted) {
				t.Errorf("spec files listed as root's: %v, want %v", h.m.specsAsRoot, c.trusted)
			}
			if c.refused != "" {
				if err == nil || !strings.HasPrefix(err.Error(), c.refused+h.root+"/var/run/cdi/test.json: ") {
					t.Fatalf("got %v, want %q naming the file", err, c.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			d := l.Plan.Devices
			if d.Trusted != c.trusted || d.Reader != build.CDIHelper || !slices.Equal(d.SpecDirs, []string{"/etc/cdi", "/var/run/cdi"}) ||
				!slices.Equal(d.Specs, c.wantSpecs) {
				t.Errorf("devices %+v, want trusted %v, specs %v", d, c.trusted, c.wantSpecs)
			}
		})
	}
}

// A view with devices is cached beside the tree's plain view, one per set
// of devices, under a key that changes with the spec files; from inside a
// view the spec files, the reader and the devices' host paths are the
// host's below the view's /.chos/host.
func TestDeviceViewsAreCachedApart(t *testing.T) {
	h := deviceHost(t)
	cache := func(lists ...string) *spec.Cache {
		t.Helper()
		l, err := prepare(t, h.inv(uidAlice, setuid), Request{Tree: "deb", Argv: []string{"true"}, Devices: lists})
		if err != nil {
			t.Fatal(err)
		}
		return l.Plan.Cache
	}
	plain, gpu0 := cache(), cache("nvidia.com/gpu=0")
	for _, c := range []struct {
		name          string
		got           *spec.Cache
		sameVariant   bool
		sameKey       bool
		variantIsNone bool
	}{
		{"the plain view has no variant", plain, false, false, true},
		{"the same devices again (control)", cache("nvidia.com/gpu=0"), true, true, false},
		{"another device", cache("nvidia.com/gpu=1"), false, false, false},
		{"one more device", cache("nvidia.com/gpu=0,nvidia.com/gpu=1"), false, false, false},
	} {
		if (c.got.Variant == gpu0.Variant) != c.sameVariant || (c.got.Key == gpu0.Key) != c.sameKey || (c.got.Variant == "") != c.variantIsNone {
			t.Errorf("%s: %+v (with gpu=0: %+v)", c.name, c.got, gpu0)
		}
	}
	if v, _ := plan.DeviceVariant(&spec.Devices{Names: []string{"nvidia.com/gpu=0"}}); gpu0.Variant != v ||
		!strings.HasSuffix(gpu0.File(), "/deb."+gpu0.Variant+"-"+gpu0.Key+".mnt") {
		t.Errorf("cache file %s", gpu0.File())
	}
	// a regenerated spec: a new key, the same variant
	h.write("/etc/cdi/nvidia.yaml", "cdiVersion: 0.6.0\ndevices: []\n")
	if now := cache("nvidia.com/gpu=0"); now.Key == gpu0.Key || now.Variant != gpu0.Variant {
		t.Errorf("after the spec changed: %+v, before %+v", now, gpu0)
	}
	// a spec file more in a spec directory: a new key too
	regen := cache("nvidia.com/gpu=0")
	h.write("/var/run/cdi/more.yaml", "cdiVersion: 0.6.0\n")
	if now := cache("nvidia.com/gpu=0"); now.Key == regen.Key {
		t.Errorf("a new spec file left the key %s", now.Key)
	}
	// control: a file that is no spec changes nothing
	regen = cache("nvidia.com/gpu=0")
	h.write("/etc/cdi/README", "")
	if now := cache("nvidia.com/gpu=0"); now.Key != regen.Key {
		t.Errorf("a file that is no spec changed the key")
	}
	// from inside a view: the host's, below /.chos/host
	inv := h.inv(uidAlice, userns)
	inv.HostPrefix = plan.HostDir
	h.write(plan.HostDir+"/etc/chos", deviceSite)
	h.write(plan.HostDir+"/etc/cdi/nvidia.yaml", "")
	h.tree(plan.HostDir + "/os/deb")
	l, err := prepare(t, inv, Request{Tree: "deb", Argv: []string{"true"}, Devices: []string{"nvidia.com/gpu=0"}})
	if err != nil {
		t.Fatal(err)
	}
	d := l.Plan.Devices
	if d.Reader != plan.HostDir+build.CDIHelper || !slices.Equal(d.SpecDirs, []string{plan.HostDir + "/etc/cdi", plan.HostDir + "/var/run/cdi"}) ||
		!slices.Equal(d.Specs, []string{plan.HostDir + "/etc/cdi/nvidia.yaml"}) || l.Plan.Cache != nil {
		t.Errorf("from inside a view: %+v, cache %+v", d, l.Plan.Cache)
	}
	if last := l.Plan.Mounts[len(l.Plan.Mounts)-1]; last.Op != spec.OpDevices || last.HostRoot != plan.HostDir {
		t.Errorf("devices step %+v", last)
	}
}

// The root helper takes the devices the shim passes (never chos's own
// environment), by the tree's rules; the submit-time check applies the
// rules only (the submit host need have no spec), and refuses as a job
// would.
func TestHelperDevicesAreTheSessionsOrJobs(t *testing.T) {
	for _, c := range []struct {
		name    string
		req     HelperRequest
		check   bool
		want    []string
		refused string
	}{
		{"pam: the session's $CHOS_DEVICES", HelperRequest{Service: "pam", EnvChos: "el7", EnvDevices: "nvidia.com/gpu=all"}, false, []string{"nvidia.com/gpu=all"}, ""},
		{"slurm: --chos-device", HelperRequest{Service: "slurm", Tree: "deb", Devices: "nvidia.com/gpu=1,nvidia.com/gpu=0"}, false, []string{"nvidia.com/gpu=0", "nvidia.com/gpu=1"}, ""},
		{"slurm: the job's $CHOS_DEVICES", HelperRequest{Service: "slurm", Tree: "deb", EnvDevices: "nvidia.com/gpu=1"}, false, []string{"nvidia.com/gpu=1"}, ""},
		{"slurm: --chos-device over $CHOS_DEVICES", HelperRequest{Service: "slurm", Tree: "deb", Devices: "nvidia.com/gpu=0", EnvDevices: "nvidia.com/gpu=1"}, false, []string{"nvidia.com/gpu=0"}, ""},
		{"submit: $CHOS_DEVICES not allowed", HelperRequest{Service: "slurm", Check: true, Tree: "el7", EnvDevices: "nvidia.com/gpu=0"}, true, nil, "device nvidia.com/gpu=0 is not allowed in tree el7"},
		{"submit: --chos-device over $CHOS_DEVICES", HelperRequest{Service: "slurm", Check: true, Tree: "el7", Devices: "nvidia.com/gpu=all", EnvDevices: "nvidia.com/gpu=0"}, true, nil, ""},
		{"slurm: a device the tree does not allow", HelperRequest{Service: "slurm", Tree: "el7", Devices: "nvidia.com/gpu=0"}, false, nil, "device nvidia.com/gpu=0 is not allowed in tree el7"},
		{"nothing asked", HelperRequest{Service: "slurm", Tree: "el7"}, false, nil, ""},
		{"submit: allowed", HelperRequest{Service: "slurm", Check: true, Tree: "el7", Devices: "nvidia.com/gpu=all"}, true, nil, ""},
		{"submit: not allowed", HelperRequest{Service: "slurm", Check: true, Tree: "el7", Devices: "nvidia.com/gpu=0"}, true, nil, "device nvidia.com/gpu=0 is not allowed in tree el7"},
		{"submit: not a name", HelperRequest{Service: "slurm", Check: true, Tree: "el7", Devices: "gpu"}, true, nil, `device "gpu": `},
		{"submit: the host", HelperRequest{Service: "slurm", Check: true, Tree: "local", Devices: "nvidia.com/gpu=0"}, true, nil, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := deviceHost(t)
			if c.check {
				h.m.userSpecs = []string{"/etc/cdi/nvidia.yaml"} // (not read at submit time)
				_, rec, err := h.inv(uidAlice, setuid, "CHOS_DEVICES=chos-test.example/dev=nope").PrepareForHelper(c.req)
				switch {
				case c.refused == "" && err != nil:
					t.Fatal(err)
				case c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused) || rec == nil || rec.Event.Refused != err.Error()):
					t.Fatalf("got %v, want a recorded refusal %q", err, c.refused)
				case len(h.m.specsAsRoot) != 0:
					t.Errorf("the submit-time check read the spec directories")
				}
				return
			}
			req := c.req
			req.User, req.UID, req.GID = "alice", "1000", "100"
			// (chos's own environment is not the session's)
			hp, _, err := h.inv(0, rootself, "CHOS_DEVICES=chos-test.example/dev=nope").planHelper(req)
			if c.refused != "" {
				if err == nil || !strings.Contains(err.Error(), c.refused) {
					t.Fatalf("got %v, want %q", err, c.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			if hp.view.Devices != nil {
				got = hp.view.Devices.Names
				if !hp.view.Devices.Trusted || hp.view.Cache.Variant == "" {
					t.Errorf("the helper for a user: devices %+v, cache %+v", hp.view.Devices, hp.view.Cache)
				}
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("devices %v, want %v", got, c.want)
			}
		})
	}
}

// The audit line names the devices a view shows, and in a refusal those
// asked for; none when none was asked, or on the host.
func TestAuditRecordNamesTheDevices(t *testing.T) {
	for _, c := range []struct {
		name    string
		record  func(h *host) Record
		want    string
		refused bool
	}{
		{"a launch with devices", func(h *host) Record {
			l, err := prepare(t, h.inv(uidAlice, setuid), Request{Tree: "deb", Argv: []string{"true"}, Devices: []string{"nvidia.com/gpu=1,nvidia.com/gpu=0"}})
			must(t, err)
			l.Record.launched(l.Plan, "")
			return l.Record
		}, "nvidia.com/gpu=0,nvidia.com/gpu=1", false},
		{"a launch without (control)", func(h *host) Record {
			l, err := prepare(t, h.inv(uidAlice, setuid), Request{Tree: "deb", Argv: []string{"true"}})
			must(t, err)
			l.Record.launched(l.Plan, "")
			return l.Record
		}, "", false},
		{"back to the host, with devices asked", func(h *host) Record {
			l, err := prepare(t, h.inv(uidAlice, setuid, "CHOS_DEVICES=nvidia.com/gpu=0"), Request{Tree: "local", Argv: []string{"true"}})
			must(t, err)
			l.Record.launched(l.Plan, "")
			return l.Record
		}, "", false},
		{"a refusal", func(h *host) Record {
			l, _ := h.inv(uidAlice, setuid).Prepare(Request{Tree: "el7", Argv: []string{"true"}, Devices: []string{"nvidia.com/gpu=0"}})
			return l.Record
		}, "nvidia.com/gpu=0", true},
		{"chos login", func(h *host) Record {
			l, err := h.inv(uidAlice, setuid, "CHOS=el7", "CHOS_DEVICES=nvidia.com/gpu=all").PrepareLogin()
			must(t, err)
			l.Record.launched(l.Plan, "")
			return l.Record
		}, "nvidia.com/gpu=all", false},
		{"the helper's refusal", func(h *host) Record {
			_, rec, _ := h.inv(0, rootself).PrepareForHelper(HelperRequest{Service: "slurm", Tree: "el7", Devices: "nvidia.com/gpu=0", User: "alice", UID: "1000", GID: "100"})
			return *rec
		}, "nvidia.com/gpu=0", true},
		{"the submit-time check's refusal", func(h *host) Record {
			_, rec, _ := h.inv(uidAlice, setuid).PrepareForHelper(HelperRequest{Service: "slurm", Check: true, Tree: "el7", Devices: "nvidia.com/gpu=0"})
			return *rec
		}, "nvidia.com/gpu=0", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := c.record(deviceHost(t))
			if rec.Event.Devices != c.want || (rec.Event.Refused != "") != c.refused {
				t.Errorf("record %+v, want devices %q", rec.Event, c.want)
			}
		})
	}
}
