package main

import (
	"fmt"
	"os"

	"github.com/chos-hpc/chos/pkg/ostree"
)

// hostCommand runs a host command (%HOSTCMD) when chos was called by its
// name from inside a view, through the link /.chos/bin/NAME: the host's
// program, on the host (as `chos exec local` would run it), with the
// caller's arguments, directory and environment unchanged, $CHOS
// included, so that the job steps a host srun starts from a tree run in
// that tree. ok is false when no host command has that name.
func (st *state) hostCommand(prog string, args []string) (status int, ok bool) {
	cat, err := st.catalog()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chos: "+err.Error())
		return statusFailed, true
	}
	hc, ok := cat.HostCommand(prog)
	if !ok {
		return 0, false
	}
	st.adm.via = "hostcmd"
	host, _ := cat.Lookup(ostree.Local)
	st.adm.selected = ostree.Selection{Tree: host, Name: ostree.Local, Source: ostree.FromArgument}
	argv := append([]string{hc.Path}, args[1:]...)
	who, err := st.caller()
	if err == nil {
		p, perr := st.planFor(cat, who, host, argv, false)
		if err = perr; err == nil {
			p.Argv[0], p.Env = args[0], who.Env
			return st.launchPlan(p, false), true
		}
	}
	st.auditRefusal(ostree.Local, argv, false, err)
	fmt.Fprintf(os.Stderr, "chos: host command %s (%s): %v\n", hc.Path, hc.At, err)
	return statusFailed, true
}
