package devices

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "tags.cncf.io/container-device-interface/specs-go"

	"github.com/chos-hpc/chos/pkg/config"
)

func TestParseRequestSortsAndRefusesWhatIsNoName(t *testing.T) {
	got, err := ParseRequest("nvidia.com/gpu=1,nvidia.com/gpu=0", " example.com/dev=fuse  nvidia.com/gpu=1", "")
	want := []string{"example.com/dev=fuse", "nvidia.com/gpu=0", "nvidia.com/gpu=1"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseRequest = %v, %v; want %v", got, err, want)
	}
	if got, err := ParseRequest("", " , "); err != nil || got != nil {
		t.Errorf("nothing asked: %v, %v", got, err)
	}
	for _, bad := range []string{"gpu=0", "nvidia.com/gpu", "nvidia.com/gpu=*", "nvidia.com/gpu=a/b", "/dev/fuse"} {
		_, err := ParseRequest(bad)
		var re *RequestError
		if !errors.As(err, &re) || !strings.HasPrefix(err.Error(), "device \""+bad+"\": ") {
			t.Errorf("%q: %v, want a RequestError naming it", bad, err)
		}
	}
}

// Who may ask for what: a tree's rules, then the site's; a rule is the
// device it names or every device of a kind (=*), nothing else.
func TestAllowFollowsTheRules(t *testing.T) {
	at := func(l int) config.Position { return config.Position{File: "/etc/chos", Line: l} }
	tree := []config.DeviceRule{{Pattern: "nvidia.com/gpu=all", At: at(3)}}
	site := []config.DeviceRule{{Pattern: "example.com/dev=*", At: at(9)}}
	for _, tc := range []struct {
		name string
		ok   bool
		line int
	}{
		{"nvidia.com/gpu=all", true, 3},
		{"nvidia.com/gpu=0", false, 0}, // all is a device's name, not every device
		{"example.com/dev=fuse", true, 9},
		{"example.com/dev=*", true, 9},
		{"example.com/other=fuse", false, 0},
		{"amd.com/gpu=all", false, 0},
	} {
		r, ok := Allow(tc.name, tree, site)
		if ok != tc.ok || r.At.Line != tc.line {
			t.Errorf("Allow(%s) = %+v, %v; want line %d, %v", tc.name, r, ok, tc.line, tc.ok)
		}
	}
	err := Check([]string{"example.com/dev=fuse", "nvidia.com/gpu=0"}, "el7", tree, site)
	var na *NotAllowedError
	if !errors.As(err, &na) || na.Device != "nvidia.com/gpu=0" ||
		err.Error() != "device nvidia.com/gpu=0 is not allowed in tree el7; it allows nvidia.com/gpu=all (/etc/chos:3), example.com/dev=* (/etc/chos:9)" {
		t.Errorf("Check = %v", err)
	}
	if err := Check([]string{"nvidia.com/gpu=all"}, "el7", nil, nil); err == nil || !strings.Contains(err.Error(), "it allows no device") {
		t.Errorf("Check without rules = %v", err)
	}
	if err := Check([]string{"nvidia.com/gpu=all", "example.com/dev=x"}, "el7", tree, site); err != nil {
		t.Errorf("Check of allowed devices = %v", err)
	}
}

