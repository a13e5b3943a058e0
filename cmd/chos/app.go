package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/chos-hpc/chos/pkg/build"
	"github.com/chos-hpc/chos/pkg/launch"
)

// The command line's commands and options (urfave/cli), for every form but
// the ones run() takes straight to a launch.

func (cl *cmdline) app() *cli.Command {
	// -v is --verbose; the version is --version only.
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version"}
	app := cl.commands()
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

func (cl *cmdline) commands() *cli.Command {
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
			cl.inv.Config = c.String("config")
			cl.verbose = c.Bool("verbose")
			return ctx, cl.setMode(c.String("mode"))
		},
		Action: func(_ context.Context, c *cli.Command) error {
			if c.NArg() > 0 {
				return fail(statusUsage, fmt.Errorf("unknown command %q (see `chos help`)", c.Args().First()))
			}
			return exitWith(cl.launch(launch.Request{Login: true}))
		},
		Commands: []*cli.Command{
			{
				Name:            "exec",
				Usage:           "run a command in a tree",
				ArgsUsage:       "[--fresh] [--device DEV]... NAME [--] CMD [ARGS...] | [OPTIONS] -- CMD [ARGS...]",
				Description:     "Runs CMD, looked up on PATH inside the tree, with the environment kept as it is plus CHOS=NAME.\nWithout NAME (`chos exec -- CMD`) the tree comes from $CHOS, ~/.chos, the default tree, or the host.\nNothing after NAME is taken as an option of chos.\n--fresh builds the tree's view in a private namespace instead of entering the cached one.\n--device VENDOR/CLASS=NAME (repeatable, or a comma-separated list; else $CHOS_DEVICES) shows the host's\nCDI device in the tree: its files, libraries and environment, as the tree's devices = rules allow.",
				SkipFlagParsing: true,
				Action: func(ctx context.Context, c *cli.Command) error {
					name, argv, opts, err := parseExecArgs(c.Args().Slice())
					if errors.Is(err, errHelp) {
						return cli.ShowCommandHelp(ctx, c.Root(), "exec")
					}
					if err != nil {
						return fail(statusUsage, err)
					}
					return exitWith(cl.launch(launch.Request{Tree: name, Argv: argv, Fresh: opts.fresh, Devices: opts.devices}))
				},
			},
			{
				Name:      "shell",
				Usage:     "start your login shell in a tree",
				ArgsUsage: "[--fresh] [--device DEV]... [NAME]",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "fresh", Usage: "build the view in a private namespace instead of entering the cached one"}, deviceFlag()},
				Description: "Starts your login shell (from passwd; /bin/sh if the tree lacks it) with the environment cleaned\n" +
					"to the variables the tree's /etc/chos.conf %ENV lists, PATH reset and CHOS set.",
				Action: func(_ context.Context, c *cli.Command) error {
					if c.NArg() > 1 {
						return fail(statusUsage, fmt.Errorf("shell takes at most one tree name"))
					}
					return exitWith(cl.launch(launch.Request{Tree: c.Args().First(), Login: true, Fresh: c.Bool("fresh"), Devices: deviceLists(c)}))
				},
			},
			{
				Name:      "select",
				Usage:     "show, set or clear your default tree (~/.chos)",
				ArgsUsage: "[NAME]",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "clear", Usage: "remove ~/.chos"}},
				Action:    cl.cmdSelect,
			},
			{
				Name:   "list",
				Usage:  "list the configured trees",
				Flags:  []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Before: noArgs,
				Action: cl.cmdList,
			},
			{
				Name:   "current",
				Usage:  "print the tree this process runs in (local on the host)",
				Before: noArgs,
				Action: cl.cmdCurrent,
			},
			{
				Name:      "check",
				Usage:     "diagnose the installation and the trees",
				ArgsUsage: "[NAME]",
				Action:    cl.cmdCheck,
			},
			{
				Name:  "cache",
				Usage: "list or drop the cached namespaces of trees",
				Description: "The setuid chos keeps each tree's view as a mount namespace in " + build.CacheDir + "/ns/INODE\n" +
					"and enters it on later launches; a changed configuration or tree makes the next launch build a new one.",
				Commands: []*cli.Command{
					{Name: "list", Usage: "list the cached namespaces, their tree, age and validity", Before: noArgs, Action: cl.cmdCacheList},
					{Name: "drop", Usage: "drop the cached namespaces of a tree, or all (root only)", ArgsUsage: "[NAME]", Action: cl.cmdCacheDrop},
				},
				// (`chos cache` alone lists; a word that is no subcommand
				// is a usage error, not a list)
				Action: func(ctx context.Context, c *cli.Command) error {
					if c.NArg() > 0 {
						return fail(statusUsage, fmt.Errorf("unknown cache command %q (known: list, drop)", c.Args().First()))
					}
					return cl.cmdCacheList(ctx, c)
				},
			},
			{
				Name:      "plan",
				Usage:     "print what a launch would do, without doing it",
				ArgsUsage: "[--device DEV]... [NAME] [-- CMD [ARGS...]]",
				Flags:     []cli.Flag{deviceFlag()},
				Action:    cl.cmdPlan,
			},
			loginCommand(cl),
			configCommand(cl),
			prepareCommand(cl),
			completeCommand(cl),
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

// execOptions are the options of `chos exec`, before NAME.
type execOptions struct {
	fresh   bool
	devices []string // nil: no --device
}

// parseExecArgs splits `[OPTIONS] [--] NAME [--] CMD ARGS` and `[OPTIONS]
// -- CMD ARGS`.
func parseExecArgs(args []string) (name string, argv []string, opts execOptions, err error) {
	opts, n := scanLaunchOptions(args)
	if n > len(args) {
		return "", nil, opts, fmt.Errorf("exec: --device needs a device (VENDOR/CLASS=NAME)")
	}
	name, argv, err = parseExecOperands(args[n:])
	return name, argv, opts, err
}

// scanLaunchOptions reads the --fresh, --device DEV and --device=DEV
// options that start words (exec's, parsed by chos itself, and what
// completion skips): their values, and the index of the first word after
// them, past the end when the last word is a --device without its value.
func scanLaunchOptions(words []string) (opts execOptions, n int) {
	for n < len(words) {
		switch a := words[n]; {
		case a == "--fresh":
			opts.fresh, n = true, n+1
		case a == "--device":
			if n+1 < len(words) {
				opts.devices = append(opts.devices, words[n+1])
			}
			n += 2
		case strings.HasPrefix(a, "--device="):
			opts.devices, n = append(opts.devices, strings.TrimPrefix(a, "--device=")), n+1
		default:
			return opts, n
		}
	}
	return opts, n
}

// deviceFlag is --device of shell and plan (exec parses its own).
func deviceFlag() cli.Flag {
	return &cli.StringSliceFlag{Name: "device", Usage: "show the host's CDI device VENDOR/CLASS=NAME in the tree (repeatable; else $CHOS_DEVICES)"}
}

// deviceLists are the --device options given to c, nil for none.
func deviceLists(c *cli.Command) []string {
	if !c.IsSet("device") {
		return nil
	}
	return c.StringSlice("device")
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
