package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// What only user-namespace mode has: personal trees, the helper process
// between the caller and the command, and the mode switches.

// personal tree "mine": a busybox tree of the user's own, in their home
const (
	personalName   = "mine"
	personalID     = "chosmine"
	personalPretty = "Chos Test Mine"
)

var (
	personalOnce sync.Once
	personalDir  string
	personalErr  error
)

// personalTree builds (once per run) the user's own tree under their home,
// owned by them, and returns its path. userdel -r removes it at the end.
func personalTree(t testing.TB) string {
	t.Helper()
	personalOnce.Do(func() {
		top := filepath.Join(h.home, "chos-trees")
		dir := filepath.Join(top, personalName)
		if out, err := runSetup(2*time.Minute, h.repo, "scripts/mkbusyboxtree", dir, personalID, personalPretty); err != nil {
			personalErr = fmt.Errorf("mkbusyboxtree %s: %w\n%s", dir, err, out)
			return
		}
		if out, err := runSetup(time.Minute, "/", "chown", "-R", fmt.Sprintf("%d:%d", h.uid, h.gid), top); err != nil {
			personalErr = fmt.Errorf("chown -R %s: %w\n%s", top, err, out)
			return
		}
		personalDir = dir
	})
	if personalErr != nil {
		t.Fatal(personalErr)
	}
	return personalDir
}

func personalConfPath() string { return filepath.Join(h.home, ".config", "chos", "chos.conf") }

// setPersonalConfig writes the user's ~/.config/chos/chos.conf (theirs,
// 0644) for one test.
func setPersonalConfig(t testing.TB, text string) {
	t.Helper()
	clearPersonalConfig(t)
	for _, d := range []string{filepath.Join(h.home, ".config"), filepath.Dir(personalConfPath())} {
		if err := os.Mkdir(d, 0o755); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
		must(t, os.Lchown(d, h.uid, h.gid))
	}
	writeUserFile(t, personalConfPath(), text, 0o644)
}

// clearPersonalConfig removes ~/.config/chos now and after the test.
func clearPersonalConfig(t testing.TB) {
	t.Helper()
	dir := filepath.Dir(personalConfPath())
	must(t, os.RemoveAll(dir))
	t.Cleanup(func() { os.RemoveAll(dir) })
}

