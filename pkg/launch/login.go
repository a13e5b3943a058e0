package launch

import (
	"fmt"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/chos-hpc/chos/pkg/hostexec"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/plan"
	"github.com/chos-hpc/chos/pkg/spec"
)

// `chos login` is sshd's ForceCommand (sshd_config(5)): sshd runs it, as
// the user, through the user's shell, for every session of a matched
// user, with the client's command in SSH_ORIGINAL_COMMAND. Unlike a PAM
// session module it runs after the client's environment arrived, so
// `ssh -o SendEnv=CHOS` selects the tree (login-feasibility.md §1).

// PrepareLogin plans what `chos login` runs: the tree selected as
// everywhere ($CHOS, ~/.chos, the default, the host: never an argument),
// and the login shell, or the client's command (SSH_ORIGINAL_COMMAND).
func (inv Invocation) PrepareLogin() (*Launch, error) {
	command, hasCommand := lookupEnv(inv.Caller.Env, "SSH_ORIGINAL_COMMAND")
	l := &Launch{Record: inv.record("login", !hasCommand)}
	refuse := func(err error) (*Launch, error) { return inv.refuse(l, err, "", nil) }
	// ($CHOS_DEVICES for devices, as sshd's AcceptEnv lets it through)
	st, err := inv.begin(l, ostree.Inputs{Env: inv.Getenv("CHOS")}, nil)
	if err != nil {
		return refuse(err)
	}
	cat, who, t, names := st.cat, st.who, st.tree, st.devices
	// sshd's note to the forced command: without ForceCommand the
	// session never has it.
	who.Env = withoutVar(who.Env, "SSH_ORIGINAL_COMMAND")
	if !hasCommand {
		if l.Plan, l.Notes, err = inv.planFor(cat, who, t, names, nil, true, false); err != nil {
			return refuse(err)
		}
		l.Plan.Process.Env = keepSessionEnv(l.Plan.Process.Env, who.Env)
		return l, nil
	}
	argv, notes, err := inv.loginArgv(t, who, command)
	if err != nil {
		return refuse(err)
	}
	p, more, err := inv.planFor(cat, who, t, names, argv, false, false)
	if err != nil {
		return refuse(err)
	}
	if len(argv) == 3 && argv[1] == "-c" {
		// sshd names the shell by its base name (session.c).
		p.Process.Argv[0] = path.Base(argv[0])
	}
	l.Plan, l.Notes = p, append(notes, more...)
	return l, nil
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
func (inv Invocation) loginArgv(t *ostree.Tree, who plan.Caller, command string) ([]string, []spec.Note, error) {
	// Where this process sees the tree, and where the launched command
	// will see the host's root.
	treeRoot, viewHost := inv.HostPath(t.Path), plan.HostDir
	if t.Host {
		treeRoot, viewHost = inv.HostPath("/"), "/"
	}
	hostRoot := inv.HostPath("/")
	pathList, _ := lookupEnv(who.Env, "PATH")
	word, rest := firstWord(command)

	var argv []string
	var notes []spec.Note
	err := inv.asCaller(func() error {
		if word == "internal-sftp" {
			// sshd serves it in its own process, which a view cannot
			// reach: the host's sftp-server does the same, with the
			// same options.
			server := SFTPServer(hostRoot, pathList)
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
				notes = append(notes, spec.Warning("your shell %s is not in tree %s; using /bin/sh", shell, t.Name))
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
	return argv, notes, err
}

// SFTPServer finds the host's sftp-server: on PATH, else in OpenSSH's
// libexec directory beside a bin directory of PATH (PREFIX/bin ->
// PREFIX/lib/openssh (Debian), PREFIX/libexec/openssh (RHEL),
// PREFIX/lib/ssh (Arch), PREFIX/libexec (OpenSSH's default)).
func SFTPServer(hostRoot, pathList string) string {
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

// treeExecutable says whether p inside the tree at root (a directory or an
// image) is a program: for an image, a regular file with an execute bit,
// read from the image without mounting it.
func treeExecutable(root, p string) bool {
	if !ostree.IsImage(root) {
		return hostexec.IsExecutable(root, p)
	}
	fi, err := ostree.StatInTree(root, p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// treeLookPath finds name on pathList inside the tree at root, as
// hostexec.LookPath does in a directory.
func treeLookPath(root, pathList, name string) string {
	if !ostree.IsImage(root) {
		return hostexec.LookPath(root, pathList, name)
	}
	for _, dir := range filepath.SplitList(pathList) {
		if p := path.Join(dir, name); path.IsAbs(dir) && treeExecutable(root, p) {
			return p
		}
	}
	return ""
}
