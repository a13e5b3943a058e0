package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Host devices in trees through the Container Device Interface, with no
// GPU: a spec of the tests' own vendor names a device node the machine has
// (/dev/fuse), a shared library, its header and a tool built here on the
// host, an environment variable, and the NVIDIA toolkit's update-ldcache
// and create-symlinks hooks, as `nvidia-ctk cdi generate` writes them for
// a driver's libraries. Inside a Debian 11 tree with a C compiler, a
// program built there against the header finds the library as the tree
// finds its own.

const (
	devKind   = "chos-test.example/dev"
	devName   = devKind + "=fuse"
	devLibDir = "/opt/chos-test/lib"
	devTool   = "/usr/bin/chostest-tool"
	devEnv    = "CHOSTEST_DEVICE=present"
)

// devFixture is what the device tests share: the host's files, the spec
// directory, and the configuration naming the Debian tree with a compiler
// (debgcc), which allows the device.
type devFixture struct {
	dir      string // root's, 0755: host files and specs
	specDir  string
	spec     string // the spec file
	specText string
	config   string // the configuration text
}

var devices = buildOnce(func() (*devFixture, error) {
	f := &devFixture{dir: filepath.Join(h.base, "cdi")}
	f.specDir = filepath.Join(f.dir, "specs")
	for _, d := range []string{f.dir, f.specDir, filepath.Join(f.dir, "lib"), filepath.Join(f.dir, "include"), filepath.Join(f.dir, "src")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	src := map[string]string{
		"include/chostest.h": "int chostest_answer(void);\n",
		// (nothing of libc: the host's glibc is newer than the tree's)
		"src/chostest.c": "#include \"chostest.h\"\nint chostest_answer(void) { return 42; }\n",
		"src/tool.c":     "#include <stdio.h>\nint main(void) { puts(\"chostest-tool runs\"); return 0; }\n",
	}
	for p, text := range src {
		if err := writeRootFile(filepath.Join(f.dir, p), text, 0o644); err != nil {
			return nil, err
		}
	}
	for _, argv := range [][]string{
		{"gcc", "-shared", "-fPIC", "-nostdlib", "-I", "include", "-Wl,-soname,libchostest.so.1", "-o", "lib/libchostest.so.1.0", "src/chostest.c"},
		{"gcc", "-static", "-o", "tool", "src/tool.c"},
	} {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = f.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
	}
	f.spec = filepath.Join(f.specDir, "chos-test.yaml")
	f.specText = deviceSpec(f.dir, devEnv)
	if err := writeRootFile(f.spec, f.specText, 0o644); err != nil {
		return nil, err
	}
	return f, nil
})

// deviceSpec is the test's spec: the device fuse and the device other,
// with the spec-wide edits a driver's spec has.
func deviceSpec(dir, env string) string {
	return `cdiVersion: 0.6.0
kind: ` + devKind + `
containerEdits:
  env:
  - ` + env + `
  mounts:
  - hostPath: ` + dir + `/lib/libchostest.so.1.0
    containerPath: ` + devLibDir + `/libchostest.so.1.0
    options: [ro, nosuid, nodev, bind]
  - hostPath: ` + dir + `/include/chostest.h
    containerPath: /opt/chos-test/include/chostest.h
    options: [ro, nosuid, nodev, bind]
  - hostPath: ` + dir + `/tool
    containerPath: ` + devTool + `
    options: [ro, nosuid, nodev, bind]
  hooks:
  - hookName: createContainer
    path: /usr/bin/nvidia-cdi-hook
    args: [nvidia-cdi-hook, create-symlinks, --link, "libchostest.so.1::` + devLibDir + `/libchostest.so"]
  - hookName: createContainer
    path: /usr/bin/nvidia-cdi-hook
    args: [nvidia-cdi-hook, update-ldcache, --folder, ` + devLibDir + `]
devices:
- name: fuse
  containerEdits:
    deviceNodes:
    - path: /dev/fuse
- name: other
  containerEdits:
    deviceNodes:
    - path: /dev/null
`
}

// devConfig is the configuration with the tree debgcc allowing the
// device fuse and the device nope (which no spec defines), and spec dir.
func devConfig(t testing.TB, f *devFixture, specDir string) string {
	return h.configText + "debgcc:" + debianGCCTree(t) + "\n%CDI\nspec-dirs = " + specDir +
		"\n%TREE debgcc\ndevices = " + devName + " " + devKind + "=nope\n"
}

// ownSpecDir makes a spec directory of the test's own, removed after it,
// holding f's spec as root's file, and sets devConfig with it; it returns
// the directory and the spec file's path.
func ownSpecDir(t *testing.T, f *devFixture) (specDir, spec string) {
	t.Helper()
	specDir = filepath.Join(f.dir, unique(t))
	must(t, os.Mkdir(specDir, 0o755))
	t.Cleanup(func() { os.RemoveAll(specDir) })
	spec = filepath.Join(specDir, "chos-test.yaml")
	must(t, writeRootFile(spec, f.specText, 0o644))
	setConfig(t, devConfig(t, f, specDir))
	return specDir, spec
}

// devProgram builds, inside the tree with the device, a program against
// the device's header and library, in a directory of the user's; it
// returns the program's path.
func devProgram(t *testing.T, m mode, extra ...string) string {
	t.Helper()
	dir := filepath.Join(h.home, unique(t))
	userDir(t, dir)
	writeUserFile(t, filepath.Join(dir, "prog.c"), "#include <stdio.h>\n#include <chostest.h>\nint main(void) { printf(\"answer %d\\n\", chostest_answer()); return 0; }\n", 0o644)
	prog := filepath.Join(dir, "prog")
	args := append(append([]string{"exec"}, extra...), "--device", devName, "debgcc",
		"gcc", "-I/opt/chos-test/include", "-o", prog, filepath.Join(dir, "prog.c"), "-L"+devLibDir, "-lchostest")
	r := run(t, m.call(args...).in(dir))
	if !wantStatus(t, r, 0) {
		t.FailNow()
	}
	return prog
}

// A device's library, header, tool and environment are in the tree with
// --device, and none of them without: a program built in the tree against
// the header runs and calls the library, which ldd shows resolved from the
// injected path. Both modes, cached and fresh views.
func TestDeviceShowsItsLibraryToolAndEnvironment(t *testing.T) {
	f := devices.get(t)
	setConfig(t, devConfig(t, f, f.specDir))
	tree := debianGCCTree(t)
	before := snapshotTree(t, filepath.Join(tree, "opt"))
	for _, m := range modes() {
		for _, view := range []struct {
			name  string
			extra []string
		}{{"cached", nil}, {"fresh", []string{"--fresh"}}} {
			if m.userns && view.name == "cached" {
				continue // (userns mode has no cache: every view is fresh)
			}
			t.Run(m.name+"/"+view.name, func(t *testing.T) {
				prog := devProgram(t, m, view.extra...)
				with := func(argv ...string) result {
					return run(t, m.call(append(append(append([]string{"exec"}, view.extra...), "--device", devName, "debgcc"), argv...)...))
				}
				without := func(argv ...string) result {
					return run(t, m.call(append(append(append([]string{"exec"}, view.extra...), "debgcc"), argv...)...))
				}
				if r := with(prog); wantStatus(t, r, 0) && r.stdout != "answer 42\n" {
					t.Errorf("the program built in the tree: %q, want answer 42:\n%s", r.stdout, r)
				}
				want := "libchostest.so.1 => " + devLibDir + "/libchostest.so.1 "
				if r := with("ldd", prog); wantStatus(t, r, 0) && !strings.Contains(r.stdout, want) {
					t.Errorf("ldd does not show the library from %s:\n%s", devLibDir, r)
				}
				if r := with("chostest-tool"); wantStatus(t, r, 0) && r.stdout != "chostest-tool runs\n" {
					t.Errorf("the device's tool: %q:\n%s", r.stdout, r)
				}
				if r := with("sh", "-c", "echo $CHOSTEST_DEVICE; test -c /dev/fuse && echo node; cat /etc/debian_version"); wantStatus(t, r, 0) &&
					!strings.HasPrefix(r.stdout, "present\nnode\n11.") {
					t.Errorf("environment, device node, tree: %q:\n%s", r.stdout, r)
				}
				// the tree's loader resolves the library as its own: by
				// soname, through the cache made for the view
				if r := with("sh", "-c", "/sbin/ldconfig -p | grep libchostest"); wantStatus(t, r, 0) &&
					!strings.Contains(r.stdout, "libchostest.so.1 (libc6,x86-64) => "+devLibDir+"/libchostest.so.1") {
					t.Errorf("the view's loader cache lacks the library:\n%s", r)
				}
				// the controls: none of it without --device
				if r := without(prog); r.status != 127 || !strings.Contains(r.stderr, "libchostest.so.1") {
					t.Errorf("without --device the program finds its library:\n%s", r)
				}
				if r := without("chostest-tool"); r.status != 127 {
					t.Errorf("without --device the tool is there:\n%s", r)
				}
				if r := without("sh", "-c", "echo \"[$CHOSTEST_DEVICE]\"; ls /opt/chos-test"); r.stdout != "[]\n" || r.status == 0 {
					t.Errorf("without --device its variable or files are there:\n%s", r)
				}
			})
		}
	}
	// nothing was written into the tree
	if d := diffSnapshots(before, snapshotTree(t, filepath.Join(tree, "opt"))); len(d) > 0 {
		t.Errorf("the tree's /opt changed: %v", d)
	}
	for _, p := range []string{filepath.Join(tree, devTool), filepath.Join(tree, "opt/chos-test")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is in the tree", p)
		}
	}
}

