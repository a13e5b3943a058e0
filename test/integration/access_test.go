package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A tree restricted by `users =`/`groups =` refuses other users, naming
// the lines of the rules (here a drop-in's), not the tree's %SHELLS line.
func TestRefusalNamesTheAccessRuleLines(t *testing.T) {
	dropIn := filepath.Join(h.etc, "chos.d", unique(t)+".conf")
	t.Cleanup(func() { os.Remove(dropIn) })
	write := func(text string) {
		t.Helper()
		must(t, os.MkdirAll(filepath.Dir(dropIn), 0o755))
		must(t, writeRootFile(dropIn, text, 0o644))
	}

	// the control: a rule that admits the user (by a supplementary group)
	write("# access\n%TREE two\nusers = root\ngroups = " + h.extraGroups[1] + "\n")
	wantOSID(t, chos(t, "exec", "two", "cat", "/etc/os-release"), "chostwo")

	write("# access\n%TREE two\nusers = root\ngroups = nosuchgroup 4242\n")
	r := chos(t, "exec", "two", "true")
	wantStatus(t, r, 125)
	for _, want := range []string{"you may not use tree two", dropIn + ":3", dropIn + ":4"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("refusal lacks %q:\n%s", want, r)
		}
	}
	if strings.Contains(r.stderr, h.config+":") {
		t.Errorf("refusal names the %%SHELLS line:\n%s", r)
	}
}
