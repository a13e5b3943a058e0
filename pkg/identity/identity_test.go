package identity

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseEntries(t *testing.T) {
	cases := []struct {
		line string
		ok   bool
	}{
		{"alice:x:5001:5001:Alice A:/home/alice:/bin/bash", true},
		{"+nisuser::::::", false},
		{"-bob:x:1:1:::", false},
		{"short:x:1", false},
		{"neg:x:-1:1:::/bin/sh", false},
	}
	for _, c := range cases {
		if _, ok := parsePasswd(c.line); ok != c.ok {
			t.Errorf("parsePasswd(%q) ok = %v", c.line, ok)
		}
	}
	g, ok := parseGroup("ldapg:x:5002:alice,bob")
	if !ok || g.GID != 5002 || !reflect.DeepEqual(g.Members, []string{"alice", "bob"}) {
		t.Errorf("parseGroup = %+v %v", g, ok)
	}
	if g, ok := parseGroup("empty:x:7:"); !ok || g.Members != nil {
		t.Errorf("a group without members: %+v %v", g, ok)
	}
}

func TestFilesComeFirstOnlyWhereNSSwitchSaysSo(t *testing.T) {
	dir := t.TempDir()
	ns := filepath.Join(dir, "nsswitch.conf")
	os.WriteFile(ns, []byte("# x\npasswd:   files extrausers # local first\ngroup: sss files\n"), 0o644)
	r := &Resolver{NSSwitch: ns}
	if !r.filesFirst("passwd") || r.filesFirst("group") {
		t.Errorf("passwd files first %v (want true), group %v (want false)", r.filesFirst("passwd"), r.filesFirst("group"))
	}
	r.NSSwitch = filepath.Join(dir, "none")
	if !r.filesFirst("passwd") {
		t.Error("without nsswitch.conf glibc reads the files first")
	}
}

func TestFilesAnswerLocalUsersWithoutRunningAnything(t *testing.T) {
	dir := t.TempDir()
	pw, gr := filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	os.WriteFile(pw, []byte("root:x:0:0:root:/root:/bin/bash\nlocal:x:1000:1000::/home/local:/bin/sh\n"), 0o644)
	os.WriteFile(gr, []byte("root:x:0:\nlocal:x:1000:\nproj:x:2000:local\n"), 0o644)
	r := &Resolver{Passwd: pw, Group: gr, NSSwitch: filepath.Join(dir, "none"), Getent: filepath.Join(dir, "no-getent")}
	u, src, err := r.UserByID(1000)
	if err != nil || u.Name != "local" || u.Home != "/home/local" || src != FromFiles {
		t.Errorf("UserByID(1000) = %+v %s %v", u, src, err)
	}
	if g, _, err := r.GroupByName("proj"); err != nil || g.GID != 2000 {
		t.Errorf("GroupByName(proj) = %+v %v", g, err)
	}
	gs, err := r.GroupsByID([]int{0, 2000})
	if err != nil || gs[2000].Name != "proj" || gs[0].Name != "root" {
		t.Errorf("GroupsByID = %+v %v", gs, err)
	}
	// Control: an unknown uid is not found (the fake getent cannot run).
	if _, _, err := r.UserByID(4242); err == nil {
		t.Error("uid 4242 was found")
	}
	if _, _, err := r.UserByName("-x"); err == nil {
		t.Error("a name like an option was looked up")
	}
}

func TestLayerAddsOnlyTheCallerAndTheirGroups(t *testing.T) {
	base := []byte("root:x:0:0:root:/root:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/sh\n")
	baseGroup := []byte("root:x:0:\nusers:x:100:bob\n")
	u := User{Name: "alice", UID: 5001, GID: 5001, Home: "/home/alice", Shell: "/bin/bash"}
	lack := Lacking(base, baseGroup, 5001, []int{5001, 5002, 100})
	if !lack.UID || !reflect.DeepEqual(lack.Gids, []int{5001, 5002}) {
		t.Fatalf("lack = %+v", lack)
	}
	groups := []Group{{Name: "alice", GID: 5001}, {Name: "ldapg", GID: 5002, Members: []string{"alice", "carol"}}}
	pw, gr := lack.Lines(u, groups)
	if want := []string{"alice:x:5001:5001::/home/alice:/bin/bash"}; !reflect.DeepEqual(pw, want) {
		t.Errorf("passwd lines %q, want %q", pw, want)
	}
	// carol, another member of ldapg, must not appear: her name is hers.
	if want := []string{"alice:x:5001:", "ldapg:x:5002:alice"}; !reflect.DeepEqual(gr, want) {
		t.Errorf("group lines %q, want %q", gr, want)
	}
	// Control: a user the files already have lacks nothing.
	if l := Lacking(base, baseGroup, 1001, []int{100}); !l.Empty() {
		t.Errorf("a local user lacks %+v", l)
	}
	// A name the files give to someone else is not given twice.
	l := Lacking([]byte("alice:x:1:1:::\n"), []byte("ldapg:x:9:\n"), 5001, []int{5002})
	if pw, gr := l.Lines(u, groups); len(pw)+len(gr) != 0 {
		t.Errorf("names taken by others were added: %q %q", pw, gr)
	}
	_ = strings.Join
}
