package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// 22. chos check passes on a good installation and names a broken tree.
func TestCheckPassesOnGoodInstallation(t *testing.T) {
	for _, who := range []string{"user", "root", "user inside a tree"} {
		t.Run(who, func(t *testing.T) {
			c := chosCall("check")
			if who == "user inside a tree" {
				c = chosCall("exec", "two", "chos", "check")
			}
			c.Root = who == "root"
			r := run(t, c)
			wantStatus(t, r, 0)
			checkLines(t, r, "ok   ", "warn ")
			for _, name := range []string{"one", "two", "three"} {
				if !strings.Contains(r.stdout, "ok   tree "+name+":") {
					t.Errorf("no ok line for tree %s:\n%s", name, r)
				}
			}
		})
	}
}

func TestCheckFailsOnMissingTree(t *testing.T) {
	gone, path := addGoneTree(t)
	r := chos(t, "check")
	wantStatus(t, r, 1)
	checkLines(t, r, "ok   ", "warn ", "FAIL ")
	var fails []string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "FAIL") {
			fails = append(fails, l)
		}
	}
	if len(fails) == 0 {
		t.Fatalf("no FAIL line:\n%s", r)
	}
	named := false
	for _, l := range fails {
		if strings.Contains(l, "tree "+gone) {
			named = true
		} else {
			t.Errorf("FAIL line about something else than the missing tree: %q", l)
		}
	}
	if !named {
		t.Errorf("no FAIL line names tree %s (%s):\n%s", gone, path, r)
	}
	// chos check NAME checks only that tree
	wantStatus(t, chos(t, "check", "one"), 0)
	wantStatus(t, chos(t, "check", gone), 1)
}

// checkLines checks that every line of r's stdout starts with one of prefixes.
func checkLines(t testing.TB, r result, prefixes ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) < 3 {
		t.Errorf("chos check printed almost nothing:\n%s", r)
	}
	for _, l := range lines {
		ok := false
		for _, p := range prefixes {
			ok = ok || strings.HasPrefix(l, p)
		}
		if !ok {
			t.Errorf("unexpected line %q (want only %q):\n%s", l, prefixes, r)
		}
	}
}

type listEntry struct {
	Name        string   `json:"name"`
	Aliases     []string `json:"aliases"`
	Path        string   `json:"path"`
	OS          string   `json:"os"`
	Usable      bool     `json:"usable"`
	Problem     string   `json:"problem"`
	Default     bool     `json:"default"`
	Current     bool     `json:"current"`
	Description string   `json:"description"`
	Personal    bool     `json:"personal"`
}

func listJSON(t testing.TB, c call) map[string]listEntry {
	t.Helper()
	r := run(t, c)
	if !wantStatus(t, r, 0) {
		return nil
	}
	var entries []listEntry
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
		t.Fatalf("chos list --json is not a JSON array of trees: %v\n%s", err, r)
	}
	m := map[string]listEntry{}
	for _, e := range entries {
		if _, dup := m[e.Name]; dup {
			t.Errorf("tree %s listed twice", e.Name)
		}
		m[e.Name] = e
	}
	return m
}