// $CHOS_DEVICES asks as --device does, for logins and commands alike.
func TestDevicesFromTheEnvironment(t *testing.T) {
	f := devices.get(t)
	setConfig(t, devConfig(t, f, f.specDir))
	c := chosCall("exec", "debgcc", "chostest-tool")
	c.Env = []string{"CHOS_DEVICES=" + devName}
	if r := run(t, c); wantStatus(t, r, 0) && r.stdout != "chostest-tool runs\n" {
		t.Errorf("$CHOS_DEVICES: %q\n%s", r.stdout, r)
	}
	// a login shell cleans the environment, but the device's is set
	c = chosCall("shell", "debgcc")
	c.Env, c.Stdin = []string{"CHOS_DEVICES=" + devName}, []byte("echo $CHOSTEST_DEVICE; chostest-tool\n")
	if r := run(t, c); wantStatus(t, r, 0) && r.stdout != "present\nchostest-tool runs\n" {
		t.Errorf("login shell with $CHOS_DEVICES: %q\n%s", r.stdout, r)
	}
	// control: --device with nothing wins over the variable's device
	c = chosCall("exec", "--device", devKind+"=nope", "debgcc", "true")
	c.Env = []string{"CHOS_DEVICES=" + devName}
	if r := run(t, c); r.status != 125 || !strings.Contains(r.stderr, devKind+"=nope") {
		t.Errorf("--device did not replace $CHOS_DEVICES:\n%s", r)
	}
}

