package hostexec

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fakeRoot builds a directory tree from a map of path -> content; a
// content starting with "->" makes a symbolic link.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(p, "/"):
			err = os.MkdirAll(full, 0o755)
		case strings.HasPrefix(content, "->"):
			err = os.Symlink(strings.TrimPrefix(content, "->"), full)
		default:
			err = os.WriteFile(full, []byte(content), 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestConfDirsFollowsIncludesInOrder(t *testing.T) {
	root := fakeRoot(t, map[string]string{
		"etc/ld.so.conf":             "include /etc/ld.so.conf.d/*.conf\n/opt/last\n",
		"etc/ld.so.conf.d/b.conf":    "# multiarch\n/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu # trailing\n",
		"etc/ld.so.conf.d/a.conf":    "/usr/local/lib\nhwcap 0 nosegneg\n/old/libc5=libc5, /two:/three\n",
		"etc/ld.so.conf.d/loop.conf": "include loop.conf\n",
		"etc/ld.so.conf.d/skip.txt":  "/not/included\n",
	})
	got := ConfDirs(root, "/etc/ld.so.conf")
	want := []string{"/usr/local/lib", "/old/libc5", "/two", "/three", "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/opt/last"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ConfDirs = %q, want %q", got, want)
	}
	// control: a missing file lists nothing
	if got := ConfDirs(root, "/etc/nonexistent.conf"); got != nil {
		t.Errorf("ConfDirs of a missing file = %q", got)
	}
}

// Links, absolute ones included, resolve inside the root, as on a host
// whose root that directory is; /lib64/ld-linux-x86-64.so.2 -> /lib/...
// is the case that matters (resolved in a view, it would be the tree's).
func TestResolveStaysInsideRoot(t *testing.T) {
	root := fakeRoot(t, map[string]string{
		"lib/x86_64-linux-gnu/ld.so": "loader",
		"lib64/ld.so":                "->/lib/x86_64-linux-gnu/ld.so",
		"usr/bin/scp":                "->../../bin/real-scp",
		"bin/real-scp":               "scp",
		"escape":                     "->/../../../../etc/passwd",
	})
	for p, want := range map[string]string{
		"/lib64/ld.so": "/lib/x86_64-linux-gnu/ld.so",
		"/usr/bin/scp": "/bin/real-scp",
		"/bin":         "/bin",
	} {
		if got, err := Resolve(root, p); err != nil || got != want {
			t.Errorf("Resolve(%s) = %q, %v; want %q", p, got, err, want)
		}
	}
	// control: a link out of the root does not reach the real /etc/passwd
	if got, err := Resolve(root, "/escape"); err == nil {
		t.Errorf("Resolve(/escape) = %q, want an error (no /etc/passwd inside the root)", got)
	}
}

func TestLookPathFindsExecutablesOnly(t *testing.T) {
	root := fakeRoot(t, map[string]string{
		"usr/bin/tool":   "x",
		"bin/tool":       "x",
		"usr/bin/noexec": "x",
		"usr/bin/dir/":   "",
	})
	if err := os.Chmod(filepath.Join(root, "usr/bin/noexec"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, name, want string }{
		{"/usr/bin:/bin", "tool", "/usr/bin/tool"},
		{"/bin:/usr/bin", "tool", "/bin/tool"},
		{"relative:/bin", "tool", "/bin/tool"},
		{"/usr/bin", "noexec", ""},
		{"/usr/bin", "dir", ""},
		{"/usr/bin", "missing", ""},
		{"/usr/bin", "bin/tool", ""},
	} {
		if got := LookPath(root, c.path, c.name); got != c.want {
			t.Errorf("LookPath(%q, %q) = %q, want %q", c.path, c.name, got, c.want)
		}
	}
}

// The host's own programs, as this machine has them: the argv starts the
// host's loader from inside the view with the host's library directories.
func TestArgvStartsHostProgramsThroughTheHostLoader(t *testing.T) {
	bin, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh on PATH")
	}
	real, err := filepath.EvalSymlinks(bin)
	if err != nil {
		t.Fatal(err)
	}
	info, err := readELF(real)
	if err != nil {
		t.Fatal(err)
	}
	interp := info.interp
	if interp == "" {
		t.Skipf("%s is not dynamically linked (%v)", real, err)
	}
	loader, err := filepath.EvalSymlinks(interp)
	if err != nil {
		t.Fatal(err)
	}
	argv, err := Argv("/", "/.chos/host", bin, "-c", "true")
	if err != nil {
		t.Fatal(err)
	}
	if len(argv) != 6 || argv[0] != "/.chos/host"+loader || argv[1] != "--library-path" ||
		argv[3] != "/.chos/host"+real || argv[4] != "-c" || argv[5] != "true" {
		t.Fatalf("Argv = %q, want [/.chos/host%s --library-path DIRS /.chos/host%s -c true]", argv, loader, real)
	}
	dirs := strings.Split(argv[2], ":")
	if !contains(dirs, "/.chos/host"+filepath.Dir(loader)) {
		t.Errorf("the library path %q lacks the loader's directory", argv[2])
	}
	for _, d := range dirs {
		if !strings.HasPrefix(d, "/.chos/host/") {
			t.Errorf("library directory %s is not the host's", d)
		}
	}
	// The host runs it that way: the loader, the directories, the program.
	out, err := exec.Command(loader, "--library-path", strings.ReplaceAll(argv[2], "/.chos/host", ""), real, "-c", "echo ran").Output()
	if err != nil || string(out) != "ran\n" {
		t.Errorf("the host's loader did not run %s: %v %q", real, err, out)
	}

	// control: what may not be executed is refused, not run by the loader
	dir := t.TempDir()
	data, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	copyNoExec := filepath.Join(dir, "sh")
	if err := os.WriteFile(copyNoExec, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if argv, err := Argv("/", "/.chos/host", copyNoExec); err == nil {
		t.Errorf("Argv of a file without x bits = %q, want an error", argv)
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
