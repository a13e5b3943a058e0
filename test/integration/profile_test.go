package integration

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The login profile hooks (etc/profile.d/chos.sh, chos.csh), as make
// install installs them, run by real logins: su -l and ssh -tt on a
// terminal, su -l -c, bash -lc. The host's /etc/profile and
// /etc/csh.login read /etc/profile.d/*.sh and /etc/csh/login.d/*: the
// tests never change those directories; each login runs (or its sshd
// runs) in a private mount namespace in which a test directory is bound
// over them (withBinds), so nothing else on the machine sees the hooks.

// profileMarker is printed by a test file sourced before the hook: it
// shows that a login read the profile, so a hook that did nothing had its
// chance.
const profileMarker = "chos-itest-profile-read"

var hookDirs struct {
	once  sync.Once
	binds [][2]string
	err   error
}

// hookBinds binds a directory with the installed chos.sh over
// /etc/profile.d and one with chos.csh over /etc/csh/login.d.
func hookBinds(t testing.TB) [][2]string {
	t.Helper()
	hookDirs.once.Do(func() {
		installed := filepath.Join(h.prefix, "share", "chos", "profile.d")
		for _, d := range []struct{ name, hook, hookAs, marker, over string }{
			{"profile.d", "chos.sh", "chos.sh", "echo " + profileMarker + " >&2\n", "/etc/profile.d"},
			{"csh-login.d", "chos.csh", "chos", "/bin/sh -c 'echo " + profileMarker + " >&2'\n", "/etc/csh/login.d"},
		} {
			dir := filepath.Join(h.base, "hooks", d.name)
			if hookDirs.err = os.MkdirAll(dir, 0o755); hookDirs.err != nil {
				return
			}
			data, err := os.ReadFile(filepath.Join(installed, d.hook))
			if err != nil {
				hookDirs.err = err
				return
			}
			if !strings.Contains(string(data), h.chos+" # make install") {
				hookDirs.err = fmt.Errorf("make install did not write %s into the installed %s:\n%s", h.chos, d.hook, data)
				return
			}
			for name, content := range map[string]string{d.hookAs: string(data), "00-chos-itest": d.marker} {
				if d.name == "profile.d" && name == "00-chos-itest" {
					name += ".sh"
				}
				if hookDirs.err = writeRootFile(filepath.Join(dir, name), content, 0o644); hookDirs.err != nil {
					return
				}
			}
			hookDirs.binds = append(hookDirs.binds, [2]string{dir, d.over})
		}
	})
	if hookDirs.err != nil {
		t.Fatal(hookDirs.err)
	}
	return hookDirs.binds
}

// An interactive login, on a terminal.
type loginEntry struct {
	name  string
	start func(t testing.TB, env []string) *ptySession
}

func interactiveLogins() []loginEntry {
	return []loginEntry{
		{"su -l", func(t testing.TB, env []string) *ptySession {
			return startPTY(t, call{Root: true, Env: env, Args: withBinds(hookBinds(t), "su", "-l", h.user)})
		}},
		{"su -l with tcsh", func(t testing.TB, env []string) *ptySession {
			return startPTY(t, call{Root: true, Env: env, Args: withBinds(hookBinds(t), "su", "-l", "-s", "/usr/bin/tcsh", h.user)})
		}},
		{"ssh -tt", func(t testing.TB, env []string) *ptySession {
			s := sshdFor(t, sshdOptions{Binds: hookBinds(t)})
			return startPTY(t, call{Env: env, Args: s.sshArgs(sshClientKey(t), []string{"-tt", "-o", "SendEnv=CHOS"})})
		}},
	}
}

// loginReport is what an interactive session showed.
type loginReport struct {
	id, chos string // os-release ID and $CHOS in the shell that read commands
	login    string // what the terminal showed before that shell read commands
}

// probeLogin asks the shell of session where it runs, then logs out.
func probeLogin(t testing.TB, s *ptySession) (loginReport, bool) {
	t.Helper()
	at, ok := s.ready(20 * time.Second)
	if !ok {
		return loginReport{}, false
	}
	rep := loginReport{login: s.output()[:at]}
	// The answers are told apart from the typed line's echo (which a
	// prompt may precede or follow) by what sed makes of them.
	end := "DONE" + randHex(3)
	s.send(`sed -n 's/^ID=/osid:/p' /etc/os-release; env | sed -n 's/^CHOS=/tree:/p'; echo DONE""` + strings.TrimPrefix(end, "DONE"))
	m, _, ok := s.expect(regexp.MustCompile(`(?s)^(.*)`+end+`\n`), at, 10*time.Second)
	if !ok {
		return rep, false
	}
	if id := regexp.MustCompile(`osid:([a-z0-9._-]+)\n`).FindStringSubmatch(m[1]); id != nil {
		rep.id = id[1]
	}
	if c := regexp.MustCompile(`tree:([a-z0-9._-]*)\n`).FindStringSubmatch(m[1]); c != nil {
		rep.chos = c[1]
	}
	s.send("exit")
	s.wait(10 * time.Second)
	return rep, true
}

// stayingLines are the hook's warnings in what a login showed.
func stayingLines(s string) []string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "staying on the host") {
			lines = append(lines, l)
		}
	}
	return lines
}

