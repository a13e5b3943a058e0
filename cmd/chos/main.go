// Command chos runs commands and login shells inside configured OS trees.
// This package is the command line only: flags to a request (package
// launch decides), dispatch, printing and exit statuses.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/chos-hpc/chos/pkg/launch"
	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/ostree"
)

// Exit statuses of chos itself; a launched command's own status passes
// through unchanged.
const (
	statusCheckFailed = 1
	statusUsage       = 2
	statusFailed      = nsroot.StatusFailed
)

func init() {
	// Namespace, root and credential changes act on the calling thread only:
	// keep main on one thread from the start and exec from it.
	runtime.LockOSThread()
}

func main() {
	// Before anything catches a signal: what the caller handed over.
	nsroot.RecordStart()
	os.Exit(run(os.Args))
}

// cmdline is the command line as its flags make it: the invocation, and
// whether notes are shown (--verbose).
type cmdline struct {
	inv     launch.Invocation
	verbose bool
}

func run(args []string) int {
	switch {
	case nsroot.IsUserNSChild(args):
		// The rest of a launch in user-namespace mode (nsroot.RunInUserNS).
		p, verbose, err := nsroot.ReadChildPlan(args)
		if err != nil {
			fmt.Fprintln(os.Stderr, "chos: "+err.Error())
			return statusFailed
		}
		return execute(p, nsroot.UserNamespace, verbose, nil)
	case nsroot.IsViewBuilder(args):
		if err := nsroot.RunViewBuilder(); err != nil {
			fmt.Fprintln(os.Stderr, "chos: "+err.Error())
			return statusFailed
		}
		return 0
	case nsroot.IsKeeper(args):
		return nsroot.RunKeeper(args)
	}
	inv, err := launch.New()
	if err != nil {
		return report(fail(statusFailed, err))
	}
	cl := &cmdline{inv: inv}
	// CHOS_MODE applies to every form.
	if err := cl.setMode(os.Getenv("CHOS_MODE")); err != nil {
		return report(err)
	}
	// Neither the legacy nor the vsys form takes options, but an
	// alternative configuration in the environment is still refused (or,
	// for root, honoured), never silently ignored.
	cl.inv.Config = os.Getenv("CHOS_CONFIG")

	// The launch path of every batch job and rank is taken without the
	// command-line app, which only the other commands need.
	prog := filepath.Base(args[0])
	switch {
	case !ostree.IsChosName(prog):
		// Inside a view, a host command's link (/.chos/bin/srun -> chos).
		if cl.inv.HostPrefix != "" {
			// Privileged (a tree with setuid = allow, or root), chos
			// reads the configuration and builds the host's view from
			// the host's root, as every other launch from a view does.
			if err := cl.atHost(); err != nil {
				fmt.Fprintln(os.Stderr, "chos: "+err.Error())
				return statusFailed
			}
			if l, ok, err := cl.inv.PrepareHostCommand(prog, args); ok {
				if err != nil {
					cl.inv.Log(l.Record)
					fmt.Fprintln(os.Stderr, "chos: "+err.Error())
					return statusFailed
				}
				return cl.start(l)
			}
		}
		// vsys form: invoked as a link named after a tree (rh73 -> chos).
		if len(args) == 1 || (len(args) == 2 && args[1] == "-sh") {
			return cl.launch(launch.Request{Tree: prog, Login: true, Via: "vsys"})
		}
		return cl.launch(launch.Request{Tree: prog, Argv: args[1:], Via: "vsys"})
	case len(args) == 1:
		return cl.launch(launch.Request{Login: true})
	case args[1] == "exec":
		if name, argv, opts, err := parseExecArgs(args[2:]); err == nil {
			return cl.launch(launch.Request{Tree: name, Argv: argv, Fresh: opts.fresh, Devices: opts.devices})
		}
	case !strings.HasPrefix(args[1], "-") && !isCommand(args[1]):
		// Legacy form: `chos CMD ARGS`, as the original batch job starter
		// ran it.
		return cl.launch(launch.Request{Argv: args[1:], Via: "legacy"})
	}
	return report(cl.app().Run(context.Background(), args))
}

// chosCommands are the commands of the command line (commands()), and
// help, which urfave/cli adds: what the legacy form never takes for a
// program to run.
var chosCommands = []string{"exec", "shell", "select", "list", "current", "check", "cache", "plan",
	"login", "config", "prepare", "__complete", "help", "h"}

func isCommand(name string) bool { return slices.Contains(chosCommands, name) }

// setMode applies a forced mode (--mode, CHOS_MODE).
func (cl *cmdline) setMode(mode string) error {
	inv, err := cl.inv.WithMode(mode)
	var me *launch.ErrMode
	switch {
	case errors.As(err, &me) && me.Unknown:
		return fail(statusUsage, err)
	case err != nil:
		return fail(statusFailed, err)
	}
	cl.inv = inv
	return nil
}

// drop gives root up for good, for the commands that need none.
func (cl *cmdline) drop() error {
	inv, err := cl.inv.Drop()
	if err != nil {
		return fail(statusFailed, err)
	}
	cl.inv = inv
	return nil
}

// report prints an error as one line and returns the exit status.
func report(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "chos: "+ee.err.Error())
		}
		return ee.status
	default:
		// Anything urfave/cli itself refuses is a usage error.
		fmt.Fprintln(os.Stderr, "chos: "+err.Error())
		return statusUsage
	}
}

// exitError carries a one-line message and an exit status out of urfave/cli.
type exitError struct {
	status int
	err    error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.status)
	}
	return e.err.Error()
}

func fail(status int, err error) error { return &exitError{status, err} }

// exitWith turns a launch status into an urfave/cli result.
func exitWith(status int) error {
	if status == 0 {
		return nil
	}
	return &exitError{status: status} // already reported
}
