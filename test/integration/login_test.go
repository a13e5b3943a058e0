package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// `chos login` as sshd's ForceCommand, against the fixture's real sshd:
// which tree a session lands in, commands and their status, the login
// shell on a terminal, file transfers into trees that have no transfer
// tools, X11 and agent forwarding, identity.

// forcedSSHD is an sshd whose sessions for the test group run the
// installed chos as `ForceCommand chos login`, with sftp served by
// subsystem (internal-sftp or a server's path).
func forcedSSHD(t testing.TB, subsystem string) *sshServer {
	t.Helper()
	return sshdFor(t, sshdOptions{Config: []string{
		"Subsystem sftp " + subsystem,
		"Match Group " + h.group,
		"    ForceCommand " + h.chos + " login",
	}})
}

// hostSFTPServer is the host's sftp-server (Debian's path: the tests run
// on Debian 12; chos itself looks it up).
const hostSFTPServer = "/usr/lib/openssh/sftp-server"

// sshWith runs remote over ssh as the test user, passing env's CHOS to the
// session (SendEnv) when env has it.
func (s *sshServer) sshWith(t testing.TB, env []string, remote ...string) result {
	t.Helper()
	return run(t, call{Args: s.sshArgs(sshClientKey(t), []string{"-o", "SendEnv=CHOS"}, remote...), Env: env, Stdin: []byte{}})
}

// osID is the ID= of os-release in text, "" if none.
func osID(text string) string {
	m := regexp.MustCompile(`(?m)^ID="?([a-z0-9._-]+)`).FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	return m[1]
}

// configWithoutDefault is the test configuration with no default tree.
func configWithoutDefault() string {
	var lines []string
	for _, l := range strings.Split(h.configText, "\n") {
		if !strings.HasPrefix(l, "default:") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

func TestSSHLoginLandsInSelectedTree(t *testing.T) {
	forced := forcedSSHD(t, "internal-sftp")
	plain := sshdFor(t, sshdOptions{})
	const show = `cat /etc/os-release; echo "tree=$CHOS"`
	for _, c := range []struct {
		name, dotfile, config string
		env                   []string
		s                     *sshServer
		id, chos              string
	}{
		{"the default", "", "", nil, forced, h.osIDs["one"], "one"},
		{"~/.chos before the default", "two\n", "", nil, forced, h.osIDs["two"], "two"},
		{"SendEnv CHOS before ~/.chos", "two\n", "", []string{"CHOS=three"}, forced, h.osIDs["three"], "three"},
		{"SendEnv CHOS=local", "two\n", "", []string{"CHOS=local"}, forced, h.hostOSRelease["ID"], "local"},
		{"no default: the host", "", configWithoutDefault(), nil, forced, h.hostOSRelease["ID"], "local"},
		{"control: without ForceCommand", "two\n", "", []string{"CHOS=three"}, plain, h.hostOSRelease["ID"], "three"},
	} {
		t.Run(c.name, func(t *testing.T) {
			clearDotfile(t)
			if c.dotfile != "" {
				setDotfile(t, c.dotfile)
			}
			if c.config != "" {
				setConfig(t, c.config)
			}
			r := c.s.sshWith(t, c.env, show)
			if !wantStatus(t, r, 0) {
				return
			}
			if id, tree := osID(r.stdout), strings.TrimSpace(r.stdout[strings.LastIndex(r.stdout, "tree=")+5:]); id != c.id || tree != c.chos {
				t.Errorf("the session ran in ID=%s with CHOS=%q, want ID=%s, CHOS=%q:\n%s", id, tree, c.id, c.chos, r)
			}
			if r.stderr != "" {
				t.Errorf("unexpected messages:\n%s", r)
			}
		})
	}
}

// An unknown or forbidden tree: one line, status 125, nothing run.
func TestSSHLoginRefusesBadTrees(t *testing.T) {
	s := forcedSSHD(t, "internal-sftp")
	marker := filepath.Join(h.home, "chos-itest-ran")
	remote := "touch " + marker
	for _, c := range []struct {
		name, dotfile, config string
		env                   []string
		message               string // in the one line
		status                int
	}{
		{"SendEnv CHOS unknown", "", "", []string{"CHOS=nosuch"}, `unknown OS tree "nosuch"`, 125},
		{"~/.chos unknown", "nosuch\n", "", nil, `unknown OS tree "nosuch"`, 125},
		{"forbidden", "", h.configText + "%TREE two\nusers = root\n", []string{"CHOS=two"}, "you may not use tree two", 125},
		{"sftp to a forbidden tree", "", h.configText + "%TREE two\nusers = root\n", []string{"CHOS=two"}, "you may not use tree two", 125},
		{"control: a tree the user may use", "", "", []string{"CHOS=two"}, "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			clearDotfile(t)
			if c.dotfile != "" {
				setDotfile(t, c.dotfile)
			}
			if c.config != "" {
				setConfig(t, c.config)
			}
			os.Remove(marker)
			t.Cleanup(func() { os.Remove(marker) })
			var r result
			if strings.HasPrefix(c.name, "sftp") {
				argv := append(append([]string{"sftp"}, s.clientOptions(sshClientKey(t), "-P")...), "-o", "SendEnv=CHOS", "-b", "-", h.user+"@127.0.0.1")
				r = run(t, call{Args: argv, Env: c.env, Stdin: []byte("put /etc/hostname " + marker + "\n")})
				if r.status == 0 {
					t.Errorf("sftp into a forbidden tree succeeded:\n%s", r)
				}
			} else {
				r = s.sshWith(t, c.env, remote)
				wantStatus(t, r, c.status)
			}
			if _, err := os.Stat(marker); (err == nil) != (c.status == 0) {
				t.Errorf("the command ran: %v, want %v", err == nil, c.status == 0)
			}
			if c.message == "" {
				return
			}
			if strings.HasPrefix(c.name, "sftp") {
				return // sshd discards a subsystem's stderr: the client sees the connection close
			}
			if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); len(lines) != 1 ||
				!strings.HasPrefix(lines[0], "chos: ") || !strings.Contains(lines[0], c.message) {
				t.Errorf("want one line chos: ...%s...:\n%s", c.message, r)
			}
		})
	}
}

