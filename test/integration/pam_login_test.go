package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pam_chos.so end to end with the real `chos prepare`: pamtester through
// test-only services, su -l, su -l -c and login -f on a terminal (their
// PAM files, which name the service themselves, are replaced only inside
// a private mount namespace: /etc/pam.d is never written), sshd with the
// module, and the host's mount table after many sessions.

// pamChos is the module's line, with options.
func pamChos(t testing.TB, opts ...string) string {
	t.Helper()
	return strings.TrimSpace("session required " + pamModule(t) + " " + strings.Join(opts, " "))
}

// where is a program that prints "osid:ID" of the os-release it sees and
// "tree:$CHOS": in the shared /tmp, so that it runs inside trees too.
func where(t testing.TB) string {
	t.Helper()
	return whereScript.get(t)
}

var whereScript = buildOnce(func() (string, error) {
	path := filepath.Join(h.tmp, "where")
	return path, writeRootFile(path, "#!/bin/sh\nsed -n 's/^ID=/osid:/p' /etc/os-release\necho \"tree:$CHOS\"\n", 0o755)
})

// whereShown parses what where printed: the os-release ID and $CHOS.
func whereShown(out string) (id, tree string) {
	if m := regexp.MustCompile(`(?m)^osid:(\S+)$`).FindStringSubmatch(out); m != nil {
		id = m[1]
	}
	if m := regexp.MustCompile(`(?m)^tree:(\S*)$`).FindStringSubmatch(out); m != nil {
		tree = m[1]
	}
	return id, tree
}

// pamtesterAs opens and closes a session of service for user, as root,
// with pamtester's extra arguments (-E VAR=VALUE) and env added to its
// own environment.
func pamtesterAs(t testing.TB, service, user string, args, env []string) result {
	t.Helper()
	argv := append(append([]string{"pamtester"}, args...), service, user, "open_session", "close_session")
	return run(t, call{Root: true, Args: argv, Env: env})
}

func TestPamSessionLandsInSelectedTree(t *testing.T) {
	svc := pamService(t, pamChos(t), "session optional pam_exec.so stdout "+where(t))
	for _, c := range []struct {
		name, dotfile string
		args, env     []string
		service       string
		id, chos      string
	}{
		{"the default", "", nil, nil, svc, h.osIDs["one"], "one"},
		{"~/.chos", "two\n", nil, nil, svc, h.osIDs["two"], "two"},
		{"$CHOS of the PAM environment", "two\n", []string{"-ECHOS=three"}, nil, svc, h.osIDs["three"], "three"},
		{"$CHOS of the application (su)", "two\n", nil, []string{"CHOS=three"}, svc, h.osIDs["three"], "three"},
		{"~/.chos local", "local\n", nil, nil, svc, h.hostOSRelease["ID"], "local"},
		{"control: without the module", "two\n", nil, nil, pamService(t, "session optional pam_exec.so stdout "+where(t)), h.hostOSRelease["ID"], ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			clearDotfile(t)
			if c.dotfile != "" {
				setDotfile(t, c.dotfile)
			}
			r := pamtesterAs(t, c.service, h.user, c.args, c.env)
			if !wantStatus(t, r, 0) {
				return
			}
			if id, tree := whereShown(r.stdout); id != c.id || tree != c.chos {
				t.Errorf("the session is in ID=%s with CHOS=%q, want ID=%s, CHOS=%q:\n%s", id, tree, c.id, c.chos, r)
			}
		})
	}
}

// Root, and members of the exempt group, are never moved.
func TestPamSessionLeavesRootAndExemptGroupOnHost(t *testing.T) {
	setDotfile(t, "two\n")
	show := "session optional pam_exec.so stdout " + where(t)
	for _, c := range []struct {
		name, user, opts, id string
	}{
		{"root", "root", "", h.hostOSRelease["ID"]},
		{"exempt group", h.user, "exempt_group=" + h.extraGroups[1], h.hostOSRelease["ID"]},
		{"control: a group the user is not in", h.user, "exempt_group=root", h.osIDs["two"]},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := pamtesterAs(t, pamService(t, pamChos(t, c.opts), show), c.user, nil, nil)
			if !wantStatus(t, r, 0) {
				return
			}
			if id, _ := whereShown(r.stdout); id != c.id {
				t.Errorf("the session of %s is in ID=%s, want %s:\n%s", c.user, id, c.id, r)
			}
			if r.stderr != "" {
				t.Errorf("unexpected messages:\n%s", r)
			}
		})
	}
}

