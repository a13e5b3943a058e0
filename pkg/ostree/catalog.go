// Package ostree knows the configured OS trees: their names and aliases, the
// order in which a user's tree is selected, whether a tree is usable, and
// which OS it holds.
package ostree

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/chos-hpc/chos/pkg/config"
)

// Local is the name of the host itself; "root" is its other built-in name.
const (
	Local      = "local"
	localAlias = "root"
	// defaultName is the legacy way to mark the default tree: an alias
	// called "default" in %SHELLS.
	defaultName = "default"
)

// Tree is one configured OS tree with everything chos knows of it.
type Tree struct {
	Name    string   // canonical name: the first alias given for Path
	Aliases []string // the other names, in file order
	Path    string
	Host    bool // Path is "/": the host itself, no namespace
	// Personal trees come from the user's own file; chos uses them only
	// without privilege.
	Personal    bool
	Description string
	Binds       []config.Bind
	Identity    []string
	AllowSetuid bool
	Users       []string
	Groups      []string
	NoCache     bool
	// Devices are the CDI devices users may ask for in this tree (its
	// `devices =` lines; Catalog.CDI.Devices add those of every tree).
	Devices []config.DeviceRule
	At      config.Position
	// Sections are the %TREE sections applied, in reading order: where
	// each setting came from (origin.go).
	Sections []config.TreeSettings
}

// DefaultIdentity are the host files bound over the tree's own copies so that
// users, groups, host names and the time zone are the host's.
var DefaultIdentity = []string{"/etc/passwd", "/etc/group", "/etc/hosts", "/etc/resolv.conf", "/etc/localtime"}

// Catalog is the set of trees of a configuration, indexed by every name.
type Catalog struct {
	Trees   []*Tree // in order of first appearance; the host first
	Default *Tree   // the tree aliased "default", or nil
	Env     []string
	Binds   []config.Bind // sysconfig BINDMOUNT, then every %BIND, in file order
	// HostCommands are the host programs every tree runs on the host
	// (%HOSTCMD), each once, in file order.
	HostCommands []config.HostCommand
	// CDI is where device specs are read and what every tree allows.
	CDI config.CDIConfig
	// Digest fingerprints the system configuration (config.Set.Digest).
	Digest     string
	byName     map[string]*Tree
	hostByName map[string]config.HostCommand
}

// NewCatalog resolves aliases into trees and attaches the %TREE settings.
func NewCatalog(set *config.Set) (*Catalog, error) {
	host := &Tree{Name: Local, Aliases: []string{localAlias}, Path: "/", Host: true,
		At: config.Position{File: "built-in"}}
	c := &Catalog{byName: map[string]*Tree{Local: host, localAlias: host}, Trees: []*Tree{host},
		hostByName: map[string]config.HostCommand{}}
	byPath := map[string]*Tree{"/": host}
	c.Digest = set.Digest
	c.CDI = set.CDI()

	if set.Sysconfig != nil {
		c.Binds = append(c.Binds, set.Sysconfig.BindMounts...)
	}
	for _, f := range set.Files {
		c.Env = append(c.Env, f.Env...)
		c.Binds = append(c.Binds, f.Binds...)
		if err := c.addHostCommands(f.HostCommands); err != nil {
			return nil, err
		}
		for _, a := range f.Shells {
			if prev, ok := c.byName[a.Name]; ok {
				if prev.Path != a.Path {
					return nil, &config.Error{At: a.At, Msg: fmt.Sprintf("name %q is given to %s here but to %s at %s", a.Name, a.Path, prev.Path, prev.At)}
				}
				if prev.Host && prev.At.File == "built-in" {
					prev.At = a.At // the site's own local:/ line
				}
				continue
			}
			t, ok := byPath[a.Path]
			switch {
			case !ok:
				t = &Tree{Name: a.Name, Path: a.Path, At: a.At, Identity: DefaultIdentity}
				byPath[a.Path] = t
				c.Trees = append(c.Trees, t)
			case t.Name == defaultName && a.Name != defaultName:
				// "default" names a tree but is never its proper name.
				t.Aliases = append(t.Aliases, t.Name)
				t.Name = a.Name
			default:
				t.Aliases = append(t.Aliases, a.Name)
			}
			c.byName[a.Name] = t
		}
	}
	c.Default = c.byName[defaultName]
	if set.Personal != nil {
		if err := c.addPersonal(set.Personal); err != nil {
			return nil, err
		}
	}

	for _, f := range set.Files {
		for _, ts := range f.Trees {
			t, ok := c.byName[ts.Name]
			if !ok {
				return nil, &config.Error{At: ts.At, Msg: fmt.Sprintf("%%TREE %s: no such tree in %%SHELLS (known: %s)", ts.Name, strings.Join(c.NameList(), ", "))}
			}
			if t.Host {
				return nil, &config.Error{At: ts.At, Msg: fmt.Sprintf("%%TREE %s: the host (path /) takes no tree settings", ts.Name)}
			}
			applySettings(t, ts)
		}
	}
	return c, nil
}

