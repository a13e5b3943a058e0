package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// 14. chos select writes, shows and removes ~/.chos.
func TestSelectWritesShowsAndClearsDotfile(t *testing.T) {
	clearDotfile(t)
	wantStatus(t, chos(t, "select", "two"), 0)
	data, err := os.ReadFile(dotfilePath())
	if err != nil || string(data) != "two\n" {
		t.Fatalf("~/.chos = %q (%v), want %q", data, err, "two\n")
	}
	fi, err := os.Lstat(dotfilePath())
	must(t, err)
	if !fi.Mode().IsRegular() || fileUID(fi) != h.uid {
		t.Errorf("~/.chos is %v owned by uid %d, want a regular file of uid %d", fi.Mode(), fileUID(fi), h.uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		t.Errorf("~/.chos is writable by others: %v", fi.Mode())
	}

	r := chos(t, "select")
	wantStatus(t, r, 0)
	if r.stdout != "two\n" {
		t.Errorf("chos select printed %q, want %q", r.stdout, "two\n")
	}
	// and it is used
	wantOSID(t, chos(t, "exec", "--", "cat", "/etc/os-release"), "chostwo")

	// an alias is accepted as given
	wantStatus(t, chos(t, "select", "default"), 0)
	if data, _ := os.ReadFile(dotfilePath()); string(data) != "default\n" {
		t.Errorf("after chos select default, ~/.chos = %q", data)
	}

	wantStatus(t, chos(t, "select", "--clear"), 0)
	if _, err := os.Lstat(dotfilePath()); !os.IsNotExist(err) {
		t.Errorf("~/.chos still there after chos select --clear: %v", err)
	}
	wantStatus(t, chos(t, "select", "--clear"), 0) // nothing to clear is fine
	r = chos(t, "select")
	wantStatus(t, r, 0)
	if strings.HasPrefix(r.stdout, "two") || !strings.HasPrefix(r.stdout, "one") {
		t.Errorf("without ~/.chos, chos select printed %q, want the default tree one", r.stdout)
	}
}

func TestSelectRefusesUnknownTree(t *testing.T) {
	clearDotfile(t)
	r := chos(t, "select", "bogus")
	wantStatus(t, r, 125)
	if !strings.Contains(r.stderr, "bogus") {
		t.Errorf("the error does not name the unknown tree:\n%s", r)
	}
	wantValidNames(t, r, "one", "two", "three", "default", "local")
	if _, err := os.Lstat(dotfilePath()); err == nil {
		t.Errorf("~/.chos was written for an unknown tree")
	}
	// an existing choice survives
	setDotfile(t, "three\n")
	wantStatus(t, chos(t, "select", "bogus"), 125)
	if data, _ := os.ReadFile(dotfilePath()); string(data) != "three\n" {
		t.Errorf("~/.chos changed to %q by a refused select", data)
	}
}

func TestSelectDoesNotWriteThroughDotfileSymlink(t *testing.T) {
	clearDotfile(t)
	target := filepath.Join(h.base, "select-target")
	const content = "root's file, not the user's\n"
	must(t, writeRootFile(target, content, 0o644))
	t.Cleanup(func() { os.Remove(target) })
	must(t, os.Symlink(target, dotfilePath()))
	must(t, os.Lchown(dotfilePath(), h.uid, h.gid))

	r := chos(t, "select", "two")
	if r.status == 0 {
		t.Errorf("chos select succeeded through a link to root's file:\n%s", r)
	}
	if data, err := os.ReadFile(target); err != nil || string(data) != content {
		t.Errorf("the link's target changed: %q (%v)", data, err)
	}
	fi, err := os.Lstat(target)
	if err != nil || fileUID(fi) != 0 || fi.Mode().Perm() != 0o644 {
		t.Errorf("the link's target changed owner or mode: %v", fi)
	}
	if dest, err := os.Readlink(dotfilePath()); err != nil || dest != target {
		t.Errorf("~/.chos is no longer the link to %s: %q %v", target, dest, err)
	}

	// --clear removes the link, not what it points to
	wantStatus(t, chos(t, "select", "--clear"), 0)
	if _, err := os.Lstat(dotfilePath()); !os.IsNotExist(err) {
		t.Errorf("the link survived chos select --clear: %v", err)
	}
	if data, err := os.ReadFile(target); err != nil || string(data) != content {
		t.Errorf("chos select --clear changed the link's target: %q (%v)", data, err)
	}
}

// 15. The tree is $CHOS, else ~/.chos, else the default tree.
func TestSelectionOrder(t *testing.T) {
	cases := []struct {
		name    string
		env     string // $CHOS, "" for unset
		dotfile string // "" for none
		want    string // os-release ID
	}{
		{"$CHOS over ~/.chos", "three", "two\n", "chosthree"},
		{"$CHOS without ~/.chos", "two", "", "chostwo"},
		{"$CHOS local", "local", "two\n", h.hostOSRelease["ID"]},
		{"~/.chos", "", "two\n", "chostwo"},
		{"~/.chos first line only", "", "three\ntwo\n", "chosthree"},
		{"~/.chos blanks trimmed", "", "  two  \n", "chostwo"},
		{"~/.chos local", "", "local\n", h.hostOSRelease["ID"]},
		{"default tree", "", "", "chosone"},
	}
	forms := []struct {
		name string
		args []string
	}{
		{"exec --", []string{h.chos, "exec", "--", "cat", "/etc/os-release"}},
		{"legacy", []string{h.chos, "cat", "/etc/os-release"}},
	}
	for _, c := range cases {
		for _, f := range forms {
			t.Run(c.name+"/"+f.name, func(t *testing.T) {
				clearDotfile(t)
				if c.dotfile != "" {
					setDotfile(t, c.dotfile)
				}
				cl := call{Args: f.args}
				if c.env != "" {
					cl.Env = []string{"CHOS=" + c.env}
				}
				wantOSID(t, run(t, cl), c.want)
			})
		}
	}
}

func TestSelectionRefusesInvalidNameInDotfile(t *testing.T) {
	marker := filepath.Join(h.tmp, unique(t))
	for _, f := range []struct {
		name string
		args []string
	}{
		{"exec --", []string{h.chos, "exec", "--", "touch", marker}},
		{"legacy", []string{h.chos, "touch", marker}},
		{"shell", []string{h.chos, "shell"}},
		{"bare", []string{h.chos}},
	} {
		t.Run(f.name, func(t *testing.T) {
			setDotfile(t, "chos-itest-bogus\n")
			r := run(t, call{Args: f.args, Stdin: []byte("touch " + marker + "\n")})
			wantStatus(t, r, 125)
			if !strings.Contains(r.stderr, "chos-itest-bogus") {
				t.Errorf("the error does not name the bad selection:\n%s", r)
			}
			if _, err := os.Stat(marker); err == nil {
				os.Remove(marker)
				t.Errorf("the command ran in some other tree:\n%s", r)
			}
		})
	}
}

// 16. A login shell keeps only the %ENV variables, and its exit status is chos's.
func TestShellCleansEnvironment(t *testing.T) {
	const script = `echo "T=$TERM F=$FOO C=$CHOS"; exit 7`
	env := []string{"FOO=bar", "TERM=xterm-test"}
	cases := []struct {
		name    string
		args    []string
		chosEnv string
		dotfile string
		wantC   string
	}{
		{"shell one", []string{h.chos, "shell", "one"}, "", "", "one"},
		{"shell one over $CHOS", []string{h.chos, "shell", "one"}, "three", "", "one"},
		{"shell alias", []string{h.chos, "shell", "default"}, "", "", "one"},
		{"shell selected", []string{h.chos, "shell"}, "", "two\n", "two"},
		{"bare $CHOS", []string{h.chos}, "three", "two\n", "three"},
		{"bare ~/.chos", []string{h.chos}, "", "two\n", "two"},
		{"bare default", []string{h.chos}, "", "", "one"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearDotfile(t)
			if c.dotfile != "" {
				setDotfile(t, c.dotfile)
			}
			cl := call{Args: c.args, Env: env, Stdin: []byte(script + "\n")}
			if c.chosEnv != "" {
				cl.Env = append(cl.Env, "CHOS="+c.chosEnv)
			}
			r := run(t, cl)
			wantStatus(t, r, 7)
			want := "T=xterm-test F= C=" + c.wantC
			if !strings.Contains(r.stdout, want) {
				t.Errorf("output lacks %q:\n%s", want, r)
			}
		})
	}
}

