package main

import (
	"context"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/urfave/cli/v3"
	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/devices"
	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/plan"
)

// `chos prepare` is the root helper of the PAM module (pam_chos.so) and the
// SPANK plugin (chos_spank.so). Those are small C shims loaded into sshd,
// su, login and slurmstepd, where a Go runtime cannot live: they run chos
// as root with the user's identity as arguments, and chos does everything
// that is policy (selection, access, the view) and hands back a descriptor
// of the mount namespace to enter, on fd 3, with what else to set
// (docs/chos.1, PREPARE PROTOCOL).

// replyFD is the connected AF_UNIX socket the shim reads the reply from.
const replyFD = 3

// reply is what chos hands back to a shim.
type reply struct {
	lines []string
	ns    *os.File // the mount namespace to enter, nil to stay on the host
}

func (r *reply) set(key, value string) {
	// One line each: a value can never add a line of its own.
	value = strings.Map(func(c rune) rune {
		if c == '\n' || c == 0 {
			return ' '
		}
		return c
	}, value)
	r.lines = append(r.lines, key+"="+value)
}

// send writes the reply, with the namespace descriptor attached when there
// is one, in a single message.
func (r *reply) send() error {
	payload := []byte(strings.Join(append(r.lines, "end"), "\n") + "\n")
	var oob []byte
	if r.ns != nil {
		oob = unix.UnixRights(int(r.ns.Fd()))
	}
	if err := unix.Sendmsg(replyFD, payload, oob, nil, 0); err != nil {
		return fmt.Errorf("sending the reply on descriptor %d: %w", replyFD, err)
	}
	return nil
}

func prepareCommand(st *state) *cli.Command {
	str := func(name, usage string) cli.Flag { return &cli.StringFlag{Name: name, Usage: usage} }
	return &cli.Command{
		Name:   "prepare",
		Usage:  "root helper of pam_chos and chos_spank (not for users)",
		Hidden: true,
		Flags: []cli.Flag{
			str("service", "pam or slurm"), str("user", "the user's name"), str("uid", "the user's uid"),
			str("gid", "the user's primary gid"), str("groups", "the user's supplementary gids, comma-separated"),
			str("env-chos", "the $CHOS of the session or job"), str("exempt-group", "pam: members are never moved"),
			str("pam-service", "pam: the PAM service"), str("tree", "slurm: the --chos option"),
			str("default", "slurm: the plugin's default tree"), str("cwd", "slurm: the job's working directory"),
			str("batch-script", "slurm: the batch step's script"), str("job", "slurm: job id"), str("step", "slurm: step id"),
			str("env-path", "slurm: the job's $PATH"),
			str("devices", "the CDI devices asked for (--chos-device, $CHOS_DEVICES): a list"),
			&cli.BoolFlag{Name: "check", Usage: "slurm, as the user: only check the selection (submit time)"},
		},
		Action: st.cmdPrepare,
	}
}

func (st *state) cmdPrepare(_ context.Context, c *cli.Command) error {
	r := &reply{}
	prepare := st.prepareFor
	if c.Bool("check") {
		prepare = st.prepareCheck
	}
	err := prepare(c, r)
	st.auditPrepare(c, r, err)
	if err != nil {
		r.lines = nil
		r.ns = nil
		r.set("error", err.Error())
	}
	if serr := r.send(); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		return fail(statusFailed, err)
	}
	return nil
}