// What is refused is refused in one line naming the device and the spec
// file (or the rule), with status 125, and nothing runs.
func TestDeviceRefusals(t *testing.T) {
	f := devices.get(t)
	setConfig(t, devConfig(t, f, f.specDir))
	marker := filepath.Join(h.tmp, unique(t))
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			for _, tc := range []struct {
				device string
				want   string
			}{
				{devKind + "=nope", "unknown device " + devKind + "=nope: no CDI spec in " + f.specDir + " defines it"},
				{devKind + "=other", "device " + devKind + "=other is not allowed in tree debgcc; it allows " + devName + " (" + h.config + ":"},
				{"nvidia.com/gpu", `device "nvidia.com/gpu": unqualified device`},
			} {
				r := run(t, m.call("exec", "--device", tc.device, "debgcc", "touch", marker))
				if r.status != 125 || !strings.HasPrefix(r.stderr, "chos: ") || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
					t.Errorf("--device %s: want status 125 and one line %q...:\n%s", tc.device, tc.want, r)
				}
			}
			if _, err := os.Stat(marker); err == nil {
				t.Errorf("the command ran")
			}
		})
	}
	// the host and another tree: the rule is the tree's
	if r := chos(t, "exec", "--device", devName, "one", "true"); r.status != 125 || !strings.Contains(r.stderr, "is not allowed in tree one: it allows no device") {
		t.Errorf("a tree that allows no device:\n%s", r)
	}
}

