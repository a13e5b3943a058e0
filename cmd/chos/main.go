// Command chos runs commands and login shells inside configured OS trees.
// This package is the command line only: parsing, dispatch and messages.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/chos-hpc/chos/pkg/build"
	"github.com/chos-hpc/chos/pkg/nsroot"
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

func run(args []string) int {
	switch {
	case nsroot.IsUserNSChild(args):
		return nsroot.RunUserNSChild(args)
	case nsroot.IsViewBuilder(args):
		return nsroot.RunViewBuilder()
	case nsroot.IsKeeper(args):
		return nsroot.RunKeeper(args)
	}
	st := newState()
	prog := filepath.Base(args[0])
	// CHOS_MODE applies to every form.
	if err := st.setMode(os.Getenv("CHOS_MODE")); err != nil {
		return report(err)
	}

	// Neither the legacy nor the vsys form takes options, but an
	// alternative configuration in the environment is still refused (or,
	// for root, honoured), never silently ignored.
	st.configFlag = os.Getenv("CHOS_CONFIG")
	// vsys form: invoked as a link named after a tree (rh73 -> chos).
	if !isChosName(prog) {
		st.adm.via = "vsys"
		if len(args) == 1 || (len(args) == 2 && args[1] == "-sh") {
			return st.launch(prog, nil, true)
		}
		return st.launch(prog, args[1:], false)
	}
	// Legacy form: `chos CMD ARGS`, as the original batch job starter ran it.
	// The launch path of every batch job and rank: skip building the
	// command-line app when nothing but `exec` needs parsing.
	if len(args) > 1 && args[1] == "exec" {
		if name, argv, fresh, err := parseExecArgs(args[2:]); err == nil {
			st.fresh = fresh
			return st.launch(name, argv, false)
		}
	}
	app := st.app()
	// (Run adds the help command, which the legacy form must not take
	// either)
	if len(args) > 1 && !strings.HasPrefix(args[1], "-") && args[1] != "help" && args[1] != "h" && app.Command(args[1]) == nil {
		st.adm.via = "legacy"
		return st.launch("", args[1:], false)
	}
	return report(app.Run(context.Background(), args))
}

