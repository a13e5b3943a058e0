package spec

import (
	"fmt"
	"strconv"
	"strings"
)

// Plan is everything a launch does, computed before any of it is done: the
// caller-independent view, the caller's identity layer on it (nil when the
// view's files already name the caller and all their groups: every local
// user), and the process applied on top.
type Plan struct {
	View
	Layer *Layer
	Process
}

// Note is something a launch tells the person it is for. A warning is
// always shown (on the command line, by the PAM module, on a job's
// stderr); other notes (skipped optional binds) only when asked for.
type Note struct {
	Warning bool
	Text    string
}

// Warning is a note that is always shown.
func Warning(format string, args ...any) Note {
	return Note{Warning: true, Text: fmt.Sprintf(format, args...)}
}

// Notef is a note shown only when asked for.
func Notef(format string, args ...any) Note {
	return Note{Text: fmt.Sprintf(format, args...)}
}

// String renders the plan for people, one step a line.
func (p *Plan) String() string {
	var b strings.Builder
	if p.Host {
		fmt.Fprintf(&b, "tree      %s (the host: no namespace)\n", p.Tree)
	} else {
		fmt.Fprintf(&b, "tree      %s (%s), assembled at %s\n", p.Tree, p.TreePath, p.Root)
		if p.Cache != nil && p.Cache.Dir == "" {
			fmt.Fprintf(&b, "keep      join the view a process of yours keeps (%s) if there is one, else build as below in a user namespace and keep it until %v after your last launch of it ends\n", p.Cache.Key, KeptFor)
		} else if p.Cache != nil {
			fmt.Fprintf(&b, "cache     enter %s if it exists, else build as below and keep it there\n", p.Cache.File())
		}
		if d := p.Devices; d != nil {
			fmt.Fprintf(&b, "devices   %s (their environment from %s)\n", strings.Join(d.Names, " "), DeviceEnvFile)
		}
		fmt.Fprintf(&b, "unshare   mount namespace, host mounts slave\n")
		if p.RootSource != "" {
			fmt.Fprintf(&b, "bind      %s -> /  [rec]\n", p.RootSource)
		} else {
			fmt.Fprintf(&b, "tmpfs     /  (%s)\n", MountSource(p.Tree))
		}
		for _, m := range p.Mounts {
			switch m.Op {
			case OpBind:
				fmt.Fprintf(&b, "bind      %s -> %s  [%s]  (%s)\n", m.Source, m.Target, m.Flags(), m.Why)
			case OpSymlink:
				fmt.Fprintf(&b, "symlink   %s -> %s  (%s)\n", m.Target, m.Source, m.Why)
			case OpMkdir:
				fmt.Fprintf(&b, "mkdir     %s  (%s)\n", m.Target, m.Why)
			case OpFile:
				fmt.Fprintf(&b, "file      %s  %d bytes  (%s)\n", m.Target, len(m.Source), m.Why)
			case OpImage:
				fmt.Fprintf(&b, "image     %s -> %s  [%s]  (%s; a shared loop device when setuid, squashfuse in a user namespace)\n", m.Source, m.Target, m.Flags(), m.Why)
			case OpOverlay:
				fmt.Fprintf(&b, "overlay   %s + %s -> %s  [%s]  (%s)\n", m.Added, m.Source, m.Target, m.Flags(), m.Why)
				for _, pr := range m.Provide {
					switch {
					case pr.Link != "":
						fmt.Fprintf(&b, "            link %s -> %s\n", pr.Path, pr.Link)
					case pr.Soname:
						fmt.Fprintf(&b, "            mount point %s if the tree lacks it, and its soname linked to it\n", pr.Path)
					default:
						fmt.Fprintf(&b, "            mount point %s if the tree lacks it and %s exists\n", pr.Path, pr.Source)
					}
				}
			case OpLoaderCache:
				libs := "libraries"
				if len(m.Provide) == 1 {
					libs = "library"
				}
				fmt.Fprintf(&b, "ldcache   %s/etc/ld.so.cache + %d %s -> %s  (%s)\n", m.Source, len(m.Provide), libs, m.Target, m.Why)
				for _, pr := range m.Provide {
					fmt.Fprintf(&b, "            %s (%s)\n", pr.Path, pr.Source)
				}
			case OpDevices:
				fmt.Fprintf(&b, "devices   their steps, from their specs, made by the launch that builds the view  (%s)\n", m.Why)
			}
		}
		if p.RootSource == "" {
			fmt.Fprintf(&b, "remount   / read-only\n")
		}
		fmt.Fprintf(&b, "pivot     %s becomes /, old root detached\n", p.Root)
	}
	groups := make([]string, len(p.Creds.Groups))
	for i, g := range p.Creds.Groups {
		groups[i] = strconv.Itoa(g)
	}
	caps := "none"
	switch {
	case p.Creds.KeepCaps:
		caps = "kept (caller is root)"
	case p.Creds.KeepBounding:
		caps = "none, bounding set kept (setuid = allow)"
	}
	fmt.Fprintf(&b, "identity  uid=%d gid=%d groups=%s capabilities=%s no_new_privs=%t\n",
		p.Creds.UID, p.Creds.GID, strings.Join(groups, ","), caps, p.Creds.NoNewPrivs)
	if id := p.Layer; id != nil {
		fmt.Fprintf(&b, "names     a layer of your own on the view (%s): /etc/passwd + %d line(s), /etc/group + %d line(s)\n",
			id.Key, len(id.Passwd), len(id.Group))
		for _, l := range id.Passwd {
			fmt.Fprintf(&b, "            passwd  %s\n", l)
		}
		for _, l := range id.Group {
			fmt.Fprintf(&b, "            group   %s\n", l)
		}
	}
	fmt.Fprintf(&b, "cwd       %s", p.Dir)
	if p.DirID != nil {
		fmt.Fprintf(&b, " (yours: device %d inode %d)", p.DirID.Dev, p.DirID.Ino)
	}
	for _, d := range p.DirFallback {
		fmt.Fprintf(&b, " | %s", d)
	}
	fmt.Fprintf(&b, "\nexec      %s %q\n", p.Path, p.Argv)
	return b.String()
}
