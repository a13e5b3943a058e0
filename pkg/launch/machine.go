package launch

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/build"
	"github.com/chos-hpc/chos/pkg/config"
	"github.com/chos-hpc/chos/pkg/devices"
	"github.com/chos-hpc/chos/pkg/identity"
	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/spec"
	"github.com/chos-hpc/chos/pkg/trust"
)

// Machine is what the policy asks of the machine beyond reading files
// below the Invocation's Root: the name service, the caller's rights, the
// kernel's view of this process. HostMachine is the machine chos runs on; tests
// give one that needs no root.
type Machine interface {
	// Names is the host's name service below root (where the host's / is
	// seen); privileged: as root, with only root-owned programs and
	// sockets.
	Names(root string, privileged bool) NameService
	// LoadConfig reads the system configuration (config.Load).
	LoadConfig(p config.Paths, requireRoot bool) (*config.Set, error)
	// AsUser runs fn with a user's file system ids and groups (nsroot.AsUser).
	AsUser(uid, gid int, groups []int, fn func() error) error
	// Access is faccessat(2) with the effective ids: whether this process,
	// as it is now, may reach path with mode (unix.R_OK...).
	Access(path string, mode uint32) error
	// DropRoot gives root up for good, for uid (nsroot.DropPrivilege).
	DropRoot(uid int) error
	// Getwd is the working directory's path; CwdID is the directory
	// itself. Both look as the caller where root is denied (caller nil
	// when chos does not hold root for one: nsroot.AsCallerWhereDenied).
	Getwd(caller *spec.Credentials) (string, error)
	CwdID(caller *spec.Credentials) (*spec.FileID, error)
	// Executable is the chos binary.
	Executable() (string, error)
	// CacheDir is where launches from this mount namespace keep their
	// views (nsroot.NamespaceCacheDir).
	CacheDir() (string, error)
	// Namespaces names this process's mount and user namespaces (as
	// /proc/thread-self/ns/mnt and ns/user read): a view kept for a
	// user's launches is made from them.
	Namespaces() (mnt, user string, err error)
	// SpecFiles lists the CDI spec files of dir (devices.Specs); with
	// requireRoot, only where root alone could have written them.
	SpecFiles(dir string, requireRoot bool) ([]string, error)
	// EnterHostRoot moves this process to the host's root, which a view
	// shows at dir (nsroot.EnterHostRoot).
	EnterHostRoot(dir string) (nsroot.HostRoot, error)
	// Vouched says whether only root could have made path what it is:
	// it and every directory above it root's and not writable by group
	// or others (trust.CheckPath; a *trust.Error when not).
	Vouched(path string) error
}

// NameService names users and groups (identity.Resolver).
type NameService interface {
	UserByID(uid int) (identity.User, identity.Source, error)
	GroupByName(name string) (identity.Group, identity.Source, error)
	GroupsByID(gids []int) (map[int]identity.Group, error)
}

// HostMachine is the machine chos runs on.
type HostMachine struct{}

func (HostMachine) Names(root string, privileged bool) NameService {
	var trusted func(string) error
	if privileged {
		trusted = trustedNSS
	}
	return identity.Host(root, privileged, trusted)
}

// trustedNSS accepts getent and the userdb socket only where root alone
// could have put them: a privileged lookup must not run what a user made.
func trustedNSS(p string) error {
	if err := trust.CheckParents(p); err != nil {
		return err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	switch {
	case st.Uid != 0:
		return fmt.Errorf("%s is owned by uid %d, not root", p, st.Uid)
	case fi.Mode().IsRegular() && fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s is writable by group or others", p)
	}
	return nil
}

func (HostMachine) LoadConfig(p config.Paths, requireRoot bool) (*config.Set, error) {
	return config.Load(p, requireRoot)
}

func (HostMachine) AsUser(uid, gid int, groups []int, fn func() error) error {
	return nsroot.AsUser(uid, gid, groups, fn)
}

func (HostMachine) Access(path string, mode uint32) error {
	return unix.Faccessat(unix.AT_FDCWD, path, mode, unix.AT_EACCESS)
}

func (HostMachine) DropRoot(uid int) error { return nsroot.DropPrivilege(uid) }

func (HostMachine) Vouched(path string) error { return trust.CheckPath(path) }

func (HostMachine) Getwd(caller *spec.Credentials) (string, error) {
	wd, err := nsroot.Getwd(caller)
	if err != nil {
		return "", fmt.Errorf("reading the working directory: %w", err)
	}
	return wd, nil
}

func (HostMachine) CwdID(caller *spec.Credentials) (*spec.FileID, error) { return nsroot.CwdID(caller) }

func (HostMachine) Executable() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the chos binary: %w", err)
	}
	return self, nil
}

func (HostMachine) EnterHostRoot(dir string) (nsroot.HostRoot, error) {
	return nsroot.EnterHostRoot(dir)
}

func (HostMachine) Namespaces() (mnt, user string, err error) {
	if mnt, err = os.Readlink("/proc/thread-self/ns/mnt"); err == nil {
		user, err = os.Readlink("/proc/thread-self/ns/user")
	}
	if err != nil {
		return "", "", fmt.Errorf("reading this process's namespaces: %w", err)
	}
	return mnt, user, nil
}

// CacheDir is CACHEDIR/ns/INODE: every mount namespace has a cache of its
// own. When the namespace cannot be told, there is none: a directory
// shared by such namespaces would undo the separation.
func (HostMachine) CacheDir() (string, error) {
	dir, err := nsroot.NamespaceCacheDir(filepath.Join(build.CacheDir, "ns"))
	if err != nil {
		return "", fmt.Errorf("finding this mount namespace's cache: %w", err)
	}
	return dir, nil
}

func (HostMachine) SpecFiles(dir string, requireRoot bool) ([]string, error) {
	return devices.Specs([]string{dir}, requireRoot)
}