// The command runs through the user's shell, in the home directory, with
// its stdin, stdout and exit status, as without chos.
func TestSSHLoginPassesCommandsThrough(t *testing.T) {
	forced, plain := forcedSSHD(t, "internal-sftp"), sshdFor(t, sshdOptions{})
	clearDotfile(t)
	const probe = `echo "shell=$0 pwd=$PWD"; env | grep -c '^SSH_ORIGINAL_COMMAND=' ; exit 7`
	var want string
	for _, s := range []*sshServer{plain, forced} {
		r := run(t, call{Args: s.sshArgs(sshClientKey(t), nil, probe), Stdin: []byte{}})
		wantStatus(t, r, 7)
		if want == "" {
			want = r.stdout
			if want != "shell=sh pwd="+h.home+"\n0\n" {
				t.Errorf("a plain ssh login printed %q", want)
			}
		} else if r.stdout != want {
			t.Errorf("through chos login the command printed %q, without %q", r.stdout, want)
		}
	}
	in := "line one\nline two\n"
	r := run(t, call{Args: forced.sshArgs(sshClientKey(t), nil, "cat; cat /etc/os-release >&2"), Stdin: []byte(in)})
	if wantStatus(t, r, 0) && (r.stdout != in || osID(r.stderr) != h.osIDs["one"]) {
		t.Errorf("stdin did not pass through to the command in tree one:\n%s", r)
	}
}

