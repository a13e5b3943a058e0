package integration

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Users known only to the directory (LDAP, sssd, NIS; here
// libnss-extrausers) are named exactly like local ones: on the host, where
// chos needs their home, shell and groups, and inside every tree, including
// trees without a directory client of their own.

// launchKind is one way a tree is entered: the binary and the options.
type launchKind struct {
	name   string
	bin    func() string
	opts   []string
	userns bool
}

func launchKinds() []launchKind {
	return []launchKind{
		{"setuid cached", func() string { return h.chos }, nil, false},
		{"setuid fresh", func() string { return h.chos }, []string{"--fresh"}, false},
		{"userns", func() string { return h.chosUserns }, nil, true},
	}
}

// exec is `chos exec [opts] tree argv...` in this kind.
func (k launchKind) exec(tree string, argv ...string) []string {
	return append(append(append([]string{k.bin(), "exec"}, k.opts...), tree), argv...)
}

// withDebianTree adds the debootstrapped Debian tree as "debian" for one test.
func withDebianTree(t *testing.T) {
	t.Helper()
	setConfig(t, h.configText+"debian:"+debianTree(t)+"\n")
}

func keyValues(out string) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

func TestDirectoryUserIsNamedInsideEveryTree(t *testing.T) {
	a := directoryUser(t)
	withDebianTree(t)
	// Control: neither the host's files nor the trees' know the user: only
	// what chos adds can name them inside.
	for _, f := range []string{"/etc/passwd", filepath.Join(debianTree(t), "etc/passwd")} {
		if data, _ := os.ReadFile(f); strings.Contains(string(data), a.name) {
			t.Fatalf("control: %s names %s already; the test cannot fail", f, a.name)
		}
	}
	script := `echo whoami=$(whoami); echo user=$(id -un); echo group=$(id -gn); echo groups=$(id -Gn); ` +
		`echo home=$(stat -c %U "$HOME"); echo root=$(stat -c %U /)`
	debian := `; echo getent=$(getent passwd "$(id -un)" | cut -d: -f1,3,6); echo dg=$(getent group ` + a.groups[0].name +
		` | cut -d: -f1,3,4); echo daemon=$(getent passwd daemon | cut -d: -f1)`
	for _, k := range launchKinds() {
		for _, tree := range []string{"one", "debian"} {
			t.Run(k.name+"/"+tree, func(t *testing.T) {
				s := script
				if tree == "debian" {
					s += debian
				}
				r := run(t, call{User: &a.testUser, Args: k.exec(tree, "sh", "-c", s)})
				if !wantStatus(t, r, 0) {
					return
				}
				got := keyValues(r.stdout)
				want := map[string]string{"whoami": a.name, "user": a.name, "group": a.name, "home": a.name}
				if !k.userns {
					want["root"] = "root" // the tree's own accounts still resolve
				}
				if tree == "debian" {
					want["getent"] = a.name + ":" + strconv.Itoa(a.uid) + ":" + a.home
					want["dg"] = a.groups[0].name + ":" + strconv.Itoa(a.groups[0].gid) + ":" + a.name
					want["daemon"] = "daemon"
				}
				for key, v := range want {
					if got[key] != v {
						t.Errorf("%s = %q, want %q:\n%s", key, got[key], v, r)
					}
				}
				if !k.userns { // (user namespaces show supplementary groups as the overflow group)
					for _, g := range a.groups {
						if !strings.Contains(" "+got["groups"]+" ", " "+g.name+" ") {
							t.Errorf("id -Gn %q lacks the directory group %s:\n%s", got["groups"], g.name, r)
						}
					}
				}
			})
		}
	}
	t.Run("ls -l shows names", func(t *testing.T) {
		// (coreutils: busybox's ls cuts names at 8 characters)
		r := run(t, call{User: &a.testUser, Args: []string{h.chos, "exec", "debian", "ls", "-ld", a.home}})
		wantStatus(t, r, 0)
		if f := strings.Fields(r.stdout); len(f) < 4 || f[2] != a.name || f[3] != a.name {
			t.Errorf("ls -ld ~ inside: %q, want owner and group %s:\n%s", r.stdout, a.name, r)
		}
	})
}

// The files chos adds are the caller's alone: another user of the same
// cached view never sees them.
func TestOneUsersNamesNeverReachAnotherUsersView(t *testing.T) {
	a := directoryUser(t)
	emptyCache(t)
	mine := run(t, call{User: &a.testUser, Args: []string{h.chos, "exec", "one", "cat", "/etc/passwd", "/etc/group"}})
	wantStatus(t, mine, 0)
	if !strings.Contains(mine.stdout, a.name+":x:") || !strings.Contains(mine.stdout, a.groups[1].name+":x:") {
		t.Fatalf("control: the directory user's own view does not name them:\n%s", mine)
	}
	for _, other := range []call{
		{Args: []string{h.chos, "exec", "one", "cat", "/etc/passwd", "/etc/group"}},
		{User: otherUser(t), Args: []string{h.chos, "exec", "one", "cat", "/etc/passwd", "/etc/group"}},
		{Root: true, Args: []string{h.chos, "exec", "one", "cat", "/etc/passwd", "/etc/group"}},
	} {
		r := run(t, other)
		wantStatus(t, r, 0)
		for _, name := range []string{a.name, a.groups[0].name, a.groups[1].name} {
			if strings.Contains(r.stdout, name) {
				t.Errorf("%s sees %s in the cached view:\n%s", describe(other), name, r)
			}
		}
	}
	if n := validCached(t, "one"); n != 1 {
		t.Errorf("%d valid cached views of one, want the one shared view", n)
	}
}

func TestDirectoryGroupsAndUsersDecideAccess(t *testing.T) {
	a := directoryUser(t)
	setConfig(t, h.configText+"%TREE two\ngroups = "+a.groups[1].name+"\n%TREE three\nusers = "+a.name+"\n")
	for _, tree := range []string{"two", "three"} {
		r := run(t, call{User: &a.testUser, Args: []string{h.chos, "exec", tree, "cat", "/etc/os-release"}})
		wantOSID(t, r, h.osIDs[tree])
		// Control: a user outside the directory group is refused.
		r = chos(t, "exec", tree, "true")
		wantStatus(t, r, 125)
		if !strings.Contains(r.stderr, "may not use tree "+tree) {
			t.Errorf("refusal does not say so:\n%s", r)
		}
	}
}

func TestSelectFindsTheDirectoryHomeWithoutHOME(t *testing.T) {
	a := directoryUser(t)
	dot := filepath.Join(a.home, ".chos")
	os.Remove(dot)
	t.Cleanup(func() { os.Remove(dot) })
	r := run(t, call{User: &a.testUser, Args: []string{"env", "-u", "HOME", h.chos, "select", "two"}})
	wantStatus(t, r, 0)
	if data, err := os.ReadFile(dot); err != nil || strings.TrimSpace(string(data)) != "two" {
		t.Errorf("~/.chos of the directory user: %q, %v:\n%s", data, err, r)
	}
	r = run(t, call{User: &a.testUser, Args: []string{"env", "-u", "HOME", "-u", "SHELL", h.chos, "shell"},
		Stdin: []byte("echo HOME=$HOME; echo SHELL=$SHELL; cat /etc/os-release\n")})
	wantStatus(t, r, 0)
	got := keyValues(r.stdout)
	if got["HOME"] != a.home || got["SHELL"] != "/bin/sh" || got["ID"] != h.osIDs["two"] {
		t.Errorf("login shell of the directory user: HOME %q SHELL %q ID %q:\n%s", got["HOME"], got["SHELL"], got["ID"], r)
	}
}

// Trees that lack identity files get the host's, on the view's own
// tmpfs: the busybox trees have none, a minimal Debian has no /etc/hosts.
func TestIdentityFilesATreeLacksAreProvided(t *testing.T) {
	withDebianTree(t)
	for _, f := range []string{"hosts", "resolv.conf", "passwd"} {
		if _, err := os.Lstat(filepath.Join(h.trees["one"], "etc", f)); err == nil {
			t.Fatalf("control: tree one has /etc/%s; the test cannot fail", f)
		}
	}
	if _, err := os.Lstat(filepath.Join(debianTree(t), "etc/hosts")); err == nil {
		t.Fatal("control: the Debian tree has /etc/hosts; the test cannot fail")
	}
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	hostHosts, _ := os.ReadFile("/etc/hosts")
	for _, k := range launchKinds() {
		t.Run(k.name, func(t *testing.T) {
			r := run(t, call{Args: k.exec("one", "cat", "/etc/resolv.conf")})
			if wantStatus(t, r, 0) && r.stdout != string(hostResolv) {
				t.Errorf("resolv.conf in tree one %q, want the host's %q", r.stdout, hostResolv)
			}
			r = run(t, call{Args: k.exec("one", "cat", "/etc/hosts")})
			if wantStatus(t, r, 0) && r.stdout != string(hostHosts) {
				t.Errorf("hosts in tree one %q, want the host's", r.stdout)
			}
			r = run(t, call{Args: k.exec("debian", "getent", "hosts", "localhost")})
			if wantStatus(t, r, 0) && !strings.Contains(r.stdout, "localhost") {
				t.Errorf("localhost does not resolve in the Debian tree:\n%s", r)
			}
			// Still never written into the tree: /etc stays read-only.
			r = run(t, call{Args: k.exec("one", "sh", "-c", "echo x > /etc/chos-probe")})
			if r.status == 0 {
				t.Errorf("/etc of tree one is writable in the view")
			}
		})
	}
	if _, err := os.Lstat(filepath.Join(h.trees["one"], "etc", "hosts")); err == nil {
		t.Error("chos wrote /etc/hosts into tree one")
	}
}

func TestUserWithTwoHundredDirectoryGroupsIsNamedInside(t *testing.T) {
	m := directoryUserWithManyGroups(t)
	withDebianTree(t)
	for _, fresh := range [][]string{nil, {"--fresh"}} {
		args := append(append([]string{h.chos, "exec"}, fresh...), "debian", "id", "-Gn")
		r := run(t, call{User: &m.testUser, Args: args})
		if !wantStatus(t, r, 0) {
			continue
		}
		names := strings.Fields(r.stdout)
		if len(names) != 201 {
			t.Errorf("id -Gn inside shows %d groups, want 201:\n%s", len(names), r)
		}
		for _, g := range []dirGroup{m.groups[0], m.groups[199]} {
			if !strings.Contains(" "+r.stdout, " "+g.name) {
				t.Errorf("id -Gn lacks %s", g.name)
			}
		}
	}
}

// A name service that never answers gives a clear error within seconds,
// never a hang: a getent whose NSS module blocks, and a userdb socket that
// accepts and stays silent. Each in a private mount namespace, so that
// nothing else on the machine hangs.
func TestDeadNameServiceGivesAClearErrorQuickly(t *testing.T) {
	a := directoryUser(t)
	dir := filepath.Join(h.base, "deadnss-"+randHex(3))
	must(t, os.MkdirAll(filepath.Join(dir, "extrausers"), 0o755))
	must(t, os.MkdirAll(filepath.Join(dir, "systemd", "userdb"), 0o755))
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, f := range []string{"group", "shadow"} {
		data, _ := os.ReadFile(filepath.Join(extrausersDir, f))
		must(t, os.WriteFile(filepath.Join(dir, "extrausers", f), data, 0o644))
	}
	// A FIFO nobody writes: the extrausers module blocks opening it.
	must(t, syscallMkfifo(filepath.Join(dir, "extrausers", "passwd")))
	l, err := net.Listen("unix", filepath.Join(dir, "systemd", "userdb", "io.systemd.Multiplexer"))
	must(t, err)
	t.Cleanup(func() { l.Close() }) // never accepts: connections wait in the backlog

	runSystemdDir(t)
	// (setpriv would itself look the user up, and hang)
	runas := buildTestProgram(t, dir, "runas")
	asUser := "exec " + runas + " " + strconv.Itoa(a.uid) + " " + strconv.Itoa(a.gid) + " " + a.gidList() +
		" -- " + h.chos + " exec one true"
	cases := []struct {
		name   string
		mounts string
		dead   bool
	}{
		{"control: a live name service", "", false},
		{"getent blocks", "mount --bind " + dir + "/extrausers " + extrausersDir + "; ", true},
		{"userdb accepts and stays silent", "mount --bind " + dir + "/systemd /run/systemd; ", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			r := run(t, call{Root: true, Timeout: 20 * time.Second, Env: []string{"HOME=" + a.home},
				Args: []string{"unshare", "-m", "--propagation", "private", "sh", "-c", c.mounts + asUser}})
			took := time.Since(start)
			if !c.dead {
				wantStatus(t, r, 0)
				return
			}
			wantStatus(t, r, 125)
			if !strings.Contains(r.stderr, "did not answer") || strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
				t.Errorf("want one clear line saying the name service did not answer:\n%s", r)
			}
			if took > 12*time.Second {
				t.Errorf("the launch took %v to give up", took)
			}
		})
	}
}

