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