// A login on a terminal: the login shell in the tree, a prompt, job
// control, the locale the client sent, and chos still on PATH after the
// tree's /etc/profile reset it.
func TestSSHLoginShellInTreeWithJobControl(t *testing.T) {
	tree := debianTree(t)
	setConfig(t, h.configText+"debian:"+tree+"\n")
	setDotfile(t, "debian\n")
	s := forcedSSHD(t, "internal-sftp")
	sess := startPTY(t, call{Env: []string{"LANG=C.UTF-8", "LC_TIME=C"},
		Args: s.sshArgs(sshClientKey(t), []string{"-tt", "-o", "SendEnv=LANG LC_*"})})
	at, ok := sess.ready(20 * time.Second)
	if !ok {
		return
	}
	end := randHex(3)
	// With job control a background job is a process group of its own.
	sess.send(`printf 'ver:%s\n' "$(cat /etc/debian_version)"; echo "tree:$CHOS lang:$LANG/$LC_TIME flags:$-"; ` +
		`echo "chos:$(command -v chos)"; echo "current:$(/.chos/bin/chos current)"; sleep 60 & ` +
		`echo "job:$! pgrp:$(cut -d' ' -f5 /proc/$!/stat)"; jobs; kill %1; echo END""` + end)
	m, _, ok := sess.expect(regexp.MustCompile(`(?s)^(.*)END`+end+`\n`), at, 10*time.Second)
	if !ok {
		return
	}
	out := m[1]
	for _, want := range []string{"ver:11.", "tree:debian lang:C.UTF-8/C ", "current:debian\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("the login shell did not print %q:\n%s", want, out)
		}
	}
	if f := regexp.MustCompile(`(?m)^tree:.* flags:(\S*)$`).FindStringSubmatch(out); f == nil || !strings.Contains(f[1], "i") {
		t.Errorf("the shell is not interactive:\n%s", out)
	}
	if j := regexp.MustCompile(`job:(\d+) pgrp:(\d+)\n`).FindStringSubmatch(out); j == nil || j[1] != j[2] {
		t.Errorf("the background job is not a process group of its own (no job control):\n%s", out)
	}
	if !regexp.MustCompile(`\[1\]\s*\+?\s*Running`).MatchString(out) {
		t.Errorf("jobs did not list the background job:\n%s", out)
	}
	if !strings.Contains(out, "chos:/.chos/bin/chos\n") {
		t.Errorf("chos is not on PATH in the tree's login shell (the view's /etc/profile.d/chos.sh, issue 7):\n%s", out)
	}
	sess.send("exit")
	sess.wait(10 * time.Second)

	// control: without ForceCommand the same login is on the host (Debian 12)
	plain := sshdFor(t, sshdOptions{})
	r := run(t, call{Args: plain.sshArgs(sshClientKey(t), nil, "cat /etc/debian_version"), Stdin: []byte{}})
	if wantStatus(t, r, 0) && !strings.HasPrefix(r.stdout, "12.") {
		t.Errorf("the host is not Debian 12:\n%s", r)
	}
}

// transferCase is one file transfer client: put copies a local file to a
// remote path, get a remote file to a local path.
type transferCase struct {
	name      string
	subsystem string // sshd's sftp Subsystem
	put, get  func(s *sshServer, key, local, remote string) call
}

func transferCases() []transferCase {
	sftp := func(s *sshServer, key, batch string) call {
		argv := append(append([]string{"sftp"}, s.clientOptions(key, "-P")...), "-o", "SendEnv=CHOS", "-b", "-", h.user+"@127.0.0.1")
		return call{Args: argv, Stdin: []byte(batch + "\n")}
	}
	sftpPut := func(s *sshServer, key, local, rp string) call { return sftp(s, key, "put "+local+" "+rp) }
	sftpGet := func(s *sshServer, key, local, rp string) call { return sftp(s, key, "get "+rp+" "+local) }
	remote := func(p string) string { return h.user + "@127.0.0.1:" + p }
	scp := func(legacy, put bool) func(s *sshServer, key, local, rp string) call {
		return func(s *sshServer, key, local, rp string) call {
			argv := append([]string{"scp"}, s.clientOptions(key, "-P")...)
			if legacy {
				argv = append(argv, "-O")
			}
			argv = append(argv, "-o", "SendEnv=CHOS")
			if put {
				return call{Args: append(argv, local, remote(rp))}
			}
			return call{Args: append(argv, remote(rp), local)}
		}
	}
	rsync := func(put bool) func(s *sshServer, key, local, rp string) call {
		return func(s *sshServer, key, local, rp string) call {
			argv := []string{"rsync", "--copy-links", "-e", strings.Join(append([]string{"ssh"}, s.clientOptions(key, "-p")...), " ") + " -o SendEnv=CHOS"}
			if put {
				return call{Args: append(argv, local, remote(rp))}
			}
			return call{Args: append(argv, remote(rp), local)}
		}
	}
	return []transferCase{
		{"sftp internal-sftp", "internal-sftp", sftpPut, sftpGet},
		{"sftp external server", hostSFTPServer, sftpPut, sftpGet},
		{"scp", "internal-sftp", scp(false, true), scp(false, false)},
		{"scp -O", "internal-sftp", scp(true, true), scp(true, false)},
		{"rsync", "internal-sftp", rsync(true), rsync(false)},
	}
}

