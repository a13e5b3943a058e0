package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Directory users: accounts that only a non-files NSS source knows, as
// LDAP, sssd or NIS users are on a cluster. The source is Debian's
// libnss-extrausers (/var/lib/extrausers), switched on in the host's
// /etc/nsswitch.conf for the package's run and switched off again after,
// also after a failure or an interrupt. CGO_ENABLED=0 Go (os/user) and any
// program reading /etc/passwd see none of these users.

const (
	nsswitchConf  = "/etc/nsswitch.conf"
	extrausersDir = "/var/lib/extrausers"
)

// dirAccount is a directory user and the directory groups it is in.
type dirAccount struct {
	testUser
	groups []dirGroup // supplementary groups, all from the directory
}

type dirGroup struct {
	name string
	gid  int
}

// gidList is the user's supplementary gids, comma-separated (setpriv --groups).
func (a *dirAccount) gidList() string {
	var s []string
	for _, g := range a.groups {
		s = append(s, strconv.Itoa(g.gid))
	}
	return strings.Join(s, ",")
}

var (
	dirOnce  sync.Once
	dirUsers struct {
		alice, many *dirAccount
	}
	dirErr error
)

// directoryUser is a user known only to the directory, with two directory
// groups of its own.
func directoryUser(t testing.TB) *dirAccount {
	t.Helper()
	setupDirectory(t)
	return dirUsers.alice
}

// directoryUserWithManyGroups is a directory user in 200 directory groups.
func directoryUserWithManyGroups(t testing.TB) *dirAccount {
	t.Helper()
	setupDirectory(t)
	return dirUsers.many
}

func setupDirectory(t testing.TB) {
	t.Helper()
	dirOnce.Do(func() { dirErr = makeDirectory() })
	if dirErr != nil {
		t.Fatalf("setting up the directory (libnss-extrausers): %v", dirErr)
	}
}

// freeID finds n consecutive ids from base that no user or group has
// (files and extrausers both enumerate).
func freeID(base, n int) (int, error) {
	used := map[int]bool{}
	for _, db := range []string{"passwd", "group"} {
		out, err := exec.Command("getent", db).Output()
		if err != nil {
			return 0, fmt.Errorf("getent %s: %w", db, err)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Split(l, ":"); len(f) > 2 {
				if id, err := strconv.Atoi(f[2]); err == nil {
					used[id] = true
				}
			}
		}
	}
	for id := base; id < base+20000; id += 1000 {
		free := true
		for i := id; i < id+n && free; i++ {
			free = !used[i]
		}
		if free {
			return id, nil
		}
	}
	return 0, fmt.Errorf("no %d free ids from %d", n, base)
}

