package main

import (
	"context"

	"github.com/urfave/cli/v3"
)

// `chos login` is sshd's ForceCommand (launch.PrepareLogin).

func loginCommand(cl *cmdline) *cli.Command {
	return &cli.Command{
		Name:  "login",
		Usage: "sshd's ForceCommand: your login shell, or the ssh command, in your selected tree",
		Description: "For sshd_config: `Match Group GROUP` then `ForceCommand /path/to/chos login`, with `AcceptEnv CHOS`.\n" +
			"The tree comes from $CHOS (sent with ssh -o SendEnv=CHOS), ~/.chos, the default tree, or the host.\n" +
			"Without SSH_ORIGINAL_COMMAND: your login shell as `chos shell` starts it, also keeping LANG, LANGUAGE,\n" +
			"LC_*, TZ, TERM, DISPLAY and SSH_*. With one: `$SHELL -c COMMAND` in the tree (/bin/sh if the tree\n" +
			"lacks your shell). sftp (internal-sftp or a server path), scp and rsync use the host's programs,\n" +
			"run inside the tree's view, when the tree lacks them.",
		Before: noArgs,
		Action: cl.cmdLogin,
	}
}

func (cl *cmdline) cmdLogin(_ context.Context, c *cli.Command) error {
	if err := cl.atHost(); err != nil {
		return fail(statusFailed, err)
	}
	l, err := cl.inv.PrepareLogin()
	if err != nil {
		cl.inv.Log(l.Record)
		return fail(statusFailed, err)
	}
	return exitWith(cl.start(l))
}
