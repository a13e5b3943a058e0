package nsroot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/inroot"
	"github.com/chos-hpc/chos/pkg/spec"
	"github.com/chos-hpc/chos/pkg/trust"
)

// Mode is how chos may act, decided once when it starts (from the real and
// effective uid it was executed with) and passed down explicitly: nothing
// below infers privilege from the current credentials.
type Mode int

const (
	// Unprivileged chos can only run commands on the host.
	Unprivileged Mode = iota
	// Privileged chos runs with euid 0: installed setuid root, or run by root.
	Privileged
	// UserNamespace is the child that RunInUserNS starts: all capabilities,
	// but only inside a user namespace of its own that maps the caller's
	// uid and gid to themselves.
	UserNamespace
)

// Exit statuses of a failed launch, as env(1), chroot(1) and timeout(1) use them.
const (
	StatusFailed        = 125 // chos itself failed
	StatusNotExecutable = 126
	StatusNotFound      = 127
)

// LaunchError is a launch that did not reach the command.
type LaunchError struct {
	Status int
	Err    error
}

func (e *LaunchError) Error() string { return e.Err.Error() }
func (e *LaunchError) Unwrap() error { return e.Err }

func failed(format string, args ...any) *LaunchError {
	return &LaunchError{Status: StatusFailed, Err: fmt.Errorf(format, args...)}
}

// Ready is a process that has carried out a plan up to its exec: in the
// view, with the command's credentials and working directory, the program
// found.
type Ready struct {
	p    *spec.Plan
	prog string
	env  []string // p.Env, with the view's devices' environment
}

// Enter carries out p up to the exec of its command, which Exec does: in
// between, the entry path shows the notes (this package prints nothing).
// use says how it entered the view ("" if it did not). The caller must
// hold the OS thread locked (namespace and credential changes apply to the
// calling thread, and the exec must happen from that same thread).
func Enter(p *spec.Plan, mode Mode) (ready *Ready, use ViewUse, notes []spec.Note, lerr *LaunchError) {
	ready, notes, lerr = enter(p, mode, &use)
	return ready, use, notes, lerr
}

// enter is Enter, telling use how it entered the view.
func enter(p *spec.Plan, mode Mode, use *ViewUse) (*Ready, []spec.Note, *LaunchError) {
	var notes []spec.Note
	var callerLimits limitSet
	if mode == Privileged {
		if err := holdPrivilege(); err != nil {
			return nil, nil, failed("%w", err)
		}
		var err error
		if callerLimits, err = useChosLimits(); err != nil {
			return nil, nil, failed("%w", err)
		}
	}
	env := p.Env
	if !p.Host {
		var err error
		*use, notes, err = enterViewShowingDir(p, mode)
		if err != nil {
			return nil, notes, failed("setting up tree %s: %w", p.Tree, err)
		}
		if p.Devices != nil {
			// (the view's, as it was built: a cached view's specs are
			// not read again)
			more, err := ViewEnv()
			if err != nil {
				return nil, notes, failed("%w", err)
			}
			env = MergeEnv(env, more)
		}
	}
	switch mode {
	case Privileged:
		// (while root: a hard limit chos lowered goes up again)
		if err := restoreLimits(callerLimits); err != nil {
			return nil, notes, failed("%w", err)
		}
		if err := setCredentials(p.Creds); err != nil {
			return nil, notes, failed("switching to uid %d: %w", p.Creds.UID, err)
		}
	case UserNamespace:
		// The ids are already the caller's (mapped to themselves); what
		// the namespace gave must not reach the command.
		if err := dropCapabilities(); err != nil {
			return nil, notes, failed("%w", err)
		}
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return nil, notes, failed("setting no_new_privs: %w", err)
		}
	}
	if err := enterDir(p); err != nil {
		return nil, notes, failed("%w", err)
	}
	prog, lerr := lookPath(p.Path, envValue(env, "PATH"))
	if lerr != nil {
		if lerr.Status == StatusNotFound && !p.Host && !strings.Contains(p.Path, "/") {
			// (the PATH searched is the tree's, not the host's)
			lerr.Err = fmt.Errorf("%w in tree %s", lerr.Err, p.Tree)
		}
		return nil, notes, lerr
	}
	return &Ready{p: p, prog: prog, env: env}, notes, nil
}

