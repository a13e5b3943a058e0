package ostree

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chos-hpc/chos/pkg/config"
	"github.com/chos-hpc/chos/pkg/spec"
)

func catalog(t *testing.T, files ...string) *Catalog {
	t.Helper()
	set := &config.Set{}
	for i, src := range files {
		f, err := config.Parse(filepath.Join("/etc/chos.d", string(rune('a'+i))), []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		set.Files = append(set.Files, f)
	}
	c, err := NewCatalog(set)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const site = `%SHELLS
rh73:/auto/redhat73
/auto/redhat73:/auto/redhat73
default:/os/el7
el7:/os/el7
local:/
`

func TestCatalogGroupsAliasesByPath(t *testing.T) {
	c := catalog(t, site)
	rh, _ := c.Lookup("/auto/redhat73")
	if rh.Name != "rh73" || len(rh.Aliases) != 1 || rh.Aliases[0] != "/auto/redhat73" {
		t.Errorf("rh73 = %+v", rh)
	}
	el, _ := c.Lookup("default")
	if el.Name != "el7" || el.Path != "/os/el7" {
		t.Errorf("default must name el7, never be its proper name: %+v", el)
	}
	for _, n := range []string{"local", "root"} {
		if h, ok := c.Lookup(n); !ok || !h.Host {
			t.Errorf("%s must be the host", n)
		}
	}
	if c.Default != el {
		t.Errorf("default tree = %+v", c.Default)
	}
	if len(c.Trees) != 3 {
		t.Errorf("trees = %d, want host, rh73, el7", len(c.Trees))
	}
}

func TestCatalogRefusesNameForTwoPaths(t *testing.T) {
	f1, _ := config.Parse("a", []byte("%SHELLS\nx:/one\n"))
	f2, _ := config.Parse("b", []byte("%SHELLS\nx:/two\n"))
	_, err := NewCatalog(&config.Set{Files: []*config.File{f1, f2}})
	if err == nil || !strings.HasPrefix(err.Error(), "b:2:") || !strings.Contains(err.Error(), "a:2") {
		t.Errorf("error = %v, want one naming b:2 and a:2", err)
	}
}

func TestCatalogAppliesTreeSettingsByAlias(t *testing.T) {
	c := catalog(t, site, "%TREE /auto/redhat73\ndescription = old\nsetuid = allow\nidentity = /etc/passwd\n%BIND\n/scratch\n")
	rh, _ := c.Lookup("rh73")
	if rh.Description != "old" || !rh.AllowSetuid || len(rh.Identity) != 1 {
		t.Errorf("settings not applied: %+v", rh)
	}
	el, _ := c.Lookup("el7")
	if len(el.Identity) != len(DefaultIdentity) || el.AllowSetuid {
		t.Errorf("el7 must keep defaults: %+v", el)
	}
	if len(c.Binds) != 1 || c.Binds[0].Source != "/scratch" {
		t.Errorf("global binds = %+v", c.Binds)
	}
}

// A drop-in read later overrides a switch the main file set, either way.
func TestLaterSettingsOverrideEarlierOnes(t *testing.T) {
	main, err := config.Parse("/etc/chos", []byte("%SHELLS\nel7:/os/el7\nel8:/os/el8\n%TREE el7\nsetuid = allow\ncache = no\n%TREE el8\nsetuid = allow\n"))
	if err != nil {
		t.Fatal(err)
	}
	drop, err := config.Parse("/etc/chos.d/50.conf", []byte("%TREE el7\nsetuid = deny\ncache = yes\n%TREE el8\ndescription = x\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCatalog(&config.Set{Files: []*config.File{main, drop}})
	if err != nil {
		t.Fatal(err)
	}
	el7, _ := c.Lookup("el7")
	el8, _ := c.Lookup("el8")
	if el7.AllowSetuid || el7.NoCache {
		t.Errorf("el7: the drop-in's setuid = deny and cache = yes did not win: %+v", el7)
	}
	if !el8.AllowSetuid {
		t.Error("control: el8's setuid = allow was undone by a section that does not set it")
	}
	for _, s := range el7.Settings() {
		if s.Key == "setuid" && (s.Value != "deny" || len(s.At) != 1 || s.At[0].File != "/etc/chos.d/50.conf") {
			t.Errorf("setuid of el7 shown as %+v", s)
		}
	}
}

func TestCatalogRefusesSettingsForUnknownTreeOrHost(t *testing.T) {
	for _, src := range []string{"%TREE nosuch\ndescription = x\n", "%TREE local\ndescription = x\n"} {
		f0, _ := config.Parse("a", []byte(site))
		f1, _ := config.Parse("b", []byte(src))
		if _, err := NewCatalog(&config.Set{Files: []*config.File{f0, f1}}); err == nil || !strings.HasPrefix(err.Error(), "b:1:") {
			t.Errorf("%q: error = %v", src, err)
		}
	}
}

func TestSelectionOrder(t *testing.T) {
	c := catalog(t, site)
	cases := []struct {
		name string
		in   Inputs
		want string
		src  Source
	}{
		{"argument first", Inputs{Argument: "rh73", Env: "el7", Dotfile: "el7\n"}, "rh73", FromArgument},
		{"$CHOS over ~/.chos", Inputs{Env: "rh73", Dotfile: "el7\n"}, "rh73", FromEnv},
		{"~/.chos first line", Inputs{Dotfile: "  rh73 \nel7\n"}, "rh73", FromDotfile},
		{"default tree", Inputs{Dotfile: "\n"}, "el7", FromDefault},
		{"local selects the host", Inputs{Env: "local"}, "local", FromEnv},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := c.Select(tc.in)
			if err != nil || s.Tree.Name != tc.want || s.Source != tc.src {
				t.Errorf("got %+v, %v; want %s from %s", s, err, tc.want, tc.src)
			}
		})
	}
}

func TestSelectionFallsBackToHostWithoutDefault(t *testing.T) {
	c := catalog(t, "%SHELLS\nrh73:/auto/redhat73\n")
	s, err := c.Select(Inputs{})
	if err != nil || !s.Tree.Host || s.Source != FromFallback {
		t.Errorf("got %+v, %v", s, err)
	}
}

func TestSelectionRefusesUnknownNameWithValidOnes(t *testing.T) {
	c := catalog(t, site)
	for _, in := range []Inputs{{Argument: "rh9"}, {Env: "rh9"}, {Dotfile: "rh9\n"}} {
		_, err := c.Select(in)
		var ue *UnknownTreeError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "valid names: /auto/redhat73, default, el7, local, rh73, root") {
			t.Errorf("%+v: error = %v", in, err)
		}
	}
}

func TestTreeAllows(t *testing.T) {
	tr := &Tree{Users: []string{"alice", "1005"}, Groups: []string{"climate", "2000"}}
	gidOf := func(name string) (int, bool) {
		gid, ok := map[string]int{"climate": 3000, "users": 100}[name]
		return gid, ok
	}
	cases := []struct {
		uid  int
		user string
		gids []int
		want bool
	}{
		{1000, "alice", nil, true},
		{1005, "", nil, true},
		{1001, "bob", []int{100, 3000}, true},  // climate, by name
		{1001, "bob", []int{100, 2000}, true},  // by number
		{1001, "bob", []int{100, 3001}, false}, // control
		{1001, "", []int{100}, false},          // no name matches no user
		{0, "root", nil, true},
	}
	for _, c := range cases {
		if got := tr.Allows(c.uid, c.user, c.gids, gidOf); got != c.want {
			t.Errorf("Allows(%d, %q, %v) = %v", c.uid, c.user, c.gids, got)
		}
	}
	if !(&Tree{}).Allows(1000, "x", nil, gidOf) {
		t.Error("a tree without lists is open to all")
	}
}

func TestOSNameReadsReleaseFilesInsideTree(t *testing.T) {
	cases := []struct {
		files map[string]string
		want  string
	}{
		{map[string]string{"etc/os-release": "NAME=\"Debian\"\nPRETTY_NAME=\"Debian GNU/Linux 11 (bullseye)\"\n"}, "Debian GNU/Linux 11 (bullseye)"},
		{map[string]string{"usr/lib/os-release": "NAME=Foo\nVERSION_ID=3\n"}, "Foo 3"},
		{map[string]string{"etc/redhat-release": "Red Hat Linux release 7.3 (Valhalla)\n"}, "Red Hat Linux release 7.3 (Valhalla)"},
		{map[string]string{"etc/debian_version": "3.1\n"}, "Debian 3.1"},
		{map[string]string{}, ""},
	}
	for _, c := range cases {
		root := t.TempDir()
		for p, content := range c.files {
			os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
			os.WriteFile(filepath.Join(root, p), []byte(content), 0o644)
		}
		if got := OSName(root); got != c.want {
			t.Errorf("%v: OSName = %q, want %q", c.files, got, c.want)
		}
	}
}

func TestOSNameDoesNotFollowLinksOutOfTree(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	// An absolute link must resolve inside the tree, not to the host's file.
	os.Symlink("/etc/os-release", filepath.Join(root, "etc/os-release"))
	if got := OSName(root); got != "" {
		t.Errorf("OSName followed a link onto the host: %q", got)
	}
}

func TestEntriesListsTopLevelWithoutFollowing(t *testing.T) {
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "usr"), 0o755)
	os.WriteFile(filepath.Join(root, "file"), nil, 0o644)
	os.Symlink("usr/bin", filepath.Join(root, "bin"))
	es, err := Entries(root)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]spec.Entry{}
	for _, e := range es {
		got[e.Name] = e
	}
	if got["usr"].Kind != spec.DirEntry || got["file"].Kind != spec.FileEntry || got["bin"].Kind != spec.LinkEntry || got["bin"].Target != "usr/bin" {
		t.Errorf("entries = %+v", es)
	}
}

