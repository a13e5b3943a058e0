package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v3"
	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/launch"
)

// `chos prepare` is the root helper of the PAM module and the SPANK plugin
// (launch.PrepareForHelper): its options to a request, its reply on fd 3
// (docs/PREPARE-PROTOCOL.md).

// replyFD is the connected AF_UNIX socket the shim reads the reply from.
const replyFD = 3

// maxWarnings is the protocol's bound on warning= lines (the shims'
// PREPARE_MAX_WARNINGS).
const maxWarnings = 16

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

func prepareCommand(cl *cmdline) *cli.Command {
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
			str("devices", "slurm: the CDI devices --chos-device asks for: a list"),
			str("env-devices", "the $CHOS_DEVICES of the session or job"),
			&cli.BoolFlag{Name: "check", Usage: "slurm, as the user: only check the selection (submit time)"},
		},
		Action: cl.cmdPrepare,
	}
}

func (cl *cmdline) cmdPrepare(_ context.Context, c *cli.Command) error {
	req := launch.HelperRequest{
		Service: c.String("service"), Check: c.Bool("check"),
		User: c.String("user"), UID: c.String("uid"), GID: c.String("gid"), Groups: c.String("groups"),
		EnvChos: c.String("env-chos"), ExemptGroup: c.String("exempt-group"), PAMService: c.String("pam-service"),
		Tree: c.String("tree"), Default: c.String("default"), Cwd: c.String("cwd"), BatchScript: c.String("batch-script"),
		Job: c.String("job"), Step: c.String("step"), EnvPath: c.String("env-path"),
		Devices: c.String("devices"), EnvDevices: c.String("env-devices"),
		Given: map[string]bool{},
	}
	for _, name := range []string{"user", "uid", "gid", "groups", "env-path"} {
		req.Given[name] = c.IsSet(name)
	}
	rep, rec, err := cl.inv.PrepareForHelper(req)
	if rec != nil {
		cl.inv.Log(*rec)
	}
	r := &reply{}
	if err != nil {
		// Nothing to enter, but what chos warned about on the way.
		r.warnings(rep.Warnings)
		r.set("error", err.Error())
	} else {
		r.encode(rep)
	}
	if serr := r.send(); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		return fail(statusFailed, err)
	}
	return nil
}

// warnings are warning= lines, as many as the protocol allows.
func (r *reply) warnings(ws []string) {
	for i, w := range ws {
		if i == maxWarnings-1 && len(ws) > maxWarnings {
			w = fmt.Sprintf("and %d more warnings", len(ws)-i)
		}
		r.set("warning", w)
		if i == maxWarnings-1 {
			break
		}
	}
}

// encode is rep as the protocol's lines.
func (r *reply) encode(rep launch.Reply) {
	r.set("tree", rep.Tree)
	for _, kv := range rep.Setenv {
		r.set("setenv", kv)
	}
	if rep.NNP != nil {
		r.set("nnp", map[bool]string{false: "0", true: "1"}[*rep.NNP])
	}
	if rep.Argv0 != "" {
		r.set("argv0", rep.Argv0)
	}
	r.warnings(rep.Warnings)
	r.ns = rep.NS
	if rep.NS != nil {
		r.set("enter", "1")
	} else {
		r.set("enter", "0")
	}
}
