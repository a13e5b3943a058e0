package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/urfave/cli/v3"
)

// `chos __complete [--] WORD... CUR` serves the shell completions
// (etc/completion/): it prints the candidates for CUR, the word being
// completed, given the words typed after "chos" before it, one per line.
// The shell filters them by CUR's prefix. Instead of candidates it may
// print one directive:
//
//	@command N   the words from N on (chos is word 0) are a command line of
//	             their own (what `exec NAME` runs): complete it as one
//	@file        complete a file name
//
// Commands and options come from the command line's own definition; tree
// names are those the caller may use.

func completeCommand(cl *cmdline) *cli.Command {
	return &cli.Command{
		Name:            "__complete",
		Usage:           "candidates for shell completion (used by the completion scripts)",
		Hidden:          true,
		SkipFlagParsing: true,
		Action:          cl.cmdComplete,
	}
}

func (cl *cmdline) cmdComplete(_ context.Context, c *cli.Command) error {
	if err := cl.drop(); err != nil {
		return err
	}
	args := c.Args().Slice()
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return fail(statusUsage, fmt.Errorf("usage: chos __complete [--] WORD... CUR"))
	}
	for _, s := range complete(cl.app(), args[:len(args)-1], args[len(args)-1], cl.inv.Usable) {
		fmt.Println(s)
	}
	return nil
}

// treeOperand are the commands whose one operand is a tree name.
var treeOperand = map[string]bool{"shell": true, "select": true, "check": true, "config": true, "drop": true}

// complete computes the candidates for cur after words (see above).
func complete(app *cli.Command, words []string, cur string, trees func() []string) []string {
	commandLine := func(n int) []string { return []string{fmt.Sprintf("@command %d", n)} }
	// global options, and their values
	i := 0
	for ; i < len(words) && strings.HasPrefix(words[i], "-"); i++ {
		if takesValue(app.Flags, words[i]) {
			if i++; i == len(words) {
				return flagValues(words[i-1])
			}
		}
	}
	if i == len(words) {
		if strings.HasPrefix(cur, "-") {
			return append(flagNames(app.Flags), "--help", "--version")
		}
		return append(commandNames(app.Commands), "help")
	}
	if words[i] == "help" {
		return append(commandNames(app.Commands), "help")
	}
	cmd := commandNamed(app.Commands, words[i])
	if cmd == nil {
		// `chos CMD ARGS`, the legacy form of `chos exec -- CMD ARGS`
		return commandLine(i + 1)
	}
	// a command's subcommands (cache list|drop)
	for len(cmd.Commands) > 0 {
		if i+1 == len(words) {
			return commandNames(cmd.Commands)
		}
		sub := commandNamed(cmd.Commands, words[i+1])
		if sub == nil {
			return nil
		}
		cmd, i = sub, i+1
	}
	rest, base := words[i+1:], i+2 // base: the index of rest[0], chos being 0
	switch cmd.Name {
	case "exec":
		// [--fresh] [--device DEV]... NAME [--] CMD... | [OPTIONS] -- CMD...
		_, j := scanLaunchOptions(rest)
		switch {
		case j > len(rest):
			return nil // a device's name
		case j == len(rest) && strings.HasPrefix(cur, "-"):
			return []string{"--fresh", "--device", "--"}
		case j == len(rest):
			return trees()
		case rest[j] == "--":
			return commandLine(base + j + 1)
		}
		if j++; j < len(rest) && rest[j] == "--" {
			j++
		}
		return commandLine(base + j)
	case "plan":
		// [--device DEV]... [NAME] [-- CMD...]
		_, j := scanLaunchOptions(rest)
		if j > len(rest) {
			return nil
		}
		if j == len(rest) && strings.HasPrefix(cur, "-") && cur != "--" {
			return []string{"--device", "--"}
		}
		rest, base = rest[j:], base+j
		switch {
		case len(rest) == 0:
			return append(trees(), "--")
		case rest[0] == "--":
			return commandLine(base + 1)
		case len(rest) == 1:
			return []string{"--"}
		case rest[1] == "--":
			return commandLine(base + 2)
		}
		return nil
	}
	if strings.HasPrefix(cur, "-") {
		return append(flagNames(cmd.Flags), "--help")
	}
	operands := 0
	for _, w := range rest {
		if !strings.HasPrefix(w, "-") {
			operands++
		}
	}
	if treeOperand[cmd.Name] && operands == 0 {
		return trees()
	}
	return nil
}

func commandNamed(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

func commandNames(cmds []*cli.Command) []string {
	var names []string
	for _, c := range cmds {
		if !c.Hidden {
			names = append(names, c.Name)
		}
	}
	return names
}

func flagNames(flags []cli.Flag) []string {
	var names []string
	for _, f := range flags {
		for _, n := range f.Names() {
			if len(n) == 1 {
				names = append(names, "-"+n)
			} else {
				names = append(names, "--"+n)
			}
		}
	}
	return names
}

// takesValue says whether word is an option that takes the next word as
// its value (not --opt=value).
func takesValue(flags []cli.Flag, word string) bool {
	if strings.Contains(word, "=") {
		return false
	}
	name := strings.TrimLeft(word, "-")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				df, ok := f.(cli.DocGenerationFlag)
				return ok && df.TakesValue()
			}
		}
	}
	return false
}

// flagValues are the candidates for a global option's value.
func flagValues(flag string) []string {
	switch strings.TrimLeft(flag, "-") {
	case "mode":
		return []string{"auto", "setuid", "userns"}
	case "config":
		return []string{"@file"}
	}
	return nil
}
