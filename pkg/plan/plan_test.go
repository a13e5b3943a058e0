package plan

import (
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/chos-hpc/chos/pkg/config"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/spec"
)

const site = `%SHELLS
el7:/os/el7
suid:/os/suid
local:/
%BIND
/global/scratch
/dev/shm
/project /proj ro optional
%HOSTCMD
/usr/bin/srun /opt/slurm/bin/squeue
%TREE suid
setuid = allow
bind = /global/scratch /scratch ro
`

func request(t *testing.T, tree string, sysconfig ...config.Bind) Request {
	t.Helper()
	f, err := config.Parse("/etc/chos", []byte(site))
	if err != nil {
		t.Fatal(err)
	}
	set := &config.Set{Files: []*config.File{f}}
	if sysconfig != nil {
		set.Sysconfig = &config.Sysconfig{BindMounts: sysconfig}
	}
	c, err := ostree.NewCatalog(set)
	if err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select(ostree.Inputs{Argument: tree})
	if err != nil {
		t.Fatal(err)
	}
	return Request{
		ViewRequest: ViewRequest{Catalog: c, Tree: sel.Tree, Root: "/chos", Self: "/usr/bin/chos",
			Entries: []spec.Entry{
				{Name: "usr", Kind: spec.DirEntry}, {Name: "etc", Kind: spec.DirEntry}, {Name: "proc", Kind: spec.DirEntry},
				{Name: "tmp", Kind: spec.LinkEntry, Target: "var/tmp"}, {Name: "bin", Kind: spec.LinkEntry, Target: "usr/bin"},
				{Name: ".autorelabel", Kind: spec.FileEntry},
			}},
		Caller: Caller{UID: 1000, GID: 100, Groups: []int{100, 27}, Name: "alice", Home: "/home/alice",
			Shell: "/bin/bash", Cwd: "/home/alice/run",
			Env: []string{"PATH=/usr/bin:/bin", "CHOS=forged", "FOO=bar", "TERM=xterm", "HOME=/elsewhere"}},
		Argv: []string{"ls", "-l"},
	}
}

