package main

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v3"
	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/audit"
	"github.com/chos-hpc/chos/pkg/config"
	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/plan"
)

// adminState is what a launch remembers for its audit line and for the
// collection of stale cached namespaces.
type adminState struct {
	cfg      *config.Set     // the system configuration read (nil if none could be)
	cat      *ostree.Catalog // the catalog made of it
	selected ostree.Selection
	via      string // how chos was started, when not exec or shell
}

// sources are the selection sources as the audit line names them.
var sources = map[ostree.Source]string{
	ostree.FromArgument: "argument", ostree.FromEnv: "env", ostree.FromDotfile: "dotfile",
	ostree.FromPlugin: "plugin", ostree.FromDefault: "default", ostree.FromFallback: "none",
}

// logger writes where the configuration says; with a configuration that
// cannot be read (a refusal to report), to the defaults. The socket is a
// host path: inside a view (from where chos was started, or the one
// `chos prepare` has entered) the host is at plan.HostDir.
func (st *state) logger(inView bool) *audit.Logger {
	ac := st.adm.cfg.Audit()
	socket := st.hostPath(ac.Socket)
	if inView {
		socket = filepath.Join(plan.HostDir, ac.Socket)
	}
	l, err := audit.New(ac.Facility, socket)
	if err != nil {
		l, _ = audit.New(audit.DefaultFacility, socket)
	}
	return l
}

// event is what every audit line of this process says of the caller.
func (st *state) event(login bool) audit.Event {
	e := audit.Event{UID: st.uid, Via: st.adm.via, Selected: sources[st.adm.selected.Source], Mode: "setuid"}
	if st.acct != nil {
		// Only a name already looked up: the audit line never waits for
		// the name service (a refusal may come before any lookup).
		e.User = st.acct.Name
	}
	if st.mode != nsroot.Privileged {
		e.Mode = "userns"
	}
	if e.Via == "" {
		e.Via = "exec"
		if login {
			e.Via = "shell"
		}
	}
	if t := st.adm.selected.Tree; t != nil {
		e.Tree = t.Name
	}
	return e
}

// atLaunch is what a launch does for the admins before it enters the
// tree: the audit line, and, on a cache miss, the collection of stale
// cached namespaces (a build is about to happen, which costs far more).
func (st *state) atLaunch(p *nsroot.Plan, login bool) {
	miss := false
	if p.Cache != nil && p.Cache.Dir != "" {
		_, err := os.Lstat(p.Cache.File())
		miss = err != nil
	}
	st.auditLaunch(p, login, miss)
	if miss {
		st.collectStale(p.Cache.Dir, st.adm.cat)
	}
}

// auditLaunch logs a launch that changes tree: one into a tree, or back to
// the host from inside one. Runs that stay on the host are not logged.
func (st *state) auditLaunch(p *nsroot.Plan, login, miss bool) {
	if p.Host && st.hostPrefix == "" {
		return
	}
	e := st.event(login)
	e.Tree, e.Cwd, e.Argc = p.Tree, p.Dir, len(p.Argv)
	if len(p.Argv) > 0 {
		e.Argv0 = p.Argv[0]
	}
	switch {
	case p.Host:
		e.View = "host"
	case p.Cache != nil && p.Cache.Dir == "":
		e.View = "kept"
	case p.Cache != nil && miss:
		e.View = "built"
	case p.Cache != nil:
		e.View = "cached"
	default:
		e.View = "fresh"
	}
	st.logger(false).Log(e)
}

// auditRefusal logs a launch refused before anything was done.
func (st *state) auditRefusal(name string, argv []string, login bool, err error) {
	e := st.event(login)
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
	e.Cwd, _ = unix.Getwd()
	st.logger(false).Log(e)
}

// auditPrepare logs what `chos prepare` did for the PAM module or the
// SPANK plugin: a session or job step moved into a tree, or refused.
func (st *state) auditPrepare(c *cli.Command, r *reply, err error) {
	if err == nil && !r.has("enter=1") {
		return // stays on the host
	}
	e := st.event(false)
	if !st.rootHelper {
		// A user's own run (the submit-time --check, or anyone trying):
		// what the flags claim is not theirs to put in root's log.
		e.Via = "prepare"
		if c.Bool("check") {
			e.Via = "prepare --check"
		}
		if err != nil {
			e.Refused = err.Error()
		}
		st.logger(false).Log(e)
		return
	}
	e.Via, e.User, e.Mode = c.String("service"), c.String("user"), "setuid"
	e.Service = c.String("pam-service")
	if job := c.String("job"); job != "" {
		e.Job = job + "." + c.String("step")
	}
	e.Cwd = c.String("cwd")
	if s := c.String("batch-script"); s != "" {
		e.Argv0, e.Argc = s, 1
	}
	if err != nil {
		e.Refused = err.Error()
	} else if t := st.adm.selected.Tree; t != nil {
		e.View = "fresh"
		if st.cacheFor(st.adm.cat, t, &nsroot.View{}) != nil {
			e.View = "cached"
		}
	}
	st.logger(r.ns != nil).Log(e)
}

func (r *reply) has(line string) bool {
	for _, l := range r.lines {
		if l == line {
			return true
		}
	}
	return false
}

// collectStale drops the cached namespaces of trees that cat does not
// have. Only with the system configuration: root's --config names other
// trees.
func (st *state) collectStale(dir string, cat *ostree.Catalog) ([]string, error) {
	if st.configFlag != "" || cat == nil {
		return nil, nil
	}
	configured := func(stem string) bool {
		for _, t := range cat.Trees {
			if nsroot.StemOf(t.Name) == stem {
				return true
			}
		}
		return false
	}
	return nsroot.CollectStale(dir, configured, st.uid == 0 && st.mode == nsroot.Privileged)
}
