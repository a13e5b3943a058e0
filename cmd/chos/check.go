package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moby/sys/mountinfo"
	"github.com/urfave/cli/v3"
	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/audit"
	"github.com/chos-hpc/chos/pkg/config"
	"github.com/chos-hpc/chos/pkg/identity"
	"github.com/chos-hpc/chos/pkg/launch"
	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/plan"
	"github.com/chos-hpc/chos/pkg/trust"
)

// checker prints one line per check, like the original check_chos.
type checker struct{ failed bool }

func (k *checker) ok(what, detail string, args ...any) {
	fmt.Printf("ok   %s: %s\n", what, fmt.Sprintf(detail, args...))
}

func (k *checker) fail(what, detail string, args ...any) {
	k.failed = true
	fmt.Printf("FAIL %s: %s\n", what, fmt.Sprintf(detail, args...))
}

// warn reports something that works but may surprise; it does not fail.
func (k *checker) warn(what, detail string, args ...any) {
	fmt.Printf("warn %s: %s\n", what, fmt.Sprintf(detail, args...))
}

func (cl *cmdline) cmdCheck(_ context.Context, c *cli.Command) error {
	if err := cl.drop(); err != nil {
		return err
	}
	k := &checker{}
	checkBinary(k, cl.inv.Privilege.UserNS)
	checkKernel(k, cl.inv.Privilege.UserNS)
	checkRoot(k, cl.inv.ViewRoot(), cl.inv.Privilege.UserNS)
	cl.checkIdentity(k)

	cat := cl.checkConfig(k)
	if cat != nil {
		trees := cat.Trees
		if name := c.Args().First(); name != "" {
			t, ok := cat.Lookup(name)
			if !ok {
				return fail(statusFailed, &ostree.UnknownTreeError{Name: name, From: "argument", Valid: cat.NameList()})
			}
			trees = []*ostree.Tree{t}
		}
		cl.checkImageSupport(k, cat)
		for _, t := range trees {
			cl.checkTree(k, cat, t)
			cl.checkImage(k, cat, t)
			cl.checkNames(k, t)
		}
		cl.checkDevices(k, cat, trees)
		cl.checkCache(k, cat)
	}
	cl.checkLogins(k)
	cl.checkSlurm(k, cat)
	if k.failed {
		return &exitError{status: statusCheckFailed}
	}
	return nil
}

