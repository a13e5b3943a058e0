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
)

// Attacks of a user on the setuid chos that it resisted when they were
// tried (issue 19), kept so that no later change reopens them: user input
// taken as an option, loader and locale variables reaching root's helpers,
// a command reaching the host through what chos opened, leftovers of
// killed launches. (Also kept elsewhere: user-owned and user-writable
// images, image_test.go; a user running the builder or chos prepare,
// attack_test.go and audit_test.go; forged audit lines, audit_test.go.)

// What a user gives ($CHOS, the tree name, the command, the PAM session's
// CHOS) is a lookup key or the command, never an option of chos.
func TestUserInputIsNeverAnOptionOfChos(t *testing.T) {
	evil := filepath.Join(h.home, unique(t)+"-chos.conf")
	writeUserFile(t, evil, "%SHELLS\nevil:/\ndefault:/\n", 0o644)
	defer os.Remove(evil)
	cases := []struct {
		name   string
		c      call
		status int
		want   string // in stderr
	}{
		{"$CHOS=--config=FILE", call{Args: []string{h.chos, "exec", "--", "true"}, Env: []string{"CHOS=--config=" + evil}}, 125, `unknown OS tree "--config=` + evil + `"`},
		{"$CHOS=-v", call{Args: []string{h.chos, "exec", "--", "true"}, Env: []string{"CHOS=-v"}}, 125, `unknown OS tree "-v"`},
		{"$CHOS=--mode=userns", call{Args: []string{h.chos, "true"}, Env: []string{"CHOS=--mode=userns"}}, 125, `unknown OS tree "--mode=userns"`},
		{"an option after the tree is the command", chosCall("exec", "one", "--mode=setuid"), 127, "--mode=setuid: command not found in tree one"},
		{"an option after -- is the command", chosCall("exec", "one", "--", "--help"), 127, "--help: command not found in tree one"},
		{"an option before the tree is refused", chosCall("exec", "--config="+evil, "one", "true"), 2, `unknown option "--config=`},
		{"--config is root's", chosCall("--config="+evil, "exec", "evil", "true"), 125, "honoured only for root"},
		{"CHOS_CONFIG is root's", call{Args: []string{h.chos, "exec", "evil", "true"}, Env: []string{"CHOS_CONFIG=" + evil}}, 125, "honoured only for root"},
		{"control: a tree name", chosCall("exec", "two", "true"), 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, c.c)
			wantStatus(t, r, c.status)
			if !strings.Contains(r.stderr, c.want) {
				t.Errorf("stderr does not say %q:\n%s", c.want, r)
			}
		})
	}

	// pam_chos passes the session's $CHOS as the value of --env-chos, in
	// an argument of its own: a value that looks like an option stays a
	// value (here one that would make chos prepare take the user for root,
	// whom it never moves).
	t.Run("chos prepare --env-chos --uid=0", func(t *testing.T) {
		for _, c := range []struct{ envChos, want string }{
			{"--uid=0", `error=unknown OS tree "--uid=0"`},
			{"-v", `error=unknown OS tree "-v"`},
			{"two", "enter=1"}, // control
		} {
			reply := prepareAsPAM(t, "--env-chos", c.envChos)
			if !strings.Contains(reply, c.want) {
				t.Errorf("--env-chos %s: the reply does not say %q:\n%s", c.envChos, c.want, reply)
			}
		}
	})
	// Likewise the session's $CHOS_DEVICES, the value of --env-devices.
	t.Run("chos prepare --env-devices --uid=0", func(t *testing.T) {
		for _, c := range []struct {
			devices []string
			want    string
		}{
			{[]string{"--env-devices", "--uid=0"}, `error=device "--uid=0"`},
			{[]string{"--env-devices", "--env-chos=two"}, `error=device "--env-chos=two"`},
			{nil, "enter=1"}, // control
		} {
			reply := prepareAsPAM(t, append([]string{"--env-chos", "two"}, c.devices...)...)
			if !strings.Contains(reply, c.want) {
				t.Errorf("%q: the reply does not say %q:\n%s", c.devices, c.want, reply)
			}
		}
	})
	t.Run("a PAM session's $CHOS=--uid=0", func(t *testing.T) {
		suL := [][2]string{pamFileWith(t, "su-l", pamChos(t))}
		r := run(t, call{Root: true, Env: []string{"CHOS=--uid=0"}, Args: withBinds(suL, "su", "-l", h.user, "-c", "echo session=$(id -u)")})
		if r.status == 0 || strings.Contains(r.stdout, "session=") || !strings.Contains(r.stdout+r.stderr, `unknown OS tree "--uid=0"`) {
			t.Errorf("a session with CHOS=--uid=0 was not refused as naming an unknown tree:\n%s", r)
		}
	})
}

