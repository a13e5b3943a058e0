package devices

import (
	"path"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
	specs "tags.cncf.io/container-device-interface/specs-go"
)

// Resolved is a device as its spec describes it: the edits of its spec
// (every device of the spec has them) and its own.
type Resolved struct {
	Name      string               `json:"name"` // qualified: VENDOR/CLASS=NAME
	Spec      string               `json:"spec"` // the file that defines it
	SpecEdits specs.ContainerEdits `json:"specEdits"`
	Edits     specs.ContainerEdits `json:"edits"`
}

// Edits is what chos does for a set of devices: the CDI container edits as
// a view can show them. Everything in it is the same for every user who
// asks for these devices, so it is part of the view (and of its cache).
type Edits struct {
	Devices []Resolved
	// Mounts are host files and directories shown at their container
	// paths, without anything written into the tree.
	Mounts []Mount
	// Nodes are device nodes the host's /dev must have: every view shows
	// the host's /dev as it is.
	Nodes []Node
	// Env is set in the command's environment, in order (a later
	// variable replaces an earlier one of the same name).
	Env []string
	// LoaderDirs are the directories whose injected libraries the tree's
	// dynamic loader must find (update-ldcache hooks): chos links their
	// sonames and adds them to a loader cache made for the view.
	LoaderDirs []string
	// Links are symbolic links the view shows (create-symlinks hooks).
	Links []Link
	// Notes say which hooks chos did not perform, and why.
	Notes []string
}

// Mount is a host path shown in the view.
type Mount struct {
	Host, Path          string
	ReadOnly, Recursive bool
	Device, Spec        string // where it comes from
}

// Node is a device node, at the same path on the host and in the view.
type Node struct {
	Path         string
	Type         string // "c", "b" or "" (not said)
	Major, Minor int64
	Device, Spec string
}

// Link is a symbolic link Path with content Target.
type Link struct {
	Target, Path string
	Device, Spec string
}

// DeviceError is a device whose spec asks for what chos does not do.
type DeviceError struct {
	Device, Spec string
	Msg          string
}

func (e *DeviceError) Error() string {
	return "device " + e.Device + " (" + e.Spec + "): " + e.Msg
}

