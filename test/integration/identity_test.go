package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// 4. Inside a tree the command has the caller's uid, gid and groups.
func TestExecKeepsCallerUIDGIDAndGroups(t *testing.T) {
	for _, q := range []struct{ name, flag string }{{"uid", "-u"}, {"gid", "-g"}, {"groups", "-G"}} {
		t.Run(q.name, func(t *testing.T) {
			host := run(t, call{Args: []string{"id", q.flag}})
			wantStatus(t, host, 0)
			in := chos(t, "exec", "one", "id", q.flag)
			wantStatus(t, in, 0)
			hostSet, inSet := strings.Fields(host.stdout), strings.Fields(in.stdout)
			if len(hostSet) == 0 || !sameSet(hostSet, inSet) {
				t.Errorf("id %s: host %q, tree %q", q.flag, host.stdout, in.stdout)
			}
		})
	}
	// The group set is the user's full set, not trivially one group: the
	// test could not see lost groups otherwise.
	in := chos(t, "exec", "one", "id", "-G")
	want := []string{strconv.Itoa(h.gid)}
	for _, g := range h.extraGIDs {
		want = append(want, strconv.Itoa(g))
	}
	if !sameSet(strings.Fields(in.stdout), want) {
		t.Errorf("groups in tree one %q, want the set %q", in.stdout, want)
	}
	if got := strings.TrimSpace(chos(t, "exec", "one", "id", "-u").stdout); got != strconv.Itoa(h.uid) {
		t.Errorf("uid in tree one %q, want %d", got, h.uid)
	}
	// real, effective, saved and filesystem ids are all the user's
	r := chos(t, "exec", "one", "cat", "/proc/self/status")
	st := procStatus(r.stdout)
	for _, k := range []string{"Uid", "Gid"} {
		want := strconv.Itoa(h.uid)
		if k == "Gid" {
			want = strconv.Itoa(h.gid)
		}
		for i, v := range strings.Fields(st[k]) {
			if v != want {
				t.Errorf("%s field %d (real/effective/saved/fs) is %s, want %s: %q", k, i, v, want, st[k])
			}
		}
		if len(strings.Fields(st[k])) != 4 {
			t.Errorf("cannot read %s from /proc/self/status:\n%s", k, r)
		}
	}
}

// 5. No capability in any set, and no_new_privs, inside a tree.
func TestExecDropsAllCapabilities(t *testing.T) {
	fields := []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}
	// On the host the same user has a full bounding set and no
	// no_new_privs: what the tree must take away.
	host := procStatus(run(t, call{Args: []string{"cat", "/proc/self/status"}}).stdout)
	if host["CapBnd"] == "" || allZero(host["CapBnd"]) || host["NoNewPrivs"] != "0" {
		t.Fatalf("control: on the host the user has CapBnd %q and NoNewPrivs %q; the test cannot fail", host["CapBnd"], host["NoNewPrivs"])
	}
	for _, tree := range []string{"one", "two"} {
		t.Run(tree, func(t *testing.T) {
			r := chos(t, "exec", tree, "cat", "/proc/self/status")
			wantStatus(t, r, 0)
			st := procStatus(r.stdout)
			for _, f := range fields {
				if v, ok := st[f]; !ok || !allZero(v) {
					t.Errorf("%s is %q, want 0", f, v)
				}
			}
			if st["NoNewPrivs"] != "1" {
				t.Errorf("NoNewPrivs is %q, want 1", st["NoNewPrivs"])
			}
		})
	}
}

func procStatus(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func allZero(hex string) bool {
	return hex != "" && strings.Trim(hex, "0") == ""
}

// 6. A setuid-root program in a tree gives no root.
func TestSetuidRootBinaryInTreeDoesNotGiveRoot(t *testing.T) {
	bin := buildEuid(t, t.TempDir())

	// Control: the same program, setuid root on the host, does give root
	// to the same user; so a tree that let it work would fail the test.
	hostDir := filepath.Join(h.base, "hostbin")
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(hostDir) })
	hostBin := filepath.Join(hostDir, "euid")
	copyFile(t, bin, hostBin, os.ModeSetuid|0o755)
	r := run(t, call{Args: []string{hostBin}})
	wantStatus(t, r, 0)
	if got := strings.TrimSpace(r.stdout); got != "0" {
		fi, _ := os.Stat(hostBin)
		t.Fatalf("control: setuid-root euid (%v) on the host printed %q as the user, want 0; the test cannot fail", fi.Mode(), got)
	}

	// In tree one, at /opt/euid/euid.
	optDir := filepath.Join(h.trees["one"], "opt")
	if _, err := os.Lstat(optDir); err == nil {
		t.Fatalf("%s exists already", optDir)
	}
	if err := os.MkdirAll(filepath.Join(optDir, "euid"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(optDir) })
	copyFile(t, bin, filepath.Join(optDir, "euid", "euid"), os.ModeSetuid|0o755)
	fi, err := os.Stat(filepath.Join(optDir, "euid", "euid"))
	if err != nil || fi.Mode()&os.ModeSetuid == 0 {
		t.Fatalf("the tree's copy is not setuid: %v %v", fi.Mode(), err)
	}

	for _, form := range []struct {
		name string
		argv []string
	}{
		{"exec", []string{h.chos, "exec", "one", "/opt/euid/euid"}},
		{"from a shell", []string{h.chos, "exec", "one", "sh", "-c", "/opt/euid/euid"}},
	} {
		t.Run(form.name, func(t *testing.T) {
			r := run(t, call{Args: form.argv})
			wantStatus(t, r, 0)
			if got := strings.TrimSpace(r.stdout); got != strconv.Itoa(h.uid) {
				t.Errorf("setuid-root euid in tree one printed %q, want the user's uid %d:\n%s", got, h.uid, r)
			}
		})
	}
}
