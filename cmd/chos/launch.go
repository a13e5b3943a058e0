package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/build"
	"github.com/chos-hpc/chos/pkg/config"
	"github.com/chos-hpc/chos/pkg/hostexec"
	"github.com/chos-hpc/chos/pkg/identity"
	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/plan"
	"github.com/chos-hpc/chos/pkg/trust"
)

// state is what chos knows of its own invocation. mode is decided once, from
// the ids chos was executed with, and never re-derived later.
type state struct {
	mode nsroot.Mode
	// userns: trees are entered through user namespaces (no setuid root,
	// or forced); personal trees are then available. Unlike mode, dropping
	// root for a command that needs none does not change it.
	userns bool
	// dropped: chos ran setuid root and gave root up (dropPrivilege).
	dropped bool
	// rootHelper: `chos prepare` run by root for pam_chos or chos_spank,
	// whose flags (user, job, service) may then be believed.
	rootHelper bool
	uid, gid   int // the caller's real ids (or, for `chos prepare`, the user's)
	// groups are the caller's supplementary groups, from the kernel (or,
	// for `chos prepare`, as root passed them); read by userGroups.
	groups     []int
	configFlag string
	verbose    bool
	// hostPrefix is where the host's root is seen: "" on the host,
	// plan.HostDir inside a view.
	hostPrefix string
	// fresh launches in a private namespace, not the cached one.
	fresh bool
	// acct is the caller's passwd entry, looked up once (see account).
	acct    *identity.User
	acctErr error
	// resolver is the name service (see names).
	resolver *identity.Resolver
	// nsCacheDir is this mount namespace's cache directory (see cacheDir).
	nsCacheDir string
	adm        adminState // what the audit line and the cache collection need
}

func newState() *state {
	st := &state{uid: os.Getuid(), gid: os.Getgid()}
	if os.Geteuid() == 0 {
		st.mode = nsroot.Privileged
	} else {
		st.userns = true
	}
	// Only chos puts this directory at the root of a mount namespace: / of
	// the host and of every view is root's and read-only to users.
	if fi, err := os.Lstat(plan.HostDir); err == nil && fi.IsDir() {
		st.hostPrefix = plan.HostDir
		// Images are read with the host's squashfs-tools, which the tree
		// may lack.
		ostree.UnsquashfsCommand = func(args ...string) ([]string, error) {
			return hostexec.Argv(plan.HostDir, plan.HostDir, ostree.Unsquashfs, args...)
		}
	}
	return st
}

// hostPath is a host path as this process reaches it.
func (st *state) hostPath(p string) string { return filepath.Join("/", st.hostPrefix, p) }

// viewRoot is where a view is assembled: the host's /chos, or an empty
// directory that every view has, when chos runs inside one.
func (st *state) viewRoot() string {
	if st.hostPrefix != "" {
		return plan.ViewDir
	}
	return build.ChosRoot
}

// setuid says whether chos holds root only through its setuid bit: then
// everything it acts on must come from root, and the user's input is only a
// lookup key.
func (st *state) setuid() bool { return st.mode == nsroot.Privileged && st.uid != 0 }

// dropPrivilege gives up root for good, for the commands that need none.
func (st *state) dropPrivilege() error {
	if !st.setuid() {
		return nil
	}
	if err := nsroot.DropPrivilege(st.uid); err != nil {
		return fail(statusFailed, err)
	}
	st.mode, st.dropped = nsroot.Unprivileged, true
	return nil
}

// setMode applies a forced mode. Forcing can only give privilege up: userns
// from a setuid binary drops root for good; setuid without it is an error.
func (st *state) setMode(mode string) error {
	switch mode {
	case "", "auto":
		return nil
	case "userns":
		if err := st.dropPrivilege(); err != nil {
			return err
		}
		st.mode, st.userns = nsroot.Unprivileged, true
		return nil
	case "setuid":
		if st.userns {
			return fail(statusFailed, fmt.Errorf("--mode=setuid: this chos is not running setuid root (see `chos check`)"))
		}
		return nil
	}
	return fail(statusUsage, fmt.Errorf("unknown mode %q (auto, setuid or userns)", mode))
}