func TestInterpretMergesEditsAndPerformsKnownHooks(t *testing.T) {
	spec := specs.ContainerEdits{
		Env: []string{"NVIDIA_VISIBLE_DEVICES=void"},
		Mounts: []*specs.Mount{
			{HostPath: "/usr/lib64/libcuda.so.550.54", ContainerPath: "/usr/lib64/libcuda.so.550.54", Options: []string{"ro", "nosuid", "nodev", "bind"}},
			{HostPath: "/usr/share/nvidia", ContainerPath: "/usr/share/nvidia", Options: []string{"rbind"}, Type: "bind"},
		},
		DeviceNodes: []*specs.DeviceNode{{Path: "/dev/nvidiactl"}},
		Hooks: []*specs.Hook{
			{HookName: "createContainer", Path: "/usr/bin/nvidia-cdi-hook", Args: []string{"nvidia-cdi-hook", "create-symlinks", "--link", "libcuda.so.1::/usr/lib64/libcuda.so", "--link=../x::/usr/lib64/gbm/y.so"}},
			{HookName: "createContainer", Path: "/usr/bin/nvidia-ctk", Args: []string{"nvidia-ctk", "hook", "update-ldcache", "--ldconfig-path", "/sbin/ldconfig", "--folder", "/usr/lib64"}},
			{HookName: "createContainer", Path: "/usr/bin/nvidia-cdi-hook", Args: []string{"nvidia-cdi-hook", "enable-cuda-compat", "--host-driver-version=550.54"}},
			{HookName: "createContainer", Path: "/usr/bin/nvidia-cdi-hook", Args: []string{"nvidia-cdi-hook", "chmod", "--mode", "755", "--path", "/dev/dri"}},
		},
	}
	devs := []Resolved{
		{Name: "nvidia.com/gpu=0", Spec: "/etc/cdi/nvidia.yaml", SpecEdits: spec,
			Edits: specs.ContainerEdits{DeviceNodes: []*specs.DeviceNode{{Path: "/dev/nvidia0", HostPath: "/dev/nvidia0", Type: "c", Major: 195}}}},
		{Name: "nvidia.com/gpu=1", Spec: "/etc/cdi/nvidia.yaml", SpecEdits: spec,
			Edits: specs.ContainerEdits{DeviceNodes: []*specs.DeviceNode{{Path: "/dev/nvidia1"}}, Env: []string{"GPU=1"}}},
	}
	e, err := Interpret(devs)
	if err != nil {
		t.Fatal(err)
	}
	// the spec's edits once, then each device's
	if want := []string{"NVIDIA_VISIBLE_DEVICES=void", "GPU=1"}; !reflect.DeepEqual(e.Env, want) {
		t.Errorf("env = %v, want %v", e.Env, want)
	}
	wantMounts := []Mount{
		{Host: "/usr/lib64/libcuda.so.550.54", Path: "/usr/lib64/libcuda.so.550.54", ReadOnly: true, Device: "nvidia.com/gpu=0", Spec: "/etc/cdi/nvidia.yaml"},
		{Host: "/usr/share/nvidia", Path: "/usr/share/nvidia", Recursive: true, Device: "nvidia.com/gpu=0", Spec: "/etc/cdi/nvidia.yaml"},
	}
	if !reflect.DeepEqual(e.Mounts, wantMounts) {
		t.Errorf("mounts = %+v", e.Mounts)
	}
	var nodes []string
	for _, n := range e.Nodes {
		nodes = append(nodes, n.Path)
	}
	if !reflect.DeepEqual(nodes, []string{"/dev/nvidiactl", "/dev/nvidia0", "/dev/nvidia1"}) {
		t.Errorf("nodes = %v", nodes)
	}
	if !reflect.DeepEqual(e.LoaderDirs, []string{"/usr/lib64"}) {
		t.Errorf("loader dirs = %v", e.LoaderDirs)
	}
	wantLinks := []Link{{Target: "libcuda.so.1", Path: "/usr/lib64/libcuda.so", Device: "nvidia.com/gpu=0", Spec: "/etc/cdi/nvidia.yaml"},
		{Target: "../x", Path: "/usr/lib64/gbm/y.so", Device: "nvidia.com/gpu=0", Spec: "/etc/cdi/nvidia.yaml"}}
	if !reflect.DeepEqual(e.Links, wantLinks) {
		t.Errorf("links = %+v", e.Links)
	}
	if len(e.Notes) != 2 || !strings.Contains(e.Notes[0], "enable-cuda-compat") || !strings.Contains(e.Notes[1], "chmod") {
		t.Errorf("notes = %q", e.Notes)
	}
}