// Exec replaces the process with the command: same PID, so the command's
// exit status and signals are chos's, and what chos was started with
// (RecordStart) restored. It returns only when the command could not be
// started.
func (r *Ready) Exec() *LaunchError {
	if err := start.apply(); err != nil {
		return failed("%w", err)
	}
	err := unix.Exec(r.prog, r.p.Argv, r.env)
	status := StatusNotExecutable
	if errors.Is(err, unix.ENOENT) {
		// The file exists, so its interpreter or loader is what is missing.
		status = StatusNotFound
		err = fmt.Errorf("%w (its interpreter or dynamic loader is missing in the tree)", err)
	}
	return &LaunchError{Status: status, Err: fmt.Errorf("executing %s: %w", r.prog, err)}
}

// holdPrivilege prepares a process that runs with root's rights for acting
// on a caller's behalf.
func holdPrivilege() error {
	// No core dump or ptrace attach while this process holds root.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("making chos non-dumpable: %w", err)
	}
	// The caller's gid is still this thread's fsgid (setuid changes only
	// the uid): what chos creates, in a view or in the cache, must be
	// root's. setCredentials sets it to the caller's again.
	if err := rawErr(unix.RawSyscall(unix.SYS_SETFSGID, 0, 0, 0)); err != nil {
		return fmt.Errorf("setting fsgid 0: %w", err)
	}
	return nil
}

// ViewUse says how a launch came into its view (the audit line's view=).
type ViewUse string

const (
	UsedCached ViewUse = "cached" // entered the cached view, built before
	UsedBuilt  ViewUse = "built"  // its builder built the cached view, which it entered
	UsedFresh  ViewUse = "fresh"  // a private view of its own
	UsedKept   ViewUse = "kept"   // userns mode: the view a keeper of the user's keeps
)

// EnterView puts the calling thread (locked) in the mount namespace of v,
// with id's identity layer on top (nil for none): the cached one where v
// has a cache and chos is privileged, else a private one built for this
// process. use says how; the notes, what was skipped or could not be
// cached. With privilege, the process keeps chos's resource limits
// afterwards: for `chos prepare`, whose process ends with its work.
func EnterView(v *spec.View, id *spec.Layer, mode Mode) (use ViewUse, notes []spec.Note, err error) {
	if mode == Privileged {
		if err := takeChosLimits(); err != nil {
			return "", nil, err
		}
	}
	return enterView(v, id, mode)
}

// enterView is EnterView with the process's limits as they are. With
// privilege, every view is built by a builder (builder_linux.go), never
// by this process, which its user may stop.
func enterView(v *spec.View, id *spec.Layer, mode Mode) (use ViewUse, notes []spec.Note, err error) {
	if mode == Unprivileged {
		return "", nil, fmt.Errorf("cannot enter tree %s without privilege; use RunInUserNS", v.Tree)
	}
	if id != nil && len(id.Passwd)+len(id.Group) == 0 {
		id = nil
	}
	if mode == Privileged {
		if v.Cache != nil {
			return enterCachedView(v, id)
		}
		if !privateInProcess(v) {
			notes, err = enterBuiltView(v, id)
			return UsedFresh, notes, err
		}
	}
	if notes, err = assemble(v, mode); err != nil || v.RootSource != "" {
		return UsedFresh, notes, err
	}
	return UsedFresh, notes, applyIdentity(id)
}

// privateInProcess says whether a privileged launch builds private view v
// itself rather than have a builder build it: a view of a directory tree,
// from the host. Building it takes no lock, sets up no loop device and
// makes nothing another launch waits on or enters (the namespace is this
// process's alone), so its user stopping or limiting this process (which
// runs with chos's limits meanwhile: Enter) stalls no one else's launch,
// and it saves the launch a second start of chos. An image tree's view
// (the loop device's lock), a view with devices (their specs are read by
// a reader with root's ids only, as an image's listing) and a launch from
// inside a view (the builder leaves the outer view first) are still built
// by a builder.
func privateInProcess(v *spec.View) bool {
	if v.OuterHost != "" || v.RootSource != "" || v.Devices != nil {
		return false
	}
	for _, m := range v.Mounts {
		if m.Op == spec.OpImage || m.Op == spec.OpEntries || m.Op == spec.OpDevices {
			return false
		}
	}
	return true
}