func TestCheckSaysWhichNameServiceNamedTheCaller(t *testing.T) {
	a := directoryUser(t)
	r := run(t, call{User: &a.testUser, Args: []string{h.chos, "check", "one"}})
	if !strings.Contains(r.stdout, "is "+a.name+" (from getent (NSS))") || !strings.Contains(r.stdout, a.groups[0].name) {
		t.Errorf("chos check does not name the directory user and its source:\n%s", r)
	}
	if !strings.Contains(r.stdout, "add your entry to the view") {
		t.Errorf("chos check does not say the view gets the user's entry:\n%s", r)
	}
	// Control: a local user is named by the files, and needs nothing added.
	r = chos(t, "check", "one")
	if !strings.Contains(r.stdout, "is "+h.user+" (from files)") || !strings.Contains(r.stdout, "name you and all your groups") {
		t.Errorf("chos check for a local user:\n%s", r)
	}
}

// Where systemd's user database runs (systemd-userdbd), chos asks it over
// varlink before running getent. The daemon runs in a private mount
// namespace with a /run/systemd of its own, for this test only.
func TestSystemdUserdbNamesDirectoryUsers(t *testing.T) {
	a := directoryUser(t)
	const userdbd = "/lib/systemd/systemd-userdbd"
	if _, err := os.Stat(userdbd); err != nil {
		t.Fatalf("%s is missing (apt-get install systemd-userdbd): %v", userdbd, err)
	}
	runSystemdDir(t)
	runas := buildTestProgram(t, t.TempDir(), "runas")
	script := func(withDaemon bool) string {
		s := "mount -t tmpfs -o mode=0755 tmpfs /run/systemd; "
		if withDaemon {
			s += userdbd + " 2>/dev/null & pid=$!; for i in $(seq 50); do [ -S /run/systemd/userdb/io.systemd.Multiplexer ] && break; sleep 0.1; done; "
		}
		return s + runas + " " + strconv.Itoa(a.uid) + " " + strconv.Itoa(a.gid) + " " + a.gidList() +
			" -- " + h.chos + " check one; [ -n \"$pid\" ] && kill $pid; wait $pid"
	}
	for _, c := range []struct {
		daemon bool
		source string
	}{{true, "systemd userdb"}, {false, "getent (NSS)"}} {
		r := run(t, call{Root: true, Env: []string{"HOME=" + a.home},
			Args: []string{"unshare", "-m", "--propagation", "private", "sh", "-c", script(c.daemon)}})
		if !strings.Contains(r.stdout, "is "+a.name+" (from "+c.source+")") {
			t.Errorf("with the daemon %v: want the user named by %s:\n%s", c.daemon, c.source, r)
		}
	}
}

// runSystemdDir makes sure /run/systemd exists, for a test to mount over
// it in a private namespace (a machine without systemd has none), and
// removes it after the test if it made it.
func runSystemdDir(t *testing.T) {
	t.Helper()
	const dir = "/run/systemd"
	if _, err := os.Stat(dir); err == nil {
		return
	}
	must(t, os.Mkdir(dir, 0o755))
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			t.Errorf("removing %s, made for the test: %v", dir, err)
		}
	})
}
