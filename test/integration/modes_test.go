package integration

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// mode is one way chos enters trees. Every behaviour in bothModes is tested
// in each of them.
type mode struct {
	name string
	// bin is the chos binary the user runs in this mode.
	bin string
	// rootEnv forces the mode for root, whom either binary gives root.
	rootEnv []string
	userns  bool
}

// modes are setuid mode (the installed setuid-root binary) and userns mode
// (the same binary without the setuid bit).
func modes() []mode {
	return []mode{
		{name: "setuid", bin: h.chos},
		{name: "userns", bin: h.chosUserns, rootEnv: []string{"CHOS_MODE=userns"}, userns: true},
	}
}

// call is chos ARGS run by the test user in this mode.
func (m mode) call(args ...string) call { return call{Args: append([]string{m.bin}, args...)} }

// rootCall is chos ARGS run by root in this mode.
func (m mode) rootCall(args ...string) call {
	return call{Args: append([]string{m.bin}, args...), Root: true, Env: m.rootEnv}
}

// chos runs chos ARGS as the test user in this mode.
func (m mode) chos(t testing.TB, args ...string) result {
	t.Helper()
	return run(t, m.call(args...))
}

// link is a vsys link NAME to this mode's binary.
func (m mode) link(t testing.TB, name string) string {
	t.Helper()
	return vsysLinkTo(t, m.bin, name)
}

func (c call) in(dir string) call { c.Dir = dir; return c }

// modeCase is one behaviour that both modes share.
type modeCase struct {
	name string
	test func(t *testing.T, m mode)
}

// bothModes is every behaviour that setuid mode and userns mode share. A
// case added here is run in both (TestBothModes/<mode>/<case>).
var bothModes = []modeCase{
	{"tree os-release", testTreeOSRelease},
	{"exit status 0", testExitStatus(0)},
	{"exit status 1", testExitStatus(1)},
	{"exit status 42", testExitStatus(42)},
	{"death by SIGTERM is 143", testDeathBySIGTERM},
	{"stdin and stdout pass through", testStdinStdout},
	{"cwd kept", testCwdKept},
	{"cwd missing in the view", testCwdMissing},
	{"tree read-only", testTreeReadOnly},
	{"tmp and home shared with the host", testTmpAndHomeShared},
	{"uid and gid kept", testUIDGIDKept},
	{"no capabilities and no_new_privs", testNoCapabilities},
	{"host mount table unchanged", testMountTableUnchanged},
	{"view from the caller's mount namespace", testCallersMountNamespace},
	{"unknown tree refused", testUnknownTree},
	{"arguments passed exactly", testArgumentsExactly},
	{"chos current", testCurrent},
}

func TestBothModes(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			// Control: the mode really is the one named, or the table
			// would test one mode twice. Only userns mode shows the
			// supplementary groups as the overflow group.
			t.Run("control mode in effect", func(t *testing.T) { wantGroupsOfMode(t, m.chos(t, "exec", "one", "id", "-G"), m.userns) })
			for _, c := range bothModes {
				t.Run(c.name, func(t *testing.T) { c.test(t, m) })
			}
		})
	}
}

// wantGroupsOfMode checks the output of `id -G` inside a tree: in setuid
// mode the user's exact groups, in userns mode their primary group and the
// overflow group 65534 for each supplementary one.
func wantGroupsOfMode(t testing.TB, r result, userns bool) {
	t.Helper()
	if !wantStatus(t, r, 0) {
		return
	}
	want := []string{strconv.Itoa(h.gid)}
	for _, g := range h.extraGIDs {
		if userns {
			want = append(want, "65534")
		} else {
			want = append(want, strconv.Itoa(g))
		}
	}
	if got := strings.Fields(r.stdout); !sameSet(got, want) {
		what := "the user's exact groups (setuid mode)"
		if userns {
			what = "the overflow group for the supplementary ones (userns mode)"
		}
		t.Errorf("id -G inside: %q, want the set %q, %s:\n%s", got, want, what, r)
	}
}

