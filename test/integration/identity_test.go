package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// 4. In setuid mode the command has the caller's exact supplementary
// groups (uid and gid, shared with userns mode, are in TestBothModes).
func TestSetuidModeKeepsExactGroups(t *testing.T) {
	host := run(t, call{Args: []string{"id", "-G"}})
	wantStatus(t, host, 0)
	in := chos(t, "exec", "one", "id", "-G")
	wantStatus(t, in, 0)
	if hostSet, inSet := strings.Fields(host.stdout), strings.Fields(in.stdout); len(hostSet) == 0 || !sameSet(hostSet, inSet) {
		t.Errorf("id -G: host %q, tree %q", host.stdout, in.stdout)
	}
	// The group set is the user's full set, not trivially one group: the
	// test could not see lost groups otherwise.
	want := []string{strconv.Itoa(h.gid)}
	for _, g := range h.extraGIDs {
		want = append(want, strconv.Itoa(g))
	}
	if !sameSet(strings.Fields(in.stdout), want) {
		t.Errorf("groups in tree one %q, want the set %q", in.stdout, want)
	}
	// and the kernel grants what they grant: a file only the second
	// supplementary group may read
	secret := filepath.Join(h.tmp, "groupsecret-"+unique(t))
	must(t, os.WriteFile(secret, []byte("group-only\n"), 0o640))
	t.Cleanup(func() { os.Remove(secret) })
	must(t, os.Chown(secret, 0, h.extraGIDs[1]))
	r := chos(t, "exec", "one", "cat", secret)
	if r.status != 0 || r.stdout != "group-only\n" {
		t.Errorf("a file readable by supplementary group %d only:\n%s", h.extraGIDs[1], r)
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