// sftp, scp (both protocols) and rsync copy into $HOME and out of trees
// that have none of the tools (busybox, Debian 11 minbase): the host's run
// in the view.
func TestSSHLoginTransfersFiles(t *testing.T) {
	clearDotfile(t)
	// Debian 11's glibc is older than the host's: the host's programs
	// must not load a library of the tree.
	debian := debianTree(t)
	setConfig(t, h.configText+"debian:"+debian+"\n")
	// control: the trees really lack the tools
	s := forcedSSHD(t, "internal-sftp")
	for _, tree := range []string{"two", "debian"} {
		r := s.sshWith(t, []string{"CHOS=" + tree}, "for p in scp rsync sftp-server; do command -v $p; done; ls "+filepath.Dir(hostSFTPServer)+"; echo tree=$CHOS")
		if r.stdout != "tree="+tree+"\n" {
			t.Fatalf("tree %s has transfer tools, or the session is not in it:\n%s", tree, r)
		}
	}
	// control: the host's rsync, executed plainly in Debian 11, gets the
	// tree's loader and libraries, which lack or are too old for it
	r := s.sshWith(t, []string{"CHOS=debian"}, "/.chos/host/usr/bin/rsync --version")
	if r.status == 0 || !regexp.MustCompile(`error while loading shared libraries|GLIBC_`).MatchString(r.stderr) {
		t.Errorf("the host's rsync ran with the tree's libraries:\n%s", r)
	}
	osRelease := func(root string) string {
		data, err := os.ReadFile(filepath.Join(root, "usr/lib/os-release"))
		if fi, lerr := os.Lstat(filepath.Join(root, "etc/os-release")); lerr == nil && fi.Mode().IsRegular() {
			data, err = os.ReadFile(filepath.Join(root, "etc/os-release"))
		}
		must(t, err)
		return string(data)
	}
	trees := []struct{ chos, osRelease string }{
		{"two", osRelease(h.trees["two"])}, {"debian", osRelease(debian)}, {"local", osRelease("/")}, // local: the control
	}
	content := "chos transfer " + randHex(8) + "\n"
	for _, c := range transferCases() {
		t.Run(c.name, func(t *testing.T) {
			s := forcedSSHD(t, c.subsystem)
			key := sshClientKey(t)
			dir := filepath.Join(h.home, "chos-itest-xfer")
			userDir(t, dir)
			local := filepath.Join(dir, "local")
			writeUserFile(t, local, content, 0o644)
			name := "chos-itest-put-" + randHex(3)
			t.Cleanup(func() { os.Remove(filepath.Join(h.home, name)) })

			for _, tree := range trees {
				env := []string{"CHOS=" + tree.chos}
				// into the home directory, by a relative remote path
				os.Remove(filepath.Join(h.home, name))
				put := c.put(s, key, local, name)
				put.Env = env
				r := run(t, put)
				if got, err := os.ReadFile(filepath.Join(h.home, name)); !wantStatus(t, r, 0) || err != nil || string(got) != content {
					t.Errorf("%s: put into $HOME: %q, %v:\n%s", tree.chos, got, err, r)
				}
				// the os-release of the session's tree
				fetched := filepath.Join(dir, "os-release-"+tree.chos)
				get := c.get(s, key, fetched, "/etc/os-release")
				get.Env = env
				r = run(t, get)
				data, err := os.ReadFile(fetched)
				if !wantStatus(t, r, 0) || err != nil || string(data) != tree.osRelease {
					t.Errorf("%s: the os-release fetched is not the tree's (%v):\n%s\n%s", tree.chos, err, data, r)
				}
			}
		})
	}
}