// A personal tree works in userns mode, and chos list marks it personal.
func TestPersonalTreeWorksInUsernsMode(t *testing.T) {
	tree := personalTree(t)
	clearDotfile(t)
	setPersonalConfig(t, "%SHELLS\n"+personalName+":"+tree+"\n%TREE "+personalName+"\ndescription = the user's own tree\n")

	r := run(t, call{Args: []string{h.chosUserns, "exec", personalName, "cat", "/etc/os-release"}})
	wantOSID(t, r, personalID)
	if got := parseOSRelease(r.stdout)["PRETTY_NAME"]; got != personalPretty {
		t.Errorf("PRETTY_NAME %q, want %q", got, personalPretty)
	}
	// it is a view like the others: chos current names it, the host's
	// home is there
	r = run(t, call{Args: []string{h.chosUserns, "exec", personalName, "sh", "-c", `chos current; echo "$CHOS"; ls -d "$HOME"`}})
	wantStatus(t, r, 0)
	if want := personalName + "\n" + personalName + "\n" + h.home + "\n"; r.stdout != want {
		t.Errorf("in the personal tree: %q, want %q:\n%s", r.stdout, want, r)
	}

	// The user owns every file of it, so only a read-only mount keeps
	// them from changing it from inside.
	before := snapshotTree(t, tree)
	for _, cmd := range []string{"touch /etc/x", "echo ID=hacked > /etc/os-release", "touch /newfile", "rm /bin/busybox"} {
		r := run(t, call{Args: []string{h.chosUserns, "exec", personalName, "sh", "-c", cmd}})
		if r.status == 0 || !strings.Contains(r.stderr, "Read-only file system") {
			t.Errorf("%q in the personal tree did not fail with EROFS:\n%s", cmd, r)
		}
	}
	if d := diffSnapshots(before, snapshotTree(t, tree)); len(d) > 0 {
		t.Errorf("the personal tree changed on the host:\n%s", strings.Join(d, "\n"))
	}

	// chos list marks it personal, and only it
	trees := listJSON(t, call{Args: []string{h.chosUserns, "list", "--json"}})
	e, ok := trees[personalName]
	switch {
	case !ok:
		t.Errorf("chos list --json (userns) does not list %s: %v", personalName, trees)
	case !e.Personal || e.Path != tree || !e.Usable || e.OS != personalPretty || e.Description != "the user's own tree":
		t.Errorf("chos list --json (userns) lists %s as %+v, want personal, path %s, usable, os %q, the description", personalName, e, tree, personalPretty)
	}
	for _, name := range []string{"one", "two", "three", "local"} {
		if e, ok := trees[name]; !ok || e.Personal {
			t.Errorf("system tree %s listed as %+v (listed %v), want not personal", name, e, ok)
		}
	}
	r = run(t, call{Args: []string{h.chosUserns, "list"}})
	wantStatus(t, r, 0)
	for _, line := range strings.Split(r.stdout, "\n") {
		f := strings.Fields(strings.TrimPrefix(line, ">"))
		if len(f) > 0 && f[0] == personalName && !strings.Contains(line, "personal") {
			t.Errorf("chos list does not mark %s personal: %q\n%s", personalName, line, r)
		}
		if len(f) > 0 && f[0] == "one" && strings.Contains(line, "personal") {
			t.Errorf("chos list marks system tree one personal: %q", line)
		}
	}
	if !strings.Contains(r.stdout, personalName) {
		t.Errorf("chos list (userns) does not show %s:\n%s", personalName, r)
	}

	// $XDG_CONFIG_HOME moves the file
	t.Run("XDG_CONFIG_HOME", func(t *testing.T) {
		xdg := filepath.Join(h.home, unique(t))
		userDir(t, filepath.Join(xdg, "chos"))
		writeUserFile(t, filepath.Join(xdg, "chos", "chos.conf"), "%SHELLS\nminexdg:"+tree+"\n", 0o644)
		r := run(t, call{Args: []string{h.chosUserns, "exec", "minexdg", "cat", "/etc/os-release"}, Env: []string{"XDG_CONFIG_HOME=" + xdg}})
		wantOSID(t, r, personalID)
		// control: without it, the name is unknown
		r = run(t, call{Args: []string{h.chosUserns, "exec", "minexdg", "cat", "/etc/os-release"}})
		wantStatus(t, r, 125)
	})
}

// The setuid chos never uses a personal tree, and says so.
func TestPersonalTreeIsRefusedBySetuidChos(t *testing.T) {
	tree := personalTree(t)
	clearDotfile(t)
	setPersonalConfig(t, "%SHELLS\n"+personalName+":"+tree+"\n")
	marker := filepath.Join(h.tmp, unique(t))
	withEnv := func(c call, env ...string) call { c.Env = env; return c }
	forms := []struct {
		name    string
		c       call
		dotfile string
	}{
		{"exec", chosCall("exec", personalName, "touch", marker), ""},
		{"exec cat", chosCall("exec", personalName, "cat", "/etc/os-release"), ""},
		{"$CHOS", withEnv(chosCall("exec", "--", "touch", marker), "CHOS="+personalName), ""},
		{"$CHOS legacy", withEnv(chosCall("touch", marker), "CHOS="+personalName), ""},
		{"~/.chos", chosCall("exec", "--", "touch", marker), personalName + "\n"},
		{"vsys link", call{Args: []string{vsysLink(t, personalName), "touch", marker}}, ""},
	}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			clearDotfile(t)
			if f.dotfile != "" {
				setDotfile(t, f.dotfile)
			}
			r := run(t, f.c)
			wantStatus(t, r, 125)
			if !strings.Contains(r.stderr, "personal tree") {
				t.Errorf("the error does not say %s is a personal tree:\n%s", personalName, r)
			}
			if strings.Contains(r.stdout, personalID) {
				t.Errorf("the personal tree was used:\n%s", r)
			}
			if _, err := os.Stat(marker); err == nil {
				os.Remove(marker)
				t.Errorf("the command ran anyway:\n%s", r)
			}
		})
	}
	// nor lists it
	if trees := listJSON(t, chosCall("list", "--json")); trees != nil {
		if _, ok := trees[personalName]; ok {
			t.Errorf("the setuid chos lists the personal tree %s", personalName)
		}
	}
	// control: the same file works in userns mode
	wantOSID(t, run(t, call{Args: []string{h.chosUserns, "exec", personalName, "cat", "/etc/os-release"}}), personalID)
}

