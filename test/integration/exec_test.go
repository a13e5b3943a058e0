package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// 23. Not found is 127, found but not executable is 126, in a tree as on the host.
func TestExecReportsMissingAndNonExecutableCommands(t *testing.T) {
	dir := filepath.Join(h.tmp, unique(t))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	notExec := filepath.Join(dir, "notexec")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\necho ran\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tree := range []string{"one", "local"} {
		for _, c := range []struct {
			name string
			cmd  string
			want int
		}{
			{"not on PATH", "chos-itest-no-such-command", 127},
			{"missing path", "/no/such/dir/cmd", 127},
			{"not executable", notExec, 126},
			{"a directory", dir, 126},
		} {
			t.Run(tree+"/"+c.name, func(t *testing.T) {
				r := chos(t, "exec", tree, c.cmd)
				wantStatus(t, r, c.want)
				if strings.Contains(r.stdout, "ran") {
					t.Errorf("the file was run:\n%s", r)
				}
				if !strings.Contains(r.stderr, filepath.Base(c.cmd)) {
					t.Errorf("the error does not name the command:\n%s", r)
				}
				// a PATH lookup says whose PATH it searched
				if inTree := strings.Contains(r.stderr, "command not found in tree one"); c.name == "not on PATH" && inTree != (tree == "one") {
					t.Errorf("the error does not say where the lookup was (or says it on the host):\n%s", r)
				}
			})
		}
	}
}

// The command's environment is the caller's, plus CHOS and (in a tree)
// /.chos/bin at the end of PATH: nothing else added, removed or changed.
func TestExecKeepsEnvironment(t *testing.T) {
	extra := []string{"FOO=bar", "SPACEY=a b  c", "EQ=x=y", "EMPTY=", "LD_LIBRARY_PATH=/opt/lib"}
	for _, c := range []struct {
		name string
		tree string
		env  []string
		path string
	}{
		{"tree", "one", extra, "/usr/local/bin:/usr/bin:/bin:/.chos/bin"},
		{"host", "local", extra, "/usr/local/bin:/usr/bin:/bin"},
		{"tree GOTRACEBACK set", "one", append([]string{"GOTRACEBACK=crash"}, extra...), "/usr/local/bin:/usr/bin:/bin:/.chos/bin"},
		{"host GOTRACEBACK set", "local", append([]string{"GOTRACEBACK=crash"}, extra...), "/usr/local/bin:/usr/bin:/bin"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, call{Args: []string{h.chos, "exec", c.tree, "env"}, Env: c.env})
			wantStatus(t, r, 0)
			want := mergeEnv(userEnv(), append(append([]string{}, c.env...), "PATH="+c.path, "CHOS="+c.tree))
			got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
			missing, added := lineDiff(strings.Join(want, "\n"), strings.Join(got, "\n"))
			if len(missing) > 0 || len(added) > 0 {
				t.Errorf("environment changed on the way in:\nmissing or changed: %q\nadded or changed:   %q\n%s", missing, added, r)
			}
		})
	}
}

// A tree whose directory is gone is named, with the line that defines it,
// in both modes; the control is a tree that is there.
func TestMissingTreeIsNamedWithItsLine(t *testing.T) {
	clearDotfile(t)
	gone, path := addGoneTree(t)
	line := len(strings.Split(strings.TrimRight(h.configText, "\n"), "\n")) + 1
	for _, m := range modes() {
		wantStatus(t, m.chos(t, "exec", "one", "true"), 0)
		r := m.chos(t, "exec", gone, "true")
		wantStatus(t, r, 125)
		want := fmt.Sprintf("tree %s (%s:%d): ", gone, h.config, line)
		if !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, path) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%s: want one line with %q and %s:\n%s", m.name, want, path, r)
		}
	}
}
