package launch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/config"
	"github.com/chos-hpc/chos/pkg/devices"
	"github.com/chos-hpc/chos/pkg/identity"
	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/plan"
	"github.com/chos-hpc/chos/pkg/spec"
	"github.com/chos-hpc/chos/pkg/trust"
)

// A machine made in a test's directory, so that every decision is made
// without root: the configuration and the trees below root, the users'
// homes, a name service that also knows users and groups of a directory
// (LDAP, sssd) that the files do not, and a Machine that records what it
// is asked to do with the caller's rights instead of switching ids.

// site is the system configuration of the test host.
const site = `%SHELLS
el7:/os/el7
centos7:/os/el7
default:/os/el7
deb:/os/deb
only:/os/only
suid:/os/suid
nocache:/os/nocache
local:/
%TREE only
users = alice 1003
groups = wheel 4242
%TREE suid
setuid = allow
%TREE nocache
cache = no
`

// Users of the test host: in its files (root, alice, bob, carol, gina), or
// known only to the directory (dave, and the group wheel of dave and bob).
const (
	uidAlice = 1000
	uidBob   = 1001
	uidCarol = 1003
	uidGina  = 1005
	uidDave  = 5000
	gidStaff = 100
	gidWheel = 4000
)

type host struct {
	t     *testing.T
	root  string // the host's / (and the users' homes, below it)
	names *directory
	m     *machine
}

func newHost(t *testing.T, conf string) *host {
	t.Helper()
	h := &host{t: t, root: t.TempDir(), names: newDirectory(), m: &machine{cacheDir: "/run/chos/ns/4026531841"}}
	h.m.names = h.names
	for _, u := range []identity.User{
		{Name: "alice", UID: uidAlice, GID: gidStaff, Home: h.home("alice"), Shell: "/bin/bash"},
		{Name: "bob", UID: uidBob, GID: gidStaff, Home: h.home("bob"), Shell: "/bin/bash"},
		{Name: "carol", UID: uidCarol, GID: gidStaff, Home: h.home("carol"), Shell: "/bin/zsh"},
		{Name: "gina", UID: uidGina, GID: gidStaff, Home: h.home("gina"), Shell: "/bin/bash"},
		// in the directory only
		{Name: "dave", UID: uidDave, GID: gidWheel, Home: h.home("dave"), Shell: "/bin/bash"},
	} {
		h.names.users[u.UID] = u
	}
	h.write("/etc/chos", conf)
	h.write("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"+
		fmt.Sprintf("alice:x:%d:%d::%s:/bin/bash\n", uidAlice, gidStaff, h.home("alice"))+
		fmt.Sprintf("bob:x:%d:%d::%s:/bin/bash\n", uidBob, gidStaff, h.home("bob"))+
		fmt.Sprintf("carol:x:%d:%d::%s:/bin/zsh\n", uidCarol, gidStaff, h.home("carol"))+
		fmt.Sprintf("gina:x:%d:%d::%s:/bin/bash\n", uidGina, gidStaff, h.home("gina")))
	h.write("/etc/group", fmt.Sprintf("root:x:0:\nstaff:x:%d:\n", gidStaff))
	h.write("/usr/bin/chos", "")
	for _, tree := range []string{"el7", "deb", "only", "suid", "nocache"} {
		h.tree("/os/" + tree)
	}
	for _, u := range []string{"alice", "bob", "carol", "gina", "dave"} {
		must(t, os.MkdirAll(filepath.Join(h.home(u), "work"), 0o755))
	}
	return h
}

// tree makes a small OS tree at p: its own passwd and group, a shell.
func (h *host) tree(p string) {
	h.write(p+"/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n")
	h.write(p+"/etc/group", "root:x:0:\n")
	h.write(p+"/bin/sh", "")
	h.write(p+"/bin/bash", "")
	must(h.t, os.Chmod(filepath.Join(h.root, p, "bin/sh"), 0o755))
	must(h.t, os.Chmod(filepath.Join(h.root, p, "bin/bash"), 0o755))
	must(h.t, os.MkdirAll(filepath.Join(h.root, p, "usr"), 0o755))
	must(h.t, os.Symlink("usr/lib", filepath.Join(h.root, p, "lib")))
}

