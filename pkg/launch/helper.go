package launch

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/config"
	"github.com/chos-hpc/chos/pkg/devices"
	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/plan"
	"github.com/chos-hpc/chos/pkg/spec"
)

// `chos prepare` is the root helper of the PAM module (pam_chos.so) and the
// SPANK plugin (chos_spank.so). Those are small C shims loaded into sshd,
// su, login and slurmstepd, where a Go runtime cannot live: they run chos
// as root with the user's identity as arguments, and chos does everything
// that is policy (selection, access, the view) and hands back a descriptor
// of the mount namespace to enter, with what else to set
// (docs/PREPARE-PROTOCOL.md).

// HelperRequest is what a shim asks of `chos prepare`, as given: what of
// it may be believed depends on who runs chos (PrepareForHelper).
type HelperRequest struct {
	Service string // pam or slurm
	// Check is the Slurm plugin's submit-time check, run by the
	// submitting user: the selection and access rules applied to the
	// caller's own identity, nothing prepared.
	Check bool
	// Who the session or job is for, as root passes it: the name, the
	// uid, the primary gid and the supplementary gids (comma-separated).
	User, UID, GID, Groups string
	EnvChos                string // the $CHOS of the session or job
	// PAM: members of ExemptGroup are never moved; PAMService is the
	// PAM service, for the audit line.
	ExemptGroup, PAMService string
	// Slurm: the --chos option, the plugin's default, the job's working
	// directory, the batch step's script (a host path), the job and step
	// ids, and the job's PATH (EnvPath, when Given["env-path"]).
	Tree, Default, Cwd, BatchScript, Job, Step, EnvPath string
	// Devices are the CDI devices Slurm's --chos-device asks for, and
	// EnvDevices the $CHOS_DEVICES of the session or job: lists.
	Devices, EnvDevices string
	// Given are the options given, by name ("uid", "env-path"...).
	Given map[string]bool
}

// devices is the list the request asks for: the option over the
// environment's variable, as `chos exec --device` over $CHOS_DEVICES.
func (req HelperRequest) devices() string {
	if req.Devices != "" {
		return req.Devices
	}
	return req.EnvDevices
}

// Reply is what `chos prepare` hands back to the shim.
type Reply struct {
	Tree string
	// Setenv are KEY=VALUE assignments for the session's or the job's
	// environment.
	Setenv []string
	// NNP, when set, says whether the process that will exec the user's
	// program sets no_new_privs.
	NNP *bool
	// Argv0 replaces the batch step's argv[0]: its script as the view
	// shows it.
	Argv0 string
	// Warnings are shown to the user, as the command line shows them.
	Warnings []string
	// NS is the view's mount namespace to enter; nil: stay on the host.
	NS *os.File
}

// helperPlan is what the root helper decided, short of entering the view.
type helperPlan struct {
	reply Reply
	// user is the invocation for the user the session or job is for.
	user Invocation
	tree *ostree.Tree
	view *spec.View // the view to enter; nil: stay on the host
	// layer is the user's identity layer on view.
	layer *spec.Layer
	// cwd is the job's working directory, checked in the view.
	cwd string
	// use is how enter entered the view (the audit line's view=).
	use nsroot.ViewUse
}

// PrepareForHelper decides, for the user a shim names, which tree the
// session or job runs in, and enters its view (on the calling thread,
// locked: the reply's NS is this thread's namespace then). The record is
// the audit line to log, nil for a session or job left on the host.
func (inv Invocation) PrepareForHelper(req HelperRequest) (Reply, *Record, error) {
	if req.Check {
		return inv.checkForHelper(req)
	}
	hp, rec, err := inv.planHelper(req)
	if err == nil && hp.view != nil {
		err = hp.enter()
	}
	if rec == nil {
		return hp.reply, nil, err
	}
	if err != nil {
		rec.Event.Refused = err.Error()
	} else {
		rec.Event.View = string(hp.use)
		rec.Event.Devices = deviceField(hp.view.Devices)
	}
	rec.InView = hp.reply.NS != nil
	return hp.reply, rec, err
}