// prepareAsPAM runs chos prepare as root the way pam_chos does for the
// test user, with extra arguments, and returns its reply.
func prepareAsPAM(t *testing.T, extra ...string) string {
	t.Helper()
	sv, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	must(t, err)
	mine, theirs := os.NewFile(uintptr(sv[0]), "reply"), os.NewFile(uintptr(sv[1]), "fd3")
	defer mine.Close()
	args := append([]string{"prepare", "--service", "pam", "--user", h.user, "--uid", strconv.Itoa(h.uid),
		"--gid", strconv.Itoa(h.gid), "--groups", "", "--pam-service", "chos-itest"}, extra...)
	cmd := exec.Command(h.chos, args...)
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Env, cmd.Dir = rootEnv(), "/"
	out, _ := cmd.CombinedOutput()
	theirs.Close()
	reply := make([]byte, 8192)
	n, _ := mine.Read(reply)
	return string(reply[:n]) + string(out)
}

// The caller's loader and locale variables never reach a process of chos's
// that runs as root: its builder starts with an empty environment, and a
// library they name is loaded by the caller's own programs only, never by
// what chos runs as root (unsquashfs listing an image for a shared view,
// getent naming a directory user). Controls: the library is loaded, and
// logs root, when root runs a program with those variables; the
// launcher's own environment has them.
func TestLoaderVariablesNeverReachRootsHelpers(t *testing.T) {
	needLoopSquashfs(t)
	libDir := filepath.Join(h.base, unique(t)+"-lib")
	must(t, os.MkdirAll(libDir, 0o755))
	t.Cleanup(func() { os.RemoveAll(libDir) })
	log := filepath.Join(h.tmp, unique(t)+"-probe.log")
	lib := probeLib(t, libDir, log)
	env := []string{"LD_PRELOAD=" + lib, "LD_AUDIT=" + lib, "LD_LIBRARY_PATH=" + libDir, "GCONV_PATH=" + libDir,
		"LOCPATH=" + libDir, "NLSPATH=" + libDir + "/%N", "LIBMOUNT_DEBUG=all", "LIBMOUNT_FSTAB=" + libDir + "/fstab",
		"LIBMOUNT_MTAB=" + libDir + "/mtab", "LC_ALL=C.UTF-8"}

	wantStatus(t, run(t, call{Root: true, Args: []string{"/bin/true"}, Env: env}), 0)
	if _, asRoot := probeLoads(t, log); len(asRoot) == 0 {
		t.Fatal("control: root's /bin/true with LD_PRELOAD did not log the probe as root: the test cannot fail")
	}

	img, id := imageTree(t)
	withImageTrees(t, "img", img)
	afterImages(t, img)
	dir := directoryUser(t)
	emptyCache(t)
	// (through env(1), run as the user: the harness's setpriv, root's,
	// must not get the variables)
	withEnv := func(args ...string) []string { return append(append([]string{"env"}, env...), args...) }
	for _, c := range []struct {
		name string
		c    call
	}{
		{"first launch of an image tree", call{Args: withEnv(h.chos, "exec", "img", "cat", "/etc/os-release")}},
		{"fresh launch of an image tree", call{Args: withEnv(h.chos, "exec", "--fresh", "img", "cat", "/etc/os-release")}},
		{"directory user", call{User: &dir.testUser, Args: withEnv(h.chos, "exec", "img", "cat", "/etc/os-release")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantOSID(t, run(t, c.c), id)
			if _, asRoot := probeLoads(t, log); len(asRoot) > 0 {
				t.Errorf("a library the caller named was loaded as root:\n%s", strings.Join(asRoot, "\n"))
			}
		})
	}

	t.Run("the builder's environment", func(t *testing.T) {
		emptyCache(t)
		must(t, os.MkdirAll(hostCacheDir(t), 0o755))
		lock, err := os.OpenFile(filepath.Join(hostCacheDir(t), "one.lock"), os.O_RDWR|os.O_CREATE, 0o600)
		must(t, err)
		defer lock.Close()
		must(t, unix.Flock(int(lock.Fd()), unix.LOCK_EX)) // the builder waits here
		att := start(t, call{Args: withEnv(h.chos, "exec", "one", "true")})
		var builder int
		for deadline := time.Now().Add(promptly); builder == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if pids := pidsRunning("chos", "__chos_build_view"); len(pids) > 0 {
				builder = pids[0]
			}
		}
		if builder == 0 {
			t.Fatal("no builder started")
		}
		if launcher := readFile(t, "/proc/"+strconv.Itoa(att.pid)+"/environ"); !strings.Contains(launcher, "LD_PRELOAD=") {
			t.Errorf("control: the launcher's environment has no LD_PRELOAD: %q", launcher)
		}
		if got := readFile(t, "/proc/"+strconv.Itoa(builder)+"/environ"); got != "" {
			t.Errorf("the builder's environment is not empty: %q", got)
		}
		lock.Close()
		wantStatus(t, att.wait(promptly), 0)
	})
}