// A selection that cannot be entered refuses the session with one line
// (onerr=fail, the default), or keeps it on the host with a warning
// (onerr=succeed).
func TestPamSessionRefusesBadSelection(t *testing.T) {
	show := "session optional pam_exec.so stdout " + where(t)
	forbid := h.configText + "%TREE two\nusers = root\n"
	for _, c := range []struct {
		name, dotfile, config string
		user                  *testUser
		message               string
	}{
		{"unknown tree", "nosuch\n", "", nil, `unknown OS tree "nosuch"`},
		{"forbidden tree", "two\n", forbid, nil, "you may not use tree two"},
		{"login shell not in the tree", "", "", bashUser(t), "your login shell /bin/bash is not in tree one"},
		{"control: a good selection", "two\n", "", nil, ""},
	} {
		for _, onerr := range []string{"", "onerr=fail", "onerr=succeed"} {
			t.Run(c.name+" "+onerr, func(t *testing.T) {
				u := call{User: c.user}.account()
				clearDotfile(t)
				if c.dotfile != "" {
					setDotfile(t, c.dotfile)
				}
				if c.config != "" {
					setConfig(t, c.config)
				}
				r := pamtesterAs(t, pamService(t, pamChos(t, onerr), show), u.name, nil, nil)
				id, _ := whereShown(r.stdout)
				switch {
				case c.message == "":
					if wantStatus(t, r, 0) && id != h.osIDs["two"] {
						t.Errorf("the session is in ID=%s, want tree two:\n%s", id, r)
					}
				case onerr == "onerr=succeed":
					if wantStatus(t, r, 0) && (id != h.hostOSRelease["ID"] || !strings.Contains(r.stderr, "chos: "+c.message) ||
						!strings.Contains(r.stderr, "; staying on the host\n")) {
						t.Errorf("want the session on the host with the warning %q; staying on the host:\n%s", c.message, r)
					}
				default:
					if r.status == 0 || strings.Contains(r.stderr, "successfully opened") || !strings.Contains(r.stderr, "chos: "+c.message) {
						t.Errorf("want the session refused with %q:\n%s", c.message, r)
					}
				}
			})
		}
	}
}

// pamFileWith is a copy of the host's /etc/pam.d/NAME with lines added,
// to be bound over the original in a private mount namespace (withBinds).
func pamFileWith(t testing.TB, name string, lines ...string) [2]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(pamDir, name))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(h.base, "pam-binds")
	must(t, os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, name+"-"+randHex(4))
	must(t, writeRootFile(path, string(data)+strings.Join(lines, "\n")+"\n", 0o644))
	t.Cleanup(func() { os.Remove(path) })
	return [2]string{path, filepath.Join(pamDir, name)}
}

// su -l, su -l -c and login -f, with the module last in their session
// stacks, land in the user's tree; $CHOS in su's environment selects.
func TestPamSessionPlacesSuAndLogin(t *testing.T) {
	suL := [][2]string{pamFileWith(t, "su-l", pamChos(t))}
	login := [][2]string{pamFileWith(t, "login", pamChos(t))}
	setDotfile(t, "two\n")
	const cmd = `sed -n 's/^ID=/osid:/p' /etc/os-release; echo "tree:$CHOS"`
	for _, c := range []struct {
		name     string
		c        call
		id, chos string
	}{
		{"su -l -c", call{Root: true, Args: withBinds(suL, "su", "-l", h.user, "-c", cmd)}, h.osIDs["two"], "two"},
		{"CHOS=three su -l -c", call{Root: true, Env: []string{"CHOS=three"}, Args: withBinds(suL, "su", "-l", h.user, "-c", cmd)}, h.osIDs["three"], "three"},
		{"control: su -l -c without the module", call{Root: true, Args: []string{"su", "-l", h.user, "-c", cmd}}, h.hostOSRelease["ID"], ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, c.c)
			if !wantStatus(t, r, 0) {
				return
			}
			if id, tree := whereShown(r.stdout); id != c.id || tree != c.chos {
				t.Errorf("the command ran in ID=%s with CHOS=%q, want ID=%s, CHOS=%q:\n%s", id, tree, c.id, c.chos, r)
			}
		})
	}
	for _, c := range []struct {
		name string
		argv []string
	}{
		{"su -l", withBinds(suL, "su", "-l", h.user)},
		{"login -f", withBinds(login, "login", "-f", h.user)},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep, ok := probeLogin(t, startPTY(t, call{Root: true, Args: c.argv}))
			if ok && (rep.id != h.osIDs["two"] || rep.chos != "two") {
				t.Errorf("the login shell runs in ID=%s with CHOS=%q, want tree two", rep.id, rep.chos)
			}
		})
	}
}