// A spec file a user could change is refused by the setuid chos, naming
// the file; the same file root's is used (the control). A hook chos does
// not know refuses its device, and is never run.
func TestDeviceSpecsAreTrustedConfiguration(t *testing.T) {
	f := devices.get(t)
	specDir, spec := ownSpecDir(t, f)
	if r := chos(t, "exec", "--device", devName, "debgcc", "chostest-tool"); !wantStatus(t, r, 0) {
		t.FailNow()
	}
	must(t, os.Chown(spec, h.uid, h.gid))
	r := chos(t, "exec", "--device", devName, "debgcc", "chostest-tool")
	if r.status != 125 || !strings.HasPrefix(r.stderr, "chos: refusing CDI spec "+spec+": "+spec+" is owned by uid") {
		t.Errorf("a spec the user owns:\n%s", r)
	}
	must(t, os.Chown(spec, 0, 0))
	must(t, os.Chmod(spec, 0o666))
	if r := chos(t, "exec", "--device", devName, "debgcc", "true"); r.status != 125 || !strings.Contains(r.stderr, spec+" is writable by group or others") {
		t.Errorf("a spec anyone may write:\n%s", r)
	}
	// chos check FAILs it, for the user and for root alike (root may read
	// it, but every user's launch refuses it)
	for _, c := range []call{chosCall("check", "debgcc"), {Root: true, Args: []string{h.chos, "check", "debgcc"}}} {
		if r := run(t, c); r.status != 1 || !strings.Contains(r.stdout, "FAIL devices: ") || !strings.Contains(r.stdout, spec+" is writable by group or others") {
			t.Errorf("chos check of a spec anyone may write:\n%s", r)
		}
	}
	must(t, os.Chmod(spec, 0o644))

	// a hook program of the vendor's own: the device is refused, the
	// program never runs (it would leave a file)
	ran := filepath.Join(h.tmp, unique(t))
	hook := filepath.Join(specDir, "hook")
	must(t, writeRootFile(hook, "#!/bin/sh\ntouch "+ran+"\n", 0o755))
	must(t, writeRootFile(spec, f.specText+`- name: hooked
  containerEdits:
    hooks:
    - hookName: createContainer
      path: `+hook+`
      args: [hook, --prepare]
`, 0o644))
	setConfig(t, devConfig(t, f, specDir)+"devices = "+devKind+"=hooked\n")
	for _, m := range modes() {
		r := run(t, m.call("exec", "--fresh", "--device", devKind+"=hooked", "debgcc", "true"))
		if r.status != 125 || !strings.Contains(r.stderr, "device "+devKind+"=hooked ("+spec+"): hook "+hook+" hook --prepare: chos runs no hook program") {
			t.Errorf("%s: a hook program:\n%s", m.name, r)
		}
	}
	if _, err := os.Stat(ran); err == nil {
		t.Errorf("the hook program ran")
	}
}

// A view with devices is cached beside the tree's plain view, and a
// changed spec file gives a new view, as a changed configuration does.
func TestDeviceViewsAreCachedAndFollowTheirSpec(t *testing.T) {
	f := devices.get(t)
	_, spec := ownSpecDir(t, f)
	ns := func(args ...string) string {
		r := chos(t, append(append([]string{"exec"}, args...), "sh", "-c", "readlink /proc/self/ns/mnt; echo $CHOSTEST_DEVICE")...)
		wantStatus(t, r, 0)
		return r.stdout
	}
	plain := ns("debgcc")
	dev := ns("--device", devName, "debgcc")
	if plain == dev || !strings.HasSuffix(dev, "\npresent\n") {
		t.Fatalf("the plain view %q and the view with the device %q", plain, dev)
	}
	if again := ns("--device", devName, "debgcc"); again != dev {
		t.Errorf("a second launch with the device is not in the cached view: %q, then %q", dev, again)
	}
	if again := ns("debgcc"); again != plain {
		t.Errorf("the view with the device replaced the plain one: %q, then %q", plain, again)
	}
	// the spec regenerated: a new view, with what it says now
	must(t, writeRootFile(spec, deviceSpec(f.dir, "CHOSTEST_DEVICE=regenerated"), 0o644))
	if after := ns("--device", devName, "debgcc"); after == dev || !strings.HasSuffix(after, "\nregenerated\n") {
		t.Errorf("after the spec changed: %q (before %q)", after, dev)
	}
	r := run(t, call{Root: true, Args: []string{h.chos, "cache"}})
	if wantStatus(t, r, 0) && !strings.Contains(r.stdout, "debgcc (devices)") {
		t.Errorf("chos cache does not list the view with devices:\n%s", r)
	}
}

