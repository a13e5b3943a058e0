package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/hostexec"
	"github.com/chos-hpc/chos/pkg/plan"
)

// No process with privilege runs with a tree as its root, reads a tree's
// loader configuration or loads a library from a tree (the class of
// sudo's CVE-2025-32463: a chroot whose nsswitch.conf the user wrote).
// Whoever makes a tree's contents (an image from a container registry, a
// project's tree) must not get root through chos. The probe is a library
// that logs the effective uid of every process that loads it.

// probeLib builds testdata/preloadprobe into dir, logging to log, which
// it makes (empty, writable by everyone), and returns the library's path.
func probeLib(t testing.TB, dir, log string) string {
	t.Helper()
	out := filepath.Join(dir, "preloadprobe.so")
	src := filepath.Join(h.repo, "test/integration/testdata/preloadprobe/preloadprobe.c")
	cmd := exec.Command("gcc", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", `-DPROBE_LOG="`+log+`"`, "-o", out, src)
	cmd.Dir, cmd.Env = "/", rootEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if r, err := runWithTimeout(cmd, time.Minute, nil); err != nil || r.status != 0 {
		t.Fatalf("building the probe library: %v\n%s", err, r)
	}
	must(t, writeRootFile(log, "", 0o666))
	t.Cleanup(func() { os.Remove(log) })
	return out
}

// probeLoads are the lines the probe logged since the log was emptied,
// and those of them by a process with euid 0.
func probeLoads(t testing.TB, log string) (all, asRoot []string) {
	t.Helper()
	data, err := os.ReadFile(log)
	must(t, err)
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if l == "" {
			continue
		}
		all = append(all, l)
		if strings.HasPrefix(l, "euid=0 ") {
			asRoot = append(asRoot, l)
		}
	}
	must(t, os.Truncate(log, 0))
	return all, asRoot
}

// preloadTree makes a busybox tree whose /etc/ld.so.preload names lib,
// copied into it: every dynamic program run with the tree as its root
// loads lib.
func preloadTree(t *testing.T, lib string) string {
	t.Helper()
	dir := filepath.Join(h.base, unique(t)+"-preload-"+randHex(3))
	t.Cleanup(func() { os.RemoveAll(dir) })
	if out, err := runSetup(2*time.Minute, h.repo, "scripts/mkbusyboxtree", dir, "chospreload", "Chos Preload"); err != nil {
		t.Fatalf("mkbusyboxtree: %v\n%s", err, out)
	}
	must(t, os.MkdirAll(filepath.Join(dir, "usr", "lib"), 0o755))
	copyFile(t, lib, filepath.Join(dir, "usr", "lib", "chos-probe.so"), 0o755)
	must(t, writeRootFile(filepath.Join(dir, "etc", "ld.so.preload"), "/usr/lib/chos-probe.so\n", 0o644))
	return dir
}

// In a PAM session in a tree whose /etc/ld.so.preload names the probe,
// the user runs chos inside: a nested `chos exec` of an image tree (which
// chos lists with unsquashfs), `chos list`, `check` and `select`. In a
// tree without `setuid = allow` chos is not setuid there (its bind is
// nosuid: it switches through a user namespace); in one with it, chos is
// setuid and works from the host's root. Either way the probe never runs
// as root. Control: a root process running a dynamic program in that tree
// (what chos did before: the host's unsquashfs through the host's loader,
// with the tree as its root) loads the probe as root.
func TestTreeLoaderConfigurationNeverRunsAsRoot(t *testing.T) {
	needLoopSquashfs(t)
	fuseForUsers(t)
	clearDotfile(t)
	log := filepath.Join(h.tmp, unique(t)+"-probe.log")
	lib := probeLib(t, t.TempDir(), log)
	img, imgID := imageTree(t)
	setConfig(t, h.configText+"denied:"+preloadTree(t, lib)+"\nallowed:"+preloadTree(t, lib)+"\nimg:"+img+"\n"+
		"%TREE allowed\nsetuid = allow\n")
	afterImages(t, img)

	t.Run("control: a root process in the tree loads the probe", func(t *testing.T) {
		argv, err := hostexec.Argv("/", plan.HostDir, "/usr/bin/true")
		must(t, err)
		r := run(t, call{Root: true, Args: append([]string{h.chos, "exec", "denied"}, argv...)})
		wantStatus(t, r, 0)
		if _, asRoot := probeLoads(t, log); len(asRoot) == 0 {
			t.Fatalf("the host's loader, run as root in the tree (%q), did not load the tree's preload: the test cannot fail", argv)
		}
	})

	suL := [][2]string{pamFileWith(t, "su-l", pamChos(t))}
	const inside = `/.chos/bin/chos exec img sh -c 'echo osid=$(sed -n "s/^ID=//p" /etc/os-release); echo groups=$(id -G)'; ` +
		`/.chos/bin/chos list >/dev/null; echo list=$?; /.chos/bin/chos check >/dev/null; ` +
		`/.chos/bin/chos select img; echo select=$?; /.chos/bin/chos select`
	for _, c := range []struct {
		tree     string
		setuid   bool // chos works setuid in the session
		overflow bool // supplementary groups show as the overflow group (user namespace)
	}{
		{"denied", false, true},
		{"allowed", true, false},
	} {
		t.Run("session in "+c.tree, func(t *testing.T) {
			r := run(t, call{Root: true, Env: []string{"CHOS=" + c.tree}, Args: withBinds(suL, "su", "-l", h.user, "-c", inside)})
			wantStatus(t, r, 0)
			for _, want := range []string{"osid=" + imgID, "list=0", "select=0", "\nimg\n"} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("the session's chos commands did not all work (%q missing):\n%s", want, r)
				}
			}
			if got := strings.Contains(r.stdout, "65534"); got != c.overflow {
				t.Errorf("tree %s: overflow group shown %v, want %v (chos setuid in the session: %v):\n%s", c.tree, got, c.overflow, c.setuid, r)
			}
			all, asRoot := probeLoads(t, log)
			if len(asRoot) > 0 {
				t.Errorf("the tree's preloaded library ran as root:\n%s\n%s", strings.Join(asRoot, "\n"), r)
			}
			// The probe was in play: the user's own programs loaded it
			// (the host's unsquashfs, listing the image for `chos list`).
			if len(all) == 0 {
				t.Errorf("the probe never loaded in the session: the check above proves nothing:\n%s", r)
			}
		})
	}
}