// A personal file may not take a system tree's name, be the host or the
// default, change a system tree or bind into every tree. The error names the
// file and line; the setuid chos, which never reads it, is not affected.
func TestPersonalConfigurationRulesAreEnforced(t *testing.T) {
	tree := personalTree(t)
	clearDotfile(t)
	cases := []struct {
		name string
		text string
		line int
	}{
		{"system tree name", "%SHELLS\none:" + tree + "\n", 2},
		{"system tree name and path", "%SHELLS\none:" + h.trees["one"] + "\n", 2},
		{"system alias", "%SHELLS\nmine:" + tree + "\ndefault:" + tree + "\n", 3},
		{"the host", "%SHELLS\nme:/\n", 2},
		{"the host named local", "%SHELLS\nlocal:/\n", 2},
		{"%BIND", "%SHELLS\nmine:" + tree + "\n%BIND\n/tmp /scratch\n", 4},
		{"%TREE of a system tree", "%SHELLS\nmine:" + tree + "\n%TREE one\ndescription = mine now\n", 3},
	}
	marker := filepath.Join(h.tmp, unique(t))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			setPersonalConfig(t, c.text)
			at := fmt.Sprintf("%s:%d", personalConfPath(), c.line)
			for _, args := range [][]string{
				{"exec", "one", "touch", marker},
				{"exec", personalName, "touch", marker},
			} {
				r := run(t, call{Args: append([]string{h.chosUserns}, args...)})
				wantStatus(t, r, 125)
				if !strings.Contains(r.stderr, at) {
					t.Errorf("the error does not name %s:\n%s", at, r)
				}
				if _, err := os.Stat(marker); err == nil {
					os.Remove(marker)
					t.Errorf("the command ran anyway:\n%s", r)
				}
			}
			// the setuid chos never reads the file for a system tree
			wantOSID(t, chos(t, "exec", "one", "cat", "/etc/os-release"), "chosone")
		})
	}
}

// The setuid chos reads the personal file with the user's rights only: one
// that is a link to a file only root can read tells nothing of it.
func TestPersonalConfigIsReadWithUsersRights(t *testing.T) {
	secret := filepath.Join(h.base, unique(t)+".conf")
	must(t, writeRootFile(secret, "%SHELLS\nrootsecret:"+h.trees["two"]+"\n", 0o600))
	t.Cleanup(func() { os.Remove(secret) })
	setPersonalConfig(t, "")
	must(t, os.Remove(personalConfPath()))
	must(t, os.Symlink(secret, personalConfPath()))
	must(t, os.Lchown(personalConfPath(), h.uid, h.gid))
	clearDotfile(t)

	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			r := m.chos(t, "exec", "rootsecret", "cat", "/etc/os-release")
			wantStatus(t, r, 125)
			if strings.Contains(r.stdout, "chostwo") {
				t.Errorf("root's file was used as the user's personal trees:\n%s", r)
			}
			if strings.Contains(r.stderr, "is a personal tree") {
				t.Errorf("the error tells that root's file declares rootsecret:\n%s", r)
			}
		})
	}
}

// childrenOf lists the processes whose parent is pid.
func childrenOf(pid int) []int {
	return processes(func(_ int, read func(string) (string, bool)) bool {
		stat, ok := read("stat")
		i := strings.LastIndexByte(stat, ')')
		if !ok || i < 0 {
			return false
		}
		f := strings.Fields(stat[i+1:])
		return len(f) > 1 && f[1] == strconv.Itoa(pid)
	})
}

// wantHelper checks that b's process is the userns helper: chos (the
// binary bin) with the command as a child of its own.
func wantHelper(t testing.TB, b *background, bin string) {
	t.Helper()
	exe, err := os.Readlink("/proc/" + strconv.Itoa(b.pid) + "/exe")
	if err != nil || exe != bin {
		t.Errorf("process %d started is %q (%v), not the helper %s", b.pid, exe, err, bin)
	}
	if kids := commandsOf(b.pid); len(kids) != 1 {
		t.Errorf("the helper %d has children %v, want just the command (and its signal witness)", b.pid, kids)
	}
}