func TestListJSONDescribesTrees(t *testing.T) {
	clearDotfile(t)
	trees := listJSON(t, chosCall("list", "--json"))
	want := map[string]struct{ path, os string }{
		"one":   {h.trees["one"], h.osNames["one"]},
		"two":   {h.trees["two"], h.osNames["two"]},
		"three": {h.trees["three"], h.osNames["three"]},
		"local": {"/", h.hostOSRelease["PRETTY_NAME"]},
	}
	if len(trees) != len(want) {
		t.Errorf("listed %d trees, want %d (one two three local)", len(trees), len(want))
	}
	for name, w := range want {
		e, ok := trees[name]
		if !ok {
			t.Errorf("tree %s not listed", name)
			continue
		}
		if e.Path != w.path || e.OS != w.os || !e.Usable {
			t.Errorf("tree %s: %+v, want path %q os %q usable", name, e, w.path, w.os)
		}
	}
	if !contains(trees["one"].Aliases, "default") {
		t.Errorf("tree one's aliases %q lack default", trees["one"].Aliases)
	}
	wantMarks(t, trees, "default", "one")
	wantMarks(t, trees, "current", "local")

	// the user's own choice is their default
	setDotfile(t, "two\n")
	trees = listJSON(t, chosCall("list", "--json"))
	wantMarks(t, trees, "default", "two")

	// inside a tree, it is the current one
	trees = listJSON(t, chosCall("exec", "three", "chos", "list", "--json"))
	wantMarks(t, trees, "current", "three")
	if e := trees["one"]; e.OS != h.osNames["one"] || !e.Usable {
		t.Errorf("inside tree three, tree one is listed as %+v", e)
	}

	// a missing tree is listed as unusable
	gone, _ := addGoneTree(t)
	trees = listJSON(t, chosCall("list", "--json"))
	if e, ok := trees[gone]; !ok || e.Usable || e.Problem == "" {
		t.Errorf("tree %s whose path is missing: %+v (listed %v)", gone, e, ok)
	}

	// the text form lists them too
	r := chos(t, "list")
	wantStatus(t, r, 0)
	for _, name := range []string{"one", "two", "three", "local", gone} {
		if !strings.Contains(r.stdout, name) {
			t.Errorf("chos list does not show %s:\n%s", name, r)
		}
	}
}

// wantMarks checks that exactly the tree want has the mark default or current.
func wantMarks(t testing.TB, trees map[string]listEntry, mark, want string) {
	t.Helper()
	var marked []string
	for name, e := range trees {
		if (mark == "default" && e.Default) || (mark == "current" && e.Current) {
			marked = append(marked, name)
		}
	}
	if len(marked) != 1 || marked[0] != want {
		t.Errorf("trees marked %s: %q, want just %q", mark, marked, want)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestVersionExitsZero(t *testing.T) {
	r := chos(t, "--version")
	wantStatus(t, r, 0)
	if strings.TrimSpace(r.stdout) == "" {
		t.Errorf("chos --version printed nothing:\n%s", r)
	}
}

func TestHelpAndUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want int
		text string // in stdout
	}{
		{[]string{"--help"}, 0, "exec"},
		{[]string{"help"}, 0, "exec"},
		{[]string{"help", "exec"}, 0, "exec"},
		{[]string{"exec", "--help"}, 0, "exec"},
		{[]string{"exec", "-h"}, 0, "exec"},
		{[]string{"select", "--help"}, 0, "select"},
		{[]string{"exec"}, 2, ""},
		{[]string{"exec", "one"}, 2, ""},
		{[]string{"exec", "--"}, 2, ""},
		{[]string{"--no-such-option"}, 2, ""},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := chos(t, c.args...)
			wantStatus(t, r, c.want)
			if c.text != "" && !strings.Contains(r.stdout, c.text) {
				t.Errorf("no help text about %s:\n%s", c.text, r)
			}
		})
	}
}

// A tree the setuid chos would refuse (a directory above it writable by
// group) is listed as unusable and fails chos check, naming the directory;
// the control is the same tree with that directory restored.
func TestTreeUnderAWritableDirectoryIsListedUnusable(t *testing.T) {
	clearDotfile(t)
	dir := filepath.Join(h.base, "trees")
	if e := listJSON(t, chosCall("list", "--json"))["one"]; !e.Usable {
		t.Fatalf("control: tree one is unusable before the change: %+v", e)
	}
	must(t, os.Chmod(dir, 0o775))
	t.Cleanup(func() { os.Chmod(dir, 0o755) })

	e := listJSON(t, chosCall("list", "--json"))["one"]
	if e.Usable || !strings.Contains(e.Problem, dir+" is writable by group or others") {
		t.Errorf("tree one under a group-writable %s is listed as %+v", dir, e)
	}
	r := chos(t, "check")
	wantStatus(t, r, 1)
	if !strings.Contains(r.stdout, "FAIL tree one: ") || strings.Contains(r.stdout, "ok   tree one:") {
		t.Errorf("chos check on tree one under a group-writable %s:\n%s", dir, r)
	}
	// what list and check foretell: a launch that builds the view refuses it
	wantStatus(t, chos(t, "exec", "--fresh", "one", "true"), 125)
}
