package launch

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/chos-hpc/chos/pkg/audit"
	"github.com/chos-hpc/chos/pkg/config"
	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/plan"
	"github.com/chos-hpc/chos/pkg/spec"
)

// Record is an audit line and where it goes.
type Record struct {
	Event audit.Event
	// Config is the configuration's %AUDIT (its defaults when none could
	// be read: a refusal is logged all the same).
	Config config.AuditConfig
	// InView: the process is in the view `chos prepare` entered, where the
	// host's root is at plan.HostDir.
	InView bool
}

// sources are the selection sources as the audit line names them.
var sources = map[ostree.Source]string{
	ostree.FromArgument: "argument", ostree.FromEnv: "env", ostree.FromDotfile: "dotfile",
	ostree.FromPlugin: "plugin", ostree.FromDefault: "default", ostree.FromFallback: "none",
}

// record starts the record of a launch by this invocation, started via
// (exec for a command, shell for a login shell, when not said).
func (inv Invocation) record(via string, login bool) Record {
	e := audit.Event{UID: inv.Caller.UID, Via: via, Mode: "setuid"}
	if !inv.Privilege.Root {
		e.Mode = "userns"
	}
	if e.Via == "" {
		e.Via = "exec"
		if login {
			e.Via = "shell"
		}
	}
	return Record{Event: e, Config: (*config.Set)(nil).Audit()}
}

// selected records the tree selected (sel.Tree nil: none was).
func (r *Record) selected(sel ostree.Selection) {
	r.Event.Selected = sources[sel.Source]
	if sel.Tree != nil {
		r.Event.Tree = sel.Tree.Name
	}
}

// refused records a refusal of a launch of argv in the tree named.
func (r *Record) refused(err error, name string, argv []string) {
	e := &r.Event
	e.Refused = err.Error()
	var ue *ostree.UnknownTreeError
	if errors.As(err, &ue) {
		e.Tree = ue.Name
		for src, word := range sources {
			if string(src) == ue.From {
				e.Selected = word
			}
		}
	} else if e.Tree == "" {
		e.Tree = name
	}
	if len(argv) > 0 {
		e.Argv0, e.Argc = argv[0], len(argv)
	}
}

// launched records the launch of p; use is how it entered its view, ""
// when it has not (yet).
func (r *Record) launched(p *spec.Plan, use nsroot.ViewUse) {
	e := &r.Event
	e.Tree, e.Cwd, e.Argc = p.Tree, p.Dir, len(p.Argv)
	e.Devices = deviceField(p.Devices)
	if len(p.Argv) > 0 {
		e.Argv0 = p.Argv[0]
	}
	e.View = ""
	switch {
	case p.Host || p.RootSource != "": // (back to the host from inside a view)
		e.View = "host"
	case p.Cache != nil && p.Cache.Dir == "": // (userns mode)
		e.View = string(nsroot.UsedKept)
	case use != "":
		e.View = string(use)
	case p.Cache == nil:
		e.View = string(nsroot.UsedFresh)
	}
}

// deviceField is the audit line's devices= of a view showing d.
func deviceField(d *spec.Devices) string {
	if d == nil {
		return ""
	}
	return strings.Join(d.Names, ",")
}

// asked records the devices a launch asks for, before it is planned: what
// a refusal names.
func (r *Record) asked(names []string) { r.Event.Devices = strings.Join(names, ",") }

// Log sends r's line where the configuration says. The socket is a host
// path: inside a view (from where chos was started, or the one `chos
// prepare` has entered) the host is at plan.HostDir.
func (inv Invocation) Log(r Record) {
	socket := inv.HostPath(r.Config.Socket)
	if r.InView {
		socket = filepath.Join(plan.HostDir, r.Config.Socket)
	}
	l, err := audit.New(r.Config.Facility, socket)
	if err != nil {
		l, _ = audit.New(audit.DefaultFacility, socket)
	}
	l.Log(r.Event)
}

// Announce is what a launch does for the admins before it enters the
// tree: the audit line of one that changes tree (into a tree, or back to
// the host from inside one; runs that stay on the host are not logged),
// and, on a cache miss, the collection of stale cached namespaces (a
// build is about to happen, which costs far more). A cache that cannot
// take the view to build makes the launch build a private one, with one
// warning, which the audit line carries too. A launch into a cached view
// is logged by Entered instead, once it knows whether it built the view.
func (inv Invocation) Announce(l *Launch) {
	p := l.Plan
	miss := false
	if p.Cache != nil && p.Cache.Dir != "" { // (a setuid view's cache)
		_, err := os.Lstat(p.Cache.File())
		miss = err != nil
		if miss {
			if err := nsroot.CacheWritable(p.Cache); err != nil {
				w := spec.Warning("not caching tree %s: %v", p.Tree, err)
				l.Notes = append(l.Notes, w)
				l.Record.Event.Warning = w.Text
				p.Cache, miss = nil, false
			}
		}
	}
	if (!p.Host || inv.HostPrefix != "") && !inv.logsOnEntry(p) {
		l.Record.launched(p, "")
		inv.Log(l.Record)
	}
	if miss {
		inv.CollectStale(p.Cache.Dir, l.catalog)
	}
}

// logsOnEntry: the launch of p enters a cached view with root's rights,
// and is logged by Entered.
func (inv Invocation) logsOnEntry(p *spec.Plan) bool { return p.Cache != nil && inv.Privilege.Root }

// Entered logs the launch of l, which Announce left, once nsroot.Enter
// has entered its view (use: how; "" when it failed before).
func (inv Invocation) Entered(l *Launch, use nsroot.ViewUse) {
	if !inv.logsOnEntry(l.Plan) {
		return
	}
	l.Record.launched(l.Plan, use)
	l.Record.InView = use != ""
	inv.Log(l.Record)
}

// CollectStale drops the cached namespaces in dir of trees that cat does
// not have. Only with the system configuration: root's --config names
// other trees.
func (inv Invocation) CollectStale(dir string, cat *ostree.Catalog) ([]string, error) {
	if inv.Config != "" || cat == nil {
		return nil, nil
	}
	configured := func(stem string) bool {
		for _, t := range cat.Trees {
			if spec.Stem(t.Name) == stem {
				return true
			}
		}
		return false
	}
	return nsroot.CollectStale(dir, configured, inv.Caller.UID == 0 && inv.Privilege.Root)
}