// The command reaches the host only through what the view binds: it holds
// no descriptor chos opened, its root is the view's own (one mount at /,
// the old root detached), in every kind of launch, the one from inside a
// tree with setuid = allow (chos working from the host's root) included
// (the class of runc's CVE-2024-21626, a descriptor of the host left to
// the container). Control: the same listing of descriptors without chos,
// where the caller's descriptor 7 is seen.
func TestCommandReachesTheHostOnlyThroughTheView(t *testing.T) {
	setConfig(t, h.configText+"%TREE three\nsetuid = allow\n")
	withFD7 := func(argv ...string) call {
		return call{Args: append([]string{"sh", "-c", `exec 7</dev/null "$@"`, "sh"}, argv...)}
	}
	// (ls's own descriptor of the directory it lists is 3)
	control := run(t, withFD7("ls", "/proc/self/fd"))
	if !wantStatus(t, control, 0) || strings.Fields(control.stdout)[len(strings.Fields(control.stdout))-1] != "7" {
		t.Fatalf("control: ls /proc/self/fd does not show the caller's descriptor 7:\n%s", control)
	}
	const roots = `echo roots=$(awk '$5 == "/"' /proc/self/mountinfo | wc -l); echo top=$(awk '$5 == "/" {for (i = 6; i < NF; i++) if ($i == "-") print $(i+2)}' /proc/self/mountinfo)`
	for _, c := range []struct {
		name string
		args []string
		top  string
	}{
		{"cached", []string{h.chos, "exec", "two"}, "chos:two"},
		{"fresh", []string{h.chos, "exec", "--fresh", "two"}, "chos:two"},
		{"userns", []string{h.chosUserns, "exec", "two"}, "chos:two"},
		{"from a setuid = allow tree", []string{h.chos, "exec", "three", "/.chos/bin/chos", "exec", "two"}, "chos:two"},
		{"from a tree back to the host", []string{h.chos, "exec", "three", "/.chos/bin/chos", "exec", "local"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, withFD7(append(append([]string{}, c.args...), "ls", "/proc/self/fd")...))
			if wantStatus(t, r, 0) && strings.Join(strings.Fields(r.stdout), " ") != strings.Join(strings.Fields(control.stdout), " ") {
				t.Errorf("the command's descriptors are not the caller's (%q without chos):\n%s", control.stdout, r)
			}
			r = run(t, call{Args: append(append([]string{}, c.args...), "sh", "-c", roots)})
			if !wantStatus(t, r, 0) {
				return
			}
			if !strings.Contains(r.stdout, "roots=1\n") {
				t.Errorf("the command sees more than one mount at / (an old root left?):\n%s", r)
			}
			if c.top != "" && !strings.Contains(r.stdout, "top="+c.top+"\n") {
				t.Errorf("the command's root is not the view's own %s:\n%s", c.top, r)
			}
			if strings.Contains(r.stderr, "warning") {
				t.Errorf("unexpected warning:\n%s", r)
			}
		})
	}
}

// A launch killed at any moment leaves nothing behind: no mount on the
// host but the cache's, no loop device once its processes are gone, no
// builder running on. The attacker is the user, who may kill their own
// launches (a SIGKILL of their process group); the builder, root's, runs
// to its end.
func TestKilledLaunchesLeaveNothing(t *testing.T) {
	needLoopSquashfs(t)
	img, _ := imageTree(t)
	withImageTrees(t, "img", img)
	afterImages(t, img)
	emptyCache(t)
	before := readMountinfo(t)
	launches := [][]string{
		{h.chos, "exec", "one", "true"},
		{h.chos, "exec", "--fresh", "one", "true"},
		{h.chos, "exec", "img", "true"},
		{h.chos, "exec", "--fresh", "img", "true"},
	}
	// The builders of killed launches finish by themselves; then the
	// cache goes too. A builder forked but not yet executed (out of the
	// launch's group already) still shows the launch's command line.
	builders := func() []int {
		pids := pidsRunning("chos", "__chos_build_view")
		for _, argv := range launches {
			pids = append(pids, pidsRunning(argv...)...)
		}
		return pids
	}
	waitBuilders := func() {
		for deadline := time.Now().Add(20 * time.Second); len(builders()) > 0 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if pids := builders(); len(pids) > 0 {
			t.Fatalf("builders still running: %v", pids)
		}
	}
	for _, argv := range launches {
		for _, delay := range []time.Duration{0, 1 * time.Millisecond, 3 * time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond} {
			waitBuilders() // (the last launch's, which may cache its view after a drop)
			emptyCache(t)
			b := start(t, call{Args: argv})
			time.Sleep(delay)
			syscall.Kill(-b.pid, syscall.SIGKILL)
			b.wait(promptly)
		}
	}
	waitBuilders()
	emptyCache(t)
	if gone, added := lineDiff(before, readMountinfo(t)); len(gone)+len(added) > 0 {
		t.Errorf("killed launches changed the host's mount table: lost %q, gained %q", gone, added)
	}
	wantNoLoopDevices(t, img)
}
