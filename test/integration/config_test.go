package integration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// 12. A configuration a user could have written is refused, naming the
// path at fault.
func TestUnsafeConfigurationIsRefused(t *testing.T) {
	dropIn := filepath.Join(h.etc, "chos.d", "itest.conf")
	cases := []struct {
		name      string
		offending string
		make      func(t *testing.T)
		undo      func()
	}{
		{
			name: "config owned by the user", offending: h.config,
			make: func(t *testing.T) { must(t, os.Chown(h.config, h.uid, h.gid)) },
			undo: func() { os.Chown(h.config, 0, 0) },
		},
		{
			name: "config world-writable", offending: h.config,
			make: func(t *testing.T) { must(t, os.Chmod(h.config, 0o666)) },
			undo: func() { os.Chmod(h.config, 0o644) },
		},
		{
			name: "config group-writable", offending: h.config,
			make: func(t *testing.T) { must(t, os.Chmod(h.config, 0o664)) },
			undo: func() { os.Chmod(h.config, 0o644) },
		},
		{
			name: "directory world-writable", offending: h.etc,
			make: func(t *testing.T) { must(t, os.Chmod(h.etc, 0o777)) },
			undo: func() { os.Chmod(h.etc, 0o755) },
		},
		{
			name: "directory group-writable", offending: h.etc,
			make: func(t *testing.T) { must(t, os.Chmod(h.etc, 0o775)) },
			undo: func() { os.Chmod(h.etc, 0o755) },
		},
		{
			name: "directory owned by the user", offending: h.etc,
			make: func(t *testing.T) { must(t, os.Chown(h.etc, h.uid, h.gid)) },
			undo: func() { os.Chown(h.etc, 0, 0) },
		},
		{
			name: "base directory world-writable", offending: h.base,
			make: func(t *testing.T) { must(t, os.Chmod(h.base, 0o777)) },
			undo: func() { os.Chmod(h.base, 0o755) },
		},
		{
			name: "drop-in owned by the user", offending: dropIn,
			make: func(t *testing.T) {
				writeUserFile(t, dropIn, "%SHELLS\nmine:/\n", 0o644)
			},
			undo: func() { os.Remove(dropIn) },
		},
	}
	marker := filepath.Join(h.tmp, unique(t))
	clearDotfile(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Cleanup(c.undo)
			c.make(t)
			for _, form := range []call{
				chosCall("exec", "one", "touch", marker),
				chosCall("touch", marker),
				chosCall("shell", "one"),
				// commands that give root up still read only what root vouches for
				chosCall("list"),
				chosCall("select", "two"),
			} {
				r := run(t, form)
				wantStatus(t, r, 125)
				// the offending path itself, not only a path below it
				if !regexp.MustCompile(regexp.QuoteMeta(c.offending) + `($|[^/])`).MatchString(r.stderr) {
					t.Errorf("the error does not name %s:\n%s", c.offending, r)
				}
				if _, err := os.Stat(marker); err == nil {
					os.Remove(marker)
					t.Errorf("the command ran anyway:\n%s", r)
				}
				if _, err := os.Lstat(dotfilePath()); err == nil {
					clearDotfile(t)
					t.Errorf("~/.chos was written:\n%s", r)
				}
			}
		})
	}
	// restored: it works again (so the refusals were the changes' doing)
	wantOSID(t, chos(t, "exec", "one", "cat", "/etc/os-release"), "chosone")
	wantStatus(t, chos(t, "list"), 0)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// 13. --config and CHOS_CONFIG are root's only.
func TestAlternativeConfigurationIsForRootOnly(t *testing.T) {
	// A root-owned alternative configuration in a root-owned directory,
	// whose only tree "alt" is tree two, also the default: honoured, it
	// shows chostwo.
	altDir := filepath.Join(h.base, "altetc")
	must(t, os.MkdirAll(altDir, 0o755))
	t.Cleanup(func() { os.RemoveAll(altDir) })
	alt := filepath.Join(altDir, "chos")
	must(t, writeRootFile(alt, "%SHELLS\nalt:"+h.trees["two"]+"\ndefault:"+h.trees["two"]+"\nlocal:/\n", 0o644))
	clearDotfile(t)

	t.Run("root --config", func(t *testing.T) {
		wantOSID(t, run(t, call{Args: []string{h.chos, "--config", alt, "exec", "alt", "cat", "/etc/os-release"}, Root: true}), "chostwo")
	})
	t.Run("root CHOS_CONFIG", func(t *testing.T) {
		wantOSID(t, run(t, call{Args: []string{h.chos, "exec", "alt", "cat", "/etc/os-release"}, Root: true,
			Env: []string{"CHOS_CONFIG=" + alt}}), "chostwo")
	})

	for _, c := range []struct {
		name string
		c    call
	}{
		{"user --config", chosCall("--config", alt, "exec", "alt", "cat", "/etc/os-release")},
		{"user --config=", chosCall("--config="+alt, "exec", "alt", "cat", "/etc/os-release")},
		{"user --config list", chosCall("--config", alt, "list")},
		{"user CHOS_CONFIG", call{Args: []string{h.chos, "exec", "alt", "cat", "/etc/os-release"}, Env: []string{"CHOS_CONFIG=" + alt}}},
		{"user CHOS_CONFIG exec --", call{Args: []string{h.chos, "exec", "--", "cat", "/etc/os-release"}, Env: []string{"CHOS_CONFIG=" + alt}}},
		{"user CHOS_CONFIG shell", call{Args: []string{h.chos, "shell"}, Env: []string{"CHOS_CONFIG=" + alt}, Stdin: []byte("cat /etc/os-release\n")}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, c.c)
			wantStatus(t, r, 125)
			if strings.Contains(r.stdout, "chostwo") || strings.Contains(r.stdout, "alt") {
				t.Errorf("the alternative configuration was used:\n%s", r)
			}
			if !strings.Contains(r.stderr, "root") || !(strings.Contains(r.stderr, "--config") || strings.Contains(r.stderr, "CHOS_CONFIG")) {
				t.Errorf("the error does not say that --config/CHOS_CONFIG is for root only:\n%s", r)
			}
		})
	}
	// The legacy and vsys forms take no options: CHOS_CONFIG may be
	// refused or ignored there, but never honoured.
	for _, c := range []struct {
		name string
		c    call
	}{
		{"user CHOS_CONFIG legacy", call{Args: []string{h.chos, "cat", "/etc/os-release"}, Env: []string{"CHOS_CONFIG=" + alt}}},
		{"user CHOS_CONFIG vsys", call{Args: []string{vsysLink(t, "alt"), "cat", "/etc/os-release"}, Env: []string{"CHOS_CONFIG=" + alt}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, c.c)
			if strings.Contains(r.stdout, "chostwo") {
				t.Errorf("CHOS_CONFIG was honoured for the user:\n%s", r)
			}
			if r.status != 125 && !(r.status == 0 && parseOSRelease(r.stdout)["ID"] == "chosone") {
				t.Errorf("neither refused (125) nor ignored (the system's default tree, one):\n%s", r)
			}
		})
	}
}
