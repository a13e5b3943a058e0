package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Test-only PAM services: /etc/pam.d/chos-itest-RUN-N, removed after the
// test. /etc/pam.d is snapshotted before the first one is written and
// compared, byte for byte, by the package cleanups (which also run on
// SIGINT, and then first remove this run's leftover services).

const pamDir = "/etc/pam.d"

var pamFixture struct {
	once   sync.Once
	err    error
	prefix string // chos-itest-RUN-: this run's services
	before map[string]pamEntry

	mu     sync.Mutex
	closed bool // checked by the package cleanups: write no more
}

// pamEntry is what the snapshot keeps of one file of /etc/pam.d.
type pamEntry struct {
	mode     os.FileMode
	uid, gid uint32
	content  string // the link's target for a symbolic link
}

// pamService writes a PAM service with these lines for one test and
// returns its name (lowercase: Linux-PAM lowercases service names).
func pamService(t testing.TB, lines ...string) string {
	t.Helper()
	pamFixture.once.Do(func() {
		pamFixture.prefix = "chos-itest-" + randHex(3) + "-"
		if pamFixture.before, pamFixture.err = snapshotPamDir(); pamFixture.err == nil {
			pamFixture.err = atExit(checkPamDir)
		}
	})
	if pamFixture.err != nil {
		t.Fatalf("test PAM services: %v", pamFixture.err)
	}
	pamFixture.mu.Lock()
	defer pamFixture.mu.Unlock()
	if pamFixture.closed {
		t.Fatalf("test PAM services: %s was checked by the package cleanups (interrupted?)", pamDir)
	}
	name := pamFixture.prefix + randHex(4)
	path := filepath.Join(pamDir, name)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	must(t, err)
	t.Cleanup(func() {
		if err := os.Remove(path); err != nil {
			t.Errorf("removing the test PAM service: %v", err)
		}
	})
	_, err = f.WriteString("# chos integration test " + t.Name() + "\n" + strings.Join(lines, "\n") + "\n")
	must(t, err)
	must(t, f.Close())
	return name
}

func snapshotPamDir() (map[string]pamEntry, error) {
	ents, err := os.ReadDir(pamDir)
	if err != nil {
		return nil, err
	}
	snap := map[string]pamEntry{}
	for _, e := range ents {
		p := filepath.Join(pamDir, e.Name())
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		st := fi.Sys().(*syscall.Stat_t)
		pe := pamEntry{mode: fi.Mode(), uid: st.Uid, gid: st.Gid}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			pe.content, err = os.Readlink(p)
		case fi.Mode().IsRegular():
			var data []byte
			data, err = os.ReadFile(p)
			pe.content = string(data)
		}
		if err != nil {
			return nil, err
		}
		snap[e.Name()] = pe
	}
	return snap, nil
}

// checkPamDir removes this run's services still there (after SIGINT) and
// fails if /etc/pam.d differs from the snapshot. Services of other,
// concurrent runs (chos-itest-* with another run's prefix) are ignored.
func checkPamDir() error {
	pamFixture.mu.Lock()
	defer pamFixture.mu.Unlock()
	pamFixture.closed = true
	ents, _ := os.ReadDir(pamDir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), pamFixture.prefix) {
			os.Remove(filepath.Join(pamDir, e.Name()))
		}
	}
	after, err := snapshotPamDir()
	if err != nil {
		return err
	}
	var diffs []string
	for name, a := range after {
		b, ok := pamFixture.before[name]
		switch {
		case !ok && strings.HasPrefix(name, "chos-itest-"):
		case !ok:
			diffs = append(diffs, "added "+name)
		case a != b:
			diffs = append(diffs, "changed "+name)
		}
	}
	for name := range pamFixture.before {
		if _, ok := after[name]; !ok && !strings.HasPrefix(name, "chos-itest-") {
			diffs = append(diffs, "removed "+name)
		}
	}
	if len(diffs) > 0 {
		sort.Strings(diffs)
		return fmt.Errorf("%s is not as the tests found it: %s", pamDir, strings.Join(diffs, ", "))
	}
	return nil
}

// pamtester opens (and closes) a PAM session of service for the test
// user, as root.
func pamtester(t testing.TB, service string) result {
	t.Helper()
	return run(t, call{Root: true, Args: []string{"pamtester", service, h.user, "open_session", "close_session"}})
}

func TestPamtesterOpensSessionForTheUser(t *testing.T) {
	r := pamtester(t, pamService(t, "session optional pam_exec.so stdout /bin/echo hello"))
	if wantStatus(t, r, 0) && !strings.Contains(r.stdout, "hello\n") {
		t.Errorf("the session's pam_exec did not print hello:\n%s", r)
	}
	// control: a session a module refuses fails
	r = pamtester(t, pamService(t, "session requisite pam_deny.so"))
	if r.status == 0 || strings.Contains(r.stderr, "successfully opened") {
		t.Errorf("a session with pam_deny was opened:\n%s", r)
	}
}