// The module in sshd's own session stack places ssh logins by ~/.chos
// (the client's $CHOS arrives after the session opened).
func TestPamSessionPlacesSSHLogins(t *testing.T) {
	setDotfile(t, "two\n")
	s := sshdFor(t, sshdOptions{PAMService: pamService(t, "@include sshd", pamChos(t))})
	r := s.sshWith(t, []string{"CHOS=three"}, "cat /etc/os-release")
	if wantStatus(t, r, 0) && osID(r.stdout) != h.osIDs["two"] {
		t.Errorf("the ssh login is in ID=%s, want tree two (~/.chos):\n%s", osID(r.stdout), r)
	}
	// control: without the module, the host
	s = sshdFor(t, sshdOptions{PAMService: pamService(t, "@include sshd")})
	r = s.sshWith(t, nil, "cat /etc/os-release")
	if wantStatus(t, r, 0) && osID(r.stdout) != h.hostOSRelease["ID"] {
		t.Errorf("the ssh login without the module is in ID=%s, want the host:\n%s", osID(r.stdout), r)
	}
}

// Sessions enter cached views: after many, the host's mount table has
// gained only the cache (at most one namespace per tree: a view rebuilt
// because another run's useradd replaced /etc/passwd replaces the old
// one), and `chos cache drop` makes it as it was.
func TestPamSessionsLeaveHostMountTableAlone(t *testing.T) {
	clearDotfile(t)
	svc := pamService(t, pamChos(t), "session optional pam_exec.so stdout "+where(t))
	trees := []string{"one", "two", "three"}
	emptyCache(t)
	before := readMountinfo(t)
	start := time.Now()
	for i := 0; i < 50; i++ {
		tree := trees[i%len(trees)]
		r := pamtesterAs(t, svc, h.user, []string{"-ECHOS=" + tree}, nil)
		if id, _ := whereShown(r.stdout); !wantStatus(t, r, 0) || id != h.osIDs[tree] {
			t.Fatalf("session %d is in ID=%s, want tree %s:\n%s", i, id, tree, r)
		}
	}
	t.Logf("50 sessions in %v", time.Since(start).Round(time.Millisecond))
	gone, added := lineDiff(before, readMountinfo(t))
	pins := 0
	for _, l := range added {
		switch {
		case !strings.Contains(l, " "+h.cacheDir+" ") && !strings.Contains(l, " "+h.cacheDir+"/"):
			t.Errorf("a mount outside the cache appeared on the host: %s", l)
		case strings.Contains(l, " - nsfs "):
			pins++
		}
	}
	if len(gone) > 0 || pins > len(trees) {
		t.Errorf("the host's mount table lost %q, and has %d cached namespaces for %d trees:\n%s", gone, pins, len(trees), strings.Join(added, "\n"))
	}
	emptyCache(t)
	if gone, added := lineDiff(before, readMountinfo(t)); len(gone)+len(added) > 0 {
		t.Errorf("after chos cache drop the host's mount table differs:\ngone: %q\nnew: %q", gone, added)
	}

	// control: a mount made on the host shows in the comparison
	dir := t.TempDir()
	out, err := runSetup(10*time.Second, "/", "mount", "-t", "tmpfs", "chos-itest", dir)
	if err != nil {
		t.Fatalf("mount: %v\n%s", err, out)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) }) // (if the test stops before its umount)
	_, added = lineDiff(before, readMountinfo(t))
	if _, err := runSetup(10*time.Second, "/", "umount", dir); err != nil {
		t.Errorf("umount %s: %v", dir, err)
	}
	if len(added) != 1 {
		t.Errorf("a new tmpfs on the host changed the table by %q, want one line", added)
	}
}
