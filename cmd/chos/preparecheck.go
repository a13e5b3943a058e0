package main

import (
	"fmt"

	"github.com/urfave/cli/v3"

	"github.com/chos-hpc/chos/pkg/devices"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/plan"
)

// prepareCheck is `chos prepare --check --service=slurm`: the SPANK
// plugin's submit-time check, run by srun, sbatch and salloc as the
// submitting user. It applies a job's selection and access rules to the
// caller's own identity, prepares nothing and replies tree= and enter=0,
// or error=. It only previews what every job step decides again.
func (st *state) prepareCheck(c *cli.Command, r *reply) error {
	if c.String("service") != "slurm" {
		return fmt.Errorf("prepare: --check is for --service=slurm")
	}
	for _, f := range []string{"user", "uid", "gid", "groups"} {
		if c.IsSet(f) {
			return fmt.Errorf("prepare: --check takes no --%s: it checks for whoever runs it", f)
		}
	}
	// Read as a launch reads it (the setuid chos refuses a configuration
	// root does not own), then give root up: nothing else needs it.
	cat, err := st.catalog()
	if err != nil {
		return err
	}
	if err := st.dropPrivilege(); err != nil {
		return err
	}
	groups, err := st.userGroups()
	if err != nil {
		return err
	}
	u, err := st.account()
	if err != nil {
		return err
	}
	who := plan.Caller{UID: st.uid, GID: st.gid, Groups: groups, Name: u.Name, Home: u.Home, Shell: u.Shell, Cwd: "/"}
	sel, err := st.choose(cat, ostree.Inputs{Argument: c.String("tree"), Env: c.String("env-chos"),
		Plugin: c.String("default"), Batch: true}, who)
	if err != nil {
		return err
	}
	// The devices too, by the tree's rules only: a submit host often has
	// no such device, nor its spec.
	names, err := devices.ParseRequest(c.String("devices"))
	if err != nil {
		return err
	}
	if t := sel.Tree; !t.Host {
		if err := devices.Check(names, t.Name, t.Devices, cat.CDI.Devices); err != nil {
			return err
		}
	}
	r.set("tree", sel.Tree.Name)
	r.set("enter", "0")
	return nil
}
