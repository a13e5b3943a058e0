// Package launch is chos's policy: who may use which tree, with which
// privilege, under which cache name, and what each entry path (the command
// line, `chos login`, the PAM module and the Slurm plugin through
// `chos prepare`) may believe of what it is given. An Invocation describes
// how chos was started and for whom; Prepare turns it and a Request into a
// plan (package spec), the notes to show and the audit record, which the
// entry path carries out (package nsroot), shows and logs. Nothing here
// prints, and nothing changes once made: dropping privilege gives a new
// Invocation, and the root helper makes one for the user it acts for.
//
// Every decision reads the machine through the Invocation's Machine, Names
// and FSRoot, so that tests make them without root (launch_test.go).
package launch

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/chos-hpc/chos/pkg/build"
	"github.com/chos-hpc/chos/pkg/hostexec"
	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/plan"
	"github.com/chos-hpc/chos/pkg/spec"
)

// Privilege is how this chos may act: decided once, from the ids it was
// executed with and a mode forced, and passed on, never inferred from the
// current credentials after namespace work.
type Privilege struct {
	// Root: this process has root's rights (effective uid 0).
	Root bool
	// Setuid: root's rights are held for a caller who is not root (a
	// setuid-root chos, or the root helper acting for a PAM session or a
	// Slurm job): what root acts on must come from root, what the caller
	// gives is only a lookup key, and the caller's own files are read with
	// the caller's ids. Kept when root is given up: the configuration
	// stays root's to vouch for.
	Setuid bool
	// UserNS: trees are entered through user namespaces of the caller's
	// own (chos is not setuid root, or --mode=userns); personal trees are
	// then available.
	UserNS bool
}

// actsForCaller: root's rights, used on behalf of another user.
func (p Privilege) actsForCaller() bool { return p.Root && p.Setuid }

// Mode is how the executor may act with this privilege.
func (p Privilege) Mode() nsroot.Mode {
	if p.Root {
		return nsroot.Privileged
	}
	return nsroot.Unprivileged
}

// Invocation is how chos was started and for whom. Made once (New, or a
// test's literal) and never changed.
type Invocation struct {
	Privilege Privilege
	// Caller is who chos runs for, as the kernel says (uid, gid and
	// supplementary groups) with the environment chos was started with;
	// the name service adds the names (who).
	Caller plan.Caller
	// HostPrefix is where the host's root is seen: "" on the host,
	// plan.HostDir inside a view.
	HostPrefix string
	// FromView: chos was started inside a view with root's rights and has
	// moved to the host's root (AtHost): its paths are the host's, but the
	// host is a view to build too.
	FromView bool
	// Config is an alternative configuration file (--config, for root
	// only), "" for the system's.
	Config string
	// FSRoot is the directory the host's files are read below: "/" (a
	// test's directory).
	FSRoot string
	// Machine is what the policy asks of the machine, and Names the name
	// service as this privilege may use it (Machine.Names).
	Machine Machine
	Names   NameService
}