// X11 forwarding: sshd's xauth ran on the host (the tree has none) and
// wrote the cookie for the session's DISPLAY, which the tree's
// processes see; agent forwarding: the session's agent socket works.
func TestSSHLoginForwardsX11AndAgent(t *testing.T) {
	clearDotfile(t)
	s := forcedSSHD(t, "internal-sftp")
	key := sshClientKey(t)
	xauthority := filepath.Join(h.home, ".Xauthority")
	os.Remove(xauthority)
	t.Cleanup(func() { os.Remove(xauthority) })

	const show = `echo "display=$DISPLAY"; cat /etc/os-release`
	for _, c := range []struct {
		name  string
		extra []string
		want  bool
	}{{"ssh -Y", []string{"-Y"}, true}, {"control: ssh without -Y", nil, false}} {
		r := run(t, call{Args: s.sshArgs(key, c.extra, show), Env: []string{"DISPLAY=:99"}, Stdin: []byte{}})
		if !wantStatus(t, r, 0) || osID(r.stdout) != h.osIDs["one"] {
			t.Errorf("%s: not in tree one:\n%s", c.name, r)
			continue
		}
		m := regexp.MustCompile(`display=localhost:(\d+)\.0\n`).FindStringSubmatch(r.stdout)
		if (m != nil) != c.want {
			t.Errorf("%s: DISPLAY forwarded: %v, want %v:\n%s", c.name, m != nil, c.want, r)
			continue
		}
		if m == nil {
			continue
		}
		x := run(t, call{Args: []string{"xauth", "-f", xauthority, "list"}})
		if !wantStatus(t, x, 0) || !regexp.MustCompile(`(?m)/unix:`+m[1]+`\s+MIT-MAGIC-COOKIE-1\s+[0-9a-f]+$`).MatchString(x.stdout) {
			t.Errorf("~/.Xauthority has no cookie for display %s:\n%s", m[1], x)
		}
	}

	// agent forwarding: a host ssh-add lists the key through the socket
	// the session in the tree sees
	agent := filepath.Join(h.home, "chos-itest-agent-"+randHex(3))
	t.Cleanup(func() { os.Remove(agent) })
	start(t, call{Args: []string{"ssh-agent", "-D", "-a", agent}})
	deadline := time.Now().Add(10 * time.Second)
	for _, err := os.Stat(agent); err != nil && time.Now().Before(deadline); _, err = os.Stat(agent) {
		time.Sleep(20 * time.Millisecond)
	}
	env := []string{"SSH_AUTH_SOCK=" + agent}
	wantStatus(t, run(t, call{Args: []string{"ssh-add", key}, Env: env}), 0)
	for _, c := range []struct {
		name  string
		extra []string
		want  bool
	}{{"ssh -A", []string{"-A"}, true}, {"control: ssh without -A", nil, false}} {
		sess := start(t, call{Args: s.sshArgs(key, c.extra, `test -S "$SSH_AUTH_SOCK" || SSH_AUTH_SOCK=; `+
			`echo "pid=$$ id=$(sed -n 's/^ID=//p' /etc/os-release) sock=$SSH_AUTH_SOCK"; exec sleep 30`), Env: env})
		var line string
		select {
		case line = <-sess.lines:
		case <-time.After(15 * time.Second):
			t.Errorf("%s: the session printed nothing:\n%s", c.name, sess.result())
			continue
		}
		m := regexp.MustCompile(`^pid=(\d+) id=(\S*) sock=(\S*)$`).FindStringSubmatch(line)
		if m == nil {
			t.Errorf("%s: the session printed %q", c.name, line)
			continue
		}
		// The remote sleep outlives the client: end it (the user's).
		defer run(t, call{Args: []string{"kill", m[1]}})
		if m[2] != h.osIDs["one"] {
			t.Errorf("%s: the session is in ID=%s, not tree one", c.name, m[2])
		}
		if (m[3] != "") != c.want {
			t.Errorf("%s: agent socket in the tree: %q, want one: %v", c.name, m[3], c.want)
		}
		if m[3] != "" {
			r := run(t, call{Args: []string{"ssh-add", "-l"}, Env: []string{"SSH_AUTH_SOCK=" + m[3]}})
			if !wantStatus(t, r, 0) || !strings.Contains(r.stdout, "ED25519") {
				t.Errorf("%s: the forwarded agent does not list the key:\n%s", c.name, r)
			}
		}
	}
}

// bashUser is a test user whose login shell is /bin/bash (which busybox
// trees lack), in the test user's group so that the fixture's sshd lets
// it in and its Match applies.
func bashUser(t testing.TB) *testUser {
	t.Helper()
	return bashUserBuild.get(t)
}

var bashUserBuild = buildOnce(func() (*testUser, error) {
	u, err := makeUser("chosb" + randHex(3))
	if err != nil {
		return nil, err
	}
	if out, err := runSetup(30*time.Second, "/", "usermod", "-s", "/bin/bash", "-a", "-G", h.group, u.name); err != nil {
		return nil, fmt.Errorf("usermod %s: %w\n%s", u.name, err, out)
	}
	return u, nil
})