func TestProblemNeedsDirectoryWithShell(t *testing.T) {
	root := t.TempDir()
	tr := &Tree{Name: "x", Path: root}
	if err := Problem(tr, ""); err == nil || !strings.Contains(err.Error(), "no /bin/sh") {
		t.Errorf("tree without /bin/sh: %v", err)
	}
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	os.WriteFile(filepath.Join(root, "bin/sh"), nil, 0o755)
	if err := Problem(tr, ""); err != nil {
		t.Errorf("good tree: %v", err)
	}
	if err := Problem(&Tree{Name: "gone", Path: filepath.Join(root, "nope")}, ""); err == nil {
		t.Error("missing tree path accepted")
	}
}

func personalCatalog(t *testing.T, personal string) (*Catalog, error) {
	t.Helper()
	sys, _ := config.Parse("/etc/chos", []byte(site))
	p, err := config.Parse("/home/u/.config/chos/chos.conf", []byte(personal))
	if err != nil {
		t.Fatal(err)
	}
	return NewCatalog(&config.Set{Files: []*config.File{sys}, Personal: p})
}

func TestPersonalTreesAreMarkedAndSettable(t *testing.T) {
	c, err := personalCatalog(t, "%SHELLS\nmine:/home/u/tree\nmine2:/home/u/tree\n%TREE mine\nbind = /scratch/u /scratch ro\n")
	if err != nil {
		t.Fatal(err)
	}
	m, ok := c.Lookup("mine2")
	if !ok || !m.Personal || m.Name != "mine" || len(m.Binds) != 1 {
		t.Errorf("personal tree = %+v", m)
	}
	if el, _ := c.Lookup("el7"); el.Personal {
		t.Error("system tree marked personal")
	}
}