// commandsOf are the children of a userns helper but its signal witness.
func commandsOf(pid int) []int {
	var out []int
	for _, kid := range childrenOf(pid) {
		if comm, err := os.ReadFile("/proc/" + strconv.Itoa(kid) + "/comm"); err != nil || string(comm) != "chos-signals\n" {
			out = append(out, kid)
		}
	}
	return out
}

// waitFor polls cond every 20 ms up to timeout.
func waitFor(timeout time.Duration, cond func() bool) bool {
	for end := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// uniqueSleep is a sleep duration no other process has.
func uniqueSleep() string {
	n, _ := strconv.ParseUint(randHex(3), 16, 32)
	return fmt.Sprintf("1000.%d", 100000+n%900000)
}

// A signal sent to the helper reaches the command, which handles it; the
// helper exits with the command's status.
func TestUsernsSignalToHelperReachesCommand(t *testing.T) {
	loop := func(sig string, status int) string {
		return fmt.Sprintf(`trap "echo got-%s; exit %d" %s; echo ready; while :; do sleep 0.1; done`, strings.ToLower(sig), status, sig)
	}
	for _, c := range []struct {
		name   string
		sig    syscall.Signal
		script string
		want   int
		line   string
	}{
		{"USR1", syscall.SIGUSR1, loop("USR1", 7), 7, "got-usr1"},
		{"HUP", syscall.SIGHUP, loop("HUP", 8), 8, "got-hup"},
		// Not from a terminal (there is none here): SIGINT and SIGQUIT
		// come only from kill(2), and must be forwarded.
		{"INT without a terminal", syscall.SIGINT, loop("INT", 9), 9, "got-int"},
		{"QUIT without a terminal", syscall.SIGQUIT, loop("QUIT", 10), 10, "got-quit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := start(t, call{Args: []string{h.chosUserns, "exec", "one", "sh", "-c", c.script}})
			if !b.waitLine("ready", 10*time.Second) {
				return
			}
			wantHelper(t, b, h.chosUserns)
			must(t, syscall.Kill(b.pid, c.sig))
			r := b.wait(10 * time.Second)
			if !strings.Contains(r.stdout, c.line+"\n") {
				t.Errorf("the command did not get SIG%s sent to the helper:\n%s", c.name, r)
			}
			if r.status != c.want || r.signaled {
				t.Errorf("the helper's status is %d (signaled %v), want the command's exit status %d:\n%s", r.status, r.signaled, c.want, r)
			}
		})
	}

	// A command that does not handle SIGTERM dies by it, and the helper
	// by the same signal.
	t.Run("TERM", func(t *testing.T) {
		b, dur, sleeper := startUsernsSleep(t)
		if kids := commandsOf(b.pid); len(kids) != 1 || kids[0] != sleeper {
			t.Errorf("sleep is %d, the helper's children %v", sleeper, kids)
		}
		must(t, syscall.Kill(b.pid, syscall.SIGTERM))
		r := b.wait(10 * time.Second)
		if r.status != 143 || !r.signaled {
			t.Errorf("helper status %d (signaled %v), want killed by SIGTERM:\n%s", r.status, r.signaled, r)
		}
		if !waitFor(5*time.Second, func() bool { return len(pidsRunning("sleep", dur)) == 0 }) {
			t.Errorf("sleep %s still runs after SIGTERM", dur)
		}
	})
}

// Killing the helper (SIGKILL, which it cannot forward) kills the command.
func TestUsernsHelperKilledKillsCommand(t *testing.T) {
	b, dur, _ := startUsernsSleep(t)
	must(t, syscall.Kill(b.pid, syscall.SIGKILL))
	r := b.wait(10 * time.Second)
	if r.status != 137 || !r.signaled {
		t.Errorf("the helper did not die by SIGKILL:\n%s", r)
	}
	// (The process group is only killed at the end of the test.)
	if !waitFor(5*time.Second, func() bool { return len(pidsRunning("sleep", dur)) == 0 }) {
		t.Errorf("the command (sleep %s, pid %v) outlived its helper by 5 s", dur, pidsRunning("sleep", dur))
	}
}