// The command sees the tree's /etc, not the host's.
func testTreeOSRelease(t *testing.T, m mode) {
	for _, ts := range treeSpecs {
		if h.hostOSRelease["ID"] == ts.id {
			t.Fatalf("the host claims to be tree %s: the test could not tell them apart", ts.name)
		}
		r := m.chos(t, "exec", ts.name, "cat", "/etc/os-release")
		wantOSID(t, r, ts.id)
		if got := parseOSRelease(r.stdout)["PRETTY_NAME"]; got != ts.pretty {
			t.Errorf("tree %s: PRETTY_NAME %q, want %q", ts.name, got, ts.pretty)
		}
	}
}

// The command's exit status is chos's, and a shell sees it so.
func testExitStatus(status int) func(t *testing.T, m mode) {
	return func(t *testing.T, m mode) {
		script := fmt.Sprintf("exit %d", status)
		r := m.chos(t, "exec", "one", "sh", "-c", script)
		wantStatus(t, r, status)
		if r.signaled {
			t.Errorf("chos died by a signal:\n%s", r)
		}
		wantStatus(t, shellRun(t, m.call("exec", "one", "sh", "-c", script)), status)
	}
}

// A command killed by SIGTERM is seen by the caller as killed by SIGTERM
// (a shell says 143). In setuid mode chos is the command; in userns mode
// the helper dies by the same signal.
func testDeathBySIGTERM(t *testing.T, m mode) {
	r := m.chos(t, "exec", "one", "sh", "-c", "kill -TERM $$")
	wantStatus(t, r, 143)
	if !r.signaled {
		t.Errorf("chos exited instead of dying by SIGTERM:\n%s", r)
	}
	wantStatus(t, shellRun(t, m.call("exec", "one", "sh", "-c", "kill -TERM $$")), 143)
}

// stdin, stdout and stderr are the caller's, byte for byte.
func testStdinStdout(t *testing.T, m mode) {
	data := make([]byte, 64<<10)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	c := m.call("exec", "one", "cat")
	c.Stdin = data
	r := run(t, c)
	wantStatus(t, r, 0)
	if r.stdout != string(data) {
		t.Errorf("cat in tree one returned %d bytes, differing from the %d sent (first 64: %s)", len(r.stdout), len(data), clip(r.stdout[:min(64, len(r.stdout))]))
	}
	c = m.call("exec", "one", "sh", "-c", "cat >&2")
	c.Stdin = []byte("to stderr\n")
	r = run(t, c)
	wantStatus(t, r, 0)
	if r.stderr != "to stderr\n" {
		t.Errorf("stderr %q, want %q", r.stderr, "to stderr\n")
	}
}

// The working directory is kept.
func testCwdKept(t *testing.T, m mode) {
	dir := filepath.Join(h.home, unique(t), "dir")
	userDir(t, dir)
	r := run(t, m.call("exec", "one", "pwd").in(dir))
	wantStatus(t, r, 0)
	if got := strings.TrimSpace(r.stdout); got != dir {
		t.Errorf("pwd in tree one printed %q, want %q:\n%s", got, dir, r)
	}
	// and the command really is in it (not just $PWD)
	r = run(t, m.call("exec", "one", "sh", "-c", "pwd -P; ls").in(filepath.Dir(dir)))
	wantStatus(t, r, 0)
	if want := filepath.Dir(dir) + "\ndir\n"; r.stdout != want {
		t.Errorf("got %q, want %q", r.stdout, want)
	}
}