// assemble builds the view on v.Root in a new mount namespace and makes it
// the root.
func assemble(v *spec.View, mode Mode) (notes []spec.Note, err error) {
	notes, err = completeView(v, mode)
	if err != nil {
		return notes, err
	}
	// CLONE_NEWNS implies CLONE_FS: this thread gets its own root and cwd.
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return nil, fmt.Errorf("unsharing the mount namespace: %w", err)
	}
	// The thread now has its own umask (CLONE_FS): mount points must not
	// depend on the caller's, and the command gets the caller's back.
	defer unix.Umask(unix.Umask(0o022))
	// Slave: nothing mounted here reaches the host, but host mounts made
	// later (autofs /home, new scratch) still reach the command.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return nil, fmt.Errorf("making host mounts slave: %w", err)
	}
	if v.RootSource != "" {
		// The host itself, seen from inside a view: its root is the view.
		if err := unix.Mount(v.RootSource, v.Root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return nil, fmt.Errorf("binding %s on %s: %w", v.RootSource, v.Root, err)
		}
		return nil, pivot(v.Root)
	}
	opts := "mode=0755"
	if mode == Privileged {
		opts += ",uid=0,gid=0" // not the caller's, whose ids a user namespace may not map
	}
	if err := unix.Mount(spec.MountSource(v.Tree), v.Root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return nil, fmt.Errorf("mounting tmpfs on %s: %w", v.Root, err)
	}
	root, err := os.OpenFile(v.Root, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", v.Root, err)
	}
	defer root.Close()

	// With root's rights, a source must be one that only root can redirect
	// (a user must not swap a component for a link to what they cannot
	// read); in a user namespace the caller can only reach their own.
	checked := sourceChecker(mode == Privileged)
	libs := newHostLibraries(checked)
	for _, m := range v.Mounts {
		var err error
		switch m.Op {
		case spec.OpBind:
			if err = checked(m); err == nil {
				err = bind(root, m)
			}
		case spec.OpSymlink:
			err = symlink(root, m)
		case spec.OpMkdir:
			var h *os.File
			if h, err = inroot.MkdirAll(root, m.Target, 0o755); err == nil {
				h.Close()
			}
		case spec.OpFile:
			err = addFile(root, m)
		case spec.OpImage:
			err = mountImage(root, m, mode)
		case spec.OpLoaderCache:
			err = loaderCache(root, m, libs)
		case spec.OpOverlay:
			if err = checked(m); err == nil {
				err = overlay(root, m, libs)
			}
			if errors.Is(err, errNoOverlay) && m.Origin == spec.OriginDevice {
				err = fmt.Errorf("%w: chos needs it to add a device's files to the tree's %s", err, m.Target)
			} else if errors.Is(err, errNoOverlay) {
				notes = append(notes, spec.Notef("%v: %s shows the tree's own, without the files chos adds", err, m.Target))
				err = bind(root, spec.Mount{Op: spec.OpBind, Source: m.Source, Target: m.Target, Recursive: true,
					ReadOnly: true, NoSuid: m.NoSuid, NoDev: m.NoDev, NoFollow: true, InView: m.InView, Why: m.Why})
			}
		default:
			err = fmt.Errorf("unknown step %q", m.Op)
		}
		if errors.Is(err, errSkipped) {
			notes = append(notes, spec.Notef("skipped optional %s %s -> %s (%s): missing on the host or in the tree", m.Op, m.Source, m.Target, m.Why))
			continue
		}
		var untrusted *untrustedSource
		if errors.As(err, &untrusted) && m.Optional {
			notes = append(notes, spec.Notef("skipped optional %s %s -> %s (%s): %v", m.Op, m.Source, m.Target, m.Why, untrusted.err))
			continue
		}
		if errors.Is(err, errUserLink) && m.Optional {
			notes = append(notes, spec.Notef("skipped optional %s %s -> %s (%s): %v", m.Op, m.Source, m.Target, m.Why, err))
			continue
		}
		if err != nil {
			return notes, fmt.Errorf("%s %s (%s): %w", m.Op, m.Target, m.Why, err)
		}
	}
	// Nothing may be created in the view's own root once it is built.
	if err := unix.Mount("", v.Root, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return notes, fmt.Errorf("making %s read-only: %w", v.Root, err)
	}
	return notes, pivot(v.Root)
}