func makeDirectory() error {
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/libnss_extrausers.so.2"); err != nil {
		if _, err2 := os.Stat("/usr/lib/libnss_extrausers.so.2"); err2 != nil {
			return fmt.Errorf("libnss-extrausers is not installed (apt-get install libnss-extrausers): %v", err)
		}
	}
	// What is changed is put back at the end: registered before changing.
	origNS, err := os.ReadFile(nsswitchConf)
	if err != nil {
		return err
	}
	_, statErr := os.Stat(extrausersDir)
	dirExisted := statErr == nil
	saved := map[string][]byte{}
	for _, f := range []string{"passwd", "group", "shadow"} {
		if data, err := os.ReadFile(filepath.Join(extrausersDir, f)); err == nil {
			saved[f] = data
		}
	}
	if err := atExit(func() error {
		var errs []string
		if err := writeRootFile(nsswitchConf, string(origNS), 0o644); err != nil {
			errs = append(errs, err.Error())
		}
		for _, f := range []string{"passwd", "group", "shadow"} {
			p := filepath.Join(extrausersDir, f)
			if data, ok := saved[f]; ok {
				os.WriteFile(p, data, 0o644)
			} else {
				os.Remove(p)
			}
		}
		if !dirExisted {
			os.Remove(extrausersDir)
		}
		if data, _ := os.ReadFile(nsswitchConf); !bytes.Equal(data, origNS) {
			errs = append(errs, nsswitchConf+" is not as it was")
		}
		if len(errs) > 0 {
			return fmt.Errorf("restoring the name service: %s", strings.Join(errs, "; "))
		}
		return nil
	}); err != nil {
		return err
	}

	base, err := freeID(61000, 300)
	if err != nil {
		return err
	}
	tag := randHex(2)
	var passwd, group, shadow strings.Builder
	mk := func(name string, uid int, ngroups int) *dirAccount {
		a := &dirAccount{testUser: testUser{name: name, group: name, home: "/home/" + name, uid: uid, gid: uid}}
		fmt.Fprintf(&passwd, "%s:x:%d:%d:chos directory user:%s:/bin/sh\n", name, uid, uid, a.home)
		fmt.Fprintf(&shadow, "%s:*:19000:0:99999:7:::\n", name)
		fmt.Fprintf(&group, "%s:x:%d:\n", name, uid)
		return a
	}
	alice := mk("chosdir"+tag, base, 2)
	many := mk("chosmany"+tag, base+1, 200)
	// Directory groups: two for alice, 200 for many.
	next := base + 10
	for i := 0; i < 2; i++ {
		g := dirGroup{fmt.Sprintf("chosdg%s%d", tag, i), next}
		next++
		alice.groups = append(alice.groups, g)
		fmt.Fprintf(&group, "%s:x:%d:%s\n", g.name, g.gid, alice.name)
	}
	for i := 0; i < 200; i++ {
		g := dirGroup{fmt.Sprintf("chosmg%s%03d", tag, i), next}
		next++
		many.groups = append(many.groups, g)
		fmt.Fprintf(&group, "%s:x:%d:%s\n", g.name, g.gid, many.name)
	}
	if err := os.MkdirAll(extrausersDir, 0o755); err != nil {
		return err
	}
	for f, b := range map[string]*strings.Builder{"passwd": &passwd, "group": &group, "shadow": &shadow} {
		mode := os.FileMode(0o644)
		if f == "shadow" {
			mode = 0o640
		}
		if err := os.WriteFile(filepath.Join(extrausersDir, f), append(saved[f], b.String()...), mode); err != nil {
			return err
		}
	}
	// files first, as its README says: never before compat or files.
	var ns []string
	for _, line := range strings.Split(string(origNS), "\n") {
		k, v, ok := strings.Cut(line, ":")
		switch strings.TrimSpace(k) {
		case "passwd", "group", "shadow":
			if ok && !strings.Contains(v, "extrausers") {
				line = k + ":" + strings.TrimRight(v, " \t") + " extrausers"
			}
		}
		ns = append(ns, line)
	}
	if err := writeRootFile(nsswitchConf, strings.Join(ns, "\n"), 0o644); err != nil {
		return err
	}
	for _, a := range []*dirAccount{alice, many} {
		if err := os.MkdirAll(a.home, 0o755); err != nil {
			return err
		}
		home := a.home
		atExit(func() error { return os.RemoveAll(home) })
		if err := os.Chown(a.home, a.uid, a.gid); err != nil {
			return err
		}
		// Control: glibc's NSS knows the user, the files do not.
		out, err := exec.Command("getent", "passwd", a.name).Output()
		if err != nil || !strings.HasPrefix(string(out), a.name+":") {
			return fmt.Errorf("getent does not find %s through extrausers: %v %q", a.name, err, out)
		}
		if data, _ := os.ReadFile("/etc/passwd"); strings.Contains(string(data), a.name) {
			return fmt.Errorf("%s is in /etc/passwd", a.name)
		}
	}
	dirUsers.alice, dirUsers.many = alice, many
	return nil
}

func syscallMkfifo(p string) error { return syscall.Mkfifo(p, 0o644) }