// A working directory the view does not show fails the launch (125); chos
// does not run the command elsewhere.
func testCwdMissing(t *testing.T, m mode) {
	// The base directory exists on the host (and the user may enter it),
	// but not in any tree.
	if _, err := os.Stat(filepath.Join(h.trees["one"], h.base)); err == nil {
		t.Fatalf("%s exists in tree one", h.base)
	}
	marker := filepath.Join(h.tmp, unique(t))
	r := run(t, m.call("exec", "one", "touch", marker).in(h.base))
	wantStatus(t, r, 125)
	if !strings.Contains(r.stderr, h.base) {
		t.Errorf("the error does not name the directory %s:\n%s", h.base, r)
	}
	if _, err := os.Stat(marker); err == nil {
		os.Remove(marker)
		t.Errorf("the command ran anyway (in another directory):\n%s", r)
	}
}

// The tree is read-only inside, for the user and for root alike, and
// nothing of it changes on the host.
func testTreeReadOnly(t *testing.T, m mode) {
	tree := h.trees["one"]
	before := snapshotTree(t, tree)
	rootBefore := snapshotTree(t, h.chosRoot)
	writes := []struct {
		name  string
		cmd   string
		leave string // what would appear in the tree on the host
	}{
		{"usr", "touch /usr/x", "usr/x"},
		{"etc", "touch /etc/x", "etc/x"},
		{"etc os-release", "echo ID=hacked > /etc/os-release", ""},
		{"bin", "touch /bin/x", "bin/x"},
		{"root file", "touch /newfile", "newfile"},
		{"root dir", "mkdir /newdir", "newdir"},
		{"rename in root", "mv /etc /etc2", "etc2"},
	}
	for _, who := range []string{"user", "root"} {
		for _, w := range writes {
			t.Run(who+"/"+w.name, func(t *testing.T) {
				c := m.call("exec", "one", "sh", "-c", w.cmd)
				if who == "root" {
					c = m.rootCall("exec", "one", "sh", "-c", w.cmd)
				}
				r := run(t, c)
				if r.status == 0 {
					t.Errorf("the write succeeded:\n%s", r)
				}
				if r.status == 125 {
					t.Errorf("chos failed instead of running the command:\n%s", r)
				}
				// Root owns the tree's files: only a read-only mount stops it.
				if who == "root" && !strings.Contains(r.stderr, "Read-only file system") {
					t.Errorf("root's write did not fail with EROFS:\n%s", r)
				}
				if w.leave != "" {
					for _, p := range []string{filepath.Join(tree, w.leave), filepath.Join(h.chosRoot, w.leave)} {
						if _, err := os.Lstat(p); err == nil {
							t.Errorf("%s appeared on the host", p)
						}
					}
				}
			})
		}
	}
	if d := diffSnapshots(before, snapshotTree(t, tree)); len(d) > 0 {
		t.Errorf("tree one changed on the host:\n%s", strings.Join(d, "\n"))
	}
	if d := diffSnapshots(rootBefore, snapshotTree(t, h.chosRoot)); len(d) > 0 {
		t.Errorf("the assembly directory %s changed on the host:\n%s", h.chosRoot, strings.Join(d, "\n"))
	}
	// and the tree still reads as before
	wantOSID(t, m.chos(t, "exec", "one", "cat", "/etc/os-release"), "chosone")
}