func build(t *testing.T, r Request) *spec.Plan {
	t.Helper()
	p, _, err := Build(r)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func find(p *spec.Plan, target string) (spec.Mount, bool) {
	for _, m := range p.Mounts {
		if m.Target == target {
			return m, true
		}
	}
	return spec.Mount{}, false
}

func TestPlanBindsTreeEntriesReadOnlyWithoutSetuid(t *testing.T) {
	p := build(t, request(t, "el7"))
	usr, _ := find(p, "/usr")
	want := spec.Mount{Op: spec.OpBind, Source: "/os/el7/usr", Target: "/usr", Recursive: true,
		ReadOnly: true, NoSuid: true, NoDev: true, NoFollow: true, Origin: spec.OriginTree, Why: "tree"}
	if !reflect.DeepEqual(usr, want) {
		t.Errorf("usr = %+v, want %+v", usr, want)
	}
	if f, _ := find(p, "/.autorelabel"); f.Recursive || !f.ReadOnly || f.Source != "/os/el7/.autorelabel" {
		t.Errorf("top-level file = %+v", f)
	}
	if l, _ := find(p, "/bin"); l.Op != spec.OpSymlink || l.Source != "usr/bin" {
		t.Errorf("top-level link must stay a link inside the view: %+v", l)
	}
}

// The tree's /etc is shown through a read-only overlay, with the files the
// view adds on top (never written into the tree): the PATH snippets, and
// mount points for the identity files the tree may lack.
func TestPlanShowsTheTreesEtcWithWhatTheViewAdds(t *testing.T) {
	p := build(t, request(t, "el7"))
	var ov spec.Mount
	at := map[string]int{}
	for i, m := range p.Mounts {
		at[m.Op.String()+" "+m.Target] = i
		if m.Op == spec.OpOverlay {
			ov = m
		}
		if m.Op == spec.OpBind && m.Target == "/etc" {
			t.Errorf("the tree's /etc is bound as a whole: %+v", m)
		}
	}
	if ov.Source != "/os/el7/etc" || ov.Target != "/etc" || ov.Added != AddedDir || !ov.ReadOnly || !ov.NoSuid || !ov.NoDev {
		t.Fatalf("overlay = %+v", ov)
	}
	provided := map[string]string{}
	for _, pr := range ov.Provide {
		provided[pr.Path] = pr.Source
	}
	for _, f := range ostree.DefaultIdentity {
		if provided[f] != f {
			t.Errorf("no mount point provided for %s: %v", f, ov.Provide)
		}
	}
	snippet, ok := at["file "+AddedDir+"/profile.d/chos.sh"]
	if !ok || snippet > at["overlay /etc"] || at["overlay /etc"] > at["bind /etc/hosts"] {
		t.Errorf("want the snippet, then the overlay, then the identity binds, in that order: %v", at)
	}
	if _, ok := at["mkdir "+spec.LayerDir]; !ok {
		t.Errorf("no %s for identity layers", spec.LayerDir)
	}
}

func TestPlanReplacesTreeEntriesCoveredByHostBinds(t *testing.T) {
	p := build(t, request(t, "el7"))
	for _, target := range []string{"/proc", "/tmp"} {
		var ms []spec.Mount
		for _, m := range p.Mounts {
			if m.Target == target {
				ms = append(ms, m)
			}
		}
		if len(ms) != 1 || ms[0].Source != target || ms[0].Op != spec.OpBind {
			t.Errorf("%s: %+v, want only the host bind (the tree's own %s, even a link, is not used)", target, ms, target)
		}
	}
}

func TestPlanHostBindsParentsFirstWithoutDuplicates(t *testing.T) {
	legacy := []config.Bind{{Source: "/dev", Dest: "/dev", Optional: true}, {Source: "/dev/pts", Dest: "/dev/pts", Optional: true}}
	p := build(t, request(t, "el7", legacy...))
	var targets []string
	for _, m := range p.Mounts {
		if m.Op == spec.OpBind && m.Origin != spec.OriginTree {
			targets = append(targets, m.Target)
		}
	}
	want := []string{"/.chos/host", "/dev", "/home", "/proc", "/proj", "/run", "/sys", "/tmp", "/global/scratch", "/var/tmp",
		"/etc/passwd", "/etc/group", "/etc/hosts", "/etc/resolv.conf", "/etc/localtime", "/.chos/bin/chos"}
	if !reflect.DeepEqual(targets, want) {
		t.Errorf("host binds = %v\nwant        %v", targets, want)
	}
	if dev, _ := find(p, "/dev"); dev.NoDev || dev.Optional {
		t.Errorf("the legacy list naming /dev again must not change the default bind: %+v", dev)
	}
}

func TestPlanSiteBindsAreNosuidDefaultsKeepHostFlags(t *testing.T) {
	p := build(t, request(t, "el7"))
	if m, _ := find(p, "/global/scratch"); !m.NoSuid || !m.NoDev || m.ReadOnly || m.Optional || m.Why != "/etc/chos:6" {
		t.Errorf("site bind = %+v", m)
	}
	if m, _ := find(p, "/proj"); !m.ReadOnly || !m.Optional {
		t.Errorf("ro optional bind = %+v", m)
	}
	if m, _ := find(p, "/dev"); m.NoDev || m.NoSuid || m.Why != "default" {
		t.Errorf("/dev must keep its devices: %+v", m)
	}
	if m, _ := find(p, "/etc/passwd"); !m.ReadOnly || !m.Optional || m.Why != "identity" {
		t.Errorf("identity = %+v", m)
	}
}

func TestPlanTreeBindOverridesSiteBind(t *testing.T) {
	p := build(t, request(t, "suid"))
	if m, _ := find(p, "/scratch"); !m.ReadOnly || m.Source != "/global/scratch" {
		t.Errorf("tree bind = %+v", m)
	}
	if usr, _ := find(p, "/usr"); usr.NoSuid {
		t.Error("setuid = allow must mount the tree without nosuid")
	}
	if p.Creds.NoNewPrivs || !p.Creds.KeepBounding {
		t.Errorf("setuid = allow must not set no_new_privs and must keep the bounding set: %+v", p.Creds)
	}
}

func TestPlanCredentialsAreTheCallers(t *testing.T) {
	p := build(t, request(t, "el7"))
	want := spec.Credentials{UID: 1000, GID: 100, Groups: []int{100, 27}, NoNewPrivs: true}
	if !reflect.DeepEqual(p.Creds, want) {
		t.Errorf("creds = %+v, want %+v", p.Creds, want)
	}
	r := request(t, "el7")
	r.Caller.UID = 0
	if p := build(t, r); !p.Creds.KeepCaps {
		t.Error("a root caller keeps root's capabilities")
	}
}

func TestPlanExecKeepsEnvironmentSetsChos(t *testing.T) {
	p := build(t, request(t, "el7"))
	want := []string{"PATH=/usr/bin:/bin:/.chos/bin", "FOO=bar", "TERM=xterm", "HOME=/elsewhere", "CHOS=el7"}
	if !reflect.DeepEqual(p.Env, want) {
		t.Errorf("env = %v, want %v", p.Env, want)
	}
	if p.Path != "ls" || !reflect.DeepEqual(p.Argv, []string{"ls", "-l"}) || p.Dir != "/home/alice/run" || p.DirFallback != nil {
		t.Errorf("exec = %q %q in %s (fallback %v)", p.Path, p.Argv, p.Dir, p.DirFallback)
	}
}

func TestPlanHostRunsWithoutNamespace(t *testing.T) {
	r := request(t, "local")
	r.Caller.Env = []string{"PATH=/usr/bin:/.chos/bin", "CHOS=el7"}
	p := build(t, r)
	if !p.Host || len(p.Mounts) != 0 || p.Creds.NoNewPrivs {
		t.Errorf("host plan = %+v", p)
	}
	if !reflect.DeepEqual(p.Env, []string{"PATH=/usr/bin", "CHOS=local"}) {
		t.Errorf("env = %v (chos's own PATH entry is dropped on the host)", p.Env)
	}
}

func TestPlanLoginShellCleansEnvironment(t *testing.T) {
	r := request(t, "el7")
	r.Login, r.Argv, r.ShellInTree = true, nil, true
	r.TreeConf = &config.File{Env: []string{"TERM", "PATH", "HOME"}, Beh: []string{}}
	p := build(t, r)
	want := []string{"CHOS=el7", "HOME=/home/alice", "LOGNAME=alice", "PATH=/usr/local/bin:/usr/bin:/bin:/.chos/bin",
		"SHELL=/bin/bash", "TERM=xterm", "USER=alice"}
	if !reflect.DeepEqual(p.Env, want) {
		t.Errorf("env = %v\nwant  %v", p.Env, want)
	}
	if !reflect.DeepEqual(p.DirFallback, []string{"/home/alice", "/"}) {
		t.Errorf("fallback = %v", p.DirFallback)
	}
}

func TestPlanLoginShellArgv(t *testing.T) {
	cases := []struct {
		shell   string
		inTree  bool
		beh     []string
		path    string
		argv    []string
		warning bool
	}{
		{"/bin/bash", true, nil, "/bin/bash", []string{"-bash"}, false},
		{"/bin/bash", true, []string{"BASHLOGIN"}, "/bin/bash", []string{"bash", "-l"}, false},
		{"/bin/tcsh", true, nil, "/bin/tcsh", []string{"tcsh", "-l"}, false},
		{"/usr/bin/csh", true, nil, "/usr/bin/csh", []string{"csh", "-l"}, false},
		{"/usr/bin/zsh", true, nil, "/usr/bin/zsh", []string{"-zsh"}, false},
		{"/usr/bin/fish", false, nil, "/bin/sh", []string{"-sh"}, true},
	}
	for _, c := range cases {
		r := request(t, "el7")
		r.Login, r.Argv, r.ShellInTree = true, nil, c.inTree
		r.Caller.Shell = c.shell
		r.TreeConf = &config.File{Beh: c.beh}
		p, notes, err := Build(r)
		if err != nil {
			t.Fatal(err)
		}
		if p.Path != c.path || !reflect.DeepEqual(p.Argv, c.argv) || (len(notes) > 0) != c.warning {
			t.Errorf("%s %v: got %s %q notes %v", c.shell, c.beh, p.Path, p.Argv, notes)
		}
		for _, n := range notes {
			if !n.Warning {
				t.Errorf("a missing shell is a note, not a warning: %v", n)
			}
		}
	}
}

func TestPlanLoginShellWithoutTreeConfKeepsBuiltInList(t *testing.T) {
	r := request(t, "el7")
	r.Login, r.Argv, r.ShellInTree = true, nil, true
	r.Caller.Env = append(r.Caller.Env, "SSH_TTY=/dev/pts/1", "LD_LIBRARY_PATH=/opt/lib")
	p := build(t, r)
	if !slices.Contains(p.Env, "SSH_TTY=/dev/pts/1") {
		t.Errorf("built-in %%ENV list not applied: %v", p.Env)
	}
	for _, kv := range p.Env {
		if strings.HasPrefix(kv, "LD_LIBRARY_PATH=") || strings.HasPrefix(kv, "FOO=") {
			t.Errorf("%s kept in a login shell", kv)
		}
	}
}

func TestPlanPrints(t *testing.T) {
	s := build(t, request(t, "el7")).String()
	for _, want := range []string{"tree      el7 (/os/el7), assembled at /chos", "bind      /os/el7/usr -> /usr  [rec,ro,nosuid,nodev,nofollow]  (tree)",
		"pivot", "identity  uid=1000 gid=100 groups=100,27 capabilities=none no_new_privs=true", `exec      ls ["ls" "-l"]`} {
		if !strings.Contains(s, want) {
			t.Errorf("plan output lacks %q:\n%s", want, s)
		}
	}
}

func TestPlanFromInsideViewTakesHostPathsBelowHostDir(t *testing.T) {
	r := request(t, "el7")
	r.HostPrefix, r.Root = HostDir, ViewDir
	p := build(t, r)
	for target, source := range map[string]string{"/.chos/host": "/.chos/host", "/usr": "/.chos/host/os/el7/usr",
		"/dev": "/.chos/host/dev", "/etc/passwd": "/.chos/host/etc/passwd", "/.chos/bin/chos": "/usr/bin/chos"} {
		if m, _ := find(p, target); m.Source != source {
			t.Errorf("%s: source %q, want %q", target, m.Source, source)
		}
	}
	if p.Root != ViewDir {
		t.Errorf("root = %s", p.Root)
	}
}

func TestPlanBackToHostFromInsideViewBindsHostRoot(t *testing.T) {
	r := request(t, "local")
	r.HostPrefix, r.Root = HostDir, ViewDir
	p := build(t, r)
	if p.Host || p.RootSource != HostDir || len(p.Mounts) != 0 || p.Tree != "local" {
		t.Errorf("plan = %+v", p)
	}
}

// Inside a tree, chos's setuid bit gives root only where the tree's own
// setuid programs do: the bind of chos is nosuid unless setuid = allow.
func TestPlanBindsChosNosuidUnlessTheTreeAllowsSetuid(t *testing.T) {
	for tree, nosuid := range map[string]bool{"el7": true, "suid": false} {
		m, ok := find(build(t, request(t, tree)), path.Join(SelfDir, "chos"))
		if !ok || m.Source != "/usr/bin/chos" || m.SameFileAs != spec.SelfExe || m.NoSuid != nosuid || !m.NoDev || !m.ReadOnly {
			t.Errorf("tree %s: chos is bound %+v, want read-only, nodev, nosuid %v", tree, m, nosuid)
		}
	}
}

// A privileged chos started inside a view works from the host's root: host
// paths are plain; going back to the host binds that root; every view it
// builds leaves the outer view first. Without FromView (the host itself,
// or a user-namespace chos reading through HostDir), neither.
func TestPlanFromAViewAtTheHostsRoot(t *testing.T) {
	r := request(t, "el7")
	r.FromView = true
	p := build(t, r)
	if m, _ := find(p, "/usr"); m.Source != "/os/el7/usr" || p.OuterHost != HostDir || p.Root != "/chos" {
		t.Errorf("from a view, at the host's root: /usr from %q, outer host %q, root %q", m.Source, p.OuterHost, p.Root)
	}
	r = request(t, "local")
	r.FromView = true
	if p := build(t, r); p.Host || p.RootSource != "/" || p.OuterHost != HostDir || len(p.Mounts) != 0 {
		t.Errorf("back to the host from a view, at the host's root: %+v", p.View)
	}
	for name, r := range map[string]Request{"el7 on the host": request(t, "el7"), "local on the host": request(t, "local")} {
		if p := build(t, r); p.OuterHost != "" || p.RootSource != "" {
			t.Errorf("control: %s: outer host %q, root source %q", name, p.OuterHost, p.RootSource)
		}
	}
	r = request(t, "el7")
	r.HostPrefix, r.Root = HostDir, ViewDir
	if p := build(t, r); p.OuterHost != "" {
		t.Errorf("control: from a view, through %s (user namespace): outer host %q", HostDir, p.OuterHost)
	}
}

// The plan's view is exactly the caller-independent view, whoever launches:
// the cache key (computed from a View) cannot depend on the caller.
func TestPlanViewIsTheSameForEveryCaller(t *testing.T) {
	a := request(t, "el7")
	b := request(t, "el7")
	b.Caller = Caller{UID: 2000, GID: 2000, Groups: []int{2000}, Name: "bob", Home: "/home/bob", Cwd: "/home/bob", Env: []string{"X=1"}}
	b.Argv = []string{"id"}
	va, vb := build(t, a).View, build(t, b).View
	if !reflect.DeepEqual(va, vb) || !reflect.DeepEqual(va, View(a.ViewRequest)) {
		t.Errorf("the view of el7 must not depend on who launches it:\n%+v\n%+v", va, vb)
	}
	if CacheKey("cfg", &va, nil) != CacheKey("cfg", &vb, nil) {
		t.Error("the cache keys differ")
	}
}

func TestCacheKeyChangesWithWhatTheViewIsBuiltFrom(t *testing.T) {
	r := request(t, "el7")
	p := build(t, r)
	stamps := []string{"/os/el7 1:2", "/os/el7/usr 1:5"}
	base := CacheKey("cfg", &p.View, stamps)
	moreMounts := p.View
	moreMounts.Mounts = append(append([]spec.Mount(nil), p.Mounts...), spec.Mount{Op: spec.OpBind, Source: "/x", Target: "/x"})
	for name, key := range map[string]string{
		"configuration":        CacheKey("cfg2", &p.View, stamps),
		"replaced tree":        CacheKey("cfg", &p.View, []string{"/os/el7 1:3", "/os/el7/usr 1:5"}),
		"replaced entry":       CacheKey("cfg", &p.View, []string{"/os/el7 1:2", "/os/el7/usr 9:9"}),
		"bind list":            CacheKey("cfg", &moreMounts, stamps),
		"replaced passwd file": CacheKey("cfg", &p.View, append(append([]string(nil), stamps...), "/etc/passwd 1:7")),
	} {
		if key == base {
			t.Errorf("a changed %s must change the key", name)
		}
	}
}

// A PATH within the kernel's limit for one variable stays within it: chos
// leaves it unchanged (and says so under -v) rather than make the command
// unexecutable (E2BIG).
func TestPlanLongPathLeftUnchanged(t *testing.T) {
	head := "PATH=/usr/bin:"
	for _, tc := range []struct {
		name   string
		length int // of PATH=..., without the NUL
		self   bool
	}{
		{"fits exactly", MaxArgStrlen - 1 - len(":"+SelfDir), true},
		{"one byte too long", MaxArgStrlen - len(":"+SelfDir), false},
		{"at the kernel's limit already", MaxArgStrlen - 1, false},
		{"a value of 131,060 bytes", len("PATH=") + 131060, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := request(t, "el7")
			path := head + strings.Repeat("x", tc.length-len(head))
			r.Caller.Env = []string{path, "FOO=bar"}
			p, notes, err := Build(r)
			if err != nil {
				t.Fatal(err)
			}
			want := path
			if tc.self {
				want = path + ":" + SelfDir
			}
			if p.Env[0] != want || len(p.Env[0])+1 > MaxArgStrlen {
				t.Errorf("PATH of %d bytes became %d bytes, want %d", len(path), len(p.Env[0]), len(want))
			}
			if said := len(notes) == 1 && !notes[0].Warning && strings.Contains(notes[0].Text, "PATH left unchanged"); said == tc.self {
				t.Errorf("notes %+v: a note (for -v) says PATH was left unchanged: %v, want %v", notes, said, !tc.self)
			}
			if job := JobPath(strings.TrimPrefix(path, "PATH="), r.Tree); "PATH="+job != want {
				t.Errorf("JobPath gives %d bytes, want %d", len(job)+5, len(want))
			}
		})
	}
}