// enter enters the planned view and checks the job's working directory
// there, as the user.
func (hp *helperPlan) enter() error {
	use, notes, err := nsroot.EnterView(hp.view, hp.layer, nsroot.Privileged)
	hp.use = use
	for _, n := range notes {
		if n.Warning {
			hp.reply.Warnings = append(hp.reply.Warnings, n.Text)
		}
	}
	if err != nil {
		return fmt.Errorf("setting up tree %s: %w", hp.tree.Name, err)
	}
	if hp.view.Devices != nil {
		// (the view's, as it was built: a cached view's specs are not
		// read again)
		env, err := nsroot.ViewEnv()
		if err != nil {
			return err
		}
		hp.reply.Setenv = append(hp.reply.Setenv, env...)
	}
	if hp.cwd != "" {
		// slurmstepd changes to the job's directory after the plugin, and
		// silently runs the job in /tmp when it cannot: refuse instead.
		err := hp.user.asCaller(func() error { return hp.user.Machine.Access(hp.cwd, unix.X_OK) })
		if err != nil {
			return fmt.Errorf("working directory %s is not available in tree %s: %w", hp.cwd, hp.tree.Name, err)
		}
	}
	ns, err := os.Open("/proc/thread-self/ns/mnt")
	if err != nil {
		return fmt.Errorf("opening the view's namespace: %w", err)
	}
	hp.reply.NS = ns
	return nil
}

// planHelper decides what PrepareForHelper does. Only root's own chos
// believes the identity it is given, and only for the service named: a
// PAM session selects by $CHOS and ~/.chos (read as the user), a Slurm job
// by its option, $CHOS and the plugin's default, never ~/.chos.
func (inv Invocation) planHelper(req HelperRequest) (helperPlan, *Record, error) {
	var hp helperPlan
	if inv.Caller.UID != 0 || !inv.Privilege.Root {
		rec := inv.record("prepare", false)
		rec.Event.Refused = "chos prepare is run as root by pam_chos and chos_spank, not by users"
		// Refused before anything else is read, but logged where %AUDIT
		// says all the same.
		if _, set, _ := inv.Catalog(); set != nil {
			rec.Config = set.Audit()
		}
		return hp, &rec, fmt.Errorf("%s", rec.Event.Refused)
	}
	service := req.Service
	rec := inv.record(service, false)
	rec.Event.Service = req.PAMService
	if req.Job != "" {
		rec.Event.Job = req.Job + "." + req.Step
	}
	rec.Event.Cwd = req.Cwd
	if req.BatchScript != "" {
		rec.Event.Argv0, rec.Event.Argc = req.BatchScript, 1
	}
	rec.Event.User = req.User
	refuse := func(err error) (helperPlan, *Record, error) { return hp, &rec, err }
	if service != "pam" && service != "slurm" {
		return refuse(fmt.Errorf("prepare: --service must be pam or slurm, not %q", service))
	}
	user, err := inv.forUser(req)
	if err != nil {
		return refuse(err)
	}
	hp.user = user
	rec.Event.UID = user.Caller.UID
	stay := func(tree string) (helperPlan, *Record, error) {
		hp.reply.Tree = tree
		return hp, nil, nil
	}
	if user.Caller.UID == 0 && service == "pam" {
		return stay(ostree.Local) // root is never moved
	}

	cat, set, err := user.Catalog()
	rec.Config = set.Audit()
	if err != nil {
		return refuse(err)
	}
	// The name root passed is trusted; home, shell and the name itself
	// where none was passed come from the name service, as root sees it.
	u, err := user.account()
	if err != nil {
		return refuse(err)
	}
	if req.User != "" && u.Name == "" {
		u.Name = req.User
	}
	c := user.Caller
	who := plan.Caller{UID: c.UID, GID: c.GID, Groups: c.Groups, Name: u.Name, Home: u.Home, Shell: u.Shell, Cwd: "/"}
	gids := append([]int{c.GID}, c.Groups...)

	var in ostree.Inputs
	switch service {
	case "pam":
		if g := req.ExemptGroup; g != "" {
			exempt, err := user.memberOf(g, gids)
			if err != nil {
				return refuse(fmt.Errorf("looking up the exempt group %s: %w", g, err))
			}
			if exempt {
				return stay(ostree.Local)
			}
		}
		in = ostree.Inputs{Env: req.EnvChos}
	case "slurm":
		in = ostree.Inputs{Argument: req.Tree, Env: req.EnvChos, Plugin: req.Default, Batch: true}
	}
	sel, err := user.choose(cat, in, who)
	rec.selected(sel)
	if err != nil {
		return refuse(err)
	}
	t := sel.Tree
	hp.tree = t
	hp.reply.Tree = t.Name
	hp.reply.Setenv = append(hp.reply.Setenv, "CHOS="+t.Name)
	if service == "slurm" && req.Given["env-path"] {
		hp.reply.Setenv = append(hp.reply.Setenv, "PATH="+plan.JobPath(req.EnvPath, t))
	}
	if t.Host {
		return hp, nil, nil
	}
	nnp := false
	switch service {
	case "pam":
		// sshd, su and login exec the passwd shell themselves, with no
		// fallback: a session whose shell the tree lacks cannot start.
		if who.Shell != "" {
			err := user.asCaller(func() error {
				_, err := ostree.StatInTree(user.HostPath(t.Path), who.Shell)
				return err
			})
			if err != nil {
				return refuse(fmt.Errorf("your login shell %s is not in tree %s", who.Shell, t.Name))
			}
		}
		// Login sessions keep setuid programs such as sudo and passwd
		// working where the tree allows them (the tree's mounts are nosuid
		// unless it has setuid = allow).
	case "slurm":
		nnp = !t.AllowSetuid
		if s := req.BatchScript; s != "" {
			// The script lies in slurmd's spool, outside the view; the
			// host's root is at plan.HostDir in every view.
			hp.reply.Argv0 = path.Join(plan.HostDir, s)
		}
		hp.cwd = req.Cwd
	}
	hp.reply.NNP = &nnp

	vr, err := user.viewRequest(cat, t)
	if err != nil {
		return refuse(err)
	}
	names, err := devices.ParseRequest(req.devices())
	if err != nil {
		return refuse(err)
	}
	rec.asked(names)
	if vr.Devices, err = user.devicesFor(cat, t, names); err != nil {
		return refuse(err)
	}
	v := plan.View(vr)
	v.Cache = user.cacheFor(cat, t, &v)
	if hp.layer, err = user.layer(t, u, gids); err != nil {
		return refuse(fmt.Errorf("naming you inside tree %s: %w", t.Name, err))
	}
	hp.view = &v
	return hp, &rec, nil
}