// In a login session (PAM: no_new_privs is not set, so that sudo works
// where a tree allows it), a tree's files give no privilege: its setuid
// programs and chos itself run without root, and its device nodes cannot
// be opened, unless (for setuid programs) the tree has `setuid = allow`.
// Controls: the setuid program gives root on the host, and in the tree
// that allows it; the device node opens on the host.
func TestSessionGetsNoPrivilegeFromATreesFiles(t *testing.T) {
	setConfig(t, h.configText+"%TREE three\nsetuid = allow\n")
	bin := buildEuid(t, t.TempDir())
	// dir/euid, setuid root, and dir/null, a device node anyone may open
	probes := func(dir string) {
		copyFile(t, bin, filepath.Join(dir, "euid"), os.ModeSetuid|0o755)
		must(t, syscall.Mknod(filepath.Join(dir, "null"), syscall.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(t, os.Chmod(filepath.Join(dir, "null"), 0o666))
	}
	for _, tree := range []string{"one", "three"} {
		probes(optProbe(t, tree))
	}
	hostDir := filepath.Join(h.base, unique(t)+"-host")
	must(t, os.MkdirAll(hostDir, 0o755))
	t.Cleanup(func() { os.RemoveAll(hostDir) })
	probes(hostDir)
	r := run(t, call{Args: []string{"sh", "-c", hostDir + "/euid; cat " + hostDir + "/null && echo opened"}})
	if !wantStatus(t, r, 0) || !strings.HasPrefix(r.stdout, "0\n") || !strings.Contains(r.stdout, "opened") {
		t.Fatalf("control: on the host the setuid program does not give root, or the device does not open; the test cannot fail:\n%s", r)
	}

	suL := [][2]string{pamFileWith(t, "su-l", pamChos(t))}
	const inside = `echo euid=$(/opt/probe/euid); cat /opt/probe/null 2>/dev/null && echo device=opened; ` +
		`echo groups=$(/.chos/bin/chos exec two id -G)`
	uid := strconv.Itoa(h.uid)
	for _, c := range []struct {
		tree, euid string
		overflow   bool
	}{
		{"one", uid, true},
		{"three", "0", false}, // control: setuid = allow
	} {
		t.Run(c.tree, func(t *testing.T) {
			r := run(t, call{Root: true, Env: []string{"CHOS=" + c.tree}, Args: withBinds(suL, "su", "-l", h.user, "-c", inside)})
			wantStatus(t, r, 0)
			if !strings.Contains(r.stdout, "euid="+c.euid+"\n") {
				t.Errorf("the tree's setuid-root program in a session in %s: want euid %s:\n%s", c.tree, c.euid, r)
			}
			if strings.Contains(r.stdout, "device=opened") {
				t.Errorf("a device node of tree %s opened in a session:\n%s", c.tree, r)
			}
			if got := strings.Contains(r.stdout, "65534"); got != c.overflow || !strings.Contains(r.stdout, "groups=") {
				t.Errorf("chos inside %s switched through a user namespace: %v, want %v:\n%s", c.tree, got, c.overflow, r)
			}
		})
	}
}

// A host command (%HOSTCMD) called from a tree with `setuid = allow`
// starts the setuid chos inside the view (/.chos/bin/NAME is a link to
// it): that chos, privileged, must work from the host's root as every
// other privileged chos inside a view does, and the host's program must
// run on the host, as the caller, never with the tree's loader
// configuration. The probe is preloaded by the tree: it logs every
// dynamic program that runs with the tree as its root. Control: the
// host's program, run through the host's loader with the tree as its
// root, loads it.
func TestHostCommandFromASetuidTreeNeverUsesTheTreeAsRoot(t *testing.T) {
	clearDotfile(t)
	log := filepath.Join(h.tmp, unique(t)+"-probe.log")
	lib := probeLib(t, t.TempDir(), log)
	setConfig(t, h.configText+"allowed:"+preloadTree(t, lib)+"\n%TREE allowed\nsetuid = allow\n%HOSTCMD\n/usr/bin/id /usr/bin/head\n")

	// (the tree is busybox-static: a dynamic program is the host's, run
	// through the host's loader with the tree as its root)
	argv, err := hostexec.Argv("/", plan.HostDir, "/usr/bin/true")
	must(t, err)
	r := run(t, call{Args: append([]string{h.chos, "exec", "allowed"}, argv...)})
	wantStatus(t, r, 0)
	if all, _ := probeLoads(t, log); len(all) == 0 {
		t.Fatalf("control: a dynamic program with the tree as its root did not load the probe: the test cannot fail\n%s", r)
	}
	host, err := os.ReadFile("/etc/os-release")
	must(t, err)
	first := strings.SplitN(string(host), "\n", 2)[0]
	for _, c := range []struct {
		name string
		root bool
		uid  int
	}{
		{"the user (chos setuid in the tree)", false, h.uid},
		{"root", true, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			// (from /tmp, the host's in every view: the tree's / is not the host's)
			r := run(t, call{Root: c.root, Dir: "/tmp", Args: []string{h.chos, "exec", "allowed", "sh", "-c", "/.chos/bin/id -u; /.chos/bin/head -n1 /etc/os-release"}})
			if !wantStatus(t, r, 0) {
				return
			}
			if want := strconv.Itoa(c.uid) + "\n" + first + "\n"; r.stdout != want {
				t.Errorf("the host commands printed %q, want the caller's uid and the host's os-release (%q):\n%s", r.stdout, want, r)
			}
			all, asRoot := probeLoads(t, log)
			if len(asRoot) > 0 {
				t.Errorf("the tree's preloaded library ran as root:\n%s\n%s", strings.Join(asRoot, "\n"), r)
			}
			if len(all) > 0 {
				t.Errorf("a host command ran with the tree as its root:\n%s\n%s", strings.Join(all, "\n"), r)
			}
		})
	}
}

// A tree's maker (an image from a registry) may put a FIFO where chos
// reads a tree's file: its /etc/chos.conf (a login shell's %ENV), its own
// /etc/passwd where identity = leaves it to the tree (every launch reads
// it). Nothing ever writes to it: a launch must refuse it at once, never
// wait. Control: the same file as a plain one.
func TestATreesFIFOsNeverHoldALaunch(t *testing.T) {
	clearDotfile(t)
	dir := filepath.Join(h.base, unique(t)+"-fifo-"+randHex(3))
	t.Cleanup(func() { os.RemoveAll(dir) })
	if out, err := runSetup(2*time.Minute, h.repo, "scripts/mkbusyboxtree", dir, "chosfifo", "Chos FIFO"); err != nil {
		t.Fatalf("mkbusyboxtree: %v\n%s", err, out)
	}
	passwd, err := os.ReadFile("/etc/passwd")
	must(t, err)
	must(t, writeRootFile(filepath.Join(dir, "etc/passwd"), string(passwd), 0o644)) // (names the user)
	setConfig(t, h.configText+"fifo:"+dir+"\n%TREE fifo\nidentity = /etc/group\n")
	for _, c := range []struct {
		name, file, plain string
		c                 call
	}{
		{"login shell, its /etc/chos.conf", "etc/chos.conf", "%ENV\nHOME\n", call{Args: []string{h.chos, "shell", "fifo"}, Stdin: []byte("exit 0\n")}},
		{"exec, the tree's own /etc/passwd", "etc/passwd", string(passwd), call{Args: []string{h.chos, "exec", "fifo", "true"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.file)
			os.Remove(p)
			must(t, unix.Mkfifo(p, 0o644))
			c.c.Timeout = 15 * time.Second
			began := time.Now()
			r := run(t, c.c)
			if took := time.Since(began); r.status != 125 || took > 10*time.Second || !strings.Contains(r.stderr, "not a regular file") {
				t.Errorf("a FIFO at the tree's /%s: after %v:\n%s", c.file, took, r)
			}
			must(t, os.Remove(p))
			must(t, writeRootFile(p, c.plain, 0o644))
			wantStatus(t, run(t, c.c), 0) // control
		})
	}
}