// What the cache key stamps by device and inode is chosen by a step's
// origin, never by its text for people.
func TestCacheStampsAreChosenByOrigin(t *testing.T) {
	for _, c := range []struct {
		name string
		m    spec.Mount
		want bool
	}{
		{"tree entry", spec.Mount{Op: spec.OpBind, Source: "/os/el7/usr", Origin: spec.OriginTree, Why: "tree"}, true},
		{"identity file", spec.Mount{Op: spec.OpBind, Source: "/etc/passwd", Origin: spec.OriginIdentity}, true},
		{"chos itself", spec.Mount{Op: spec.OpBind, Source: "/usr/bin/chos", Origin: spec.OriginSelf}, true},
		{"a site bind whose text says tree", spec.Mount{Op: spec.OpBind, Source: "/scratch", Origin: spec.OriginBind, Why: "tree"}, false},
		{"a tree entry from inside an image", spec.Mount{Op: spec.OpBind, Source: ImageDir + "/usr", InView: true, Origin: spec.OriginTree}, false},
		{"a tree's link", spec.Mount{Op: spec.OpSymlink, Source: "usr/bin", Origin: spec.OriginTree}, false},
		{"the host root", spec.Mount{Op: spec.OpBind, Source: "/", Origin: spec.OriginHostRoot}, false},
	} {
		if got := Stamped(c.m); got != c.want {
			t.Errorf("%s: stamped %v, want %v", c.name, got, c.want)
		}
	}
	// Every step of a plan has an origin.
	for _, m := range build(t, request(t, "el7")).Mounts {
		if m.Origin == "" {
			t.Errorf("a step without origin: %+v", m)
		}
	}
}

// A host command is a link to chos named after it in the view's chos
// directory, which is on PATH (last); without chos in the view, none.
func TestPlanLinksHostCommandsToChos(t *testing.T) {
	r := request(t, "el7")
	p := build(t, r)
	for _, name := range []string{"srun", "squeue"} {
		m, ok := find(p, SelfDir+"/"+name)
		if !ok || m.Op != spec.OpSymlink || m.Source != "chos" || !strings.HasPrefix(m.Why, "host command /") {
			t.Errorf("%s/%s: %+v (found %v), want a link to chos", SelfDir, name, m, ok)
		}
	}
	if m, ok := find(p, SelfDir+"/sbatch"); ok {
		t.Errorf("a link no %%HOSTCMD line names: %+v", m)
	}
	r.Self = ""
	if m, ok := find(build(t, r), SelfDir+"/srun"); ok {
		t.Errorf("a view without chos links srun to it: %+v", m)
	}
}