// asCaller runs a lookup with the caller's own rights.
func (st *state) asCaller(fn func() error) error {
	if !st.setuid() {
		return fn()
	}
	groups, err := st.userGroups()
	if err != nil {
		return err
	}
	return nsroot.AsUser(st.uid, st.gid, groups, fn)
}

// userGroups are the caller's supplementary groups: the kernel's, which the
// login gave and newgrp or sg may have changed since.
func (st *state) userGroups() ([]int, error) {
	if st.groups == nil {
		groups, err := unix.Getgroups()
		if err != nil {
			return nil, fmt.Errorf("reading your groups: %w", err)
		}
		st.groups = append([]int{}, groups...)
	}
	return st.groups, nil
}

// configPaths says which configuration to read, refusing an alternative one
// from anyone but root.
func (st *state) configPaths() (config.Paths, error) {
	p := config.DefaultPaths(st.hostPath(build.SysconfDir))
	if st.configFlag == "" {
		return p, nil
	}
	if st.uid != 0 {
		return p, fmt.Errorf("--config and CHOS_CONFIG are honoured only for root; remove them to use %s", p.Main)
	}
	return config.Paths{Main: st.configFlag, DropIns: st.configFlag + ".d", Explicit: true}, nil
}

func (st *state) catalog() (*ostree.Catalog, error) {
	paths, err := st.configPaths()
	if err != nil {
		return nil, err
	}
	// Installed setuid, the configuration is root's to vouch for even in a
	// command that has given root up: `chos list` must not show what
	// `chos exec` would refuse.
	set, err := config.Load(paths, st.setuid() || st.dropped)
	if err != nil {
		return nil, err
	}
	st.adm.cfg = set
	if st.userns {
		// Personal trees only ever run with the user's own rights.
		if set.Personal, err = config.LoadPersonal(st.personalPath()); err != nil {
			return nil, err
		}
	}
	st.adm.cat, err = ostree.NewCatalog(set)
	return st.adm.cat, err
}

// personalPath is the caller's file of personal trees.
func (st *state) personalPath() string {
	u, _ := st.account()
	home := u.Home
	if home == "" {
		home = os.Getenv("HOME") // (personal trees are read with the user's own rights)
	}
	return config.PersonalPath(home, os.Getenv("XDG_CONFIG_HOME"))
}

// explainPersonal turns "unknown tree" into a clearer refusal when the name
// is one of the caller's personal trees, which setuid chos never uses.
func (st *state) explainPersonal(err error) error {
	var ue *ostree.UnknownTreeError
	if st.userns || !errors.As(err, &ue) {
		return err
	}
	var at string
	st.asCaller(func() error {
		f, perr := config.LoadPersonal(st.personalPath())
		if perr != nil || f == nil {
			return perr
		}
		for _, a := range f.Shells {
			if a.Name == ue.Name {
				at = a.At.String()
			}
		}
		return nil
	})
	if at == "" {
		return err
	}
	return fmt.Errorf("tree %q is a personal tree (%s): the setuid chos never uses personal trees; run it with --mode=userns", ue.Name, at)
}

// launch runs argv (or the login shell) in the named or selected tree and
// returns only on failure, with the exit status to use.
func (st *state) launch(name string, argv []string, login bool) int {
	p, err := st.prepare(name, argv, login)
	if err != nil {
		st.auditRefusal(name, argv, login, err)
		fmt.Fprintln(os.Stderr, "chos: "+err.Error())
		return statusFailed
	}
	return st.launchPlan(p, login)
}