func (h *host) home(user string) string { return filepath.Join(h.root, "home", user) }

func (h *host) write(p, content string) {
	h.t.Helper()
	f := filepath.Join(h.root, p)
	must(h.t, os.MkdirAll(filepath.Dir(f), 0o755))
	must(h.t, os.WriteFile(f, []byte(content), 0o644))
}

// dotfile sets user's ~/.chos.
func (h *host) dotfile(user, content string) {
	h.t.Helper()
	must(h.t, os.WriteFile(filepath.Join(h.home(user), ".chos"), []byte(content), 0o644))
}

// Privileges an invocation starts with.
var (
	setuid   = Privilege{Root: true, Setuid: true}
	rootself = Privilege{Root: true}
	userns   = Privilege{UserNS: true}
)

// inv is an invocation of chos by uid, as New makes it: the kernel's ids,
// the environment (env: "KEY=VALUE" added), in the user's work directory.
func (h *host) inv(uid int, p Privilege, env ...string) Invocation {
	u := h.names.users[uid]
	groups := h.names.memberOf(u.Name)
	if uid == 0 {
		u.Home = "/root"
	}
	h.m.cwd = filepath.Join(u.Home, "work")
	return Invocation{
		Privilege: p,
		Caller:    plan.Caller{UID: uid, GID: u.GID, Groups: groups, Env: append([]string{"PATH=/usr/bin:/bin", "HOME=" + u.Home}, env...)},
		FSRoot:    h.root,
		Machine:   h.m,
		Names:     h.names,
	}
}

// directory is the name service: the host's files plus a directory.
type directory struct {
	users  map[int]identity.User
	groups []identity.Group
	// fails makes every lookup of this group's name fail (a server down).
	fails string
}

func newDirectory() *directory {
	return &directory{
		users: map[int]identity.User{
			0: {Name: "root", UID: 0, GID: 0, Home: "/root", Shell: "/bin/bash"},
		},
		groups: []identity.Group{
			{Name: "root", GID: 0}, {Name: "staff", GID: gidStaff},
			{Name: "wheel", GID: gidWheel, Members: []string{"dave", "bob"}},
		},
	}
}

func (d *directory) memberOf(user string) []int {
	var gids []int
	for _, g := range d.groups {
		if slices.Contains(g.Members, user) {
			gids = append(gids, g.GID)
		}
	}
	return gids
}

func (d *directory) UserByID(uid int) (identity.User, identity.Source, error) {
	if u, ok := d.users[uid]; ok {
		return u, identity.FromFiles, nil
	}
	return identity.User{}, "", fmt.Errorf("user %d: %w", uid, identity.ErrNotFound)
}

func (d *directory) GroupByName(name string) (identity.Group, identity.Source, error) {
	if name == d.fails {
		return identity.Group{}, "", &identity.TimeoutError{Query: "group " + name, By: identity.FromGetent}
	}
	for _, g := range d.groups {
		if g.Name == name {
			return g, identity.FromGetent, nil
		}
	}
	return identity.Group{}, "", fmt.Errorf("group %q: %w", name, identity.ErrNotFound)
}

func (d *directory) GroupsByID(gids []int) (map[int]identity.Group, error) {
	out := map[int]identity.Group{}
	for _, g := range d.groups {
		if slices.Contains(gids, g.GID) {
			out[g.GID] = g
		}
	}
	return out, nil
}