// Interpret turns the container edits of devs (each spec's once, then each
// device's, as the CDI library injects them) into Edits. What chos cannot
// do faithfully is refused, naming the device and its spec file: mounts
// other than binds, device nodes renamed or outside /dev, additional
// groups, Intel RDT, network devices, and every hook but those whose
// effect chos knows and performs itself (hookCommand). chos never runs a
// hook program.
func Interpret(devs []Resolved) (*Edits, error) {
	e := &Edits{Devices: devs}
	seenSpec := map[string]bool{}
	mountAt := map[string]int{}
	linkAt := map[string]int{}
	for _, d := range devs {
		if !seenSpec[d.Spec] {
			seenSpec[d.Spec] = true
			if err := e.add(d, &d.SpecEdits, mountAt, linkAt); err != nil {
				return nil, err
			}
		}
		if err := e.add(d, &d.Edits, mountAt, linkAt); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (e *Edits) add(d Resolved, ce *specs.ContainerEdits, mountAt, linkAt map[string]int) error {
	refuse := func(msg string) error { return &DeviceError{Device: d.Name, Spec: d.Spec, Msg: msg} }
	switch {
	case len(ce.AdditionalGIDs) > 0:
		return refuse("additionalGids: chos gives a command no group its user lacks; give users the device's group on the host")
	case ce.IntelRdt != nil:
		return refuse("intelRdt: chos sets no resource control")
	case len(ce.NetDevices) > 0:
		return refuse("netDevices: chos moves no network device (views share the host's network)")
	}
	e.Env = append(e.Env, ce.Env...)
	for _, n := range ce.DeviceNodes {
		if n == nil {
			continue
		}
		p := path.Clean(n.Path)
		switch {
		case !strings.HasPrefix(p, "/dev/"):
			return refuse("device node " + n.Path + " is not below /dev: chos shows the host's /dev, and no other device node")
		case n.HostPath != "" && path.Clean(n.HostPath) != p:
			return refuse("device node " + n.HostPath + " shown as " + n.Path + ": chos shows the host's /dev as it is, without renaming")
		}
		e.Nodes = append(e.Nodes, Node{Path: p, Type: n.Type, Major: n.Major, Minor: n.Minor, Device: d.Name, Spec: d.Spec})
	}
	for _, m := range ce.Mounts {
		if m == nil {
			continue
		}
		if m.Type != "" && m.Type != "bind" {
			return refuse("mount of type " + m.Type + " at " + m.ContainerPath + ": chos binds host paths only")
		}
		if !path.IsAbs(m.HostPath) || !path.IsAbs(m.ContainerPath) {
			return refuse("mount " + m.HostPath + " -> " + m.ContainerPath + ": paths must be absolute")
		}
		mt := Mount{Host: path.Clean(m.HostPath), Path: path.Clean(m.ContainerPath), Device: d.Name, Spec: d.Spec}
		if mt.Path == "/" {
			return refuse("mount " + m.HostPath + " over the tree's root")
		}
		for _, o := range m.Options {
			switch o {
			case "ro", "rro":
				mt.ReadOnly = true
			case "rw":
				mt.ReadOnly = false
			case "rbind":
				mt.Recursive = true
			}
		}
		if i, ok := mountAt[mt.Path]; ok {
			if e.Mounts[i].Host != mt.Host {
				return refuse("mounts both " + e.Mounts[i].Host + " (" + e.Mounts[i].Spec + ") and " + mt.Host + " at " + mt.Path)
			}
			continue
		}
		mountAt[mt.Path] = len(e.Mounts)
		e.Mounts = append(e.Mounts, mt)
	}
	for _, h := range ce.Hooks {
		if h == nil {
			continue
		}
		if err := e.hook(d, h, linkAt); err != nil {
			return err
		}
	}
	return nil
}

// hookCommand is the subcommand of h and its arguments, when h is one of
// the hook programs whose subcommands chos knows (ok): the NVIDIA
// Container Toolkit's (nvidia-cdi-hook SUBCOMMAND, and the older
// nvidia-ctk hook SUBCOMMAND), which `nvidia-ctk cdi generate` writes.
// Their subcommands' effects are described in its cmd/nvidia-cdi-hook.
func hookCommand(h *specs.Hook) (sub string, args []string, ok bool) {
	argv := h.Args
	if len(argv) == 0 {
		argv = []string{h.Path}
	}
	switch path.Base(h.Path) {
	case "nvidia-cdi-hook":
		if len(argv) >= 2 {
			return argv[1], argv[2:], true
		}
	case "nvidia-ctk":
		if len(argv) >= 3 && argv[1] == "hook" {
			return argv[2], argv[3:], true
		}
	}
	return "", nil, false
}

// skippedHook says why chos leaves out a known subcommand ("" for one it
// does not know). (A switch, not a map: every launch would build a map.)
func skippedHook(sub string) string {
	switch sub {
	case "chmod":
		return "the host's /dev is shown as it is, its modes too"
	case "enable-cuda-compat":
		return "the host's driver libraries are used, not a tree's CUDA forward-compatibility ones"
	case "disable-device-node-modification", "update-nvidia-params":
		return "a command in a tree cannot create device nodes (no CAP_MKNOD) but as root"
	}
	return ""
}

func (e *Edits) hook(d Resolved, h *specs.Hook, linkAt map[string]int) error {
	refuse := func(msg string) error { return &DeviceError{Device: d.Name, Spec: d.Spec, Msg: msg} }
	sub, args, ok := hookCommand(h)
	if !ok {
		return refuse("hook " + strings.Join(append([]string{h.Path}, h.Args...), " ") + ": chos runs no hook program; it performs the NVIDIA toolkit's update-ldcache, create-soname-symlinks and create-symlinks itself")
	}
	switch sub {
	case "update-ldcache", "create-soname-symlinks":
		for _, f := range flagValues(args, "folder") {
			if !path.IsAbs(f) {
				return refuse("hook " + sub + ": folder " + f + " is not an absolute path")
			}
			e.LoaderDirs = appendNew(e.LoaderDirs, path.Clean(f))
		}
	case "create-symlinks":
		for _, l := range flagValues(args, "link") {
			target, link, ok := strings.Cut(l, "::")
			if !ok || target == "" || !path.IsAbs(link) || path.Clean(link) == "/" {
				return refuse("hook create-symlinks: link " + l + " is not TARGET::/ABSOLUTE/PATH")
			}
			lk := Link{Target: target, Path: path.Clean(link), Device: d.Name, Spec: d.Spec}
			if i, ok := linkAt[lk.Path]; ok {
				if e.Links[i].Target != lk.Target {
					return refuse("hook create-symlinks: " + lk.Path + " links to both " + e.Links[i].Target + " and " + lk.Target)
				}
				continue
			}
			linkAt[lk.Path] = len(e.Links)
			e.Links = append(e.Links, lk)
		}
	default:
		why := skippedHook(sub)
		if why == "" {
			return refuse("hook " + path.Base(h.Path) + " " + sub + ": not one chos performs (it performs update-ldcache, create-soname-symlinks and create-symlinks, and runs no hook program)")
		}
		e.Notes = appendNew(e.Notes, "hook "+sub+" of "+d.Spec+" not performed: "+why)
	}
	return nil
}

// flagValues are the values of --name V and --name=V in args.
func flagValues(args []string, name string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if !strings.HasPrefix(args[i], "-") {
			continue
		}
		a := strings.TrimPrefix(strings.TrimPrefix(args[i], "-"), "-")
		if a == name && i+1 < len(args) {
			out = append(out, args[i+1])
			i++
		} else if v, ok := strings.CutPrefix(a, name+"="); ok {
			out = append(out, v)
		}
	}
	return out
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// CheckNodes refuses a device whose nodes the host lacks, or has of another
// kind or number than its spec says: views show the host's /dev as it is
// (prefix is where the host's root is seen).
func CheckNodes(nodes []Node, prefix string) error {
	for _, n := range nodes {
		var st syscall.Stat_t
		err := syscall.Stat(path.Join("/", prefix, n.Path), &st)
		kind := ""
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFCHR:
			kind = "c"
		case syscall.S_IFBLK:
			kind = "b"
		}
		major, minor := int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		switch {
		case err != nil:
			return &DeviceError{Device: n.Device, Spec: n.Spec, Msg: "device node " + n.Path + " is not on this host (" + err.Error() + ")"}
		case kind == "":
			return &DeviceError{Device: n.Device, Spec: n.Spec, Msg: n.Path + " is not a device node"}
		case n.Type != "" && n.Type != "u" && n.Type != kind,
			n.Major != 0 && n.Major != major, n.Minor != 0 && n.Minor != minor:
			return &DeviceError{Device: n.Device, Spec: n.Spec, Msg: "device node " + n.Path + " is " + kind + " " + strconv.FormatInt(major, 10) + ":" + strconv.FormatInt(minor, 10) + " here, not what the spec says (regenerate it)"}
		}
	}
	return nil
}