func TestProfileHookPlacesInteractiveLogins(t *testing.T) {
	for _, e := range interactiveLogins() {
		for _, c := range []struct {
			name, dotfile string
			env           []string
			id, chos      string
		}{
			{"~/.chos", "two\n", nil, h.osIDs["two"], "two"},
			{"~/.chos local", "local\n", nil, h.hostOSRelease["ID"], ""},
			{"$CHOS", "two\n", []string{"CHOS=three"}, h.osIDs["three"], "three"},
		} {
			if c.env != nil && e.name != "ssh -tt" {
				continue // only ssh passes the client's $CHOS to the login (SendEnv)
			}
			t.Run(e.name+" "+c.name, func(t *testing.T) {
				setDotfile(t, c.dotfile)
				rep, ok := probeLogin(t, e.start(t, c.env))
				if !ok {
					return
				}
				if rep.id != c.id || rep.chos != c.chos {
					t.Errorf("the login runs in ID=%s with CHOS=%q, want ID=%s CHOS=%q", rep.id, rep.chos, c.id, c.chos)
				}
				if !strings.Contains(rep.login, profileMarker) {
					t.Errorf("the login did not read the test profile")
				}
				if w := stayingLines(rep.login); len(w) > 0 {
					t.Errorf("unexpected warning: %q", w)
				}
			})
		}
	}
}

// su -l -c CMD and bash -lc CMD read the profile but are not interactive:
// CMD runs on the host, as without the hook.
func TestProfileHookLeavesCommandsOnTheHost(t *testing.T) {
	setDotfile(t, "two\n")
	const cmd = `grep '^ID=' /etc/os-release; env | grep '^CHOS='; true`
	for _, c := range []struct {
		name string
		c    call
	}{
		{"su -l -c", call{Root: true, Args: withBinds(hookBinds(t), "su", "-l", h.user, "-c", cmd)}},
		{"su -l -c with tcsh", call{Root: true, Args: withBinds(hookBinds(t), "su", "-l", "-s", "/usr/bin/tcsh", h.user, "-c", cmd)}},
		{"bash -lc", call{Root: true, Env: userEnv(), Args: withBinds(hookBinds(t),
			"setpriv", "--reuid", h.user, "--regid", h.group, "--init-groups", "--", "bash", "-lc", cmd)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, c.c)
			if !wantStatus(t, r, 0) {
				return
			}
			if r.stdout != "ID="+h.hostOSRelease["ID"]+"\n" {
				t.Errorf("the command did not run on the host untouched:\n%s", r)
			}
			if !strings.Contains(r.stderr, profileMarker) || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("want the test profile read and nothing else on stderr:\n%s", r)
			}
		})
	}
}

// A bad selection must not end the login: one line says why, and the
// user gets a shell on the host.
func TestProfileHookKeepsBadSelectionOnTheHost(t *testing.T) {
	setDotfile(t, "nosuch\n")
	for _, e := range interactiveLogins() {
		t.Run(e.name, func(t *testing.T) {
			rep, ok := probeLogin(t, e.start(t, nil))
			if !ok {
				return
			}
			if rep.id != h.hostOSRelease["ID"] || rep.chos != "" {
				t.Errorf("the login runs in ID=%s with CHOS=%q, want the host", rep.id, rep.chos)
			}
			w := stayingLines(rep.login)
			if len(w) != 1 || !strings.Contains(w[0], `unknown OS tree "nosuch"`) || !strings.HasPrefix(w[0], "chos: ") {
				t.Errorf("want one warning line naming the bad tree, got %q in:\n%s", w, rep.login)
			}
		})
	}
}

// A tree whose own /etc/profile sources the hook (as a tree with chos
// installed would), where the hook finds chos at its installed path: a
// link to the chos every view has at /.chos/bin/chos.
func loginTree(t testing.TB) string {
	t.Helper()
	return loginTreeBuild.get(t)
}

var loginTreeBuild = buildOnce(func() (string, error) {
	// a copy of tree one (mkbusyboxtree takes seconds) with its own ID
	dir := filepath.Join(h.base, "trees", "login")
	if out, err := runSetup(time.Minute, "/", "cp", "-a", h.trees["one"], dir); err != nil {
		return "", fmt.Errorf("copying tree one: %v\n%s", err, out)
	}
	hook, err := os.ReadFile(filepath.Join(h.prefix, "share", "chos", "profile.d", "chos.sh"))
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, h.chos)
	files := map[string]string{
		"etc/os-release":        "ID=choslogin\n",
		"etc/profile.d/chos.sh": string(hook),
		"etc/profile": "echo chos-itest-tree-profile-start\n" +
			"for f in /etc/profile.d/*.sh; do . \"$f\"; done\n" +
			"echo \"chos-itest-tree-profile-end $(" + h.chos + " current)\"\n",
	}
	err = errors.Join(os.MkdirAll(filepath.Join(dir, "etc", "profile.d"), 0o755),
		os.MkdirAll(filepath.Dir(bin), 0o755), os.Symlink("/.chos/bin/chos", bin))
	for name, content := range files {
		err = errors.Join(err, writeRootFile(filepath.Join(dir, name), content, 0o644))
	}
	return dir, err
})

func TestProfileHookDoesNotLoopInTreeProfile(t *testing.T) {
	setConfig(t, h.configText+"login:"+loginTree(t)+"\n")
	setDotfile(t, "login\n")
	rep, ok := probeLogin(t, interactiveLogins()[0].start(t, nil))
	if !ok {
		return
	}
	if rep.id != "choslogin" || rep.chos != "login" {
		t.Errorf("the login runs in ID=%s with CHOS=%q, want the tree login", rep.id, rep.chos)
	}
	// The tree's profile ran once (a hook without its guard starts tree
	// shells, each running the profile, until chos fails at some depth),
	// sourced the hook (which went on to the next line), and chos, found
	// where the hook looks, reports the tree: what stops the hook.
	start, end := strings.Count(rep.login, "chos-itest-tree-profile-start\n"), strings.Count(rep.login, "chos-itest-tree-profile-end login\n")
	if start != 1 || end != 1 {
		t.Errorf("the tree's profile started %d times and reported %d times, want once:\n%s", start, end, rep.login)
	}
}