// applySettings merges a %TREE section into a tree.
func applySettings(t *Tree, ts config.TreeSettings) {
	if ts.Description != "" {
		t.Description = ts.Description
	}
	t.Binds = append(t.Binds, ts.Binds...)
	if ts.IdentitySet {
		t.Identity = ts.Identity
	}
	// The last file that says wins (a drop-in over /etc/chos).
	if ts.SetuidSet {
		t.AllowSetuid = ts.AllowSetuid
	}
	if ts.CacheSet {
		t.NoCache = ts.NoCache
	}
	t.Users = append(t.Users, ts.Users...)
	t.Groups = append(t.Groups, ts.Groups...)
	t.Devices = append(t.Devices, ts.Devices...)
	t.Sections = append(t.Sections, ts)
}

// addPersonal adds a user's own trees. They may not take a system tree's
// name or path, change a system tree, or bind into every tree: system trees
// look the same in every mode.
func (c *Catalog) addPersonal(f *config.File) error {
	if len(f.Binds) > 0 {
		return &config.Error{At: f.Binds[0].At, Msg: "%BIND is for the system configuration; give a personal tree its binds with `bind =` in its %TREE section"}
	}
	if len(f.HostCommands) > 0 {
		return &config.Error{At: f.HostCommands[0].At, Msg: "%HOSTCMD is for the system configuration"}
	}
	c.Env = append(c.Env, f.Env...)
	mine := map[string]*Tree{}
	for _, a := range f.Shells {
		if prev, ok := c.byName[a.Name]; ok && !prev.Personal {
			return &config.Error{At: a.At, Msg: fmt.Sprintf("%q is a system tree's name (%s); choose another name for a personal tree", a.Name, prev.At)}
		} else if ok && prev.Path != a.Path {
			return &config.Error{At: a.At, Msg: fmt.Sprintf("name %q is given to %s here but to %s at %s", a.Name, a.Path, prev.Path, prev.At)}
		} else if ok {
			continue
		}
		if a.Path == "/" || a.Name == defaultName {
			return &config.Error{At: a.At, Msg: "a personal tree cannot be the host or the default; use `chos select` to pick a default"}
		}
		t, ok := mine[a.Path]
		if !ok {
			t = &Tree{Name: a.Name, Path: a.Path, At: a.At, Identity: DefaultIdentity, Personal: true}
			mine[a.Path] = t
			c.Trees = append(c.Trees, t)
		} else {
			t.Aliases = append(t.Aliases, a.Name)
		}
		c.byName[a.Name] = t
	}
	for _, ts := range f.Trees {
		t, ok := c.byName[ts.Name]
		if !ok || !t.Personal {
			return &config.Error{At: ts.At, Msg: fmt.Sprintf("%%TREE %s: personal settings apply only to personal trees", ts.Name)}
		}
		applySettings(t, ts)
	}
	return nil
}

// UnknownTreeError is returned for a name no tree has.
type UnknownTreeError struct {
	Name  string
	From  string // where the name came from: "argument", "$CHOS", "~/.chos"
	Valid []string
}

func (e *UnknownTreeError) Error() string {
	return fmt.Sprintf("unknown OS tree %q (from %s); valid names: %s", e.Name, e.From, strings.Join(e.Valid, ", "))
}

// Lookup finds a tree by any of its names.
func (c *Catalog) Lookup(name string) (*Tree, bool) {
	t, ok := c.byName[name]
	return t, ok
}

// NameList returns every valid name, sorted.
func (c *Catalog) NameList() []string {
	names := make([]string, 0, len(c.byName))
	for n := range c.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Allows says whether a user (uid, name, and gids from the kernel) may use
// the tree. Users and groups may be listed by name or number; gidOf names
// a group's gid (false when no group has that name). Trees without users or
// groups lists are open to everyone; root always may.
func (t *Tree) Allows(uid int, user string, gids []int, gidOf func(name string) (int, bool)) bool {
	if uid == 0 || t.Host || (len(t.Users) == 0 && len(t.Groups) == 0) {
		return true
	}
	for _, u := range t.Users {
		if (u == user && user != "") || u == strconv.Itoa(uid) {
			return true
		}
	}
	for _, g := range t.Groups {
		gid, err := strconv.Atoi(g)
		if err != nil {
			var ok bool
			if gid, ok = gidOf(g); !ok {
				continue
			}
		}
		for _, have := range gids {
			if gid == have {
				return true
			}
		}
	}
	return false
}