// chos check says which mode it runs in, and passes on this installation in
// both.
func TestCheckReportsMode(t *testing.T) {
	withEnv := func(c call, env ...string) call { c.Env = env; return c }
	for _, c := range []struct {
		name string
		c    call
		mode string
	}{
		{"setuid binary", chosCall("check"), "setuid"},
		{"plain binary", call{Args: []string{h.chosUserns, "check"}}, "userns"},
		{"setuid binary --mode=userns", chosCall("--mode=userns", "check"), "userns"},
		{"setuid binary CHOS_MODE=userns", withEnv(chosCall("check"), "CHOS_MODE=userns"), "userns"},
		{"plain binary inside a tree", call{Args: []string{h.chosUserns, "exec", "two", "chos", "check"}}, "userns"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, c.c)
			wantStatus(t, r, 0)
			checkLines(t, r, "ok   ", "warn ")
			var modeLines, usernsLines []string
			for _, l := range strings.Split(r.stdout, "\n") {
				if strings.HasPrefix(l[min(5, len(l)):], "mode:") {
					modeLines = append(modeLines, l)
				}
				if strings.HasPrefix(l[min(5, len(l)):], "user namespaces:") {
					usernsLines = append(usernsLines, l)
				}
			}
			if len(modeLines) != 1 || !strings.HasPrefix(modeLines[0], "ok   mode: "+c.mode+":") {
				t.Errorf("mode lines %q, want one starting %q:\n%s", modeLines, "ok   mode: "+c.mode+":", r)
			}
			// user namespaces are allowed here (userns mode works at all)
			if len(usernsLines) != 1 || !strings.HasPrefix(usernsLines[0], "ok   ") {
				t.Errorf("user namespaces lines %q, want one ok line:\n%s", usernsLines, r)
			}
			for _, name := range []string{"one", "two", "three"} {
				if !strings.Contains(r.stdout, "ok   tree "+name+":") {
					t.Errorf("no ok line for tree %s:\n%s", name, r)
				}
			}
		})
	}
}

