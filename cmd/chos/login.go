package main

import (
	"context"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/urfave/cli/v3"

	"github.com/chos-hpc/chos/pkg/hostexec"
	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/plan"
)

// `chos login` is sshd's ForceCommand (sshd_config(5)): sshd runs it, as
// the user, through the user's shell, for every session of a matched
// user, with the client's command in SSH_ORIGINAL_COMMAND. Unlike a PAM
// session module it runs after the client's environment arrived, so
// `ssh -o SendEnv=CHOS` selects the tree (login-feasibility.md §1).

func loginCommand(st *state) *cli.Command {
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
		Action: st.cmdLogin,
	}
}

func (st *state) cmdLogin(_ context.Context, c *cli.Command) error {
	command, hasCommand := os.LookupEnv("SSH_ORIGINAL_COMMAND")
	st.adm.via = "login"
	p, err := st.loginPlan(command, hasCommand)
	if err != nil {
		st.auditRefusal("", nil, !hasCommand, err)
		return fail(statusFailed, err)
	}
	return st.exitWith(st.launchPlan(p, !hasCommand))
}

// loginPlan selects the tree as everywhere and plans the login shell, or
// the client's command.
func (st *state) loginPlan(command string, hasCommand bool) (*nsroot.Plan, error) {
	if err := st.rootAtHost(); err != nil {
		return nil, err
	}
	cat, err := st.catalog()
	if err != nil {
		return nil, err
	}
	who, err := st.caller()
	if err != nil {
		return nil, err
	}
	// sshd's note to the forced command: without ForceCommand the
	// session never has it.
	who.Env = withoutVar(who.Env, "SSH_ORIGINAL_COMMAND")
	sel, err := st.choose(cat, ostree.Inputs{Env: os.Getenv("CHOS")}, who)
	if err != nil {
		return nil, err
	}
	t := sel.Tree
	if !hasCommand {
		p, err := st.planFor(cat, who, t, nil, true)
		if err != nil {
			return nil, err
		}
		p.Process.Env = keepSessionEnv(p.Process.Env, who.Env)
		return p, nil
	}
	argv, err := st.loginArgv(t, who, command)
	if err != nil {
		return nil, err
	}
	p, err := st.planFor(cat, who, t, argv, false)
	if err != nil {
		return nil, err
	}
	if len(argv) == 3 && argv[1] == "-c" {
		// sshd names the shell by its base name (session.c).
		p.Process.Argv[0] = path.Base(argv[0])
	}
	return p, nil
}

// sessionVar says whether a login shell started by `chos login` keeps a
// variable whatever the tree's %ENV says: the ssh session's own (SSH_*,
// TERM, DISPLAY, which X11 forwarding needs) and the locale, which sshd
// passes only as its AcceptEnv allows (Debian's: LANG LC_*).
func sessionVar(k string) bool {
	switch k {
	case "LANG", "LANGUAGE", "TZ", "TERM", "DISPLAY":
		return true
	}
	return strings.HasPrefix(k, "LC_") || strings.HasPrefix(k, "SSH_")
}

// keepSessionEnv adds the session variables of from that env lacks.
func keepSessionEnv(env, from []string) []string {
	have := map[string]bool{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		have[k] = true
	}
	out := append([]string{}, env...)
	for _, kv := range from {
		if k, _, _ := strings.Cut(kv, "="); sessionVar(k) && !have[k] {
			out, have[k] = append(out, kv), true
		}
	}
	sort.Strings(out)
	return out
}

func withoutVar(env []string, name string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// transferTools are the programs ssh clients start on the server for
// file transfer (sftp's subsystem, scp -O, rsync): when the tree lacks
// one, the host's is run inside the view, so that copying files to a
// user whose tree is an old or minimal OS still works.
var transferTools = map[string]bool{"sftp-server": true, "scp": true, "rsync": true}

// loginArgv is what runs the client's command in tree t: the host's
// sftp-server for internal-sftp, else the command through the user's
// shell (sshd's own way), a missing transfer tool replaced by the host's.
func (st *state) loginArgv(t *ostree.Tree, who plan.Caller, command string) ([]string, error) {
	// Where this process sees the tree, and where the launched command
	// will see the host's root.
	treeRoot, viewHost := st.hostPath(t.Path), plan.HostDir
	if t.Host {
		treeRoot, viewHost = st.hostPath("/"), "/"
	}
	hostRoot := st.hostPath("/")
	pathList := envValue(who.Env, "PATH")
	word, rest := firstWord(command)

	var argv []string
	err := st.asCaller(func() error {
		if word == "internal-sftp" {
			// sshd serves it in its own process, which a view cannot
			// reach: the host's sftp-server does the same, with the
			// same options.
			server := sftpServer(hostRoot, pathList)
			if server == "" {
				return fmt.Errorf("internal-sftp: no sftp-server on the host (looked on PATH and in the OpenSSH libexec directories beside it); install it or name it in sshd's Subsystem")
			}
			if t.Host {
				argv = append([]string{server}, strings.Fields(rest)...)
				return nil
			}
			var err error
			argv, err = hostexec.Argv(hostRoot, viewHost, server, strings.Fields(rest)...)
			return err
		}
		shell := who.Shell
		if shell == "" || !treeExecutable(treeRoot, shell) {
			if shell != "" {
				fmt.Fprintf(os.Stderr, "chos: warning: your shell %s is not in tree %s; using /bin/sh\n", shell, t.Name)
			}
			shell = "/bin/sh"
		}
		if transferTools[path.Base(word)] && !t.Host && findTool(treeRoot, pathList, word) == "" {
			if bin := findTool(hostRoot, pathList, word); bin != "" {
				if hostArgv, err := hostexec.Argv(hostRoot, viewHost, bin); err == nil {
					// The rest goes through the shell unchanged: its
					// quoting is the client's.
					command = shellQuoteArgv(hostArgv) + rest
				}
			}
		}
		argv = []string{shell, "-c", command}
		return nil
	})
	return argv, err
}

// sftpServer finds the host's sftp-server: on PATH, else in OpenSSH's
// libexec directory beside a bin directory of PATH (PREFIX/bin ->
// PREFIX/lib/openssh (Debian), PREFIX/libexec/openssh (RHEL),
// PREFIX/lib/ssh (Arch), PREFIX/libexec (OpenSSH's default)).
func sftpServer(hostRoot, pathList string) string {
	if p := hostexec.LookPath(hostRoot, pathList, "sftp-server"); p != "" {
		return p
	}
	for _, dir := range strings.Split(pathList, ":") {
		if !path.IsAbs(dir) {
			continue
		}
		prefix := path.Dir(path.Clean(dir))
		for _, sub := range []string{"lib/openssh", "libexec/openssh", "lib/ssh", "libexec"} {
			if p := path.Join(prefix, sub, "sftp-server"); hostexec.IsExecutable(hostRoot, p) {
				return p
			}
		}
	}
	return ""
}

// findTool finds a command's program inside root: an absolute path as
// it is, a name on PATH.
func findTool(root, pathList, word string) string {
	if path.IsAbs(word) {
		if treeExecutable(root, word) {
			return word
		}
		return ""
	}
	return treeLookPath(root, pathList, word)
}

// firstWord splits a command line at its first blank.
func firstWord(command string) (word, rest string) {
	command = strings.TrimLeft(command, " \t")
	if i := strings.IndexAny(command, " \t"); i >= 0 {
		return command[:i], command[i:]
	}
	return command, ""
}

// shellQuoteArgv quotes each argument for sh, csh and their kin.
func shellQuoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

func envValue(env []string, name string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	return ""
}