// isChosName says whether a program name is chos's own rather than a
// tree's (vsys form): "chos", or "chos" followed by '-', '.' or '_' and
// anything (chos-1.2, chos.static, chos_debug). Every other name, "chosen"
// included, is a tree name.
func isChosName(prog string) bool {
	rest, ok := strings.CutPrefix(prog, "chos")
	return ok && (rest == "" || strings.ContainsRune("-._", rune(rest[0])))
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

func (st *state) app() *cli.Command {
	// -v is --verbose; the version is --version only.
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version"}
	app := st.commands()
	usageErrorsAreOneLine(app)
	return app
}

// usageErrorsAreOneLine makes every command report a usage error as one
// line naming the command, where urfave/cli would print its help too.
func usageErrorsAreOneLine(c *cli.Command) {
	c.OnUsageError = func(_ context.Context, c *cli.Command, err error, _ bool) error {
		if c.Root() == c {
			return fail(statusUsage, fmt.Errorf("%w (see `chos --help`)", err))
		}
		return fail(statusUsage, fmt.Errorf("%s: %w (see `%s --help`)", strings.TrimPrefix(c.FullName(), "chos "), err, c.FullName()))
	}
	for _, sub := range c.Commands {
		usageErrorsAreOneLine(sub)
	}
}

func (st *state) commands() *cli.Command {
	return &cli.Command{
		Name:    "chos",
		Usage:   "run commands and login shells in another OS tree",
		Version: build.Version,
		Description: "chos runs each process in the OS tree (an installed Linux release) chosen for it,\n" +
			"with the host's /proc, /dev, /sys, /tmp, /home and scratch bound in and the caller's own\n" +
			"identity. Without a command it starts your login shell in your selected tree.\n" +
			"`chos CMD ARGS` (CMD not a chos command) is `chos exec -- CMD ARGS`.",
		HideHelpCommand: false,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Usage: "read this configuration file instead of " + filepath.Join(build.SysconfDir, "chos") + " (root only)", Sources: cli.EnvVars("CHOS_CONFIG")},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "print notes on what is skipped"},
			&cli.StringFlag{Name: "mode", Usage: "how to enter trees: auto (setuid when the binary is setuid root, else user namespaces), setuid, userns", Sources: cli.EnvVars("CHOS_MODE"), Value: "auto"},
		},
		Before: func(ctx context.Context, c *cli.Command) (context.Context, error) {
			st.configFlag = c.String("config")
			st.verbose = c.Bool("verbose")
			return ctx, st.setMode(c.String("mode"))
		},
		Action: func(_ context.Context, c *cli.Command) error {
			if c.NArg() > 0 {
				return fail(statusUsage, fmt.Errorf("unknown command %q (see `chos help`)", c.Args().First()))
			}
			return st.exitWith(st.launch("", nil, true))
		},
		Commands: []*cli.Command{
			{
				Name:            "exec",
				Usage:           "run a command in a tree",
				ArgsUsage:       "[--fresh] NAME [--] CMD [ARGS...] | [--fresh] -- CMD [ARGS...]",
				Description:     "Runs CMD, looked up on PATH inside the tree, with the environment kept as it is plus CHOS=NAME.\nWithout NAME (`chos exec -- CMD`) the tree comes from $CHOS, ~/.chos, the default tree, or the host.\nNothing after NAME is taken as an option of chos.\n--fresh builds the tree's view in a private namespace instead of entering the cached one.",
				SkipFlagParsing: true,
				Action: func(ctx context.Context, c *cli.Command) error {
					name, argv, fresh, err := parseExecArgs(c.Args().Slice())
					if errors.Is(err, errHelp) {
						return cli.ShowCommandHelp(ctx, c.Root(), "exec")
					}
					if err != nil {
						return fail(statusUsage, err)
					}
					st.fresh = fresh
					return st.exitWith(st.launch(name, argv, false))
				},
			},
			{
				Name:      "shell",
				Usage:     "start your login shell in a tree",
				ArgsUsage: "[--fresh] [NAME]",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "fresh", Usage: "build the view in a private namespace instead of entering the cached one"}},
				Description: "Starts your login shell (from passwd; /bin/sh if the tree lacks it) with the environment cleaned\n" +
					"to the variables the tree's /etc/chos.conf %ENV lists, PATH reset and CHOS set.",
				Action: func(_ context.Context, c *cli.Command) error {
					if c.NArg() > 1 {
						return fail(statusUsage, fmt.Errorf("shell takes at most one tree name"))
					}
					st.fresh = c.Bool("fresh")
					return st.exitWith(st.launch(c.Args().First(), nil, true))
				},
			},
			{
				Name:      "select",
				Usage:     "show, set or clear your default tree (~/.chos)",
				ArgsUsage: "[NAME]",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "clear", Usage: "remove ~/.chos"}},
				Action:    st.cmdSelect,
			},
			{
				Name:   "list",
				Usage:  "list the configured trees",
				Flags:  []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Before: noArgs,
				Action: st.cmdList,
			},
			{
				Name:   "current",
				Usage:  "print the tree this process runs in (local on the host)",
				Before: noArgs,
				Action: st.cmdCurrent,
			},
			{
				Name:      "check",
				Usage:     "diagnose the installation and the trees",
				ArgsUsage: "[NAME]",
				Action:    st.cmdCheck,
			},
			{
				Name:  "cache",
				Usage: "list or drop the cached namespaces of trees",
				Description: "The setuid chos keeps each tree's view as a mount namespace in " + build.CacheDir + "/ns/INODE\n" +
					"and enters it on later launches; a changed configuration or tree makes the next launch build a new one.",
				Commands: []*cli.Command{
					{Name: "list", Usage: "list the cached namespaces, their tree, age and validity", Before: noArgs, Action: st.cmdCacheList},
					{Name: "drop", Usage: "drop the cached namespaces of a tree, or all (root only)", ArgsUsage: "[NAME]", Action: st.cmdCacheDrop},
				},
				Action: st.cmdCacheList,
			},
			{
				Name:      "plan",
				Usage:     "print what a launch would do, without doing it",
				ArgsUsage: "[NAME] [-- CMD [ARGS...]]",
				Action:    st.cmdPlan,
			},
			loginCommand(st),
			configCommand(st),
			prepareCommand(st),
			completeCommand(st),
		},
		ExitErrHandler: func(context.Context, *cli.Command, error) {}, // run() reports errors itself
	}
}

var errHelp = errors.New("help requested")

func noArgs(ctx context.Context, c *cli.Command) (context.Context, error) {
	if c.NArg() > 0 {
		return ctx, fail(statusUsage, fmt.Errorf("%s takes no arguments", c.Name))
	}
	return ctx, nil
}

// parseExecArgs splits `[--] NAME [--] CMD ARGS` and `-- CMD ARGS`.
func parseExecArgs(args []string) (name string, argv []string, fresh bool, err error) {
	for len(args) > 0 && args[0] == "--fresh" {
		fresh, args = true, args[1:]
	}
	name, argv, err = parseExecOperands(args)
	return name, argv, fresh, err
}

func parseExecOperands(args []string) (name string, argv []string, err error) {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		return "", nil, errHelp
	}
	if len(args) > 0 && args[0] == "--" {
		if len(args) == 1 {
			return "", nil, fmt.Errorf("exec: no command given")
		}
		return "", args[1:], nil
	}
	if len(args) > 0 && strings.HasPrefix(args[0], "-") {
		return "", nil, fmt.Errorf("exec: unknown option %q (options of the command go after NAME)", args[0])
	}
	if len(args) == 0 {
		return "", nil, fmt.Errorf("exec: no tree name and no command given (usage: chos exec NAME CMD [ARGS...])")
	}
	name, args = args[0], args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return "", nil, fmt.Errorf("exec: no command given after tree name %s", name)
	}
	return name, args, nil
}

// exitWith turns a launch status into an urfave/cli result.
func (st *state) exitWith(status int) error {
	if status == 0 {
		return nil
	}
	return &exitError{status: status} // already reported
}
