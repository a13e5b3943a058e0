package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `chos config` shows where each value comes from; it and `chos check`
// name every error of the drop-ins with its file and line.
func TestConfigAndCheckNameDropInErrors(t *testing.T) {
	dir := filepath.Join(h.etc, "chos.d")
	must(t, os.MkdirAll(dir, 0o755))
	site := filepath.Join(dir, unique(t)+"-a.conf")
	typo := filepath.Join(dir, unique(t)+"-b.conf")
	t.Cleanup(func() { os.Remove(site); os.Remove(typo) })
	must(t, writeRootFile(site, "%TREE two\ndescription = the second\n", 0o644))

	// the control: a good drop-in's values, with their lines
	r := chos(t, "config", "--json")
	wantStatus(t, r, 0)
	var ec struct {
		Files []string
		Trees []struct {
			Name    string
			Entries []struct {
				Key, Value string
				Origin     []string
				Default    bool
			}
		}
		Problems []struct{ Origin, Message string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &ec); err != nil {
		t.Fatalf("chos config --json: %v\n%s", err, r)
	}
	found := false
	for _, tc := range ec.Trees {
		for _, e := range tc.Entries {
			if e.Key == "tree.two.description" {
				found = e.Value == "the second" && len(e.Origin) == 1 && e.Origin[0] == site+":2"
			}
		}
	}
	if !found || len(ec.Problems) != 0 {
		t.Errorf("tree.two.description is not from %s:2, or problems:\n%s", site, r)
	}
	wantStatus(t, chos(t, "check"), 0)

	must(t, writeRootFile(typo, "%TREE two\nuser = root\n%COLOURS\nred\n", 0o644))
	for _, args := range [][]string{{"config"}, {"config", "two"}, {"check"}} {
		r := chos(t, args...)
		want := 125
		if args[0] == "check" {
			want = 1
		}
		wantStatus(t, r, want)
		for _, line := range []string{typo + ":2", `unknown key "user"`, typo + ":3", "unknown section %COLOURS"} {
			if !strings.Contains(r.stdout, line) {
				t.Errorf("chos %s does not report %q:\n%s", strings.Join(args, " "), line, r)
			}
		}
	}
	// and launches are refused, naming the first
	r = chos(t, "exec", "one", "true")
	wantStatus(t, r, 125)
	if !strings.Contains(r.stderr, typo+":2") {
		t.Errorf("the refusal does not name %s:2:\n%s", typo, r)
	}
}

// A drop-in a user could change is an error of the configuration the
// setuid chos acts on: `chos config` lists it (status 125) as `chos check`
// FAILs it and every launch refuses it; root's own config says so too.
func TestConfigNamesAFileTheSetuidChosRefuses(t *testing.T) {
	dir := filepath.Join(h.etc, "chos.d")
	must(t, os.MkdirAll(dir, 0o755))
	drop := filepath.Join(dir, unique(t)+".conf")
	t.Cleanup(func() { os.Remove(drop) })
	must(t, writeRootFile(drop, "%TREE two\ndescription = the second\n", 0o644))
	wantStatus(t, chos(t, "config"), 0) // the control: root's, 0644
	must(t, os.Chmod(drop, 0o666))
	for _, c := range []call{chosCall("config"), {Root: true, Args: []string{h.chos, "config"}}} {
		r := run(t, c)
		wantStatus(t, r, 125)
		if !strings.Contains(r.stdout, drop) || !strings.Contains(r.stdout, "writable by group or others") {
			t.Errorf("chos config does not name the unsafe %s:\n%s", drop, r)
		}
	}
	wantStatus(t, chos(t, "exec", "one", "true"), 125)
}
