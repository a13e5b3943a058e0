package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The hidden entry point of the user-namespace child executes a plan read
// from fd 3. Called directly on the setuid binary it would act as root on a
// plan the user wrote: it must refuse, and nothing of the plan may happen.
func TestUserNamespaceChildEntryIsRefusedWhenSetuid(t *testing.T) {
	marker := filepath.Join(h.base, "evil-"+unique(t))
	plan := `{"Tree":"local","Host":true,"Creds":{"UID":0,"GID":0,"KeepCaps":true},"Dir":"/",` +
		`"Path":"/bin/sh","Argv":["sh","-c","id -u; touch ` + marker + `"],"Env":["PATH=/usr/bin:/bin"]}`
	planFile := filepath.Join(h.home, "plan-"+unique(t)+".json")
	writeUserFile(t, planFile, plan, 0o644)
	defer os.Remove(planFile)

	r := run(t, call{Args: []string{"sh", "-c", "exec 3<" + planFile + "; exec " + h.chos + " __chos_userns_child"}})
	wantStatus(t, r, 125)
	if !strings.Contains(r.stderr, "refusing") {
		t.Errorf("stderr does not say it refuses: %q", r.stderr)
	}
	if strings.TrimSpace(r.stdout) == "0" {
		t.Errorf("the plan ran as root: %q", r.stdout)
	}
	if _, err := os.Stat(marker); err == nil {
		os.Remove(marker)
		t.Errorf("the plan's command ran: %s was created", marker)
	}

	// Control: root running the same entry point directly is not refused
	// for being setuid, so the test can tell refusal from a broken plan.
	r = run(t, call{Root: true, Args: []string{"sh", "-c", "exec 3<" + planFile + "; exec " + h.chos + " __chos_userns_child"}})
	if !strings.Contains(r.stderr, "not in a user namespace of one's own") {
		t.Errorf("root on the host: want the user-namespace refusal, got status %d, %q", r.status, r.stderr)
	}
}

// A tree that has become changeable by someone other than root is refused
// by every launch, one that would enter its cached view included, with a
// line naming the tree (the view's key stamps the tree by device and
// inode, not by owner and mode). The control: the same launch before.
func TestATreeNoLongerRootsIsRefusedEvenWithACachedView(t *testing.T) {
	emptyCache(t)
	tree := h.trees["one"]
	wantStatus(t, chos(t, "exec", "one", "true"), 0) // builds and caches the view
	fi, err := os.Stat(tree)
	must(t, err)
	must(t, os.Chmod(tree, 0o775))
	t.Cleanup(func() { os.Chmod(tree, fi.Mode().Perm()) })
	for _, args := range [][]string{{"exec", "one", "true"}, {"exec", "--fresh", "one", "true"}} {
		r := chos(t, args...)
		wantStatus(t, r, 125)
		if !strings.HasPrefix(r.stderr, "chos: tree one (") || !strings.Contains(r.stderr, "writable by group or others") {
			t.Errorf("want one line naming the tree:\n%s", r)
		}
	}
}