func TestPersonalTreesCannotChangeTheSystem(t *testing.T) {
	cases := map[string]string{
		"system name":         "%SHELLS\nel7:/home/u/tree\n",
		"host":                "%SHELLS\nmine:/\n",
		"default":             "%SHELLS\ndefault:/home/u/tree\n",
		"system tree setting": "%TREE el7\nbind = /x\n",
		"global bind":         "%BIND\n/x\n",
	}
	for name, src := range cases {
		_, err := personalCatalog(t, src)
		if err == nil || !strings.HasPrefix(err.Error(), "/home/u/.config/chos/chos.conf:") {
			t.Errorf("%s: error = %v, want one naming the personal file", name, err)
		}
	}
}

// The host comes from the site's local:/ line where there is one, and is
// built in otherwise (the control).
func TestHostIsDefinedByTheSitesLocalLine(t *testing.T) {
	if at := catalog(t, site).byName[Local].At.String(); at != "/etc/chos.d/a:6" {
		t.Errorf("the host is defined at %q, want the local:/ line /etc/chos.d/a:6", at)
	}
	if at := catalog(t, "%SHELLS\nel7:/os/el7\n").byName[Local].At.String(); at != "built-in" {
		t.Errorf("without a local:/ line the host is defined at %q, want built-in", at)
	}
}