// prepareFor decides, for the user named by the flags, which tree the
// session or job runs in and enters its view.
func (st *state) prepareFor(c *cli.Command, r *reply) error {
	if st.uid != 0 || st.mode != nsroot.Privileged {
		return fmt.Errorf("chos prepare is run as root by pam_chos and chos_spank, not by users")
	}
	st.rootHelper = true
	service := c.String("service")
	if service != "pam" && service != "slurm" {
		return fmt.Errorf("prepare: --service must be pam or slurm, not %q", service)
	}
	var err error
	if st.uid, err = idFlag(c, "uid"); err != nil {
		return err
	}
	if st.gid, err = idFlag(c, "gid"); err != nil {
		return err
	}
	st.groups = []int{}
	for _, g := range strings.FieldsFunc(c.String("groups"), func(r rune) bool { return r == ',' }) {
		gid, err := strconv.Atoi(g)
		if err != nil || gid < 0 {
			return fmt.Errorf("prepare: --groups: %q is not a gid", g)
		}
		st.groups = append(st.groups, gid)
	}
	if st.uid == 0 && service == "pam" {
		r.set("tree", ostree.Local)
		r.set("enter", "0")
		return nil // root is never moved
	}

	cat, err := st.catalog()
	if err != nil {
		return err
	}
	// The name root passed is trusted; home, shell and the name itself
	// where none was passed come from the name service, as root sees it.
	u, err := st.account()
	if err != nil {
		return err
	}
	if n := c.String("user"); n != "" && u.Name == "" {
		u.Name = n
	}
	who := plan.Caller{UID: st.uid, GID: st.gid, Groups: st.groups, Name: u.Name, Home: u.Home, Shell: u.Shell, Cwd: "/"}
	gids := append([]int{st.gid}, st.groups...)

	var in ostree.Inputs
	switch service {
	case "pam":
		exempt := false
		if g := c.String("exempt-group"); g != "" {
			if exempt, err = st.memberOf(g, gids); err != nil {
				return fmt.Errorf("looking up the exempt group %s: %w", g, err)
			}
		}
		if exempt {
			r.set("tree", ostree.Local)
			r.set("enter", "0")
			return nil
		}
		in = ostree.Inputs{Env: c.String("env-chos")}
	case "slurm":
		in = ostree.Inputs{Argument: c.String("tree"), Env: c.String("env-chos"), Plugin: c.String("default"), Batch: true}
	}
	sel, err := st.choose(cat, in, who)
	if err != nil {
		return err
	}
	t := sel.Tree
	r.set("tree", t.Name)
	r.set("setenv", "CHOS="+t.Name)
	if service == "slurm" && c.IsSet("env-path") {
		r.set("setenv", "PATH="+plan.JobPath(c.String("env-path"), t))
	}
	if t.Host {
		r.set("enter", "0")
		return nil
	}
	switch service {
	case "pam":
		// sshd, su and login exec the passwd shell themselves, with no
		// fallback: a session whose shell the tree lacks cannot start.
		if who.Shell != "" {
			err := st.asCaller(func() error {
				_, err := ostree.StatInTree(st.hostPath(t.Path), who.Shell)
				return err
			})
			if err != nil {
				return fmt.Errorf("your login shell %s is not in tree %s", who.Shell, t.Name)
			}
		}
		// Login sessions keep setuid programs such as sudo and passwd
		// working where the tree allows them (the tree's mounts are nosuid
		// unless it has setuid = allow).
		r.set("nnp", "0")
	case "slurm":
		if t.AllowSetuid {
			r.set("nnp", "0")
		} else {
			r.set("nnp", "1")
		}
		if s := c.String("batch-script"); s != "" {
			// The script lies in slurmd's spool, outside the view; the
			// host's root is at plan.HostDir in every view.
			r.set("argv0", path.Join(plan.HostDir, s))
		}
	}

	req, err := st.viewRequest(cat, t)
	if err != nil {
		return err
	}
	names, err := devices.ParseRequest(c.String("devices"))
	if err != nil {
		return err
	}
	if req.Devices, err = st.deviceRequest(cat, t, names, false); err != nil {
		return err
	}
	v := plan.View(req)
	if !st.fresh {
		v.Cache = st.cacheFor(cat, t, &v, req.Devices)
	}
	id, err := st.identityLayer(t, u, gids)
	if err != nil {
		return fmt.Errorf("naming you inside tree %s: %w", t.Name, err)
	}
	if _, err := nsroot.EnterView(&v, id, nsroot.Privileged); err != nil {
		return fmt.Errorf("setting up tree %s: %w", t.Name, err)
	}
	if cwd := c.String("cwd"); service == "slurm" && cwd != "" {
		// slurmstepd changes to the job's directory after the plugin, and
		// silently runs the job in /tmp when it cannot: refuse instead.
		err := st.asCaller(func() error { return unix.Faccessat(unix.AT_FDCWD, cwd, unix.X_OK, unix.AT_EACCESS) })
		if err != nil {
			return fmt.Errorf("working directory %s is not available in tree %s: %w", cwd, t.Name, err)
		}
	}
	if len(v.Devices) > 0 {
		if err := deviceEnv(r); err != nil {
			return err
		}
	}
	ns, err := os.Open("/proc/thread-self/ns/mnt")
	if err != nil {
		return fmt.Errorf("opening the view's namespace: %w", err)
	}
	r.ns = ns
	r.set("enter", "1")
	return nil
}

func idFlag(c *cli.Command, name string) (int, error) {
	v := c.String(name)
	id, err := strconv.Atoi(v)
	if err != nil || id < 0 {
		return 0, fmt.Errorf("prepare: --%s %q is not a number", name, v)
	}
	return id, nil
}