// --mode and CHOS_MODE force userns mode on the setuid binary (which then
// behaves exactly as the plain one); setuid mode cannot be forced on the
// plain binary.
func TestModeCanBeForced(t *testing.T) {
	link := vsysLink(t, "one")
	clearDotfile(t)
	withEnv := func(c call, env ...string) call { c.Env = env; return c }
	idG := []string{"exec", "one", "id", "-G"}
	for _, c := range []struct {
		name   string
		c      call
		userns bool
	}{
		{"setuid binary", chosCall(idG...), false},
		{"setuid binary --mode=setuid", chosCall(append([]string{"--mode=setuid"}, idG...)...), false},
		{"setuid binary --mode=auto", chosCall(append([]string{"--mode=auto"}, idG...)...), false},
		{"setuid binary --mode=userns", chosCall(append([]string{"--mode=userns"}, idG...)...), true},
		{"setuid binary --mode userns", chosCall(append([]string{"--mode", "userns"}, idG...)...), true},
		{"setuid binary CHOS_MODE=userns", withEnv(chosCall(idG...), "CHOS_MODE=userns"), true},
		{"setuid binary CHOS_MODE=userns legacy", withEnv(chosCall("id", "-G"), "CHOS_MODE=userns"), true},
		{"setuid binary CHOS_MODE=userns vsys", withEnv(call{Args: []string{link, "id", "-G"}}, "CHOS_MODE=userns"), true},
		{"plain binary", call{Args: append([]string{h.chosUserns}, idG...)}, true},
		{"plain binary --mode=userns", call{Args: append([]string{h.chosUserns, "--mode=userns"}, idG...)}, true},
	} {
		t.Run(c.name, func(t *testing.T) { wantGroupsOfMode(t, run(t, c.c), c.userns) })
	}

	// Forced userns mode drops root before anything else: the helper that
	// stays while the command runs is the user's, with no capability.
	for _, c := range []struct {
		name string
		c    call
	}{
		{"--mode=userns", chosCall("--mode=userns", "exec", "one", "sh", "-c", "echo ready; exec sleep 1000")},
		{"CHOS_MODE=userns", withEnv(chosCall("exec", "one", "sh", "-c", "echo ready; exec sleep 1000"), "CHOS_MODE=userns")},
	} {
		t.Run("helper is unprivileged/"+c.name, func(t *testing.T) {
			b := start(t, c.c)
			if !b.waitLine("ready", 10*time.Second) {
				return
			}
			wantHelper(t, b, h.chos)
			st := procStatusOf(t, b.pid)
			for _, k := range []string{"Uid", "Gid"} {
				want := strconv.Itoa(h.uid)
				if k == "Gid" {
					want = strconv.Itoa(h.gid)
				}
				if ids := strings.Fields(st[k]); len(ids) != 4 || strings.Count(st[k], want) != 4 {
					t.Errorf("the helper's %s is %q, want %s four times", k, st[k], want)
				}
			}
			for _, f := range []string{"CapPrm", "CapEff", "CapAmb"} {
				if !allZero(st[f]) {
					t.Errorf("the helper's %s is %q, want 0", f, st[f])
				}
			}
		})
	}

	// and a personal tree is then available
	t.Run("personal tree", func(t *testing.T) {
		setPersonalConfig(t, "%SHELLS\n"+personalName+":"+personalTree(t)+"\n")
		wantOSID(t, run(t, chosCall("--mode=userns", "exec", personalName, "cat", "/etc/os-release")), personalID)
		wantOSID(t, run(t, withEnv(chosCall("exec", personalName, "cat", "/etc/os-release"), "CHOS_MODE=userns")), personalID)
	})

	marker := filepath.Join(h.tmp, unique(t))
	for _, c := range []struct {
		name string
		c    call
		want int
	}{
		{"plain binary --mode=setuid", call{Args: []string{h.chosUserns, "--mode=setuid", "exec", "one", "touch", marker}}, 125},
		{"plain binary CHOS_MODE=setuid", call{Args: []string{h.chosUserns, "exec", "one", "touch", marker}, Env: []string{"CHOS_MODE=setuid"}}, 125},
		{"plain binary CHOS_MODE=setuid legacy", call{Args: []string{h.chosUserns, "touch", marker}, Env: []string{"CHOS_MODE=setuid"}}, 125},
		{"unknown mode", chosCall("--mode=bogus", "exec", "one", "touch", marker), 2},
		{"unknown CHOS_MODE", call{Args: []string{h.chos, "exec", "one", "touch", marker}, Env: []string{"CHOS_MODE=bogus"}}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, c.c)
			wantStatus(t, r, c.want)
			if !strings.HasPrefix(r.stderr, "chos: ") {
				t.Errorf("no chos: error line:\n%s", r)
			}
			if _, err := os.Stat(marker); err == nil {
				os.Remove(marker)
				t.Errorf("the command ran anyway:\n%s", r)
			}
		})
	}
}

// In setuid mode the command replaces chos (same PID); in userns mode chos
// stays as its parent.
func TestModeProcessStructure(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			b := start(t, m.call("exec", "one", "sh", "-c", `echo "$$ $PPID"; echo ready; exec sleep 1000`))
			if !b.waitLine("ready", 10*time.Second) {
				return
			}
			f := strings.Fields(b.result().stdout)
			if len(f) < 2 {
				t.Fatalf("no pid line:\n%s", b.result())
			}
			pid, ppid := f[0], f[1]
			if !m.userns && pid != strconv.Itoa(b.pid) {
				t.Errorf("the command's pid is %s, want chos's own %d", pid, b.pid)
			}
			if m.userns && (pid == strconv.Itoa(b.pid) || ppid != strconv.Itoa(b.pid)) {
				t.Errorf("the command's pid is %s and its parent %s, want a child of the helper %d", pid, ppid, b.pid)
			}
		})
	}
}

// startUsernsSleep starts a uniquely named sleep through the userns helper,
// waits until it runs and checks that the process started is the helper.
func startUsernsSleep(t *testing.T) (b *background, dur string, sleeper int) {
	t.Helper()
	dur = uniqueSleep()
	b = start(t, call{Args: []string{h.chosUserns, "exec", "one", "sleep", dur}})
	var pids []int
	if !waitFor(10*time.Second, func() bool { pids = pidsRunning("sleep", dur); return len(pids) == 1 }) {
		t.Fatalf("no process `sleep %s` after 10 s (found %v):\n%s", dur, pids, b.result())
	}
	wantHelper(t, b, h.chosUserns)
	return b, dur, pids[0]
}