// launchPlan runs a plan (notes shown for login shells) and returns only
// on failure, with the exit status to use.
func (st *state) launchPlan(p *nsroot.Plan, login bool) int {
	st.atLaunch(p, login)
	if st.verbose || login {
		for _, n := range p.Notes {
			fmt.Fprintln(os.Stderr, "chos: warning: "+n)
		}
	}
	if st.mode == nsroot.Unprivileged && !p.Host {
		// Without root (from inside a tree, where no_new_privs keeps the
		// setuid bit from working): a user namespace of the caller's own.
		status, err := nsroot.RunInUserNS(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, "chos: "+err.Error())
		}
		return status
	}
	lerr := nsroot.Launch(p, st.mode)
	fmt.Fprintln(os.Stderr, "chos: "+lerr.Error())
	return lerr.Status
}

// prepare computes the plan of a launch: configuration, selection, access,
// and what the plan needs to know of the tree and the caller.
func (st *state) prepare(name string, argv []string, login bool) (*nsroot.Plan, error) {
	cat, err := st.catalog()
	if err != nil {
		return nil, err
	}
	who, err := st.caller()
	if err != nil {
		return nil, err
	}
	sel, err := st.choose(cat, ostree.Inputs{Argument: name, Env: os.Getenv("CHOS")}, who)
	if err != nil {
		return nil, err
	}
	return st.planFor(cat, who, sel.Tree, argv, login)
}

