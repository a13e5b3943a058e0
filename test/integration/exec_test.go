package integration

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// 1. The command sees the tree's /etc, not the host's.
func TestExecSeesTreeOSRelease(t *testing.T) {
	if h.hostOSRelease["ID"] == "chosone" {
		t.Fatal("the host claims to be tree one: the test could not tell them apart")
	}
	for _, ts := range treeSpecs {
		t.Run(ts.name, func(t *testing.T) {
			r := chos(t, "exec", ts.name, "cat", "/etc/os-release")
			wantOSID(t, r, ts.id)
			if got := parseOSRelease(r.stdout)["PRETTY_NAME"]; got != ts.pretty {
				t.Errorf("PRETTY_NAME %q, want %q", got, ts.pretty)
			}
		})
	}
}

// 2. The command's exit status is chos's, and so is its death by a signal.
func TestExecPassesExitStatusThrough(t *testing.T) {
	for _, st := range []string{"0", "1", "42"} {
		t.Run("exit"+st, func(t *testing.T) {
			want, _ := strconv.Atoi(st)
			r := chos(t, "exec", "one", "sh", "-c", "exit "+st)
			wantStatus(t, r, want)
			if r.signaled {
				t.Errorf("chos died by a signal:\n%s", r)
			}
			r = shellRun(t, chosCall("exec", "one", "sh", "-c", "exit "+st))
			wantStatus(t, r, want)
		})
	}
}

func TestExecDeathBySIGTERMIsSeenAs143(t *testing.T) {
	r := chos(t, "exec", "one", "sh", "-c", "kill -TERM $$")
	wantStatus(t, r, 143)
	if !r.signaled {
		t.Errorf("chos exited instead of dying by SIGTERM (the command should replace chos):\n%s", r)
	}
	r = shellRun(t, chosCall("exec", "one", "sh", "-c", "kill -TERM $$"))
	wantStatus(t, r, 143)
}

// 3. stdin and stdout are the caller's, byte for byte.
func TestExecPassesStdinAndStdoutThrough(t *testing.T) {
	data := make([]byte, 64<<10)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	c := chosCall("exec", "one", "cat")
	c.Stdin = data
	r := run(t, c)
	wantStatus(t, r, 0)
	if r.stdout != string(data) {
		t.Errorf("cat in tree one returned %d bytes, differing from the %d sent (first 64: %q)", len(r.stdout), len(data), clip(r.stdout[:min(64, len(r.stdout))]))
	}
	// stderr too
	c = chosCall("exec", "one", "sh", "-c", "cat >&2")
	c.Stdin = []byte("to stderr\n")
	r = run(t, c)
	wantStatus(t, r, 0)
	if r.stderr != "to stderr\n" {
		t.Errorf("stderr %q, want %q", r.stderr, "to stderr\n")
	}
}

// 9. The working directory is kept; one that the tree cannot show fails.
func TestExecKeepsWorkingDirectory(t *testing.T) {
	dir := filepath.Join(h.home, "sub", "dir")
	userDir(t, dir)
	c := chosCall("exec", "one", "pwd")
	c.Dir = dir
	r := run(t, c)
	wantStatus(t, r, 0)
	if got := strings.TrimSpace(r.stdout); got != dir {
		t.Errorf("pwd in tree one printed %q, want %q:\n%s", got, dir, r)
	}
	// and the command really is in it (not just $PWD)
	c = chosCall("exec", "one", "sh", "-c", "pwd -P; ls")
	c.Dir = filepath.Dir(dir)
	r = run(t, c)
	wantStatus(t, r, 0)
	if r.stdout != filepath.Dir(dir)+"\ndir\n" {
		t.Errorf("got %q, want %q", r.stdout, filepath.Dir(dir)+"\ndir\n")
	}
}

func TestExecFailsInWorkingDirectoryMissingFromTree(t *testing.T) {
	// The base directory exists on the host (and the user may enter it),
	// but not in any tree.
	if _, err := os.Stat(filepath.Join(h.trees["one"], h.base)); err == nil {
		t.Fatalf("%s exists in tree one", h.base)
	}
	marker := filepath.Join(h.tmp, unique(t))
	c := chosCall("exec", "one", "touch", marker)
	c.Dir = h.base
	r := run(t, c)
	wantStatus(t, r, 125)
	if !strings.Contains(r.stderr, h.base) {
		t.Errorf("the error does not name the directory %s:\n%s", h.base, r)
	}
	if _, err := os.Stat(marker); err == nil {
		os.Remove(marker)
		t.Errorf("the command ran anyway (in another directory):\n%s", r)
	}
}

// 21. Arguments arrive exactly as given, whatever they contain.
func TestExecPassesArgumentsExactly(t *testing.T) {
	args := []string{
		"plain", "with space", "  two  leading and trailing  ", `"double quoted"`, `'single quoted'`,
		"", "line one\nline two", "-n", "--", "-", "--help", "-e", "*", "?[ab]*", "/etc/*",
		"$HOME", "${CHOS}", "`id`", "$(id)", `back\slash\n`, "tab\there", "semi;colon", "a|b", "a&&b",
		"ünïcödé", "%s%d%%", "last",
	}
	var want strings.Builder
	for _, a := range args {
		want.WriteString("[" + a + "]\n")
	}
	printf := append([]string{"printf", `[%s]\n`}, args...)
	link := vsysLink(t, "one")
	forms := []struct {
		name string
		argv []string
	}{
		{"exec NAME", append([]string{h.chos, "exec", "one"}, printf...)},
		{"exec NAME --", append([]string{h.chos, "exec", "one", "--"}, printf...)},
		{"exec --", append([]string{h.chos, "exec", "--"}, printf...)},
		{"legacy", append([]string{h.chos}, printf...)},
		{"vsys link", append([]string{link}, printf...)},
	}
	clearDotfile(t) // the selection is the default tree, one
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			r := run(t, call{Args: f.argv})
			wantStatus(t, r, 0)
			if r.stdout != want.String() {
				t.Errorf("arguments changed on the way:\n got %q\nwant %q\n%s", r.stdout, want.String(), r)
			}
		})
	}
}

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
