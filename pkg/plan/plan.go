// Package plan decides what a launch does: from the configuration, the
// selected tree and the caller it computes a spec.Plan (mounts, root
// switch, credentials, working directory, environment, argv). It does no
// I/O: everything it needs is in Request, so it is tested without root.
package plan

import (
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/chos-hpc/chos/pkg/config"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/spec"
)

// Caller is who asked for the launch and from where.
type Caller struct {
	UID    int
	GID    int
	Groups []int
	Name   string // user name, "" if unknown
	Home   string
	Shell  string // login shell from passwd, "" if unknown
	Cwd    string
	Env    []string
}

// ViewRequest is everything a view depends on: the configuration and the
// tree, never the caller, so that one view serves every user of the tree.
type ViewRequest struct {
	Catalog *ostree.Catalog
	Tree    *ostree.Tree
	// Entries is the top level of a directory tree (ostree.Entries).
	Entries []spec.Entry
	// Root is the host directory the view is assembled on (/chos).
	Root string
	// Self is the chos binary, bound into the view so that chos works there.
	Self string
	// HostPrefix is where the host's root is seen from the caller: "" on
	// the host, HostDir inside a view. Every host path is taken below it.
	HostPrefix string
	// FromView: chos was started inside a view and works from the host's
	// root (nsroot.EnterHostRoot, privileged chos only): host paths are
	// plain, but the host is a view to build too, and a build leaves the
	// outer view first (spec.View.OuterHost).
	FromView bool
	// Image is set when the tree is a squashfs image file: the view mounts
	// it on ImageDir and binds its entries from there, as the launch that
	// builds the view lists them (spec.OpEntries); the key of a cached
	// view covers the image's identity instead.
	Image *ostree.ImageID
	// Devices, when set, are the CDI devices the view shows: a step the
	// launch that builds the view expands once it has read their specs
	// (spec.OpDevices); the key of a cached view covers the spec files'
	// stamps instead.
	Devices *spec.Devices
}

// Request is everything a plan depends on: the view, and the caller and
// command of the process layer.
type Request struct {
	ViewRequest
	Caller Caller
	// Argv is the command; empty for a login shell.
	Argv []string
	// Login asks for the caller's login shell with a cleaned environment.
	Login bool
	// TreeConf is the tree's own /etc/chos.conf, nil if it has none.
	TreeConf *config.File
	// ShellInTree says whether Caller.Shell exists inside the tree.
	ShellInTree bool
}

// Paths inside every view.
const (
	// SelfDir holds chos itself inside a view; it is appended to PATH.
	SelfDir = "/.chos/bin"
	// HostDir shows the host's root inside a view (nosuid, nodev), so
	// that chos can switch to another tree, or back to the host, from
	// inside one without privilege.
	HostDir = "/.chos/host"
	// ViewDir is the empty directory a view is assembled on when chos is
	// started from inside another view.
	ViewDir = "/.chos/view"
	// ImageDir is where the view of an image tree mounts the image.
	ImageDir = "/.chos/image"
)

// DefaultBinds are the host paths every tree gets, in mount order.
var DefaultBinds = []config.Bind{
	{Source: "/proc", Dest: "/proc"},
	{Source: "/dev", Dest: "/dev"},
	{Source: "/sys", Dest: "/sys"},
	{Source: "/tmp", Dest: "/tmp"},
	{Source: "/var/tmp", Dest: "/var/tmp", Optional: true},
	{Source: "/home", Dest: "/home", Optional: true},
	{Source: "/run", Dest: "/run", Optional: true},
}

// DefaultLoginEnv is what a login shell keeps when the tree has no
// /etc/chos.conf: the list the original CHOS shipped.
var DefaultLoginEnv = []string{
	"CHOS", "USER", "LOGNAME", "HOME", "PATH", "MAIL", "SHELL", "SSH_CLIENT",
	"SSH_CONNECTION", "SSH_TTY", "TERM", "DISPLAY", "SSH_AUTH_SOCK", "HOSTTYPE",
	"VENDOR", "OSTYPE", "MACHTYPE", "SHLVL", "PWD", "GROUP", "HOST", "REMOTEHOST",
}