// planFor computes the plan of a launch of argv (or the login shell) in
// tree t, selected for who.
func (st *state) planFor(cat *ostree.Catalog, who plan.Caller, t *ostree.Tree, argv []string, login bool) (*nsroot.Plan, error) {
	vr, err := st.viewRequest(cat, t)
	if err != nil {
		return nil, err
	}
	req := plan.Request{ViewRequest: vr, Caller: who, Argv: argv, Login: login}
	treeRoot := st.hostPath(t.Path)
	if login {
		err := st.asCaller(func() error {
			if who.Shell != "" {
				_, serr := ostree.StatInTree(treeRoot, who.Shell)
				req.ShellInTree = serr == nil
			}
			data, err := ostree.ReadInTree(treeRoot, "/etc/chos.conf")
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("reading %s/etc/chos.conf: %w", t.Path, err)
			}
			req.TreeConf, err = config.Parse(filepath.Join(t.Path, "etc/chos.conf"), data)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	p, err := plan.Build(req)
	if err != nil {
		return nil, err
	}
	u, _ := st.account() // (caller() returned its error)
	if p.Identity, err = st.identityLayer(t, u, append([]int{who.GID}, who.Groups...)); err != nil {
		return nil, fmt.Errorf("naming you inside tree %s: %w", t.Name, err)
	}
	p.Verbose = st.verbose
	if !st.fresh && st.userns {
		p.Cache = st.keptView(cat, t, &p.View, p.Identity)
	} else if !st.fresh {
		p.Cache = st.cacheFor(cat, t, &p.View)
	}
	if plan.DirShowsHost(&p.View, st.hostPrefix, p.Dir) {
		if p.DirID, err = nsroot.CwdID(); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// choose applies the selection order (reading ~/.chos, with the user's
// rights, only when nothing before it selects) and checks that the user
// may use the tree selected.
func (st *state) choose(cat *ostree.Catalog, in ostree.Inputs, who plan.Caller) (ostree.Selection, error) {
	if in.Argument == "" && in.Env == "" && !in.Batch {
		in.Dotfile = st.readDotfile(who.Home)
	}
	sel, err := cat.Select(in)
	st.adm.selected = sel // (for the audit line, also of a refusal)
	if err != nil {
		return sel, st.explainPersonal(err)
	}
	t := sel.Tree
	ok, err := st.allows(t, who.Name, append([]int{who.GID}, who.Groups...))
	if err != nil {
		return sel, fmt.Errorf("checking who may use tree %s: %w", t.Name, err)
	}
	if !ok {
		return sel, &forbiddenError{t}
	}
	return sel, st.mayRead(t)
}

// mayRead says whether the caller may read tree t's root (a directory, or
// an image file) with their own ids: access(2) with the effective ids,
// switched to the caller's (ACLs and every directory on the way count).
// chos lists and binds it as root, so without this a tree only some users
// can read would be open to every user of chos; CHOS reached trees
// through the caller's own path lookups.
func (st *state) mayRead(t *ostree.Tree) error {
	if t.Host || st.uid == 0 {
		return nil
	}
	p := st.hostPath(t.Path)
	mode := uint32(unix.R_OK | unix.X_OK)
	if ostree.IsImage(p) {
		mode = unix.R_OK
	}
	err := st.asCaller(func() error { return unix.Faccessat(unix.AT_FDCWD, p, mode, unix.AT_EACCESS) })
	if errors.Is(err, unix.EACCES) {
		return &unreadableError{t, err}
	}
	return nil // (a missing tree is reported where the view is made, with its line)
}

// viewRequest is what a plan needs to know of a tree's view: the same for
// every caller, so `chos cache` computes keys from it too.
func (st *state) viewRequest(cat *ostree.Catalog, t *ostree.Tree) (plan.ViewRequest, error) {
	req := plan.ViewRequest{Catalog: cat, Tree: t, Root: st.viewRoot(), HostPrefix: st.hostPrefix}
	if t.Host {
		return req, nil
	}
	var err error
	if root := st.hostPath(t.Path); ostree.IsImage(root) {
		err = st.imageView(&req, root)
	} else {
		req.Entries, err = ostree.Entries(root)
	}
	if err != nil {
		return req, fmt.Errorf("tree %s (%s): %w", t.Name, t.At, err)
	}
	// Bound by path (the executable's own mount is the host namespace's);
	// the executor checks it is still this binary.
	if req.Self, err = os.Executable(); err != nil {
		return req, fmt.Errorf("finding the chos binary: %w", err)
	}
	return req, nil
}

// cacheFor names the cached namespace of a view, or nil where none is
// kept: without root, from inside a view, for the host and for trees with
// `cache = no`. The key depends on the view only, never on the caller.
func (st *state) cacheFor(cat *ostree.Catalog, t *ostree.Tree, v *nsroot.View) *nsroot.Cache {
	if st.userns || t.Host || t.NoCache || st.hostPrefix != "" {
		return nil
	}
	dir, err := st.cacheDir()
	if err != nil {
		return nil
	}
	return &nsroot.Cache{Dir: dir, Tree: t.Name,
		Key: plan.CacheKey(cat.Digest, v, st.viewStamps(t, v))}
}

// viewStamps are the device and inode of what the view shows by
// reference: a replaced tree, top-level directory, identity file or binary
// changes the key.
func (st *state) viewStamps(t *ostree.Tree, v *nsroot.View) []string {
	stamps := append([]string{ostree.Stamp(t.Path)}, st.imageStamps(t)...)
	for _, m := range v.Mounts {
		// (A top-level link's text is already part of its step.)
		if m.Op == nsroot.OpBind && !m.InView && (m.Why == plan.WhyTree || m.Why == plan.WhyIdentity || m.Why == plan.WhySelf) {
			stamps = append(stamps, ostree.Stamp(m.Source))
		}
	}
	return stamps
}

// keptView names the view that a keeper of the caller's keeps for their
// user-namespace launches (nsroot.RunInUserNS), or nil where none is kept:
// for the host, trees with `cache = no`, and from inside a view. Its key
// covers what a setuid view's does and, the view being the caller's own,
// their ids, their identity layer, and the user and mount namespaces the
// view is made from (the keeper pins the mount namespace, so that its
// inode number is not reused while the view is kept).
func (st *state) keptView(cat *ostree.Catalog, t *ostree.Tree, v *nsroot.View, id *nsroot.Identity) *nsroot.Cache {
	if t.Host || t.NoCache || st.hostPrefix != "" {
		return nil
	}
	mnt, err1 := os.Readlink("/proc/thread-self/ns/mnt")
	user, err2 := os.Readlink("/proc/thread-self/ns/user")
	if err1 != nil || err2 != nil {
		return nil
	}
	stamps := append(st.viewStamps(t, v), "uid "+strconv.Itoa(st.uid), "gid "+strconv.Itoa(st.gid), mnt, user)
	if id != nil {
		stamps = append(stamps, "identity "+id.Key)
	}
	return &nsroot.Cache{Tree: t.Name, Key: plan.CacheKey(cat.Digest, v, stamps)}
}

// readDotfile reads ~/.chos with the caller's own rights; a missing or
// unreadable file is no selection.
func (st *state) readDotfile(home string) string {
	if home == "" {
		return ""
	}
	var content string
	st.asCaller(func() error {
		f, err := os.Open(filepath.Join(home, ".chos"))
		if err != nil {
			return err
		}
		defer f.Close()
		buf := make([]byte, 4096) // the first line is all that counts
		n, _ := f.Read(buf)
		content = string(buf[:n])
		return nil
	})
	return content
}

// caller describes the invoking user. Names, home and shell come from the
// host's passwd; the environment only fills in what passwd does not say and
// is never used to decide access.
func (st *state) caller() (plan.Caller, error) {
	c := plan.Caller{UID: st.uid, GID: st.gid, Env: callerEnv()}
	groups, err := st.userGroups()
	if err != nil {
		return c, err
	}
	c.Groups = groups
	if c.Cwd, err = unix.Getwd(); err != nil {
		return c, fmt.Errorf("reading the working directory: %w", err)
	}
	u, err := st.account()
	if err != nil {
		return c, err
	}
	c.Name, c.Home, c.Shell = u.Name, u.Home, u.Shell
	return c, nil
}

// callerEnv is the environment chos was started with. Go's runtime, in a
// setuid program, rewrites its own copy (GOTRACEBACK=none), which must not
// reach the command: the kernel's copy is the caller's.
func callerEnv() []string {
	data, err := os.ReadFile("/proc/self/environ")
	if err != nil {
		return os.Environ()
	}
	if len(data) == 0 {
		return nil
	}
	// Every entry, empty ones too: a NUL ends each.
	return strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00")
}

// unreadableError is a tree the caller cannot read with their own ids.
type unreadableError struct {
	t   *ostree.Tree
	err error
}

func (e *unreadableError) Error() string {
	return "you may not read tree " + e.t.Name + " (" + e.t.Path + ": " + e.err.Error() + ")"
}

// forbiddenError is a tree's users = and groups = refusing the caller.
type forbiddenError struct{ t *ostree.Tree }

func (e *forbiddenError) Error() string {
	return "you may not use tree " + e.t.Name + " (" + restriction(e.t) + ")"
}

// restriction says whom a tree is for and where the configuration says so.
func restriction(t *ostree.Tree) string {
	var who []string
	if len(t.Users) > 0 {
		who = append(who, "users "+strings.Join(t.Users, ", "))
	}
	if len(t.Groups) > 0 {
		who = append(who, "groups "+strings.Join(t.Groups, ", "))
	}
	return "restricted to " + strings.Join(who, " and ") + " by " + positions(t.AccessRules())
}

// treeProblem says why tree t cannot be used here, or nil: ostree.Problem,
// and for the setuid chos a path someone other than root could redirect,
// which every launch would refuse.
func (st *state) treeProblem(t *ostree.Tree) error {
	if err := ostree.Problem(t, st.hostPrefix); err != nil || t.Host || st.userns {
		return err
	}
	if err := trust.CheckPath(st.hostPath(t.Path)); trust.IsUntrusted(err) {
		return fmt.Errorf("%w: the setuid chos refuses it", err)
	}
	return nil
}
