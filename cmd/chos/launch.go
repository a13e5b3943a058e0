package main

import (
	"fmt"
	"os"

	"github.com/chos-hpc/chos/pkg/launch"
	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/spec"
)

// launch runs what req asks and returns only on failure, with the exit
// status to use.
func (cl *cmdline) launch(req launch.Request) int {
	if err := cl.atHost(); err != nil {
		fmt.Fprintln(os.Stderr, "chos: "+err.Error())
		return statusFailed
	}
	l, err := cl.inv.Prepare(req)
	if err != nil {
		cl.inv.Log(l.Record)
		fmt.Fprintln(os.Stderr, "chos: "+err.Error())
		return statusFailed
	}
	return cl.start(l)
}

// atHost moves a privileged chos started inside a view to the host's
// root before its privileged work (launch.Invocation.AtHost).
func (cl *cmdline) atHost() error {
	inv, err := cl.inv.AtHost()
	if err != nil {
		return err
	}
	cl.inv = inv
	return nil
}

// start carries out a prepared launch and returns only on failure, with
// the exit status to use.
func (cl *cmdline) start(l *launch.Launch) int {
	cl.inv.Announce(l)
	showNotes(l.Notes, cl.verbose)
	if !cl.inv.Privilege.Root && !l.Plan.Host {
		// Without root (from inside a tree, where no_new_privs keeps the
		// setuid bit from working): a user namespace of the caller's own.
		status, notes, err := nsroot.RunInUserNS(l.Plan, cl.verbose)
		showNotes(notes, cl.verbose)
		if err != nil {
			fmt.Fprintln(os.Stderr, "chos: "+err.Error())
		}
		return status
	}
	return execute(l.Plan, cl.inv.Privilege.Mode(), cl.verbose, func(use nsroot.ViewUse) { cl.inv.Entered(l, use) })
}

// execute carries out p and execs its command, showing the notes of the
// launch in between, and telling entered (when set) how it entered the
// view; it returns only on failure, with the exit status.
func execute(p *spec.Plan, mode nsroot.Mode, verbose bool, entered func(nsroot.ViewUse)) int {
	ready, use, notes, lerr := nsroot.Enter(p, mode)
	if entered != nil {
		entered(use)
	}
	showNotes(notes, verbose)
	if lerr == nil {
		lerr = ready.Exec()
	}
	fmt.Fprintln(os.Stderr, "chos: "+lerr.Error())
	return lerr.Status
}

// showNotes prints the warnings, and with verbose the other notes: what
// the PAM module and the Slurm plugin show too (`chos prepare`).
func showNotes(notes []spec.Note, verbose bool) {
	for _, n := range notes {
		switch {
		case n.Warning:
			fmt.Fprintln(os.Stderr, "chos: warning: "+n.Text)
		case verbose:
			fmt.Fprintln(os.Stderr, "chos: note: "+n.Text)
		}
	}
}
