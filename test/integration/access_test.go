package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A tree restricted by `users =`/`groups =` refuses other users in every
// command that takes a tree (exec, select) and `chos list` says so, naming
// the lines of the rules (here a drop-in's), not the tree's %SHELLS line.
func TestRestrictedTreeIsRefusedListedAndNotSelectable(t *testing.T) {
	dropIn := filepath.Join(h.etc, "chos.d", unique(t)+".conf")
	t.Cleanup(func() { os.Remove(dropIn) })
	write := func(text string) {
		t.Helper()
		must(t, os.MkdirAll(filepath.Dir(dropIn), 0o755))
		must(t, writeRootFile(dropIn, text, 0o644))
	}
	listed := func() (status string, info map[string]any) {
		t.Helper()
		r := chos(t, "list")
		wantStatus(t, r, 0)
		for _, line := range strings.Split(r.stdout, "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "two" {
				status = line
			}
		}
		r = chos(t, "list", "--json")
		wantStatus(t, r, 0)
		var infos []map[string]any
		must(t, json.Unmarshal([]byte(r.stdout), &infos))
		for _, i := range infos {
			if i["name"] == "two" {
				info = i
			}
		}
		return status, info
	}
	clearDotfile(t)

	// the control: a rule that admits the user (by a supplementary group)
	write("# access\n%TREE two\nusers = root\ngroups = " + h.extraGroups[1] + "\n")
	wantOSID(t, chos(t, "exec", "two", "cat", "/etc/os-release"), "chostwo")
	if line, info := listed(); strings.Contains(line, "not for you") || info["allowed"] != true {
		t.Errorf("chos list refuses an admitted user:\n%s\n%v", line, info)
	}
	if r := chos(t, "check"); strings.Contains(r.stdout, "tree two access") {
		t.Errorf("chos check refuses an admitted user:\n%s", r)
	}
	wantStatus(t, chos(t, "select", "two"), 0)
	if r := chos(t, "select"); r.stdout != "two\n" || r.stderr != "" {
		t.Errorf("chos select shows an admitted selection as:\n%s", r)
	}
	clearDotfile(t)

	write("# access\n%TREE two\nusers = root\ngroups = nosuchgroup 4242\n")
	r := chos(t, "exec", "two", "true")
	wantStatus(t, r, 125)
	for _, want := range []string{"you may not use tree two (restricted to users root and groups nosuchgroup, 4242 by " + dropIn + ":3, " + dropIn + ":4)"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("refusal lacks %q:\n%s", want, r)
		}
	}
	if strings.Contains(r.stderr, h.config+":") {
		t.Errorf("refusal names the %%SHELLS line:\n%s", r)
	}

	line, info := listed()
	if !strings.Contains(line, "not for you (restricted to users root and groups nosuchgroup, 4242 by "+dropIn+":3") {
		t.Errorf("chos list does not mark tree two as not for the user:\n%s", line)
	}
	if info["allowed"] != false || !strings.Contains(info["restriction"].(string), dropIn+":4") {
		t.Errorf("chos list --json: %v", info)
	}

	if r := chos(t, "check"); !strings.Contains(r.stdout, "warn tree two access: not for you (restricted to users root and groups nosuchgroup, 4242 by "+dropIn+":3") {
		t.Errorf("chos check does not say tree two is not for the user:\n%s", r)
	}

	r = chos(t, "select", "two")
	wantStatus(t, r, 125)
	if !strings.Contains(r.stderr, "you may not use tree two") {
		t.Errorf("chos select of a forbidden tree:\n%s", r)
	}
	if _, err := os.Lstat(dotfilePath()); err == nil {
		t.Errorf("~/.chos was written for a forbidden tree")
	}

	// a selection made before the restriction: shown, with a note
	setDotfile(t, "two\n")
	r = chos(t, "select")
	wantStatus(t, r, 0)
	if r.stdout != "two\n" || !strings.Contains(r.stderr, "chos: note: you may not use tree two (restricted to") {
		t.Errorf("chos select shows a forbidden selection as:\n%s", r)
	}
}

// A tree the user cannot read (here, only root can) is refused to them, as
// their own path lookups would refuse it, in both modes and cached or not;
// the control is the same tree readable, and root.
func TestTreeTheUserCannotReadIsRefused(t *testing.T) {
	clearDotfile(t)
	tree := h.trees["three"]
	for _, m := range modes() {
		wantOSID(t, m.chos(t, "exec", "three", "cat", "/etc/os-release"), h.osIDs["three"])
	}
	must(t, os.Chmod(tree, 0o700))
	t.Cleanup(func() { os.Chmod(tree, 0o755) })
	for _, m := range modes() {
		for _, args := range [][]string{{"exec", "three", "true"}, {"exec", "--fresh", "three", "true"}} {
			r := m.chos(t, args...)
			wantStatus(t, r, 125)
			if !strings.Contains(r.stderr, "you may not read tree three ("+tree+": permission denied)") {
				t.Errorf("%s %q:\n%s", m.name, args, r)
			}
		}
	}
	wantOSID(t, run(t, call{Root: true, Args: []string{h.chos, "exec", "three", "cat", "/etc/os-release"}}), h.osIDs["three"])
}