func checkBinary(k *checker, userns bool) {
	self, err := os.Executable()
	if err != nil {
		k.fail("binary", "cannot find the chos binary: %v", err)
		return
	}
	fi, err := os.Stat(self)
	if err != nil {
		k.fail("binary", "%v", err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	var sfs unix.Statfs_t
	nosuid := unix.Statfs(self, &sfs) == nil && sfs.Flags&unix.ST_NOSUID != 0
	setuidRoot := st.Uid == 0 && fi.Mode()&fs.ModeSetuid != 0
	switch {
	case !setuidRoot && userns:
		k.ok("binary", "%s is not setuid root (owner uid %d, mode %s): trees are entered through user namespaces", self, st.Uid, octal(fi.Mode()))
	case !setuidRoot:
		k.fail("binary", "%s is not setuid root (owner uid %d, mode %s)", self, st.Uid, octal(fi.Mode()))
	case nosuid && !userns:
		k.fail("binary", "%s is setuid root but its file system is mounted nosuid: remount it without nosuid, or use --mode=userns", self)
	case fi.Mode().Perm()&0o022 != 0:
		k.fail("binary", "%s is writable by group or others (mode %s)", self, octal(fi.Mode()))
	default:
		k.ok("binary", "%s is setuid root (mode %s)", self, octal(fi.Mode()))
	}
	if userns {
		k.ok("mode", "userns: each launch enters a user namespace of your own (supplementary groups show as nogroup, other users' files as nobody, setuid tools do not work inside; personal trees are available)")
	} else {
		k.ok("mode", "setuid: the command runs with your uid, gid and groups, exactly")
	}
	if nsroot.StartSignalsKnown {
		k.ok("signals", "commands keep the signals their caller ignored or blocked")
	} else {
		k.warn("signals", "this chos was not built by make (build tag chos_linkname): of the signals a caller ignored or blocked, commands keep only those the Go runtime leaves alone (README: What the command keeps)")
	}
}

func checkKernel(k *checker, userns bool) {
	var u unix.Utsname
	unix.Uname(&u)
	release := unix.ByteSliceToString(u.Release[:])
	if _, err := os.Stat("/proc/self/ns/mnt"); err != nil {
		k.fail("kernel", "%s has no mount namespaces: %v", release, err)
		return
	}
	var maj, min int
	fmt.Sscanf(release, "%d.%d", &maj, &min)
	if maj < 5 || (maj == 5 && min < 12) {
		k.warn("kernel", "%s: mount namespaces ok; before 5.12 read-only binds apply to the top mount of a tree only", release)
		return
	}
	k.ok("kernel", "%s: mount namespaces, pivot_root, recursive mount attributes", release)
	checkUserNS(k, userns)
	mounts, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter("/"))
	if err == nil && len(mounts) == 1 && !strings.Contains(mounts[0].Optional, "shared:") {
		k.warn("propagation", "the host's / is not a shared mount: file systems mounted on the host after a launch (autofs /home) will not reach running commands; `mount --make-rshared /` at boot fixes it (systemd does it)")
	}
}

func checkRoot(k *checker, root string, userns bool) {
	fi, err := os.Lstat(root)
	switch {
	case err != nil:
		k.fail("assembly point", "%v (make install creates it)", err)
	case !fi.IsDir():
		k.fail("assembly point", "%s is not a directory", root)
	case (fi.Sys().(*syscall.Stat_t).Uid != 0 || fi.Mode().Perm()&0o022 != 0) && userns:
		k.warn("assembly point", "%s is not root's or is writable by others (mode %s); required only for the setuid chos", root, octal(fi.Mode()))
	case fi.Sys().(*syscall.Stat_t).Uid != 0 || fi.Mode().Perm()&0o022 != 0:
		k.fail("assembly point", "%s must be owned by root and not writable by others (mode %s)", root, octal(fi.Mode()))
	default:
		k.ok("assembly point", "%s", root)
	}
}

func (cl *cmdline) checkConfig(k *checker) *ostree.Catalog {
	paths, err := cl.inv.ConfigPaths()
	if err != nil {
		k.fail("configuration", "%v", err)
		return nil
	}
	// Every error, each with its file and line: any one refuses launches.
	set, errs := config.LoadAll(paths)
	for _, err := range errs {
		k.fail("configuration", "%v", err)
	}
	if len(errs) > 0 {
		return nil
	}
	checkAudit(k, set.Audit())
	cat, err := ostree.NewCatalog(set)
	if err != nil {
		k.fail("configuration", "%v", err)
		return nil
	}
	files := []string{}
	if set.Sysconfig != nil {
		files = append(files, paths.Sysconfig)
	}
	for _, f := range set.Files {
		files = append(files, f.Name)
	}
	k.ok("configuration", "%s: trees: %d", strings.Join(files, ", "), len(cat.Trees)-1)
	for _, f := range files {
		if err := config.CheckRootOwned(f); err != nil && cl.inv.Privilege.UserNS {
			// Not enforced without setuid, and inside a user namespace
			// root's files show as owned by the overflow uid anyway.
			k.warn("ownership", "%v (required only for the setuid chos)", err)
		} else if err != nil {
			k.fail("ownership", "%v", err)
		} else {
			k.ok("ownership", "%s and the directories above it are root's", f)
		}
	}
	for _, hc := range cat.HostCommands {
		if err := unix.Access(cl.inv.HostPath(hc.Path), unix.X_OK); err != nil {
			k.warn("host command", "%s (%s): %v: in trees, %s fails", hc.Path, hc.At, err, filepath.Base(hc.Path))
		} else {
			k.ok("host command", "%s (%s): in every tree as %s", hc.Path, hc.At, filepath.Join(plan.SelfDir, filepath.Base(hc.Path)))
		}
	}
	return cat
}

func (cl *cmdline) checkTree(k *checker, cat *ostree.Catalog, t *ostree.Tree) {
	what := "tree " + t.Name
	if t.Host {
		k.ok(what, "the host itself")
		return
	}
	if err := ostree.Problem(t, cl.inv.HostPrefix); err != nil {
		k.fail(what, "%v (%s)", err, t.At) // (where the tree is configured, as a launch says)
		return
	}
	// The setuid chos binds only what only root can redirect.
	untrusted := k.fail
	if cl.inv.Privilege.UserNS {
		untrusted = k.warn
	}
	if err := trust.CheckPath(cl.inv.HostPath(t.Path)); trust.IsUntrusted(err) {
		untrusted(what, "%v: the setuid chos refuses it; make it and the directories above it root's and not writable by group or others", err)
		if !cl.inv.Privilege.UserNS {
			return // (no "ok" line for a tree every launch refuses)
		}
	}
	k.ok(what, "%s: %s", t.Path, orDash(ostree.OSName(cl.inv.HostPath(t.Path))))
	if err := cl.inv.MayUse(t); err != nil {
		if fe := (*launch.ForbiddenError)(nil); errors.As(err, &fe) {
			k.warn(what+" access", "not for you (%s)", launch.Restriction(t))
		} else {
			k.warn(what+" access", "%v", err)
		}
	}
	for _, b := range plan.HostBinds(cat, t) {
		_, err := os.Stat(cl.inv.HostPath(b.Source))
		switch {
		case err == nil:
			if err := trust.CheckParents(cl.inv.HostPath(b.Source)); err != nil {
				untrusted(what+" bind", "%s (%s): %v: the setuid chos refuses it (skips it if optional)", b.Source, bindOrigin(b), err)
			}
		case b.Optional && errors.Is(err, fs.ErrNotExist):
			k.ok(what+" bind", "%s is missing on the host; optional, skipped", b.Source)
		default:
			k.fail(what+" bind", "%s (%s): %v", b.Source, bindOrigin(b), err)
		}
	}
	for _, f := range t.Identity {
		if err := trust.CheckParents(cl.inv.HostPath(f)); trust.IsUntrusted(err) {
			k.warn(what+" identity", "%v: the setuid chos does not bind it", err)
		}
	}
}

// checkIdentity says who the caller is and which name service said so.
func (cl *cmdline) checkIdentity(k *checker) {
	desc, err := cl.inv.DescribeIdentity()
	if err != nil {
		k.fail("identity", "%v", err)
		return
	}
	k.ok("identity", "%s", desc)
}

// checkNames says whether the caller and their groups resolve by name
// inside tree t: through the view's files, with or without an identity
// layer, as long as the tree's name service reads the files.
func (cl *cmdline) checkNames(k *checker, t *ostree.Tree) {
	if t.Host || ostree.Problem(t, cl.inv.HostPrefix) != nil {
		return
	}
	what := "tree " + t.Name + " names"
	conf, _ := cl.inv.ViewFile(t, "/etc/nsswitch.conf")
	for _, db := range []string{"passwd", "group"} {
		if !identity.ListsFiles(conf, db) {
			k.warn(what, "the tree's nsswitch.conf does not read the files for %s: users and groups the view adds are not found there; list `files` first in its %s line, or bind the host's with `identity = ... /etc/nsswitch.conf`", db, db)
		}
	}
	id, err := cl.inv.CallerLayer(t)
	switch {
	case err != nil:
		k.fail(what, "%v", err)
	case id == nil:
		k.ok(what, "the view's /etc/passwd and /etc/group name you and all your groups")
	default:
		k.ok(what, "your launches add your entry to the view's files (%d passwd and %d group lines, for you alone)", len(id.Passwd), len(id.Group))
	}
}

func bindOrigin(b config.Bind) string {
	if b.At.File == "" {
		return "default"
	}
	return b.At.String()
}

// checkUserNS starts a user namespace for real and, if that fails, says
// which knob forbids it and how to change it. It is required in userns
// mode; in setuid mode only switching trees from inside a tree needs it.
func checkUserNS(k *checker, userns bool) {
	report := k.warn
	need := "switching trees from inside a tree"
	if userns {
		report, need = k.fail, "every launch in userns mode"
	}
	err := nsroot.ProbeUserNS()
	if err == nil {
		k.ok("user namespaces", "an unprivileged user namespace can be created (needed for %s)", need)
		return
	}
	knobs := []struct{ file, bad, fix string }{
		{"/proc/sys/user/max_user_namespaces", "0", "sysctl -w user.max_user_namespaces=15000"},
		{"/proc/sys/kernel/unprivileged_userns_clone", "0", "sysctl -w kernel.unprivileged_userns_clone=1"},
		{"/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1", "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile allowing userns for chos"},
	}
	for _, kn := range knobs {
		data, rerr := os.ReadFile(kn.file)
		if rerr == nil && strings.TrimSpace(string(data)) == kn.bad {
			report("user namespaces", "%s is %s, which forbids %s; to allow it: %s", kn.file, kn.bad, need, kn.fix)
			return
		}
	}
	report("user namespaces", "cannot create one (%v), which %s needs; a container or seccomp policy may forbid it", err, need)
}

// octal shows a mode as chmod takes it (4755).
func octal(m fs.FileMode) string {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return fmt.Sprintf("%04o", v)
}

// checkCache reports cached namespaces that no launch will enter any more.
func (cl *cmdline) checkCache(k *checker, cat *ostree.Catalog) {
	if cl.inv.Privilege.UserNS {
		return
	}
	dir, err := cl.inv.Machine.CacheDir()
	if err != nil {
		k.warn("cache", "%v: launches build private views", err)
		return
	}
	if cl.inv.Caller.UID == 0 {
		dropped, err := cl.inv.CollectStale(dir, cat)
		if err != nil {
			k.warn("cache", "collecting the namespaces of trees no longer configured: %v", err)
		}
		if len(dropped) > 0 {
			k.ok("cache", "dropped %d cached namespaces of trees no longer configured: %s", len(dropped), strings.Join(dropped, ", "))
		}
	}
	for _, why := range nsroot.Uncached(dir) {
		k.warn("cache", "launches from this mount namespace build private views: %s", why)
	}
	states, err := cl.cacheStates(cat)
	if err != nil {
		k.warn("cache", "%v", err)
		return
	}
	valid, devices := 0, 0
	for _, s := range states {
		switch {
		case s.valid:
			valid++
		case s.devices && s.Mounted:
			devices++ // (its key covers spec files a check does not read)
		default:
			k.warn("cache", "%s is stale (built %s ago); `chos cache drop` as root removes it", s.File, time.Since(s.Built).Round(time.Second))
		}
	}
	withDevices := ""
	if devices > 0 {
		withDevices = fmt.Sprintf(", and %d with devices (rebuilt when their spec files change)", devices)
	}
	noun := "namespaces"
	if valid == 1 {
		noun = "namespace"
	}
	k.ok("cache", "%d valid cached %s in %s%s", valid, noun, dir, withDevices)
}

// checkAudit says where audit lines go, and warns when they cannot.
func checkAudit(k *checker, ac config.AuditConfig) {
	origin := func(at config.Position) string {
		if at.File == "" {
			return "default"
		}
		return at.String()
	}
	if ac.Facility == audit.Off {
		k.ok("audit", "off (%s)", origin(ac.FacilityAt))
		return
	}
	if err := audit.CheckSocket(ac.Socket); err != nil {
		k.warn("audit", "%v (%s): launches are not logged; is a syslog daemon running?", err, origin(ac.SocketAt))
		return
	}
	k.ok("audit", "facility %s (%s) to %s (%s)", ac.Facility, origin(ac.FacilityAt), ac.Socket, origin(ac.SocketAt))
}
