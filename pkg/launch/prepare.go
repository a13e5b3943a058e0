package launch

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/chos-hpc/chos/pkg/config"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/plan"
	"github.com/chos-hpc/chos/pkg/spec"
)

// Request is a launch the command line asks for.
type Request struct {
	// Tree is the tree named (an argument, or the name of a link to chos),
	// "" to select one ($CHOS, ~/.chos, the default, the host).
	Tree string
	// Argv is the command; empty for the caller's login shell, with a
	// cleaned environment (Login).
	Argv  []string
	Login bool
	// Fresh asks for a private view instead of the cached one.
	Fresh bool
	// Devices are the CDI devices asked for: lists of names (each
	// --device option); nil when none was given, and $CHOS_DEVICES asks.
	Devices []string
	// Via is how chos was started, for the audit line: exec, shell, vsys,
	// legacy, login.
	Via string
}

// Launch is a launch prepared: the plan to carry out, what to tell the
// caller, and what to tell the admins.
type Launch struct {
	Plan   *spec.Plan
	Notes  []spec.Note
	Record Record
	// catalog is the configuration it was planned with: the cached views
	// of trees it does not have are stale (Announce).
	catalog *ostree.Catalog
}

// Prepare plans a launch: configuration, selection, access, and what the
// plan needs to know of the tree and the caller. The Launch returned with
// an error holds the record of the refusal.
func (inv Invocation) Prepare(req Request) (*Launch, error) {
	l := &Launch{Record: inv.record(req.Via, req.Login)}
	s, err := inv.begin(l, ostree.Inputs{Argument: req.Tree, Env: inv.Getenv("CHOS")}, req.Devices)
	if err == nil {
		l.Plan, l.Notes, err = inv.planFor(s.cat, s.who, s.tree, s.devices, req.Argv, req.Login, req.Fresh)
	}
	if err != nil {
		return inv.refuse(l, err, req.Tree, req.Argv)
	}
	return l, nil
}

// start is what every launch learns first, whatever started it.
type start struct {
	cat     *ostree.Catalog
	who     plan.Caller
	tree    *ostree.Tree
	devices []string // the CDI devices asked for, by name
}

// begin reads the configuration, learns the caller, selects their tree
// from in and names the devices asked (a request's --device lists; nil:
// $CHOS_DEVICES), writing each into l's record as it is known.
func (inv Invocation) begin(l *Launch, in ostree.Inputs, devices []string) (start, error) {
	var s start
	cat, set, err := inv.Catalog()
	l.Record.Config, l.catalog, s.cat = set.Audit(), cat, cat
	if err != nil {
		return s, err
	}
	if s.who, err = inv.who(); err != nil {
		return s, err
	}
	l.Record.Event.User = s.who.Name
	sel, err := inv.choose(cat, in, s.who)
	l.Record.selected(sel)
	if err != nil {
		return s, err
	}
	s.tree = sel.Tree
	if s.devices, err = inv.deviceNames(devices); err != nil {
		return s, err
	}
	l.Record.asked(s.devices)
	return s, nil
}

// refuse records err as the refusal of l, a launch of argv in the tree
// named (both as asked, for the audit line), and returns them.
func (inv Invocation) refuse(l *Launch, err error, name string, argv []string) (*Launch, error) {
	l.Record.refused(err, name, argv)
	l.Record.Event.Cwd, _ = inv.Machine.Getwd(inv.lookupCaller())
	return l, err
}

// planFor computes the plan of a launch of argv (or the login shell) in
// tree t, selected for who, with the CDI devices names.
func (inv Invocation) planFor(cat *ostree.Catalog, who plan.Caller, t *ostree.Tree, names, argv []string, login, fresh bool) (*spec.Plan, []spec.Note, error) {
	vr, err := inv.viewRequest(cat, t)
	if err != nil {
		return nil, nil, err
	}
	if vr.Devices, err = inv.devicesFor(cat, t, names); err != nil {
		return nil, nil, err
	}
	req := plan.Request{ViewRequest: vr, Caller: who, Argv: argv, Login: login}
	if login {
		if req.ShellInTree, req.TreeConf, err = inv.loginFacts(t, who.Shell); err != nil {
			return nil, nil, err
		}
	}
	p, notes, err := plan.Build(req)
	if err != nil {
		return nil, nil, err
	}
	u, _ := inv.account() // (who returned its error)
	if p.Layer, err = inv.layer(t, u, append([]int{who.GID}, who.Groups...)); err != nil {
		return nil, nil, fmt.Errorf("naming you inside tree %s: %w", t.Name, err)
	}
	if !fresh && inv.Privilege.UserNS {
		p.Cache = inv.keptView(cat, t, &p.View, p.Layer)
	} else if !fresh {
		p.Cache = inv.cacheFor(cat, t, &p.View)
	}
	if plan.DirShowsHost(&p.View, inv.HostPrefix, p.Dir) {
		if p.DirID, err = inv.Machine.CwdID(inv.lookupCaller()); err != nil {
			return nil, nil, err
		}
	}
	return p, notes, nil
}

// loginFacts is what a login shell's plan needs to know of tree t, read
// with the caller's rights: whether it has the caller's shell, and its
// own /etc/chos.conf (nil if none).
func (inv Invocation) loginFacts(t *ostree.Tree, shell string) (shellInTree bool, conf *config.File, err error) {
	treeRoot := inv.HostPath(t.Path)
	err = inv.asCaller(func() error {
		if shell != "" {
			_, serr := ostree.StatInTree(treeRoot, shell)
			shellInTree = serr == nil
		}
		data, err := ostree.ReadInTree(treeRoot, "/etc/chos.conf")
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s/etc/chos.conf: %w", t.Path, err)
		}
		conf, err = config.Parse(filepath.Join(t.Path, "etc/chos.conf"), data)
		return err
	})
	return shellInTree, conf, err
}