// openSource opens m.Source as an O_PATH descriptor (plus flags): a host
// path, or a path inside the view (InView) resolved within it.
func openSource(root *os.File, m spec.Mount, flags int) (*os.File, error) {
	flags |= unix.O_PATH | unix.O_CLOEXEC
	if m.NoFollow {
		flags |= unix.O_NOFOLLOW
	}
	if m.InView {
		return inroot.Open(root, m.Source, flags)
	}
	return os.OpenFile(m.Source, flags, 0)
}

// untrustedSource is a bind source that someone other than root could
// redirect.
type untrustedSource struct{ err error }

func (e *untrustedSource) Error() string {
	return fmt.Sprintf("refusing to bind %v: root binds only what is reached through directories that only root can change", e.err)
}
func (e *untrustedSource) Unwrap() error { return e.err }

// sourceChecker returns the check applied to each bind source: with root's
// rights, every directory leading to it must be root's and not writable by
// group or others (the rule of configuration files, pkg/trust). Each
// directory is checked once per view.
func sourceChecker(privileged bool) func(spec.Mount) error {
	if !privileged {
		return func(spec.Mount) error { return nil }
	}
	trusted := map[string]bool{}
	return func(m spec.Mount) error {
		if m.InView {
			return nil // the view's own: what chos mounted there
		}
		dir := path.Dir(m.Source)
		if trusted[dir] {
			// Only a link as the last component, followed, leads
			// elsewhere; bind() refuses links it must not follow.
			fi, err := os.Lstat(m.Source)
			if err != nil || fi.Mode()&fs.ModeSymlink == 0 || m.NoFollow {
				return nil
			}
		}
		err := trust.CheckParents(m.Source)
		switch {
		case err == nil:
			trusted[dir] = true
			return nil
		case trust.IsUntrusted(err):
			return &untrustedSource{err}
		case m.Optional && errors.Is(err, fs.ErrNotExist):
			return errSkipped
		}
		return err
	}
}

// bind mounts m.Source at m.Target. Both ends are held as O_PATH
// descriptors and mounted through /proc/self/fd, so that what is checked is
// what is mounted.
func bind(root *os.File, m spec.Mount) error {
	src, err := openSource(root, m, 0)
	if err != nil {
		if m.Optional && errors.Is(err, fs.ErrNotExist) {
			return errSkipped
		}
		return fmt.Errorf("opening bind source: %w", err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return fmt.Errorf("inspecting bind source %s: %w", m.Source, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("bind source %s is a symbolic link", m.Source)
	}
	if m.SameFileAs != "" {
		want, err := os.Stat(m.SameFileAs)
		if err != nil || !os.SameFile(fi, want) {
			return fmt.Errorf("bind source %s is no longer %s", m.Source, m.SameFileAs)
		}
	}
	dst, err := mountpoint(root, m.Target, fi.IsDir())
	if err != nil {
		if m.Optional && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotOnView)) {
			return errSkipped
		}
		return err
	}
	defer dst.Close()

	mflags := uintptr(unix.MS_BIND)
	if m.Recursive {
		mflags |= unix.MS_REC
	}
	if err := unix.Mount(fdPath(src), fdPath(dst.point), "", mflags, ""); err != nil {
		return fmt.Errorf("binding %s: %w", m.Source, err)
	}
	if !m.ReadOnly && !m.NoSuid && !m.NoDev {
		return nil
	}
	// The mount point's descriptor still names what lies under the new
	// mount: open it again, from its directory, to reach the mount itself.
	top, err := dst.top()
	if err != nil {
		return fmt.Errorf("reopening %s after mounting: %w", m.Target, err)
	}
	defer top.Close()
	return restrict(top, m)
}

// restrict applies ro/nosuid/nodev to a mount and, if recursive, to every
// mount below it.
func restrict(top *os.File, m spec.Mount) error {
	attr := &unix.MountAttr{}
	var ms uintptr = unix.MS_REMOUNT | unix.MS_BIND
	if m.ReadOnly {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
		ms |= unix.MS_RDONLY
	}
	if m.NoSuid {
		attr.Attr_set |= unix.MOUNT_ATTR_NOSUID
		ms |= unix.MS_NOSUID
	}
	if m.NoDev {
		attr.Attr_set |= unix.MOUNT_ATTR_NODEV
		ms |= unix.MS_NODEV
	}
	at := unix.AT_EMPTY_PATH
	if m.Recursive {
		at |= unix.AT_RECURSIVE
	}
	err := unix.MountSetattr(int(top.Fd()), "", uint(at), attr)
	if errors.Is(err, unix.ENOSYS) {
		// Kernels before 5.12: remount the top mount only.
		err = unix.Mount("", fdPath(top), "", ms, "")
	}
	if err != nil {
		return fmt.Errorf("restricting %s to %s: %w", m.Target, m.Flags(), err)
	}
	return nil
}