// machine records what it is asked to do with the caller's rights.
type machine struct {
	names    *directory
	cwd      string
	cacheDir string
	// unreadable paths: Access refuses them (EACCES).
	unreadable []string
	// unvouched paths: Vouched refuses them and what is below them (as
	// a group-writable directory would be).
	unvouched []string
	// asUser are the uids AsUser ran something as; requireRoot what
	// LoadConfig was asked; dropped the uid root was given up for (-1: not).
	asUser      []int
	requireRoot []bool
	dropped     []int
	// namesAsRoot: whether each name service made was root's.
	namesAsRoot []bool
	// userSpecs are CDI spec files a user owns (host paths): refused
	// where root must vouch for them. specsAsRoot records what SpecFiles
	// was asked.
	userSpecs   []string
	specsAsRoot []bool
	// enteredHost: the directories EnterHostRoot moved to.
	enteredHost []string
	// mntNS is the inode of this process's mount namespace ("" for one).
	mntNS string
}

func (m *machine) Names(root string, privileged bool) NameService {
	m.namesAsRoot = append(m.namesAsRoot, privileged)
	return m.names
}

func (m *machine) LoadConfig(p config.Paths, requireRoot bool) (*config.Set, error) {
	m.requireRoot = append(m.requireRoot, requireRoot)
	return config.Load(p, false) // (the test's files are not root's)
}

func (m *machine) AsUser(uid, gid int, groups []int, fn func() error) error {
	m.asUser = append(m.asUser, uid)
	return fn()
}

func (m *machine) Access(path string, mode uint32) error {
	for _, p := range m.unreadable {
		if path == p || strings.HasPrefix(path, p+"/") {
			return unix.EACCES
		}
	}
	_, err := os.Stat(path)
	return err
}

func (m *machine) Vouched(path string) error {
	for _, p := range m.unvouched {
		if path == p || strings.HasPrefix(path, p+"/") {
			return &trust.Error{Path: path, Component: p, Reason: "writable by group or others (mode 0775)"}
		}
	}
	return nil
}

func (m *machine) DropRoot(uid int) error {
	m.dropped = append(m.dropped, uid)
	return nil
}

func (m *machine) Getwd(*spec.Credentials) (string, error) { return m.cwd, nil }
func (m *machine) CwdID(*spec.Credentials) (*spec.FileID, error) {
	return &spec.FileID{Dev: 8, Ino: 42}, nil
}
func (m *machine) Executable() (string, error) { return "/usr/bin/chos", nil }
func (m *machine) CacheDir() (string, error)   { return m.cacheDir, nil }
func (m *machine) Namespaces() (string, string, error) {
	if m.mntNS == "" {
		return "mnt:[4026531841]", "user:[4026531837]", nil
	}
	return "mnt:[" + m.mntNS + "]", "user:[4026531837]", nil
}

func (m *machine) SpecFiles(dir string, requireRoot bool) ([]string, error) {
	m.specsAsRoot = append(m.specsAsRoot, requireRoot)
	files, err := devices.Specs([]string{dir}, false) // (the test's files are not root's)
	for _, f := range files {
		for _, u := range m.userSpecs {
			if requireRoot && strings.HasSuffix(f, u) {
				return nil, &devices.SpecError{Spec: f, Err: &trust.Error{Path: f, Component: f, Reason: "owned by uid 1000, not root"}}
			}
		}
	}
	return files, err
}

// chosOnHost is where EnterHostRoot finds chos on the host.
const chosOnHost = "/opt/site/bin/chos"

func (m *machine) EnterHostRoot(dir string) (nsroot.HostRoot, error) {
	m.enteredHost = append(m.enteredHost, dir)
	return nsroot.HostRoot{Cwd: m.cwd, Self: chosOnHost}, nil
}

// addUser adds a user to the directory, in groups.
func (h *host) addUser(u identity.User, groups ...string) {
	h.names.users[u.UID] = u
	for i, g := range h.names.groups {
		if slices.Contains(groups, g.Name) {
			h.names.groups[i].Members = append(g.Members, u.Name)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// errorAs says whether err is, or wraps, an E.
func errorAs[E error](err error) bool {
	var e E
	return errors.As(err, &e)
}

// identityUser is a passwd entry with a login shell the trees have.
func identityUser(name string, uid, gid int, home string) identity.User {
	return identity.User{Name: name, UID: uid, GID: gid, Home: home, Shell: "/bin/bash"}
}