// A user whose shell the tree lacks gets /bin/sh there, with one warning
// line; where the tree has it, the user's own shell.
func TestSSHLoginShellMissingInTree(t *testing.T) {
	u := bashUser(t)
	tree := debianTree(t)
	setConfig(t, h.configText+"debian:"+tree+"\n")
	s := forcedSSHD(t, "internal-sftp")
	key := sshClientKeyOf(t, *u)
	const warning = "chos: warning: your shell /bin/bash is not in tree one; using /bin/sh\n"
	for _, c := range []struct{ tree, shell, stderr string }{ // shell: as sshd names it, $0
		{"one", "sh", warning},
		{"debian", "bash", ""}, // control
	} {
		r := run(t, call{User: u, Args: s.sshArgsAs(u.name, key, []string{"-o", "SendEnv=CHOS"}, `echo "shell=$0"; cat /etc/os-release`),
			Env: []string{"CHOS=" + c.tree}, Stdin: []byte{}})
		if !wantStatus(t, r, 0) {
			continue
		}
		if !strings.Contains(r.stdout, "shell="+c.shell+"\n") || r.stderr != c.stderr {
			t.Errorf("CHOS=%s: want the shell %s and stderr %q:\n%s", c.tree, c.shell, c.stderr, r)
		}
	}
	// the login shell on a terminal: the same warning, a shell in the tree
	sess := startPTY(t, call{User: u, Env: []string{"CHOS=one"}, Args: s.sshArgsAs(u.name, key, []string{"-tt", "-o", "SendEnv=CHOS"})})
	at, ok := sess.ready(20 * time.Second)
	if !ok {
		return
	}
	if !strings.Contains(sess.output()[:at], strings.TrimSuffix(warning, "\n")) {
		t.Errorf("the login did not warn that bash is missing:\n%s", sess.output())
	}
	sess.send(`sed -n 's/^ID=/osid:/p' /etc/os-release`)
	sess.expect(regexp.MustCompile(`osid:`+h.osIDs["one"]+`\n`), at, 10*time.Second)
}

// ids, groups and capabilities are those of a login without chos.
func TestSSHLoginKeepsIdentity(t *testing.T) {
	clearDotfile(t)
	const probe = `id -u; id -g; id -G | tr ' ' '\n' | sort -n | tr '\n' ' '; echo; grep -E '^Cap(Inh|Prm|Eff|Amb)' /proc/self/status; sed -n 's/^ID=/osid:/p' /etc/os-release`
	identity := func(s *sshServer, user string, key string, c call) (string, string) {
		c.Args, c.Stdin = s.sshArgsAs(user, key, nil, probe), []byte{}
		r := run(t, c)
		if !wantStatus(t, r, 0) {
			return "", ""
		}
		i := strings.LastIndex(r.stdout, "osid:")
		if i < 0 {
			t.Errorf("no os-release ID:\n%s", r)
			return r.stdout, ""
		}
		return r.stdout[:i], strings.TrimSpace(r.stdout[i+5:])
	}
	plain, forced := sshdFor(t, sshdOptions{}), forcedSSHD(t, "internal-sftp")
	key := sshClientKey(t)
	want, hostID := identity(plain, h.user, key, call{})
	got, treeID := identity(forced, h.user, key, call{})
	if hostID != h.hostOSRelease["ID"] || treeID != h.osIDs["one"] {
		t.Fatalf("the logins ran in %s and %s, want the host and tree one", hostID, treeID)
	}
	if got != want {
		t.Errorf("identity through chos login:\n%s\nwithout chos:\n%s", got, want)
	}
	if !strings.Contains(want, fmt.Sprint(h.extraGIDs[0])) {
		t.Errorf("the plain login lacks the supplementary group %d:\n%s", h.extraGIDs[0], want)
	}
	// control: another user's identity differs
	u := bashUser(t)
	other, _ := identity(plain, u.name, sshClientKeyOf(t, *u), call{User: u})
	if other == want {
		t.Errorf("two users' identities compare equal:\n%s", other)
	}
}

// sshd runs ~/.ssh/rc only without a ForceCommand (OpenSSH session.c,
// do_rc_files): under chos login it is not run at all, on the host or in
// the tree.
func TestSSHLoginSkipsUserRC(t *testing.T) {
	clearDotfile(t)
	rcDir := filepath.Join(h.home, ".ssh")
	userDir(t, rcDir)
	marker := filepath.Join(h.home, "chos-itest-rc-ran")
	writeUserFile(t, filepath.Join(rcDir, "rc"), "#!/bin/sh\ntouch "+marker+"\n", 0o755)
	t.Cleanup(func() { os.Remove(marker) })
	for _, c := range []struct {
		name string
		s    *sshServer
		ran  bool
	}{
		{"chos login", forcedSSHD(t, "internal-sftp"), false},
		{"control: without ForceCommand", sshdFor(t, sshdOptions{}), true},
	} {
		os.Remove(marker)
		wantStatus(t, c.s.sshWith(t, nil, "true"), 0)
		if _, err := os.Stat(marker); (err == nil) != c.ran {
			t.Errorf("%s: ~/.ssh/rc ran: %v, want %v", c.name, err == nil, c.ran)
		}
	}
}