func TestProgramNamesOfChosAndOfTrees(t *testing.T) {
	for prog, want := range map[string]bool{
		"chos": true, "chos-1.2": true, "chos.static": true, "chos_debug": true, "chos-": true,
		"rh73": false, "chosen": false, "choss": false, "el7": false, "Chos": false, "-chos": false, "": false,
	} {
		if got := IsChosName(prog); got != want {
			t.Errorf("IsChosName(%q) = %v, want %v", prog, got, want)
		}
	}
}

// Host commands are found by their base name; a name given twice, one of
// chos's own, or a personal file's %HOSTCMD is refused with its line.
func TestCatalogHostCommands(t *testing.T) {
	c := catalog(t, site+"%HOSTCMD\n/usr/bin/srun /usr/bin/sbatch\n", "%HOSTCMD\n/usr/bin/srun\n/opt/slurm/bin/squeue\n")
	var got []string
	for _, hc := range c.HostCommands {
		got = append(got, hc.Path+"@"+hc.At.String())
	}
	want := []string{"/usr/bin/srun@/etc/chos.d/a:8", "/usr/bin/sbatch@/etc/chos.d/a:8", "/opt/slurm/bin/squeue@/etc/chos.d/b:3"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("host commands = %v, want %v (each once)", got, want)
	}
	if hc, ok := c.HostCommand("squeue"); !ok || hc.Path != "/opt/slurm/bin/squeue" {
		t.Errorf("HostCommand(squeue) = %+v, %v", hc, ok)
	}
	if _, ok := c.HostCommand("scancel"); ok {
		t.Errorf("HostCommand(scancel) found a command no line names")
	}
	for _, tc := range []struct{ name, src, want string }{
		{"one name, two paths", "%HOSTCMD\n/usr/bin/srun\n/opt/bin/srun\n", "/etc/chos.d/a:3: host command /opt/bin/srun: the name srun is taken by /usr/bin/srun at /etc/chos.d/a:2"},
		{"chos's own name", "%HOSTCMD\n/usr/local/bin/chos-1.2\n", `/etc/chos.d/a:2: host command /usr/local/bin/chos-1.2: "chos-1.2" is a name of chos itself`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := config.Parse("/etc/chos.d/a", []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := NewCatalog(&config.Set{Files: []*config.File{f}}); err == nil || err.Error() != tc.want {
				t.Errorf("error = %v, want %s", err, tc.want)
			}
		})
	}
	t.Run("personal", func(t *testing.T) {
		f, _ := config.Parse("/home/u/.config/chos/trees", []byte("%HOSTCMD\n/usr/bin/srun\n"))
		_, err := NewCatalog(&config.Set{Personal: f})
		if err == nil || !strings.HasPrefix(err.Error(), "/home/u/.config/chos/trees:2: %HOSTCMD is for the system configuration") {
			t.Errorf("error = %v", err)
		}
	})
}