// /tmp and the home directory are the host's, both ways.
func testTmpAndHomeShared(t *testing.T, m mode) {
	u := unique(t)
	inTmp, inHome := filepath.Join("/tmp", u+"-in"), filepath.Join(h.home, u+"-in")
	outTmp, outHome := filepath.Join("/tmp", u+"-out"), filepath.Join(h.home, u+"-out")
	t.Cleanup(func() {
		for _, p := range []string{inTmp, inHome, outTmp, outHome} {
			os.Remove(p)
		}
	})

	// written inside, read on the host
	r := m.chos(t, "exec", "one", "sh", "-c", `echo "tmp from $CHOS" > "$1" && echo "home from $CHOS" > "$HOME/$2"`, "sh", inTmp, filepath.Base(inHome))
	wantStatus(t, r, 0)
	for p, want := range map[string]string{inTmp: "tmp from one\n", inHome: "home from one\n"} {
		data, err := os.ReadFile(p)
		if err != nil || string(data) != want {
			t.Errorf("on the host %s = %q (%v), want %q", p, data, err, want)
			continue
		}
		fi, _ := os.Stat(p)
		if uid := fileUID(fi); uid != h.uid {
			t.Errorf("%s is owned by uid %d, want the user's %d", p, uid, h.uid)
		}
	}

	// written on the host, read inside
	writeUserFile(t, outTmp, "tmp from host "+u+"\n", 0o644)
	writeUserFile(t, outHome, "home from host "+u+"\n", 0o644)
	r = m.chos(t, "exec", "two", "cat", outTmp, outHome)
	wantStatus(t, r, 0)
	if want := "tmp from host " + u + "\nhome from host " + u + "\n"; r.stdout != want {
		t.Errorf("inside tree two: %q, want %q", r.stdout, want)
	}
}

// Inside a tree the command has the caller's uid and gid: real, effective,
// saved and file system ids alike.
func testUIDGIDKept(t *testing.T, m mode) {
	for _, flag := range []string{"-u", "-g"} {
		host := run(t, call{Args: []string{"id", flag}})
		wantStatus(t, host, 0)
		in := m.chos(t, "exec", "one", "id", flag)
		wantStatus(t, in, 0)
		if strings.TrimSpace(host.stdout) == "" || in.stdout != host.stdout {
			t.Errorf("id %s: host %q, tree %q", flag, host.stdout, in.stdout)
		}
	}
	if got := strings.TrimSpace(m.chos(t, "exec", "one", "id", "-u").stdout); got != strconv.Itoa(h.uid) {
		t.Errorf("uid in tree one %q, want %d", got, h.uid)
	}
	r := m.chos(t, "exec", "one", "cat", "/proc/self/status")
	wantStatus(t, r, 0)
	st := procStatus(r.stdout)
	for k, want := range map[string]string{"Uid": strconv.Itoa(h.uid), "Gid": strconv.Itoa(h.gid)} {
		ids := strings.Fields(st[k])
		if len(ids) != 4 {
			t.Errorf("cannot read %s from /proc/self/status:\n%s", k, r)
		}
		for i, v := range ids {
			if v != want {
				t.Errorf("%s field %d (real/effective/saved/fs) is %s, want %s: %q", k, i, v, want, st[k])
			}
		}
	}
}

// No capability in any set, and no_new_privs, inside a tree.
func testNoCapabilities(t *testing.T, m mode) {
	// On the host the same user has a full bounding set and no
	// no_new_privs: what the tree must take away.
	host := procStatus(run(t, call{Args: []string{"cat", "/proc/self/status"}}).stdout)
	if host["CapBnd"] == "" || allZero(host["CapBnd"]) || host["NoNewPrivs"] != "0" {
		t.Fatalf("control: on the host the user has CapBnd %q and NoNewPrivs %q; the test cannot fail", host["CapBnd"], host["NoNewPrivs"])
	}
	for _, tree := range []string{"one", "two"} {
		r := m.chos(t, "exec", tree, "cat", "/proc/self/status")
		wantStatus(t, r, 0)
		st := procStatus(r.stdout)
		for _, f := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
			if v, ok := st[f]; !ok || !allZero(v) {
				t.Errorf("tree %s: %s is %q, want 0", tree, f, v)
			}
		}
		if st["NoNewPrivs"] != "1" {
			t.Errorf("tree %s: NoNewPrivs is %q, want 1", tree, st["NoNewPrivs"])
		}
	}
}