func TestShellIsALoginShellInTheTree(t *testing.T) {
	clearDotfile(t)
	c := chosCall("shell", "two")
	c.Stdin = []byte(`echo "0=$0 HOME=$HOME USER=$USER LOGNAME=$LOGNAME"; echo "PATH=$PATH"; pwd; cat /etc/os-release` + "\n")
	c.Dir = h.base // not in the tree: a login shell falls back to home
	r := run(t, c)
	wantStatus(t, r, 0)
	for _, want := range []string{"0=-sh", "HOME=" + h.home, "USER=" + h.user, "LOGNAME=" + h.user, "\n" + h.home + "\n", "ID=chostwo"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r)
		}
	}
	if !strings.Contains(r.stdout, "/.chos/bin") {
		t.Errorf("PATH lacks /.chos/bin:\n%s", r)
	}
}

// 20. A link named after a tree runs commands and login shells there.
func TestVsysLinkNamesTheTree(t *testing.T) {
	clearDotfile(t)
	link := vsysLink(t, "two")
	wantOSID(t, run(t, call{Args: []string{link, "cat", "/etc/os-release"}}), "chostwo")
	// the link's name wins over $CHOS and ~/.chos
	setDotfile(t, "three\n")
	wantOSID(t, run(t, call{Args: []string{link, "cat", "/etc/os-release"}, Env: []string{"CHOS=one"}}), "chostwo")
	clearDotfile(t)

	for _, args := range [][]string{{link}, {link, "-sh"}} {
		t.Run(strings.Join(append([]string{"two"}, args[1:]...), " "), func(t *testing.T) {
			r := run(t, call{Args: args, Stdin: []byte(`echo C=$CHOS F=$FOO; cat /etc/os-release; exit 3` + "\n"), Env: []string{"FOO=bar"}})
			wantStatus(t, r, 3)
			if !strings.Contains(r.stdout, "C=two F=\n") {
				t.Errorf("not a login shell in tree two:\n%s", r)
			}
			if parseOSRelease(r.stdout)["ID"] != "chostwo" {
				t.Errorf("not in tree two:\n%s", r)
			}
		})
	}
	// an unknown link name is an unknown tree
	r := run(t, call{Args: []string{vsysLink(t, "nosuchtree"), "true"}})
	wantStatus(t, r, 125)
	wantValidNames(t, r, "one", "two", "three", "default", "local")
}
