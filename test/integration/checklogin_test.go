package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// `chos check` on the login integration: sshd's ForceCommand, pam_chos in
// the PAM session stacks, the profile hooks. Each setup is a test
// sshd_config, /etc/pam.d and /etc/profile.d bound over the host's in a
// private mount namespace: the host's files are never changed.

// loginSetup is the files a check sees.
type loginSetup struct {
	sshdConfig string
	pam        map[string]string // /etc/pam.d/NAME -> lines appended to the host's file (or a new file)
	profileD   map[string]string // /etc/profile.d/NAME -> content
}

// checkLoginSetup runs `chos check` (as root, or as the test user) on
// setup and returns its lines about logins.
func checkLoginSetup(t *testing.T, setup loginSetup, asRoot bool) ([]string, result) {
	t.Helper()
	dir, err := os.MkdirTemp(h.base, "checklogin-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	must(t, os.Chmod(dir, 0o755))
	if out, err := runSetup(30*time.Second, "/", "cp", "-a", pamDir, filepath.Join(dir, "pam.d")); err != nil {
		t.Fatalf("copying %s: %v\n%s", pamDir, err, out)
	}
	for name, lines := range setup.pam {
		p := filepath.Join(dir, "pam.d", name)
		old, _ := os.ReadFile(p)
		must(t, writeRootFile(p, string(old)+lines+"\n", 0o644))
	}
	must(t, os.Mkdir(filepath.Join(dir, "profile.d"), 0o755))
	for name, content := range setup.profileD {
		must(t, writeRootFile(filepath.Join(dir, "profile.d", name), content, 0o644))
	}
	cfg := filepath.Join(dir, "sshd_config")
	must(t, writeRootFile(cfg, setup.sshdConfig, 0o644))
	binds := [][2]string{{cfg, "/etc/ssh/sshd_config"}, {filepath.Join(dir, "pam.d"), pamDir}, {filepath.Join(dir, "profile.d"), "/etc/profile.d"}}

	argv := []string{h.chos, "check"}
	if !asRoot {
		argv = append([]string{"setpriv", "--reuid", h.user, "--regid", h.group, "--init-groups", "--"}, argv...)
	}
	r := run(t, call{Root: true, Args: withBinds(binds, argv...)})
	var lines []string
	for _, l := range strings.Split(r.stdout, "\n") {
		for _, what := range []string{"sshd: ", "pam: ", "profile hook: ", "logins: "} {
			if len(l) > 5 && strings.HasPrefix(l[5:], what) {
				lines = append(lines, l)
			}
		}
	}
	return lines, r
}

func TestCheckVerifiesLoginIntegration(t *testing.T) {
	// sshd -T (as root) needs the fixture's host key and /run/sshd.
	sshdFor(t, sshdOptions{})
	hostKey := "HostKey " + filepath.Join(sshFixture.dir, "ssh_host_ed25519_key") + "\n"
	hook, err := os.ReadFile(filepath.Join(h.prefix, "share", "chos", "profile.d", "chos.sh"))
	must(t, err)
	module := pamModule(t)
	type want struct{ status, text string } // status: "ok", "warn" or "FAIL"
	for _, c := range []struct {
		name  string
		setup loginSetup
		want  []want // every login line, in order
	}{
		{"all in place", loginSetup{
			sshdConfig: hostKey + "AcceptEnv LANG LC_* CHOS\nSubsystem sftp internal-sftp\nMatch Group " + h.group + "\n\tForceCommand " + h.chos + " login\n",
			pam:        map[string]string{"login": "session required " + module + " onerr=fail"},
			profileD:   map[string]string{"chos.sh": string(hook)},
		}, []want{
			{"ok", "ForceCommand " + h.chos + " login, in `Match Group " + h.group + "`"},
			{"ok", "AcceptEnv takes CHOS"},
			{"ok", "Subsystem sftp internal-sftp: chos login runs the host's /usr/lib/openssh/sftp-server inside the tree"},
			{"ok", "login: " + pamDir + "/login:"},
			{"ok", "/etc/profile.d/chos.sh starts interactive login shells in the selected tree with " + h.chos},
		}},
		{"control: none", loginSetup{sshdConfig: hostKey + "AcceptEnv LANG\n"}, []want{
			{"ok", "has no `ForceCommand chos login`"},
			{"warn", "no login integration found"},
		}},
		{"misplaced", loginSetup{
			sshdConfig: hostKey + "AcceptEnv LANG LC_*\nSubsystem sftp /nonexistent/sftp-server\nForceCommand " + h.chos + " login\n",
			pam: map[string]string{
				"login":          "session required " + module + "\nsession optional pam_motd.so",
				"su-l":           "session required " + module + "\nsession optional pam_systemd.so",
				"sshd":           "session required pam_chos.so",
				"chos-itest-new": "session required " + module + " chos=/nonexistent/chos",
			},
			profileD: map[string]string{"chos.sh": strings.ReplaceAll(string(hook), h.chos, "/nonexistent/chos")},
		}, []want{
			{"ok", "ForceCommand " + h.chos + " login, at the top level"},
			{"warn", "applies to every user, root and administrators included: put it in a Match block"},
			{"warn", "no AcceptEnv takes CHOS: `ssh -o SendEnv=CHOS` cannot choose the tree; add `AcceptEnv CHOS`"},
			{"FAIL", "Subsystem sftp /nonexistent/sftp-server: no such executable file"},
			{"FAIL", "chos-itest-new: " + pamDir + "/chos-itest-new:"}, // chos=
			{"FAIL", "login: pam_motd.so"},
			{"FAIL", "sshd: " + pamDir + "/sshd:"}, // not in the system's module directory
			{"FAIL", "su-l: pam_systemd.so"},
			{"FAIL", "/etc/profile.d/chos.sh runs /nonexistent/chos, which is not an executable file"},
		}},
	} {
		for _, asRoot := range []bool{true, false} {
			who := "as the user"
			if asRoot {
				who = "as root"
			}
			t.Run(c.name+" "+who, func(t *testing.T) {
				lines, r := checkLoginSetup(t, c.setup, asRoot)
				if len(lines) != len(c.want) {
					t.Errorf("want %d login lines, got %d:\n%s", len(c.want), len(lines), strings.Join(lines, "\n"))
				}
				for i, w := range c.want {
					if i < len(lines) && (!strings.HasPrefix(lines[i], w.status) || !strings.Contains(lines[i], w.text)) {
						t.Errorf("line %d is %q, want %s ...%s...", i+1, lines[i], w.status, w.text)
					}
				}
				if t.Failed() {
					t.Logf("chos check:\n%s", r)
				}
			})
		}
	}
}

// In common-session the module would move cron's and sudo's sessions too.
func TestCheckWarnsOfPamChosInCommonSession(t *testing.T) {
	for _, c := range []struct {
		file string
		want bool
	}{{"common-session", true}, {"login", false}} { // login: the control
		lines, r := checkLoginSetup(t, loginSetup{pam: map[string]string{c.file: "session required " + pamModule(t)}}, true)
		found := false
		for _, l := range lines {
			found = found || (strings.HasPrefix(l, "warn pam: ") && strings.Contains(l, "moves the sessions of every service that includes it"))
		}
		if found != c.want {
			t.Errorf("pam_chos in %s: warned of common-session: %v, want %v:\n%s", c.file, found, c.want, r)
		}
	}
}