// New describes this process: its real ids, its groups and environment
// from the kernel, its privilege from the effective uid, and where the
// host is (inside a view, only chos puts plan.HostDir at the root of a
// mount namespace: / of the host and of every view is root's and
// read-only to users).
func New() (Invocation, error) {
	inv := Invocation{
		Caller:  plan.Caller{UID: os.Getuid(), GID: os.Getgid(), Env: callerEnv()},
		FSRoot:  "/",
		Machine: HostMachine{},
	}
	groups, err := os.Getgroups()
	if err != nil {
		return inv, fmt.Errorf("reading your groups: %w", err)
	}
	inv.Caller.Groups = groups
	if os.Geteuid() == 0 {
		inv.Privilege = Privilege{Root: true, Setuid: inv.Caller.UID != 0}
	} else {
		inv.Privilege = Privilege{UserNS: true}
	}
	if fi, err := os.Lstat(plan.HostDir); err == nil && fi.IsDir() {
		inv.HostPrefix = plan.HostDir
		// Images are read with the host's squashfs-tools, which the tree
		// may lack.
		ostree.UnsquashfsCommand = func(args ...string) ([]string, error) {
			return hostexec.Argv(plan.HostDir, plan.HostDir, ostree.Unsquashfs, args...)
		}
	}
	inv.Names = inv.Machine.Names(inv.HostPath("/"), inv.Privilege.Root)
	return inv, nil
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

// Getenv is a variable of the environment chos was started with: its
// first assignment, as getenv(3) and Go's os.Getenv find it.
func (inv Invocation) Getenv(name string) string {
	v, _ := lookupEnv(inv.Caller.Env, name)
	return v
}

// lookupEnv finds name's first assignment in env.
func lookupEnv(env []string, name string) (string, bool) {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// Drop gives root up for good, for the commands that need none: the
// Invocation to go on with.
func (inv Invocation) Drop() (Invocation, error) {
	if !inv.Privilege.actsForCaller() {
		return inv, nil
	}
	if err := inv.Machine.DropRoot(inv.Caller.UID); err != nil {
		return inv, err
	}
	inv.Privilege.Root = false
	inv.Names = inv.Machine.Names(inv.HostPath("/"), false)
	return inv, nil
}

// ErrMode is a mode chos cannot take (CHOS_MODE, --mode): a usage error
// when the name is unknown.
type ErrMode struct {
	Mode    string
	Unknown bool
}

func (e *ErrMode) Error() string {
	if e.Unknown {
		return fmt.Sprintf("unknown mode %q (auto, setuid or userns)", e.Mode)
	}
	return "--mode=setuid: this chos is not running setuid root (see `chos check`)"
}

// WithMode applies a forced mode. Forcing can only give privilege up:
// userns from a setuid binary drops root for good; setuid without it is
// an error.
func (inv Invocation) WithMode(mode string) (Invocation, error) {
	switch mode {
	case "", "auto":
		return inv, nil
	case "userns":
		inv, err := inv.Drop()
		if err != nil {
			return inv, err
		}
		inv.Privilege.Root, inv.Privilege.UserNS = false, true
		inv.Names = inv.Machine.Names(inv.HostPath("/"), false)
		return inv, nil
	case "setuid":
		if inv.Privilege.UserNS {
			return inv, &ErrMode{Mode: mode}
		}
		return inv, nil
	}
	return inv, &ErrMode{Mode: mode, Unknown: true}
}

// AtHost is the invocation to launch with: for a privileged chos started
// inside a view (a tree with setuid = allow, or root), this process moved
// to the host's root (nsroot.EnterHostRoot) before it reads anything with
// root's rights, so that no process with privilege runs with a tree as its
// root, reads a tree's loader configuration or loads a library from it;
// otherwise inv itself. The working directory and the chos binary are then
// as the view showed them.
func (inv Invocation) AtHost() (Invocation, error) {
	if !inv.Privilege.Root || inv.HostPrefix == "" {
		return inv, nil
	}
	hr, err := inv.Machine.EnterHostRoot(inv.HostPath("/"))
	if err != nil {
		return inv, err
	}
	inv.HostPrefix, inv.FromView = "", true
	inv.Machine = fromView{inv.Machine, hr}
	inv.Names = inv.Machine.Names(inv.HostPath("/"), inv.Privilege.Root)
	// (the host's own, now: the process's root is the host's)
	ostree.UnsquashfsCommand = ostree.DirectUnsquashfs
	return inv, nil
}

// fromView is the machine of a process that moved from a view to the
// host's root: the working directory is the one the view showed, by path
// (the host's root may not reach it), and chos is its binary on the host.
type fromView struct {
	Machine
	hr nsroot.HostRoot
}

func (m fromView) Getwd(*spec.Credentials) (string, error) { return m.hr.Cwd, nil }
func (m fromView) Executable() (string, error)             { return m.hr.Self, nil }

// HostPath is a host path as this process reaches it.
func (inv Invocation) HostPath(p string) string {
	return filepath.Join(inv.fsRoot(), inv.HostPrefix, p)
}

// path is a path a plan names (the host's below HostPrefix already) as
// this process reads it.
func (inv Invocation) path(p string) string { return filepath.Join(inv.fsRoot(), p) }

func (inv Invocation) fsRoot() string {
	if inv.FSRoot == "" {
		return "/"
	}
	return inv.FSRoot
}

// ViewRoot is where a view is assembled: the host's /chos, or an empty
// directory that every view has, when chos runs inside one.
func (inv Invocation) ViewRoot() string {
	if inv.HostPrefix != "" {
		return plan.ViewDir
	}
	return build.ChosRoot
}

// lookupCaller is whom the executor's lookups of the working directory
// act for where root is denied: the caller, when root's rights are held
// for them.
func (inv Invocation) lookupCaller() *spec.Credentials {
	if !inv.Privilege.actsForCaller() {
		return nil
	}
	c := inv.Caller
	return &spec.Credentials{UID: c.UID, GID: c.GID, Groups: c.Groups}
}

// asCaller runs fn with the caller's own rights where root's are held for
// them (reading what is the caller's: ~/.chos, the tree as the caller may
// read it); otherwise this process has them already.
func (inv Invocation) asCaller(fn func() error) error {
	if !inv.Privilege.actsForCaller() {
		return fn()
	}
	c := inv.Caller
	return inv.Machine.AsUser(c.UID, c.GID, c.Groups, fn)
}