// chos check lists what each tree allows and the spec files behind it;
// chos plan shows the device's steps.
func TestCheckAndPlanShowDevices(t *testing.T) {
	f := devices.get(t)
	setConfig(t, devConfig(t, f, f.specDir))
	r := chos(t, "check", "debgcc")
	if !strings.Contains(r.stdout, "ok   devices: tree debgcc: "+devName+" ("+h.config+":") || !strings.Contains(r.stdout, devName+", from "+f.spec) {
		t.Errorf("chos check does not list the device and its spec:\n%s", r)
	}
	if !strings.Contains(r.stdout, "warn devices: tree debgcc: "+devKind+"=nope") {
		t.Errorf("chos check does not say no spec defines nope:\n%s", r)
	}
	r = chos(t, "plan", "--device", devName, "debgcc", "--", "true")
	for _, want := range []string{
		"devices   " + devName,
		"overlay   /.chos/add/opt + " + debianGCCTree(t) + "/opt -> /opt",
		"mount point " + devLibDir + "/libchostest.so.1.0 if the tree lacks it, and its soname linked to it",
		"link " + devLibDir + "/libchostest.so -> libchostest.so.1",
		"ldcache   " + debianGCCTree(t) + "/etc/ld.so.cache + 1 library -> /.chos/etc/ld.so.cache",
		"bind      " + f.dir + "/tool -> " + devTool,
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("chos plan lacks %q:\n%s", want, r)
		}
	}
	// control: without --device, none of it
	if r := chos(t, "plan", "debgcc", "--", "true"); strings.Contains(r.stdout, "ldcache") || strings.Contains(r.stdout, "devices ") {
		t.Errorf("chos plan without --device shows device steps:\n%s", r)
	}
}

// Slurm jobs ask with --chos-device (or $CHOS_DEVICES), and the submit
// checks the rule.
func TestSlurmJobWithDevice(t *testing.T) {
	f := devices.get(t)
	setConfig(t, devConfig(t, f, f.specDir))
	c := chosJobs(t)
	r := run(t, c.user("srun", "--chos=debgcc", "--chos-device="+devName, "sh", "-c", "echo $CHOSTEST_DEVICE; chostest-tool; cat /etc/debian_version"))
	if wantStatus(t, r, 0) && !strings.HasPrefix(r.stdout, "present\nchostest-tool runs\n11.") {
		t.Errorf("srun --chos-device: %q\n%s", r.stdout, r)
	}
	env := call{Args: []string{"srun", "--chos=debgcc", "chostest-tool"}, Env: append(c.user().Env, "CHOS_DEVICES="+devName)}
	if r := run(t, env); wantStatus(t, r, 0) && r.stdout != "chostest-tool runs\n" {
		t.Errorf("srun with $CHOS_DEVICES: %q\n%s", r.stdout, r)
	}
	// control: the same step without the device
	if r := run(t, c.user("srun", "--chos=debgcc", "chostest-tool")); r.status == 0 {
		t.Errorf("the tool ran without the device:\n%s", r)
	}
	// a device the tree does not allow: refused at submit time
	r = run(t, c.user("sbatch", "--chos=debgcc", "--chos-device="+devKind+"=other", "--wrap", "true"))
	if r.status == 0 || !strings.Contains(r.stderr, "device "+devKind+"=other is not allowed in tree debgcc") {
		t.Errorf("sbatch with a device the tree does not allow:\n%s", r)
	}
}

// A PAM session asks with $CHOS_DEVICES (su passes its own environment):
// the device's variables reach the session, its files the session's tree.
func TestPamSessionWithDevice(t *testing.T) {
	f := devices.get(t)
	setConfig(t, devConfig(t, f, f.specDir))
	suL := [][2]string{pamFileWith(t, "su-l", pamChos(t))}
	const cmd = `echo "[$CHOSTEST_DEVICE]"; chostest-tool; cat /etc/debian_version`
	r := run(t, call{Root: true, Env: []string{"CHOS=debgcc", "CHOS_DEVICES=" + devName}, Args: withBinds(suL, "su", "-l", h.user, "-c", cmd)})
	if wantStatus(t, r, 0) && !strings.HasPrefix(r.stdout, "[present]\nchostest-tool runs\n11.") {
		t.Errorf("su -l with $CHOS_DEVICES: %q\n%s", r.stdout, r)
	}
	// control: the same session without the variable has none of it
	r = run(t, call{Root: true, Env: []string{"CHOS=debgcc"}, Args: withBinds(suL, "su", "-l", h.user, "-c", cmd)})
	if !strings.HasPrefix(r.stdout, "[]\n") || strings.Contains(r.stdout, "chostest-tool runs") {
		t.Errorf("su -l without $CHOS_DEVICES: %q\n%s", r.stdout, r)
	}
	// a device the tree does not allow refuses the session
	r = run(t, call{Root: true, Env: []string{"CHOS=debgcc", "CHOS_DEVICES=" + devKind + "=other"}, Args: withBinds(suL, "su", "-l", h.user, "-c", cmd)})
	if r.status == 0 || !strings.Contains(r.stdout+r.stderr, "device "+devKind+"=other is not allowed in tree debgcc") {
		t.Errorf("su -l with a device the tree does not allow:\n%s", r)
	}
}