// Launches, failed ones included, leave the host's mount table as it was.
func testMountTableUnchanged(t *testing.T, m mode) {
	clearDotfile(t)
	gone, _ := addGoneTree(t)
	launches := []struct {
		name string
		c    call
		want int
	}{
		{"ok", m.call("exec", "one", "true"), 0},
		{"ok two", m.call("exec", "two", "cat", "/etc/os-release"), 0},
		{"status", m.call("exec", "three", "sh", "-c", "exit 3"), 3},
		{"unknown tree", m.call("exec", "chos-itest-nosuchtree", "true"), 125},
		{"missing command", m.call("exec", "one", "chos-itest-no-such-command"), 127},
		{"missing tree path", m.call("exec", gone, "true"), 125},
		{"cwd not in view", m.call("exec", "one", "true").in(h.base), 125},
		{"killed", m.call("exec", "one", "sh", "-c", "kill -TERM $$"), 143},
		{"host", m.call("exec", "local", "true"), 0},
		{"legacy", m.call("true"), 0},
		{"as root", m.rootCall("exec", "one", "true"), 0},
	}
	// Setuid mode keeps each tree's view as a namespace pinned under
	// h.cacheDir: the first launches of a configuration may change those
	// pins, and nothing else, on the host. After one round of launches
	// the table must not change at all; in userns mode, not even that.
	//
	// The whole table is compared, since a propagation bug could add or
	// detach host mounts anywhere. A difference that names nothing of this
	// run (base, home, a chos: tmpfs) may be another process mounting on
	// the host meanwhile: the measure is then repeated, up to 3 times; a
	// chos bug shows every time.
	var problems []string
	for attempt := 1; attempt <= 3; attempt++ {
		problems = nil
		cold := readMountinfo(t)
		for _, l := range launches {
			run(t, l.c)
		}
		onlyCold, onlyWarm := lineDiff(cold, readMountinfo(t))
		for _, line := range append(onlyCold, onlyWarm...) {
			if m.userns || !isCachePin(line) {
				problems = append(problems, "first round of launches: "+line)
			}
		}

		before := readMountinfo(t)
		for i := 0; i < 50; i++ {
			l := launches[i%len(launches)]
			r := run(t, l.c)
			if r.status != l.want {
				t.Errorf("launch %d (%s): status %d, want %d:\n%s", i, l.name, r.status, l.want, r)
			}
		}
		onlyBefore, onlyAfter := lineDiff(before, readMountinfo(t))
		for _, line := range onlyBefore {
			problems = append(problems, "50 launches, only before: "+line)
		}
		for _, line := range onlyAfter {
			problems = append(problems, "50 launches, only after:  "+line)
		}
		ours := false
		for _, p := range problems {
			ours = ours || mentionsThisRun(p)
		}
		if len(problems) == 0 || ours {
			break
		}
		t.Logf("attempt %d: the host's mount table changed, but in nothing of this run; other mount activity on the host? measuring again:\n  %s", attempt, strings.Join(problems, "\n  "))
	}
	if len(problems) > 0 {
		t.Errorf("the host's mount table changed (the first round may only change the cache's own pins under %s, and only in setuid mode; the next 50 launches nothing):\n  %s",
			h.cacheDir, strings.Join(problems, "\n  "))
	}
	for _, mp := range mountsUnder(h.base) {
		if !(mp == h.cacheDir || strings.HasPrefix(mp, h.cacheDir+"/")) { // (userns mode: checked above)
			t.Errorf("mount %s on the host", mp)
		}
	}
	if ents, _ := os.ReadDir(h.chosRoot); len(ents) > 0 {
		t.Errorf("the assembly directory %s is not empty: %v", h.chosRoot, ents)
	}
}

// mentionsThisRun says whether a line of mountinfo names anything of this
// run: the base directory, the user's home, a view's tmpfs.
func mentionsThisRun(line string) bool {
	return strings.Contains(line, h.base) || strings.Contains(line, h.home) || strings.Contains(line, " chos:")
}

