package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// 18. local is the host; chos current tells where a process runs, from its
// mount namespace, not from $CHOS.
func TestLocalRunsOnHost(t *testing.T) {
	for _, name := range []string{"local", "root"} {
		t.Run(name, func(t *testing.T) {
			r := chos(t, "exec", name, "cat", "/etc/os-release")
			wantOSID(t, r, h.hostOSRelease["ID"])
		})
	}
	// really the host: the base directory is visible
	r := chos(t, "exec", "local", "ls", "-d", h.base)
	wantStatus(t, r, 0)
}

// 19. chos run from inside a tree switches to another tree, or to the host.
func TestSwitchTreesFromInsideTree(t *testing.T) {
	cases := []struct {
		name string
		c    call
		id   string
	}{
		{"one to two", chosCall("exec", "one", "chos", "exec", "two", "cat", "/etc/os-release"), "chostwo"},
		{"one to local", chosCall("exec", "one", "chos", "exec", "local", "cat", "/etc/os-release"), h.hostOSRelease["ID"]},
		{"one to one", chosCall("exec", "one", "chos", "exec", "one", "cat", "/etc/os-release"), "chosone"},
		{"one to two legacy $CHOS", chosCall("exec", "one", "sh", "-c", "CHOS=two chos cat /etc/os-release"), "chostwo"},
		{"one to two to three", chosCall("exec", "one", "chos", "exec", "two", "chos", "exec", "three", "cat", "/etc/os-release"), "chosthree"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantOSID(t, run(t, c.c), c.id)
		})
	}
	t.Run("current after switch", func(t *testing.T) {
		r := chos(t, "exec", "one", "chos", "exec", "two", "chos", "current")
		wantStatus(t, r, 0)
		if got := strings.TrimSpace(r.stdout); got != "two" {
			t.Errorf("chos current after switching from one to two: %q:\n%s", got, r)
		}
		// on the host chos is not on PATH (it is not installed in PATH here)
		r = chos(t, "exec", "one", "chos", "exec", "local", h.chos, "current")
		wantStatus(t, r, 0)
		if got := strings.TrimSpace(r.stdout); got != "local" {
			t.Errorf("chos current after switching from one to local: %q:\n%s", got, r)
		}
	})
	for _, q := range []struct{ name, flag string }{{"uid", "-u"}, {"gid", "-g"}} {
		t.Run(q.name+" after switch", func(t *testing.T) {
			host := run(t, call{Args: []string{"id", q.flag}})
			for _, to := range []string{"two", "local"} {
				r := chos(t, "exec", "one", "chos", "exec", to, "id", q.flag)
				wantStatus(t, r, 0)
				if r.stdout != host.stdout {
					t.Errorf("id %s after switching from one to %s: %q, on the host %q", q.flag, to, r.stdout, host.stdout)
				}
			}
		})
	}
	// Switching from inside a tree runs in a user namespace of the user's own
	// (README: "Switching trees from inside a tree"): supplementary groups
	// show as the overflow group and other users' files as nobody, but the
	// kernel still checks access with the real groups.
	t.Run("groups after switch still grant access", func(t *testing.T) {
		secret := filepath.Join(h.base, "groupsecret-"+unique(t))
		if err := os.WriteFile(secret, []byte("group-only\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(secret)
		if err := os.Chown(secret, 0, h.extraGIDs[0]); err != nil {
			t.Fatal(err)
		}
		hostSecret := filepath.Join("/.chos/host", secret)
		for _, to := range []string{"two", "local"} {
			r := chos(t, "exec", "one", "chos", "exec", to, "sh", "-c", "id -G; cat "+hostSecret+" 2>/dev/null || cat "+secret)
			wantStatus(t, r, 0)
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			if len(lines) != 2 || lines[1] != "group-only" {
				t.Errorf("after switching from one to %s, a file readable only by supplementary group %d: %q", to, h.extraGIDs[0], r.stdout)
				continue
			}
			want := []string{strconv.Itoa(h.gid)}
			for range h.extraGIDs {
				want = append(want, "65534")
			}
			if !sameSet(strings.Fields(lines[0]), want) {
				t.Errorf("id -G after switching from one to %s: %q, want %v (the overflow group for unmapped groups)", to, lines[0], want)
			}
		}
	})
	t.Run("devices work after switch", func(t *testing.T) {
		for _, to := range []string{"two", "local"} {
			r := chos(t, "exec", "one", "chos", "exec", to, "sh", "-c", "echo x > /dev/null && head -c 3 /dev/zero | wc -c")
			wantStatus(t, r, 0)
			if strings.TrimSpace(r.stdout) != "3" {
				t.Errorf("after switching from one to %s, /dev/null and /dev/zero: %q, stderr %q", to, r.stdout, r.stderr)
			}
		}
	})
	t.Run("file owners after switch", func(t *testing.T) {
		switched := chos(t, "exec", "one", "chos", "exec", "two", "stat", "-c", "%u:%g %n", "/etc/os-release", h.home)
		wantStatus(t, switched, 0)
		want := fmt.Sprintf("65534:65534 /etc/os-release\n%d:%d %s\n", h.uid, h.gid, h.home)
		if switched.stdout != want {
			t.Errorf("file owners after switching from one to two:\n%s\nwant (root's files as nobody, the user's own as theirs):\n%s", switched.stdout, want)
		}
	})
	t.Run("capabilities after switch", func(t *testing.T) {
		r := chos(t, "exec", "one", "chos", "exec", "two", "cat", "/proc/self/status")
		wantStatus(t, r, 0)
		st := procStatus(r.stdout)
		for _, f := range []string{"CapInh", "CapPrm", "CapEff", "CapAmb", "CapBnd"} {
			if !allZero(st[f]) {
				t.Errorf("after switching to two, %s is %q, want 0", f, st[f])
			}
		}
		if st["NoNewPrivs"] != "1" {
			t.Errorf("after switching to two, NoNewPrivs is %q, want 1", st["NoNewPrivs"])
		}
	})
	t.Run("status after switch", func(t *testing.T) {
		wantStatus(t, chos(t, "exec", "one", "chos", "exec", "two", "sh", "-c", "exit 42"), 42)
		wantStatus(t, shellRun(t, chosCall("exec", "one", "chos", "exec", "two", "sh", "-c", "kill -TERM $$")), 143)
		wantStatus(t, chos(t, "exec", "one", "chos", "exec", "chos-itest-nosuchtree", "true"), 125)
	})
}