// DefaultPath is PATH in a login shell.
func DefaultPath(root bool) string {
	if root {
		return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	return "/usr/local/bin:/usr/bin:/bin"
}

// Build computes the plan of a launch (without its identity layer, which
// the caller's names decide), and what the caller should be told of it.
func Build(r Request) (*spec.Plan, []spec.Note, error) {
	if r.Tree == nil {
		return nil, nil, fmt.Errorf("no tree selected")
	}
	p := &spec.Plan{View: View(r.ViewRequest)}
	var notes []spec.Note
	var err error
	p.Process, notes, err = process(r)
	if err != nil {
		return nil, nil, err
	}
	return p, notes, nil
}

// View computes the mounts of a tree's view.
func View(r ViewRequest) spec.View {
	t := r.Tree
	v := spec.View{Tree: t.Name, TreePath: t.Path, Host: t.Host, Root: r.Root}
	switch {
	case !t.Host:
		v.Mounts = mounts(r, t)
		if r.Devices != nil {
			v.Devices = r.Devices
			v.Mounts = append(v.Mounts, devicesStep(r, t))
		}
	case r.HostPrefix != "" || r.FromView:
		// Back to the host from inside a view: its root is the host's.
		v.Host = false
		v.RootSource = path.Join("/", r.HostPrefix)
	}
	if r.FromView && !v.Host {
		v.OuterHost = HostDir
	}
	return v
}

// process computes what is applied per process on top of the view.
func process(r Request) (spec.Process, []spec.Note, error) {
	t := r.Tree
	pr := spec.Process{
		Creds: spec.Credentials{
			UID:      r.Caller.UID,
			GID:      r.Caller.GID,
			Groups:   r.Caller.Groups,
			KeepCaps: r.Caller.UID == 0,
			// setuid = allow: setuid programs of the tree give root as they
			// would on the host, which needs the bounding set.
			KeepBounding: t.AllowSetuid,
			// The host is left as it is; a tree is where old setuid
			// binaries must not give root back.
			NoNewPrivs: !t.Host && !t.AllowSetuid,
		},
		Dir: r.Caller.Cwd,
	}
	if r.Login {
		notes := loginShell(r, &pr)
		return pr, notes, nil
	}
	if len(r.Argv) == 0 {
		return pr, nil, fmt.Errorf("no command to run")
	}
	pr.Path, pr.Argv = r.Argv[0], r.Argv
	var notes []spec.Note
	pr.Env, notes = execEnv(r.Caller.Env, t)
	return pr, notes, nil
}

// mounts lists the view's setup steps: the host's root, the image of an
// image tree, the tree's top-level entries, then host binds parents first,
// then identity files and chos itself.
func mounts(r ViewRequest, t *ostree.Tree) []spec.Mount {
	binds := HostBinds(r.Catalog, t)
	host := func(p string) string { return path.Join("/", r.HostPrefix, p) }
	// The host root first: bound later, it would carry this half-built view.
	// Not nodev: a view built from it in a user namespace could not lift
	// that flag again from its /dev (its devices are the view's /dev anyway).
	ms := []spec.Mount{{
		Op: spec.OpBind, Source: host("/"), Target: HostDir, Recursive: true, NoSuid: true,
		Origin: spec.OriginHostRoot, Why: "host root, for switching trees",
	}}
	entries := treeEntries(t, binds, host)
	if r.Image != nil {
		ms = append(ms, spec.Mount{
			Op: spec.OpImage, Source: host(t.Path), Target: ImageDir, ReadOnly: true,
			NoSuid: !t.AllowSetuid, NoDev: true, HostRoot: r.HostPrefix, Origin: spec.OriginImage, Why: "image tree",
		})
		entries.Source, entries.InView = ImageDir, true
	}
	ms = append(ms, pathSnippets()...)
	if r.Image != nil {
		ms = append(ms, entries) // listed by the launch that builds the view
	} else {
		ms = append(ms, spec.ExpandEntries(entries, r.Entries)...)
	}
	for _, b := range binds {
		ms = append(ms, spec.Mount{
			Op: spec.OpBind, Source: host(b.Source), Target: b.Dest, Recursive: true,
			ReadOnly: b.ReadOnly, Optional: b.Optional, Origin: spec.OriginBind, Why: why(b),
			// Site binds are data; the default ones keep the host's flags
			// (/dev must keep its devices).
			NoSuid: !isDefault(b), NoDev: !isDefault(b),
		})
	}
	for _, f := range t.Identity {
		ms = append(ms, spec.Mount{
			Op: spec.OpBind, Source: host(f), Target: f, ReadOnly: true, NoSuid: true, NoDev: true,
			Optional: true, Origin: spec.OriginIdentity, Why: "identity",
		})
	}
	ms = append(ms, spec.Mount{Op: spec.OpMkdir, Target: ViewDir, Origin: spec.OriginAdded, Why: "for switching trees"},
		spec.Mount{Op: spec.OpMkdir, Target: spec.LayerDir, Origin: spec.OriginAdded, Why: "for the names of directory users"})
	if r.Self != "" {
		// nosuid as the tree is: inside a tree, the setuid chos gives root
		// only where the tree's own setuid programs do (setuid = allow).
		ms = append(ms, spec.Mount{
			Op: spec.OpBind, Source: r.Self, Target: path.Join(SelfDir, "chos"), ReadOnly: true, NoDev: true,
			NoSuid: !t.AllowSetuid, SameFileAs: spec.SelfExe, Origin: spec.OriginSelf, Why: "chos itself",
		})
		// chos, called by a host command's name from inside the view,
		// runs that command on the host.
		for _, hc := range r.Catalog.HostCommands {
			ms = append(ms, spec.Mount{Op: spec.OpSymlink, Source: "chos", Target: path.Join(SelfDir, path.Base(hc.Path)),
				Origin: spec.OriginAdded, Why: "host command " + hc.Path + " (" + hc.At.String() + ")"})
		}
	}
	return ms
}

// AddedRoot holds, in a view with devices, what the view adds to the
// tree's other top-level directories, as AddedDir does for /etc: the top
// layers of their overlays (/.chos/add/usr on the tree's /usr).
const AddedRoot = "/.chos/add"

// devicesStep is the step that shows the devices of r in tree t, last:
// what they add to the tree's directories, the loader cache, their binds,
// links and environment (spec.OpDevices).
func devicesStep(r ViewRequest, t *ostree.Tree) spec.Mount {
	m := spec.Mount{Op: spec.OpDevices, Source: path.Join("/", r.HostPrefix, t.Path), Added: AddedRoot,
		HostRoot: r.HostPrefix, NoSuid: !t.AllowSetuid, Origin: spec.OriginDevice, Why: "CDI devices"}
	if r.Image != nil {
		m.Source, m.InView = ImageDir, true
	}
	return m
}

// DeviceVariant names the cached view of a tree with these devices
// (spec.Cache.Variant): views with other devices, and the tree's plain
// view, are kept beside it. The name is the device names themselves,
// letters and digits as they are, every other byte as Z and two hex
// digits, Zz between two names: a user chooses the names (within the patterns the configuration
// allows), and two selections must never share a view, which a hash of
// them could not promise (see CacheKey). ok is false when the names are
// too long for a file name: such a view is not cached.
func DeviceVariant(d *spec.Devices) (variant string, ok bool) {
	if d == nil || len(d.Names) == 0 {
		return "", true
	}
	b := []byte("dev")
	for i, n := range d.Names {
		if i > 0 {
			b = append(b, "Zz"...) // (never an escaped byte's: Z and hex digits)
		}
		for j := 0; j < len(n); j++ {
			switch c := n[j]; {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Y', c >= '0' && c <= '9':
				b = append(b, c)
			default:
				b = append(b, 'Z', "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
			}
		}
	}
	if len(b) > maxVariant {
		return "", false
	}
	return string(b), true
}

// maxVariant bounds a variant so that a cache file's name (the tree's
// stem, the variant, the key, ".mnt") stays under NAME_MAX (255 bytes).
const maxVariant = 160

// AddedDir holds, in every view, the files the view adds to the tree's
// /etc (an overlay on top of it): the tree itself is never written.
const AddedDir = "/.chos/etc"

// PathSnippets keep chos on PATH in login shells, whose profile (the
// tree's /etc/profile, csh.login) resets PATH: they append SelfDir to it,
// once. Debian's tcsh reads /etc/csh/login.d, others /etc/profile.d.
var PathSnippets = map[string]string{
	"profile.d/chos.sh": "# Added by chos to this tree's view: chos stays on PATH in login shells.\n" +
		"case \":${PATH}:\" in *:" + SelfDir + ":*) ;; *) PATH=\"${PATH}:" + SelfDir + "\"; export PATH ;; esac\n",
	"profile.d/chos.csh": "# Added by chos to this tree's view: chos stays on PATH in login shells.\n" +
		"if ( \":${PATH}:\" !~ *:" + SelfDir + ":* ) setenv PATH \"${PATH}:" + SelfDir + "\"\n",
	"csh/login.d/chos.csh": "# Added by chos to this tree's view: chos stays on PATH in login shells.\n" +
		"if ( \":${PATH}:\" !~ *:" + SelfDir + ":* ) setenv PATH \"${PATH}:" + SelfDir + "\"\n",
}

// pathSnippets are the steps that write PathSnippets below AddedDir, which
// the tree's /etc shows (treeEntries).
func pathSnippets() []spec.Mount {
	names := make([]string, 0, len(PathSnippets))
	for n := range PathSnippets {
		names = append(names, n)
	}
	sort.Strings(names)
	ms := make([]spec.Mount, 0, len(names))
	for _, n := range names {
		ms = append(ms, spec.Mount{Op: spec.OpFile, Source: PathSnippets[n], Target: path.Join(AddedDir, n),
			Origin: spec.OriginAdded, Why: "chos on PATH in login shells"})
	}
	return ms
}

// treeEntries is the step that shows the tree's top-level entries
// (spec.ExpandEntries): read-only, nosuid unless the tree allows setuid,
// none that a host bind replaces, and /etc with what the view adds on top:
// the PATH snippets, and mount points for the identity files and host
// binds below /etc that the tree lacks (a minimal Debian has no
// /etc/hosts).
func treeEntries(t *ostree.Tree, binds []config.Bind, host func(string) string) spec.Mount {
	m := spec.Mount{Op: spec.OpEntries, Source: host(t.Path), Target: "/", ReadOnly: true, NoSuid: !t.AllowSetuid,
		NoDev: true, NoFollow: true, Added: AddedDir, Origin: spec.OriginTree, Why: "tree"}
	for _, b := range binds {
		if path.Dir(b.Dest) == "/" {
			m.Except = append(m.Except, b.Dest[1:])
		}
	}
	for _, f := range t.Identity {
		if strings.HasPrefix(f, "/etc/") {
			m.Provide = append(m.Provide, spec.Provision{Path: f, Source: host(f)})
		}
	}
	for _, b := range binds {
		if strings.HasPrefix(b.Dest, "/etc/") {
			m.Provide = append(m.Provide, spec.Provision{Path: b.Dest, Source: host(b.Source)})
		}
	}
	return m
}

// HostBinds merges the default, site and tree binds: one bind per
// destination (the most specific configuration wins: tree over site over
// default), none already carried by a recursive bind of its parent, sorted
// so that parents are mounted before what lies below them.
func HostBinds(c *ostree.Catalog, t *ostree.Tree) []config.Bind {
	byDest := map[string]config.Bind{}
	for _, list := range [][]config.Bind{DefaultBinds, c.Binds, t.Binds} {
		for _, b := range list {
			// The same host path named again (the legacy list repeats
			// /dev, /proc, /sys) keeps the first entry and its flags.
			if prev, ok := byDest[b.Dest]; ok && prev.Source == b.Source && prev.ReadOnly == b.ReadOnly {
				continue
			}
			byDest[b.Dest] = b
		}
	}
	out := make([]config.Bind, 0, len(byDest))
	for _, b := range byDest {
		if carriedByParent(b, byDest) {
			continue
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool {
		di, dj := strings.Count(out[i].Dest, "/"), strings.Count(out[j].Dest, "/")
		if di != dj {
			return di < dj
		}
		return out[i].Dest < out[j].Dest
	})
	return out
}

// carriedByParent says whether a recursive bind of a parent already shows
// b's source at b's destination (/dev/shm under /dev).
func carriedByParent(b config.Bind, byDest map[string]config.Bind) bool {
	for d := path.Dir(b.Dest); d != "/"; d = path.Dir(d) {
		if parent, ok := byDest[d]; ok {
			rel := strings.TrimPrefix(b.Dest, d)
			return parent.Source+rel == b.Source && parent.ReadOnly == b.ReadOnly
		}
	}
	return false
}

func isDefault(b config.Bind) bool {
	for _, d := range DefaultBinds {
		if d == b {
			return true
		}
	}
	return false
}

func why(b config.Bind) string {
	if b.At.File == "" {
		return "default"
	}
	return b.At.String()
}

// execEnv is the caller's environment with CHOS set and chos on PATH,
// and the notes for --verbose.
func execEnv(env []string, t *ostree.Tree) ([]string, []spec.Note) {
	out := make([]string, 0, len(env)+2)
	var notes []spec.Note
	for _, kv := range env {
		if strings.HasPrefix(kv, "CHOS=") {
			continue
		}
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			if p, fits := pathWithSelf(v, t); fits {
				kv = "PATH=" + p
			} else {
				notes = append(notes, spec.Notef("PATH left unchanged, without %s: it would exceed the kernel's limit of %d bytes for one variable (PATH has %d)",
					SelfDir, MaxArgStrlen-1, len(kv)))
			}
		}
		out = append(out, kv)
	}
	return append(out, "CHOS="+t.Name), notes
}

// MaxArgStrlen is the kernel's limit on one argument or environment
// string, its terminating NUL included (MAX_ARG_STRLEN, 32 pages of 4 KiB:
// include/uapi/linux/binfmts.h): execve fails with E2BIG past it.
const MaxArgStrlen = 32 * 4096

// pathWithSelf appends SelfDir to PATH in a tree, last so that it never
// shadows the tree's own commands, and removes it on the host. A PATH that
// would no longer fit in one variable (MaxArgStrlen) is returned as it
// is, with false: the command must still be executable.
func pathWithSelf(v string, t *ostree.Tree) (string, bool) {
	var dirs []string
	for _, d := range strings.Split(v, ":") {
		if d != SelfDir {
			dirs = append(dirs, d)
		}
	}
	if !t.Host {
		dirs = append(dirs, SelfDir)
	}
	p := strings.Join(dirs, ":")
	if len("PATH=")+len(p)+1 > MaxArgStrlen {
		return v, false
	}
	return p, true
}

// loginShell fills in the caller's login shell, as the original chos
// started it: environment cleaned to the tree's %ENV list, PATH reset.
func loginShell(r Request, p *spec.Process) (notes []spec.Note) {
	t := r.Tree
	shell := r.Caller.Shell
	if shell == "" || !r.ShellInTree {
		if shell != "" {
			notes = append(notes, spec.Warning("your shell %s is not in tree %s; using /bin/sh", shell, t.Name))
		}
		shell = "/bin/sh"
	}
	keep := DefaultLoginEnv
	var beh []string
	if r.TreeConf != nil {
		keep, beh = r.TreeConf.Env, r.TreeConf.Beh
	}
	keep = append(append([]string{}, keep...), r.Catalog.Env...)

	base := path.Base(shell)
	p.Path = shell
	switch {
	case base == "csh" || base == "tcsh":
		p.Argv = []string{base, "-l"}
	case base == "bash" && contains(beh, "BASHLOGIN"):
		p.Argv = []string{base, "-l"}
	default:
		p.Argv = []string{"-" + base}
	}

	kept := map[string]string{}
	for _, kv := range r.Caller.Env {
		k, v, _ := strings.Cut(kv, "=")
		if contains(keep, k) {
			kept[k] = v
		}
	}
	// What a login needs is set whatever the list says.
	kept["PATH"], _ = pathWithSelf(DefaultPath(r.Caller.UID == 0), t)
	kept["CHOS"] = t.Name
	kept["SHELL"] = shell
	if r.Caller.Home != "" {
		kept["HOME"] = r.Caller.Home
	}
	if r.Caller.Name != "" {
		kept["USER"], kept["LOGNAME"] = r.Caller.Name, r.Caller.Name
	}
	keys := make([]string, 0, len(kept))
	for k := range kept {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p.Env = append(p.Env, k+"="+kept[k])
	}
	p.DirFallback = []string{r.Caller.Home, "/"}
	return notes
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// CacheKey fingerprints everything a view is built from: the configuration,
// every setup step, the devices it shows, and the device and inode of what
// the stamps name (the tree, its top-level entries, identity files, chos
// itself, the devices' spec files: see Stamped and StampedSpecs).
// A cached namespace is only ever entered under its own key, so any change
// makes the next launch build a new one. For an image tree, the image's
// identity (ostree.ImageID.Stamp, among the stamps) stands for the entries
// its OpEntries step lists.
//
// The key is a 64-bit FNV-1a hash, not a cryptographic one: a collision
// would let a launch enter a stale view of the same tree (the key is only
// ever compared with the same tree's), so what matters is who can choose
// the inputs. Of a setuid view, only root: the configuration and the trees
// are root's and writable by no one else (config.Load and trust check it),
// the stamps are of those files, and nothing of the caller goes in. Root
// has no need of a collision; an accidental one among the few states a
// tree's view takes is about 2^-64 likely. The one input of a setuid
// view a user chooses, the CDI devices it shows, also names its file, as
// they are (DeviceVariant): views of two selections never share a name,
// whatever their keys. Of a view kept for a user's user-namespace
// launches, the user chooses some inputs (their personal trees), but a
// collision only shows them a stale view of their own, which they could
// make anyway. Package crypto and its FIPS module's
// initialisation are so left out of every launch.
func CacheKey(configDigest string, v *spec.View, stamps []string) string {
	// (no fmt, no allocation per step: this runs on every cached launch)
	h := keyHash(fnvOffset)
	h.add("v2", configDigest, v.Tree, v.TreePath, v.Root)
	if d := v.Devices; d != nil {
		h.add("devices", d.Reader)
		if d.Trusted {
			h.add("trusted")
		}
		for _, l := range [][]string{d.Names, d.SpecDirs, d.Specs} {
			h.add(l...)
			h.byte(0)
		}
	}
	// Every field of every step (written out: reflection costs a launch
	// with many binds a quarter of a millisecond).
	for i := range v.Mounts {
		m := &v.Mounts[i]
		h.add(string(m.Op), m.Source, m.Target, m.SameFileAs, string(m.Origin), m.Why, m.Added)
		for _, pr := range m.Provide {
			h.add(pr.Path, pr.Source, pr.Link)
			if pr.Soname {
				h.add("soname")
			}
		}
		for _, e := range m.Except {
			h.add(e)
		}
		h.add(m.HostRoot)
		for _, f := range [...]bool{m.File, m.Recursive, m.ReadOnly, m.NoSuid, m.NoDev, m.NoFollow, m.Optional, m.InView} {
			if f {
				h.byte('1')
			} else {
				h.byte('0')
			}
		}
	}
	for _, s := range stamps {
		h.add(s)
	}
	var sum [8]byte
	for i := range sum {
		sum[i] = byte(h >> (56 - 8*i))
	}
	return hex.EncodeToString(sum[:])
}

// keyHash is 64-bit FNV-1a (hash/fnv's, written over strings so that
// nothing is allocated), each string ended by a NUL.
type keyHash uint64

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func (h *keyHash) byte(b byte) { *h = (*h ^ keyHash(b)) * fnvPrime }

func (h *keyHash) add(strs ...string) {
	for _, s := range strs {
		for i := 0; i < len(s); i++ {
			h.byte(s[i])
		}
		h.byte(0)
	}
}

// Stamped says whether the cache key stamps m's source by device and
// inode: what the view shows by reference (a tree's entry, an identity
// file, chos itself), whose replacement must give a new key. A link's
// text is part of its step already; what is inside the view is the
// image's, which its own stamp covers.
func Stamped(m spec.Mount) bool {
	switch m.Origin {
	case spec.OriginTree, spec.OriginIdentity, spec.OriginSelf:
		return m.Op == spec.OpBind && !m.InView
	}
	return false
}

// StampedSpecs are the files whose stamps stand for what step m of view v
// shows but only the launch that builds the view reads: the spec files of
// its devices (the OpDevices step), whose content, not only whose inode,
// a regenerated spec changes (devices.Stamp).
func StampedSpecs(v *spec.View, m spec.Mount) []string {
	if m.Origin == spec.OriginDevice && m.Op == spec.OpDevices && v.Devices != nil {
		return v.Devices.Specs
	}
	return nil
}