// isCachePin says whether a line of mountinfo is one of the setuid cache's
// own: a namespace file pinned under h.cacheDir, or that directory's own
// bind on itself.
func isCachePin(line string) bool {
	f := strings.Fields(line)
	sep := -1
	for i, x := range f {
		if x == "-" {
			sep = i
			break
		}
	}
	if len(f) < 5 || sep < 0 || sep+1 >= len(f) {
		return false
	}
	mp, fstype := unescapeMountinfo(f[4]), f[sep+1]
	switch {
	case mp == filepath.Join(h.cacheDir, "ns"):
		return true
	case strings.HasPrefix(mp, h.cacheDir+"/"):
		return fstype == "nsfs"
	}
	return false
}

// The view is built from the caller's own mount namespace: a process in a
// private one (a systemd service with PrivateTmp, a job container, unshare
// -m) sees its own mounts in the tree, not the host's; and its launch
// changes nothing in the host's mount table.
func testCallersMountNamespace(t *testing.T, m mode) {
	// The tree was launched from the host first (setuid mode caches it).
	wantStatus(t, m.chos(t, "exec", "one", "true"), 0)
	u := unique(t)
	mnt := filepath.Join(h.home, "mnt-"+u)
	userDir(t, mnt)
	flag := "flag " + u
	script := `mount -t tmpfs -o mode=0755 tmpfs "$1" && printf '%s\n' "$2" > "$1/flag" || exit 99; shift 2; exec "$@"`
	user := []string{"setpriv", "--reuid", h.user, "--regid", h.group, "--init-groups", "--",
		"env", "-i", "HOME=" + h.home, "USER=" + h.user, "PATH=/usr/local/bin:/usr/bin:/bin",
		m.bin, "exec", "one", "cat", filepath.Join(mnt, "flag")}
	hostBefore := readMountinfo(t)
	r := run(t, call{Args: append([]string{"unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", mnt, flag}, user...), Root: true})
	if r.status == 99 {
		t.Fatalf("cannot set up the private mount namespace:\n%s", r)
	}
	wantStatus(t, r, 0)
	if r.stdout != flag+"\n" {
		t.Errorf("the command did not see the tmpfs mounted in its caller's private mount namespace (was the view built from another namespace?):\n%s", r)
	}
	// control: the host does not have it, so only the caller's namespace
	// could show it
	if _, err := os.Stat(filepath.Join(mnt, "flag")); err == nil {
		t.Errorf("the flag is on the host's %s: the test proves nothing", mnt)
	}
	// and the launch over there left the host's own mount table alone
	// (what of it names this run: other processes may mount meanwhile)
	onlyBefore, onlyAfter := lineDiff(hostBefore, readMountinfo(t))
	var changed []string
	for _, l := range onlyBefore {
		if mentionsThisRun(l) {
			changed = append(changed, "only before: "+l)
		}
	}
	for _, l := range onlyAfter {
		if mentionsThisRun(l) {
			changed = append(changed, "only after:  "+l)
		}
	}
	if len(changed) > 0 {
		t.Errorf("a launch in another mount namespace changed the host's mount table:\n  %s", strings.Join(changed, "\n  "))
	}
}

// An unknown tree is refused with the list of valid names, and nothing runs.
func testUnknownTree(t *testing.T, m mode) {
	marker := filepath.Join(h.tmp, unique(t))
	withEnv := func(c call, env ...string) call { c.Env = env; return c }
	for _, form := range []struct {
		name string
		c    call
	}{
		{"exec", m.call("exec", "chos-itest-nosuchtree", "touch", marker)},
		{"shell", m.call("shell", "chos-itest-nosuchtree")},
		{"$CHOS", withEnv(m.call("exec", "--", "touch", marker), "CHOS=chos-itest-nosuchtree")},
		{"$CHOS legacy", withEnv(m.call("touch", marker), "CHOS=chos-itest-nosuchtree")},
	} {
		t.Run(form.name, func(t *testing.T) {
			r := run(t, form.c)
			wantStatus(t, r, 125)
			if !strings.Contains(r.stderr, "chos-itest-nosuchtree") {
				t.Errorf("the error does not name the unknown tree:\n%s", r)
			}
			wantValidNames(t, r, "one", "two", "three", "default", "local")
			if _, err := os.Stat(marker); err == nil {
				os.Remove(marker)
				t.Errorf("the command ran anyway:\n%s", r)
			}
		})
	}
}

// Arguments arrive exactly as given, whatever they contain, in every form.
func testArgumentsExactly(t *testing.T, m mode) {
	args := []string{
		"plain", "with space", "  two  leading and trailing  ", `"double quoted"`, `'single quoted'`,
		"", "line one\nline two", "-n", "--", "-", "--help", "-e", "*", "?[ab]*", "/etc/*",
		"$HOME", "${CHOS}", "`id`", "$(id)", `back\slash\n`, "tab\there", "semi;colon", "a|b", "a&&b",
		"ünïcödé", "%s%d%%", "last",
	}
	var want strings.Builder
	for _, a := range args {
		want.WriteString("[" + a + "]\n")
	}
	printf := append([]string{"printf", `[%s]\n`}, args...)
	forms := []struct {
		name string
		argv []string
	}{
		{"exec NAME", append([]string{m.bin, "exec", "one"}, printf...)},
		{"exec NAME --", append([]string{m.bin, "exec", "one", "--"}, printf...)},
		{"exec --", append([]string{m.bin, "exec", "--"}, printf...)},
		{"legacy", append([]string{m.bin}, printf...)},
		{"vsys link", append([]string{m.link(t, "one")}, printf...)},
	}
	clearDotfile(t) // the selection is the default tree, one
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			r := run(t, call{Args: f.argv})
			wantStatus(t, r, 0)
			if r.stdout != want.String() {
				t.Errorf("arguments changed on the way:\n got %q\nwant %q\n%s", r.stdout, want.String(), r)
			}
		})
	}
}

// chos current tells where a process runs, from its mount namespace, not
// from $CHOS.
func testCurrent(t *testing.T, m mode) {
	withEnv := func(c call, env ...string) call { c.Env = append(c.Env, env...); return c }
	cases := []struct {
		name string
		c    call
		want string
	}{
		{"host", m.call("current"), "local"},
		{"host with $CHOS=one", withEnv(m.call("current"), "CHOS=one"), "local"},
		{"host as root", m.rootCall("current"), "local"},
		{"in one", m.call("exec", "one", "chos", "current"), "one"},
		{"in one by alias", m.call("exec", "default", "chos", "current"), "one"},
		{"in three", m.call("exec", "three", "chos", "current"), "three"},
		{"in one with $CHOS=two", m.call("exec", "one", "sh", "-c", "CHOS=two chos current"), "one"},
		{"in one by path", m.call("exec", "one", "/.chos/bin/chos", "current"), "one"},
		{"in one as root", m.rootCall("exec", "one", "chos", "current"), "one"},
		{"exec local", m.call("exec", "local", m.bin, "current"), "local"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, c.c)
			wantStatus(t, r, 0)
			if got := strings.TrimSpace(r.stdout); got != c.want {
				t.Errorf("chos current printed %q, want %q:\n%s", got, c.want, r)
			}
		})
	}
	// $CHOS inside is the canonical name, and chos is on PATH, last.
	r := m.chos(t, "exec", "default", "sh", "-c", `echo "$CHOS"`)
	if got := strings.TrimSpace(r.stdout); got != "one" {
		t.Errorf("$CHOS in tree default is %q, want the canonical name one", got)
	}
	r = m.chos(t, "exec", "one", "sh", "-c", `echo "$PATH"`)
	if !strings.HasSuffix(strings.TrimSpace(r.stdout), ":/.chos/bin") {
		t.Errorf("PATH in a tree does not end in :/.chos/bin: %q", r.stdout)
	}
}