// The audit line names the devices a view shows, and those a refused
// launch asked for; a launch without devices has no such field.
func TestDeviceLaunchesAreAudited(t *testing.T) {
	f := devices.get(t)
	setConfig(t, devConfig(t, f, f.specDir))
	d := startRsyslog(t)
	auditConfig(t, "%AUDIT\nsocket = "+d.sock+"\n")
	for _, c := range []struct {
		name    string
		args    []string
		status  int
		event   string
		devices string // "" : no devices field
	}{
		{"with a device", []string{"exec", "--device", devName, "debgcc", "true"}, 0, "launch", devName},
		{"a device not allowed", []string{"exec", "--device", devKind + "=other", "debgcc", "true"}, 125, "refuse", devKind + "=other"},
		{"without (control)", []string{"exec", "debgcc", "true"}, 0, "launch", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := len(d.lines(t))
			r := chos(t, c.args...)
			wantStatus(t, r, c.status)
			lines := d.lines(t)
			if len(lines) != n+1 {
				t.Fatalf("%d audit lines, want one:\n%v", len(lines)-n, lines[n:])
			}
			a := lines[n]
			got, ok := a.fields["devices"]
			if a.event != c.event || got != c.devices || ok != (c.devices != "") || a.fields["tree"] != "debgcc" {
				t.Errorf("audit line %q, want %s with devices %q", a.text, c.event, c.devices)
			}
		})
	}
}

// From inside a tree, chos asks for a device as on the host: the spec
// files, the reader and the device's files are the host's. From a tree
// whose setuid programs work (setuid = allow) the inner chos is the setuid
// one, which moves to the host's root and has a private view built with
// root's help; from any other tree it goes through a user namespace, and
// finds them below the view's /.chos/host.
func TestDeviceLaunchFromInsideATree(t *testing.T) {
	f := devices.get(t)
	for _, c := range []struct {
		name   string
		extra  string // configuration added
		uidMap string // the inner launch's first uid_map line, fields
	}{
		{"inner setuid (setuid = allow)", "%TREE two\nsetuid = allow\n", "0 0 4294967295"},
		{"inner user namespace", "", fmt.Sprintf("%d %d 1", h.uid, h.uid)},
	} {
		t.Run(c.name, func(t *testing.T) {
			setConfig(t, devConfig(t, f, f.specDir)+c.extra)
			prog := devProgram(t, modes()[0])
			inner := func(device bool, argv ...string) result {
				args := []string{"exec", "two", "chos", "exec"}
				if device {
					args = append(args, "--device", devName)
				}
				return chos(t, append(append(args, "debgcc"), argv...)...)
			}
			r := inner(true, "sh", "-c", prog+`; echo "[$CHOSTEST_DEVICE]"; chostest-tool; head -1 /proc/self/uid_map; cat /etc/debian_version`)
			if wantStatus(t, r, 0) {
				lines := strings.Split(r.stdout, "\n")
				if len(lines) < 5 || lines[0] != "answer 42" || lines[1] != "[present]" || lines[2] != "chostest-tool runs" ||
					strings.Join(strings.Fields(lines[3]), " ") != c.uidMap || !strings.HasPrefix(lines[4], "11.") {
					t.Errorf("inside %s then debgcc with the device: %q, want the answer, the variable, the tool, uid_map %q, Debian 11:\n%s", "two", r.stdout, c.uidMap, r)
				}
			}
			// control: the same inner launch without the device
			if r := inner(false, "sh", "-c", `echo "[$CHOSTEST_DEVICE]"; chostest-tool`); r.stdout != "[]\n" || r.status == 0 {
				t.Errorf("without --device from inside a tree:\n%s", r)
			}
			// and a device the tree does not allow is refused there too
			if r := chos(t, "exec", "two", "chos", "exec", "--device", devKind+"=other", "debgcc", "true"); r.status != 125 ||
				!strings.Contains(r.stderr, "device "+devKind+"=other is not allowed in tree debgcc") {
				t.Errorf("a device not allowed, from inside a tree:\n%s", r)
			}
		})
	}
}