// onViewRoot checks that the deepest existing ancestor of target is on the
// same file system as the view's root (its tmpfs).
func onViewRoot(root *os.File, target string) error {
	var rootSt unix.Stat_t
	if err := unix.Fstat(int(root.Fd()), &rootSt); err != nil {
		return fmt.Errorf("inspecting the view's root: %w", err)
	}
	for dir := path.Dir(target); ; dir = path.Dir(dir) {
		h, err := inroot.Open(root, dir, unix.O_PATH)
		if errors.Is(err, fs.ErrNotExist) {
			continue // "/" always exists, so this ends
		}
		if err != nil {
			return fmt.Errorf("opening %s: %w", dir, err)
		}
		var st unix.Stat_t
		err = unix.Fstat(int(h.Fd()), &st)
		h.Close()
		if err != nil {
			return fmt.Errorf("inspecting %s: %w", dir, err)
		}
		if st.Dev != rootSt.Dev {
			return fmt.Errorf("mount point %s: %w (%s is not)", target, errNotOnView, dir)
		}
		return nil
	}
}

func symlink(root *os.File, m spec.Mount) error {
	parent, err := inroot.MkdirAll(root, path.Dir(m.Target), 0o755)
	if err != nil {
		return err
	}
	defer parent.Close()
	return unix.Symlinkat(m.Source, int(parent.Fd()), path.Base(m.Target))
}

// pivot makes dir the root and detaches the old one, so that nothing of the
// host remains reachable but what was bound in.
func pivot(dir string) error {
	if err := unix.Chdir(dir); err != nil {
		return fmt.Errorf("entering %s: %w", dir, err)
	}
	// pivot_root(".", ".") stacks the old root on the new one, without
	// needing a directory for it inside the (read-only) view.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root to %s: %w", dir, err)
	}
	// Slave again, so that detaching the old root cannot propagate.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("making the old root slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the old root: %w", err)
	}
	return unix.Chdir("/")
}

// enterDir changes to the planned directory as the caller (credentials are
// already the caller's, so permissions are theirs), and checks that it is
// the caller's own where it must be (p.DirID).
func enterDir(p *spec.Plan) error {
	if p.Host && p.DirID != nil && isDir(".", p.DirID) == nil {
		return nil // still there: the path may lead elsewhere now (a mount on it)
	}
	err := chdir(p.Dir)
	if err == nil {
		if err = isDir(".", p.DirID); err == nil {
			return nil
		}
	}
	for _, d := range p.DirFallback {
		if d != "" && unix.Chdir(d) == nil {
			return nil
		}
	}
	where := "in tree " + p.Tree
	if p.Host {
		where = "on the host"
	}
	return fmt.Errorf("working directory %s is not available %s: %w", p.Dir, where, err)
}

// lookPath finds file in the PATH the command will have, inside the view.
func lookPath(file, pathEnv string) (string, *LaunchError) {
	if strings.Contains(file, "/") {
		return file, checkExecutable(file)
	}
	var notExec *LaunchError
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		p := path.Join(dir, file)
		err := checkExecutable(p)
		if err == nil {
			return p, nil
		}
		if err.Status == StatusNotExecutable && notExec == nil {
			notExec = err
		}
	}
	if notExec != nil {
		return "", notExec
	}
	return "", &LaunchError{Status: StatusNotFound, Err: fmt.Errorf("%s: command not found", file)}
}

func checkExecutable(p string) *LaunchError {
	fi, err := os.Stat(p)
	if err != nil {
		return &LaunchError{Status: StatusNotFound, Err: fmt.Errorf("%s: %w", p, errors.Unwrap(err))}
	}
	if fi.IsDir() {
		return &LaunchError{Status: StatusNotExecutable, Err: fmt.Errorf("%s: is a directory", p)}
	}
	if err := unix.Access(p, unix.X_OK); err != nil {
		return &LaunchError{Status: StatusNotExecutable, Err: fmt.Errorf("%s: %w", p, err)}
	}
	return nil
}

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

// errSkipped marks an optional step that did not apply.
var errSkipped = errors.New("skipped")

func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }
