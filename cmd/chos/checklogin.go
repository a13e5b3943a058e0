package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/chos-hpc/chos/pkg/hostexec"
	"github.com/chos-hpc/chos/pkg/launch"
)

// The login integration `chos check` verifies: sshd's `ForceCommand chos
// login` (with AcceptEnv CHOS and an sftp subsystem chos login can serve),
// pam_chos.so in the session stacks of /etc/pam.d (last, after
// pam_systemd), and the profile hooks. Each is checked where it is found.

const (
	sshdConfigFile = "/etc/ssh/sshd_config" // OpenSSH's own default
	pamConfDir     = "/etc/pam.d"
)

// checkLogins checks each login integration it finds, and says so when
// there is none.
func (cl *cmdline) checkLogins(k *checker) {
	found := cl.checkSSHD(k)
	found = cl.checkPAMStacks(k) || found
	found = cl.checkProfileHooks(k) || found
	if !found {
		k.warn("logins", "no login integration found: ssh, su and console logins start on the host (README, Logins: "+
			"`ForceCommand chos login` in sshd_config, pam_chos(8), or the profile hook)")
	}
}

// sshdSetting is one keyword line of sshd_config.
type sshdSetting struct {
	key   string // lowercase
	args  []string
	match string // the Match block's criteria, "" at the top level
	at    string // FILE:LINE
}

// readSSHDConfig reads an sshd_config and the files it includes, in
// order, noting the Match block each line is in (sshd_config(5)).
func readSSHDConfig(file string, match string, depth int) ([]sshdSetting, error) {
	if depth > 16 {
		return nil, fmt.Errorf("%s: includes nested too deep", file)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []sshdSetting
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := sshdFields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		s := sshdSetting{key: strings.ToLower(fields[0]), args: fields[1:], match: match, at: fmt.Sprintf("%s:%d", file, n)}
		switch s.key {
		case "match":
			match = strings.Join(s.args, " ")
			if strings.EqualFold(match, "all") {
				match = ""
			}
		case "include":
			for _, pattern := range s.args {
				if !path.IsAbs(pattern) {
					pattern = path.Join(path.Dir(sshdConfigFile), pattern)
				}
				files, _ := filepath.Glob(pattern)
				for _, inc := range files {
					more, err := readSSHDConfig(inc, match, depth+1)
					if err != nil {
						return nil, err
					}
					out = append(out, more...)
				}
			}
		default:
			out = append(out, s)
		}
	}
	return out, sc.Err()
}

// sshdFields splits a config line as sshd does: blanks or one "=" after
// the keyword, double quotes grouping, "#" starting a comment.
func sshdFields(line string) []string {
	var fields []string
	var cur strings.Builder
	quoted, have := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			quoted, have = !quoted, true
		case !quoted && c == '#' && !have:
			return fields
		case !quoted && (c == ' ' || c == '\t' || (c == '=' && len(fields) == 0)):
			if have {
				fields, have = append(fields, cur.String()), false
				cur.Reset()
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		fields = append(fields, cur.String())
	}
	return fields
}

// sshdEffective is `sshd -T` (as root): the top-level settings as sshd
// itself resolves them, defaults and includes applied.
func sshdEffective() ([]sshdSetting, error) {
	bin, err := exec.LookPath("sshd")
	if err != nil {
		bin = "/usr/sbin/sshd"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-T")
	cmd.Env, cmd.Dir = []string{}, "/"
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s -T: %v: %s", bin, err, strings.TrimSpace(stderr.String()))
	}
	var settings []sshdSetting
	for _, line := range strings.Split(string(out), "\n") {
		if fields := strings.Fields(line); len(fields) > 0 {
			settings = append(settings, sshdSetting{key: fields[0], args: fields[1:], at: bin + " -T"})
		}
	}
	return settings, nil
}

// checkSSHD checks a `ForceCommand chos login` in sshd's configuration;
// false if there is none.
func (cl *cmdline) checkSSHD(k *checker) bool {
	file := cl.inv.HostPath(sshdConfigFile)
	settings, err := readSSHDConfig(file, "", 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false // no sshd here
	case errors.Is(err, fs.ErrPermission):
		k.warn("sshd", "cannot read %s as uid %d: run `chos check` as root to check sshd's ForceCommand", file, cl.inv.Caller.UID)
		return false
	case err != nil:
		k.warn("sshd", "reading %s: %v", file, err)
		return false
	}
	var forced *sshdSetting
	for i, s := range settings {
		if s.key == "forcecommand" && len(s.args) > 0 && path.Base(s.args[0]) == "chos" {
			forced = &settings[i]
			break
		}
	}
	if forced == nil {
		k.ok("sshd", "%s has no `ForceCommand chos login`: sshd does not place ssh logins", file)
		return false
	}
	// As root, sshd's own view of the top level, when it can give it.
	if cl.inv.Caller.UID == 0 {
		if eff, err := sshdEffective(); err != nil {
			k.warn("sshd", "%v; checking the file only", err)
		} else {
			var blocks []sshdSetting
			for _, s := range settings {
				if s.match != "" {
					blocks = append(blocks, s)
				}
			}
			settings = append(eff, blocks...)
		}
	}

	bin := forced.args[0]
	where := "at the top level"
	if forced.match != "" {
		where = "in `Match " + forced.match + "`"
	}
	switch {
	case len(forced.args) != 2 || forced.args[1] != "login":
		k.fail("sshd", "%s: ForceCommand %s: want `ForceCommand %s login`", forced.at, strings.Join(forced.args, " "), bin)
	case !path.IsAbs(bin) || !hostexec.IsExecutable(cl.inv.HostPath("/"), bin):
		k.fail("sshd", "%s: ForceCommand runs %s, which is not an executable file: name the installed chos by its absolute path", forced.at, bin)
	default:
		k.ok("sshd", "%s: ForceCommand %s login, %s", forced.at, bin, where)
	}
	if forced.match == "" {
		k.warn("sshd", "%s: ForceCommand chos login applies to every user, root and administrators included: put it in a Match block (`Match Group chosusers`, or `Match User *,!root`)", forced.at)
	}

	// AcceptEnv of the top level and of the ForceCommand's block.
	accepted := ""
	for _, s := range settings {
		if s.key != "acceptenv" || (s.match != "" && s.match != forced.match) {
			continue
		}
		for _, pattern := range s.args {
			if ok, _ := path.Match(pattern, "CHOS"); ok && accepted == "" {
				accepted = s.at
			}
		}
	}
	if accepted == "" {
		k.warn("sshd", "no AcceptEnv takes CHOS: `ssh -o SendEnv=CHOS` cannot choose the tree; add `AcceptEnv CHOS` to %s", file)
	} else {
		k.ok("sshd", "%s: AcceptEnv takes CHOS", accepted)
	}

	// The sftp subsystem: sshd runs it through the ForceCommand.
	var sftp *sshdSetting
	for i, s := range settings {
		if s.key == "subsystem" && len(s.args) > 1 && s.args[0] == "sftp" {
			sftp = &settings[i]
			break
		}
	}
	switch {
	case sftp == nil:
		k.warn("sshd", "no `Subsystem sftp`: sftp, and scp (SFTP since OpenSSH 9.0), fail; add `Subsystem sftp internal-sftp` to %s", file)
	case sftp.args[1] == "internal-sftp":
		if server := launch.SFTPServer(cl.inv.HostPath("/"), os.Getenv("PATH")); server == "" {
			k.fail("sshd", "%s: Subsystem sftp internal-sftp: chos login serves it with the host's sftp-server, which is neither on PATH nor in OpenSSH's libexec directory beside it; install it (Debian: openssh-sftp-server) or name its path in the Subsystem line", sftp.at)
		} else {
			k.ok("sshd", "%s: Subsystem sftp internal-sftp: chos login runs the host's %s inside the tree", sftp.at, server)
		}
	case !hostexec.IsExecutable(cl.inv.HostPath("/"), sftp.args[1]):
		k.fail("sshd", "%s: Subsystem sftp %s: no such executable file: fix the path or use internal-sftp", sftp.at, sftp.args[1])
	default:
		k.ok("sshd", "%s: Subsystem sftp %s (the tree's, else the host's inside the tree)", sftp.at, sftp.args[1])
	}
	return true
}

// pamLine is one line of a session stack, after includes.
type pamLine struct {
	module string // its module as written (pam_unix.so or a path)
	args   []string
	at     string // FILE:LINE
	file   string // the file it is written in
}

// pamSessionStack is the session stack of a PAM service file, with
// @include, include and substack followed.
func pamSessionStack(dir, file string, depth int) ([]pamLine, error) {
	if depth > 16 {
		return nil, fmt.Errorf("%s: includes nested too deep", file)
	}
	f, err := os.Open(filepath.Join(dir, file))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var stack []pamLine
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := pamFields(line)
		if len(fields) == 0 {
			continue
		}
		at := fmt.Sprintf("%s:%d", filepath.Join(dir, file), n)
		if fields[0] == "@include" && len(fields) > 1 {
			more, err := pamSessionStack(dir, fields[1], depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", at, err)
			}
			stack = append(stack, more...)
			continue
		}
		if len(fields) < 3 || strings.TrimPrefix(strings.ToLower(fields[0]), "-") != "session" {
			continue
		}
		if fields[1] == "include" || fields[1] == "substack" {
			more, err := pamSessionStack(dir, fields[2], depth+1)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", at, err)
			}
			stack = append(stack, more...)
			continue
		}
		stack = append(stack, pamLine{module: fields[2], args: fields[3:], at: at, file: file})
	}
	return stack, sc.Err()
}

// pamFields splits a PAM configuration line; a [...] control is one
// field (pam.conf(5)).
func pamFields(line string) []string {
	var fields []string
	for line = strings.TrimSpace(line); line != ""; line = strings.TrimSpace(line) {
		end := strings.IndexAny(line, " \t")
		if line[0] == '[' {
			if i := strings.IndexByte(line, ']'); i >= 0 {
				end = i + 1
			}
		}
		if end < 0 {
			end = len(line)
		}
		fields, line = append(fields, line[:end]), line[end:]
	}
	return fields
}

func isModule(module, name string) bool { return strings.TrimSuffix(path.Base(module), ".so") == name }

// pamModuleDir is the directory of the system's PAM modules, where a
// module named without a path is loaded from: that of pam_unix.so.
func pamModuleDir(hostRoot string) string {
	for _, pattern := range []string{"/usr/lib/*/security", "/lib/*/security", "/usr/lib64/security", "/lib64/security", "/usr/lib/security", "/lib/security"} {
		dirs, _ := filepath.Glob(filepath.Join(hostRoot, pattern))
		for _, d := range dirs {
			if _, err := os.Stat(filepath.Join(d, "pam_unix.so")); err == nil {
				return d
			}
		}
	}
	return ""
}

// checkPAMStacks checks every PAM service whose session stack has
// pam_chos; false if none has.
func (cl *cmdline) checkPAMStacks(k *checker) bool {
	dir := cl.inv.HostPath(pamConfDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	found := false
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		stack, err := pamSessionStack(dir, e.Name(), 0)
		if err != nil {
			if hasPamChos(filepath.Join(dir, e.Name())) {
				k.warn("pam", "%v", err)
				found = true
			}
			continue
		}
		chos := -1
		for i, l := range stack {
			if isModule(l.module, "pam_chos") {
				chos = i
				break
			}
		}
		if chos < 0 {
			continue
		}
		found = true
		l := stack[chos]
		if strings.HasPrefix(e.Name(), "common-") {
			if l.file == e.Name() {
				k.warn("pam", "%s: pam_chos.so in %s moves the sessions of every service that includes it (cron, sudo...): put it at the end of login, su-l and sshd instead", l.at, e.Name())
			}
			continue // reported through the services including it
		}
		cl.checkPamChosLine(k, e.Name(), stack, chos)
	}
	return found
}

func hasPamChos(file string) bool {
	data, err := os.ReadFile(file)
	return err == nil && strings.Contains(string(data), "pam_chos")
}

// checkPamChosLine checks pam_chos's place in a service's session stack,
// its module file and its chos.
func (cl *cmdline) checkPamChosLine(k *checker, service string, stack []pamLine, at int) {
	l := stack[at]
	bad := false
	for _, later := range stack[at+1:] {
		bad = true
		if isModule(later.module, "pam_systemd") {
			k.fail("pam", "%s: pam_systemd.so (%s) comes after pam_chos.so (%s): logind would make the user's runtime directory inside the tree; put pam_chos.so last", service, later.at, l.at)
		} else {
			k.fail("pam", "%s: %s (%s) comes after pam_chos.so (%s): it would read the tree's files; put pam_chos.so last in the session stack", service, later.module, later.at, l.at)
		}
	}
	module := l.module
	if !path.IsAbs(module) {
		if d := pamModuleDir(cl.inv.HostPath("/")); d != "" {
			module = filepath.Join(d, module)
		}
	}
	if _, err := os.Stat(cl.inv.HostPath(module)); err != nil {
		k.fail("pam", "%s: %s: %v: install it there (make install PAMDIR=%s) or name it by its path", service, l.at, err, path.Dir(module))
		bad = true
	}
	for _, a := range l.args {
		if p, ok := strings.CutPrefix(a, "chos="); ok && !hostexec.IsExecutable(cl.inv.HostPath("/"), p) {
			k.fail("pam", "%s: %s: chos=%s is not an executable file", service, l.at, p)
			bad = true
		}
	}
	if !bad {
		k.ok("pam", "%s: %s is the last session module%s", service, l.at, afterSystemd(stack[:at]))
	}
}

func afterSystemd(before []pamLine) string {
	for _, l := range before {
		if isModule(l.module, "pam_systemd") {
			return ", after pam_systemd.so"
		}
	}
	return ""
}

// profileHookBin finds the chos a profile hook runs: the line make install
// writes, `_chos_bin=PATH` in sh, `set _chos_bin = PATH` in csh ("" if none).
// (Plain string work: package regexp would be initialised by every launch.)
func profileHookBin(data []byte) string {
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "set"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			line = strings.TrimSpace(rest)
		}
		rest, ok := strings.CutPrefix(line, "_chos_bin")
		if !ok {
			continue
		}
		rest, ok = strings.CutPrefix(strings.TrimSpace(rest), "=")
		if f := strings.Fields(rest); ok && len(f) > 0 {
			return f[0]
		}
	}
	return ""
}

// checkProfileHooks checks the profile hooks installed in the host's
// profile directories; false if there is none.
func (cl *cmdline) checkProfileHooks(k *checker) bool {
	found := false
	for _, pattern := range []string{"/etc/profile.d/*.sh", "/etc/profile.d/*.csh", "/etc/csh/login.d/*"} {
		files, _ := filepath.Glob(cl.inv.HostPath(pattern))
		for _, f := range files {
			data, err := os.ReadFile(f)
			bin := profileHookBin(data)
			if err != nil || bin == "" {
				continue
			}
			found = true
			if !path.IsAbs(bin) || !hostexec.IsExecutable(cl.inv.HostPath("/"), bin) {
				k.fail("profile hook", "%s runs %s, which is not an executable file: install the hook from PREFIX/share/chos/profile.d again (make install writes its chos into it)", f, bin)
				continue
			}
			k.ok("profile hook", "%s starts interactive login shells in the selected tree with %s", f, bin)
		}
	}
	return found
}