// What chos cannot do faithfully refuses the device, naming it and its
// spec file; every case has a control that passes.
func TestInterpretRefusesWhatChosDoesNotDo(t *testing.T) {
	ok := specs.ContainerEdits{Mounts: []*specs.Mount{{HostPath: "/a", ContainerPath: "/b"}}}
	for _, tc := range []struct {
		name  string
		edits specs.ContainerEdits
		want  string
	}{
		{"hook program", specs.ContainerEdits{Hooks: []*specs.Hook{{HookName: "createContainer", Path: "/opt/vendor/hook", Args: []string{"hook", "--setup"}}}}, "hook /opt/vendor/hook hook --setup: chos runs no hook program"},
		{"unknown subcommand", specs.ContainerEdits{Hooks: []*specs.Hook{{Path: "/usr/bin/nvidia-cdi-hook", Args: []string{"nvidia-cdi-hook", "format-disk"}}}}, "hook nvidia-cdi-hook format-disk: not one chos performs"},
		{"relative folder", specs.ContainerEdits{Hooks: []*specs.Hook{{Path: "/usr/bin/nvidia-cdi-hook", Args: []string{"nvidia-cdi-hook", "update-ldcache", "--folder", "lib"}}}}, "folder lib is not an absolute path"},
		{"bad link", specs.ContainerEdits{Hooks: []*specs.Hook{{Path: "/usr/bin/nvidia-cdi-hook", Args: []string{"nvidia-cdi-hook", "create-symlinks", "--link", "a:b"}}}}, "link a:b is not TARGET::/ABSOLUTE/PATH"},
		{"groups", specs.ContainerEdits{AdditionalGIDs: []uint32{44}}, "additionalGids"},
		{"rdt", specs.ContainerEdits{IntelRdt: &specs.IntelRdt{ClosID: "x"}}, "intelRdt"},
		{"net", specs.ContainerEdits{NetDevices: []*specs.LinuxNetDevice{{HostInterfaceName: "eth1", Name: "eth1"}}}, "netDevices"},
		{"tmpfs", specs.ContainerEdits{Mounts: []*specs.Mount{{HostPath: "tmpfs", ContainerPath: "/x", Type: "tmpfs"}}}, "mount of type tmpfs at /x"},
		{"relative mount", specs.ContainerEdits{Mounts: []*specs.Mount{{HostPath: "lib", ContainerPath: "/x"}}}, "paths must be absolute"},
		{"two sources", specs.ContainerEdits{Mounts: []*specs.Mount{{HostPath: "/a", ContainerPath: "/x"}, {HostPath: "/b", ContainerPath: "/x"}}}, "mounts both /a (/etc/cdi/x.yaml) and /b at /x"},
		{"node outside /dev", specs.ContainerEdits{DeviceNodes: []*specs.DeviceNode{{Path: "/opt/node"}}}, "device node /opt/node is not below /dev"},
		{"renamed node", specs.ContainerEdits{DeviceNodes: []*specs.DeviceNode{{Path: "/dev/a", HostPath: "/dev/b"}}}, "device node /dev/b shown as /dev/a"},
		{"control", ok, ""},
	} {
		_, err := Interpret([]Resolved{{Name: "x.com/y=z", Spec: "/etc/cdi/x.yaml", Edits: tc.edits}})
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var de *DeviceError
		if !errors.As(err, &de) || !strings.HasPrefix(err.Error(), "device x.com/y=z (/etc/cdi/x.yaml): ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want one naming the device, its spec and %q", tc.name, err, tc.want)
		}
	}
}

func TestSpecsListsWhatTheLibraryReadsAndStampsIt(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b.yaml", "a.json", "notes.txt", ".hidden.yaml"} {
		os.WriteFile(filepath.Join(dir, n), []byte("{}"), 0o644)
	}
	os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o755)
	got, err := Specs([]string{dir, filepath.Join(dir, "missing")}, false)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, filepath.Base(p))
		if s := Stamp(p); !strings.HasPrefix(s, "spec "+p+" ") {
			t.Errorf("stamp %q", s)
		}
	}
	if want := []string{".hidden.yaml", "a.json", "b.yaml"}; !reflect.DeepEqual(names, want) {
		t.Errorf("specs = %v, want %v", names, want)
	}
	// a rewritten file gets another stamp
	before := Stamp(got[1])
	os.WriteFile(filepath.Join(dir, "a.json"), []byte("{ }"), 0o644)
	if Stamp(got[1]) == before {
		t.Errorf("stamp unchanged by a rewrite: %s", before)
	}
	// with root's rights, a directory anyone may write is refused, naming it
	_, err = Specs([]string{dir}, true)
	var se *SpecError
	if !errors.As(err, &se) || se.Spec != dir || !strings.HasPrefix(err.Error(), "refusing CDI spec "+dir+": ") {
		t.Errorf("untrusted directory: %v", err)
	}
}
