package trust

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// These cases hold for any uid: the host's /usr and / are root's, a test's
// temporary directory is either the user's or under world-writable /tmp.
func TestPathsOnlyRootCanChange(t *testing.T) {
	tmp := t.TempDir()
	if err := os.Symlink("/usr/bin", filepath.Join(tmp, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(tmp, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		check   func(string) error
		path    string
		trusted bool
		fault   string // the component the refusal must name
	}{
		{"root's file", CheckPath, "/usr/bin/env", true, ""},
		{"root's directory", CheckParents, "/usr/bin", true, ""},
		{"dot-dot within root's directories", CheckPath, "/usr/bin/../bin/env", true, ""},
		{"world-writable directory as the bind source itself", CheckParents, "/tmp", true, ""},
		{"control: the same directory as a file root acts on", CheckPath, "/tmp", false, "/tmp"},
		{"below a directory others can write to", CheckParents, filepath.Join(tmp, "dir", "x"), false, ""},
		{"link in a directory others can change", CheckParents, filepath.Join(tmp, "link", "env"), false, ""},
		{"dot-dot does not escape the check", CheckParents, filepath.Join(tmp, "dir", "..", "dir", "x"), false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.check(c.path)
			if c.trusted && err != nil {
				t.Errorf("%s: %v, want trusted", c.path, err)
			}
			if !c.trusted && !IsUntrusted(err) {
				t.Errorf("%s: %v, want a refusal", c.path, err)
			}
			if c.fault != "" && (err == nil || !strings.Contains(err.Error(), c.fault+" is ")) {
				t.Errorf("refusal %v does not name %s", err, c.fault)
			}
		})
	}
}

func TestLinksAreFollowedStepByStep(t *testing.T) {
	// /bin is a link on merged-/usr systems and a directory elsewhere:
	// either way the resolved path is root's.
	if err := CheckPath("/bin/sh"); err != nil {
		t.Errorf("/bin/sh: %v", err)
	}
	loop := filepath.Join(t.TempDir(), "loop")
	os.Symlink(loop, loop)
	if err := CheckParents(loop + "/x"); err == nil {
		t.Error("a link loop in an untrusted directory was accepted")
	}
	if err := CheckPath("relative/path"); err == nil {
		t.Error("a relative path was accepted")
	}
}