// forUser is the invocation for the user root's helper acts for: root's
// rights, held for that user (Privilege.Setuid) unless the user is root,
// with the ids root passed.
func (inv Invocation) forUser(req HelperRequest) (Invocation, error) {
	uid, err := idArg("uid", req.UID)
	if err != nil {
		return inv, err
	}
	gid, err := idArg("gid", req.GID)
	if err != nil {
		return inv, err
	}
	groups := []int{}
	for _, g := range strings.FieldsFunc(req.Groups, func(r rune) bool { return r == ',' }) {
		id, err := strconv.Atoi(g)
		if err != nil || id < 0 {
			return inv, fmt.Errorf("prepare: --groups: %q is not a gid", g)
		}
		groups = append(groups, id)
	}
	user := inv
	user.Caller = plan.Caller{UID: uid, GID: gid, Groups: groups, Env: inv.Caller.Env}
	user.Privilege = Privilege{Root: true, Setuid: uid != 0}
	return user, nil
}

func idArg(name, v string) (int, error) {
	id, err := strconv.Atoi(v)
	if err != nil || id < 0 {
		return 0, fmt.Errorf("prepare: --%s %q is not a number", name, v)
	}
	return id, nil
}

// checkForHelper is `chos prepare --check --service=slurm`: the SPANK
// plugin's submit-time check, run by srun, sbatch and salloc as the
// submitting user. It applies a job's selection and access rules to the
// caller's own identity, prepares nothing and replies the tree, or
// refuses. It only previews what every job step decides again.
func (inv Invocation) checkForHelper(req HelperRequest) (Reply, *Record, error) {
	var rep Reply
	var set *config.Set
	refuse := func(inv Invocation, err error) (Reply, *Record, error) {
		rec := inv.record("prepare --check", false)
		rec.Config, rec.Event.Refused = set.Audit(), err.Error()
		return rep, &rec, err
	}
	if req.Service != "slurm" {
		return refuse(inv, fmt.Errorf("prepare: --check is for --service=slurm"))
	}
	for _, f := range []string{"user", "uid", "gid", "groups"} {
		if req.Given[f] {
			return refuse(inv, fmt.Errorf("prepare: --check takes no --%s: it checks for whoever runs it", f))
		}
	}
	// Read as a launch reads it (the setuid chos refuses a configuration
	// root does not own), then give root up: nothing else needs it.
	cat, set, err := inv.Catalog()
	if err != nil {
		return refuse(inv, err)
	}
	if inv, err = inv.Drop(); err != nil {
		return refuse(inv, err)
	}
	u, err := inv.account()
	if err != nil {
		return refuse(inv, err)
	}
	c := inv.Caller
	who := plan.Caller{UID: c.UID, GID: c.GID, Groups: c.Groups, Name: u.Name, Home: u.Home, Shell: u.Shell, Cwd: "/"}
	sel, err := inv.choose(cat, ostree.Inputs{Argument: req.Tree, Env: req.EnvChos, Plugin: req.Default, Batch: true}, who)
	var names []string
	if err == nil {
		names, err = inv.checkDevices(cat, sel.Tree, req.devices())
	}
	if err != nil {
		rep, rec, err := refuse(inv, err)
		rec.selected(sel)
		rec.asked(names)
		rec.Event.User = u.Name
		return rep, rec, err
	}
	rep.Tree = sel.Tree.Name
	return rep, nil, nil
}
