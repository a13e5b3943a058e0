package integration

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Audit lines (README: "Audit"), received by a real rsyslogd that the test
// starts on a socket of its own; chos is pointed at it by an %AUDIT
// drop-in, which only root can write.

// syslogDaemon is a running rsyslogd that writes every line it receives
// on sock to out, as "FACILITY.SEVERITY TAG MESSAGE".
type syslogDaemon struct {
	sock, out string
	proc      *background
}

func startRsyslog(t testing.TB) *syslogDaemon {
	t.Helper()
	return startRsyslogAt(t, "", nil, "")
}

// startRsyslogAt starts rsyslogd with its socket at sock ("": in a
// directory of its own), run through wrap (nil: here), and reached from
// here at reach ("": sock itself).
func startRsyslogAt(t testing.TB, sock string, wrap func(call) call, reach string) *syslogDaemon {
	t.Helper()
	dir, err := os.MkdirTemp(h.base, "rsyslog-")
	must(t, err)
	t.Cleanup(func() { removeUnmounted(dir) })
	must(t, os.Chmod(dir, 0o755))
	if sock == "" {
		sock = filepath.Join(dir, "log.sock")
	}
	if reach == "" {
		reach = sock
	}
	d := &syslogDaemon{sock: reach, out: filepath.Join(dir, "out.log")}
	conf := filepath.Join(dir, "rsyslog.conf")
	must(t, writeRootFile(conf, fmt.Sprintf(`global(workDirectory=%q)
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket=%q CreatePath="off" RateLimit.Interval="0")
template(name="line" type="string" string="%%syslogfacility-text%%.%%syslogseverity-text%% %%syslogtag%%%%msg%%\n")
*.* action(type="omfile" file=%q template="line")
`, dir, sock, d.out), 0o644))
	cl := call{Root: true, Args: []string{"rsyslogd", "-n", "-f", conf, "-i", filepath.Join(dir, "pid")}}
	if wrap != nil {
		cl = wrap(cl)
	}
	d.proc = start(t, cl)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if fi, err := os.Stat(d.sock); err == nil && fi.Mode()&os.ModeSocket != 0 {
			break
		}
		if r := d.proc.result(); r.status >= 0 || time.Now().After(deadline) {
			t.Fatalf("rsyslogd did not create %s:\n%s", d.sock, r)
		}
	}
	// users send to it in userns mode
	must(t, os.Chmod(d.sock, 0o666))
	return d
}

// auditLine is one line chos logged.
type auditLine struct {
	priority string // facility.severity
	event    string // launch or refuse
	fields   map[string]string
	text     string
}

// lines returns every line of ident chos received so far: it sends a
// sentinel of its own and waits until rsyslogd has written it.
func (d *syslogDaemon) lines(t testing.TB) []auditLine {
	t.Helper()
	sentinel := "sentinel-" + randHex(6)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	must(t, err)
	defer unix.Close(fd)
	must(t, unix.Sendto(fd, []byte("<13>itest: "+sentinel), 0, &unix.SockaddrUnix{Name: d.sock}))
	var data []byte
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(string(data), sentinel); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd did not write the sentinel in 10 s:\n%s\n%s", data, d.proc.result())
		}
		data, _ = os.ReadFile(d.out)
	}
	var out []auditLine
	for _, l := range strings.Split(string(data), "\n") {
		prio, rest, _ := strings.Cut(l, " ")
		tag, msg, ok := strings.Cut(rest, ": ")
		if !ok || !strings.HasPrefix(tag, "chos[") {
			continue
		}
		a := auditLine{priority: prio, text: l, fields: map[string]string{}}
		a.event, msg, _ = strings.Cut(strings.TrimSpace(msg), " ")
		for msg != "" {
			k, v, ok := strings.Cut(msg, "=")
			if !ok {
				t.Fatalf("audit line with a word that is not key=value: %q", l)
			}
			if strings.HasPrefix(v, `"`) {
				q, err := strconv.QuotedPrefix(v)
				if err != nil {
					t.Fatalf("audit line with a bad quoted value: %q", l)
				}
				a.fields[k], _ = strconv.Unquote(q)
				v = v[len(q):]
			} else {
				a.fields[k], v, _ = strings.Cut(v, " ")
				v = " " + v
			}
			msg = strings.TrimPrefix(v, " ")
		}
		out = append(out, a)
	}
	return out
}

// auditConfig points the installed chos at d for one test.
func auditConfig(t testing.TB, text string) {
	t.Helper()
	dropIn := filepath.Join(h.etc, "chos.d", "audit-"+unique(t)+".conf")
	must(t, os.MkdirAll(filepath.Dir(dropIn), 0o755))
	t.Cleanup(func() { os.Remove(dropIn) })
	must(t, writeRootFile(dropIn, text, 0o644))
}

// wantFields checks the fields of a line: a value, or a pattern in which
// "*" is any text ("*" any value, "unknown*" a prefix).
func wantFields(t testing.TB, a auditLine, want map[string]string) {
	t.Helper()
	for k, v := range want {
		got, ok := a.fields[k]
		re := "^" + strings.ReplaceAll(regexp.QuoteMeta(v), `\*`, ".*") + "$"
		if !ok || !regexp.MustCompile(re).MatchString(got) {
			t.Errorf("field %s = %q, want %q in\n%s", k, got, v, a.text)
		}
	}
}

func TestAuditLogsOneLinePerLaunch(t *testing.T) {
	d := startRsyslog(t)
	auditConfig(t, "%AUDIT\nfacility = local5\nsocket = "+d.sock+"\n")
	clearDotfile(t)
	odd := filepath.Join(h.home, unique(t)+` odd "dir"`)
	userDir(t, odd)
	user := map[string]string{"user": h.user, "uid": strconv.Itoa(h.uid)}
	with := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for _, src := range []map[string]string{user, m} {
			for k, v := range src {
				out[k] = v
			}
		}
		return out
	}
	cases := []struct {
		name   string
		c      call
		before func(t *testing.T)
		status int
		want   map[string]string // of the last line; nil: no line (the launch stays on the host)
	}{
		{"exec", chosCall("exec", "two", "/bin/true", "a", "b"), nil, 0,
			with(map[string]string{"tree": "two", "selected": "argument", "mode": "setuid", "view": "*", "via": "exec", "argv0": "/bin/true", "argc": "3", "cwd": h.home})},
		{"exec --fresh", chosCall("exec", "--fresh", "two", "true"), nil, 0,
			with(map[string]string{"tree": "two", "view": "fresh", "argv0": "true", "argc": "1"})},
		{"legacy form, $CHOS", call{Args: []string{h.chos, "true"}, Env: []string{"CHOS=three"}}, nil, 0,
			with(map[string]string{"tree": "three", "selected": "env", "via": "legacy"})},
		{"~/.chos", chosCall("exec", "--", "true"), func(t *testing.T) { setDotfile(t, "three\n") }, 0,
			with(map[string]string{"tree": "three", "selected": "dotfile", "via": "exec"})},
		{"default tree", chosCall("exec", "--", "true"), func(t *testing.T) { clearDotfile(t) }, 0,
			with(map[string]string{"tree": "one", "selected": "default"})},
		{"vsys link", call{Args: []string{vsysLink(t, "two"), "true"}}, nil, 0,
			with(map[string]string{"tree": "two", "selected": "argument", "via": "vsys", "argv0": "true", "argc": "1"})},
		{"login shell", call{Args: []string{h.chos, "shell", "two"}, Stdin: []byte("exit 0\n")}, nil, 0,
			with(map[string]string{"tree": "two", "via": "shell", "argv0": "-sh", "argc": "1"})},
		{"chos login (sshd's ForceCommand)", call{Args: []string{h.chos, "login"}, Env: []string{"SSH_ORIGINAL_COMMAND=true", "CHOS=two"}}, nil, 0,
			with(map[string]string{"tree": "two", "selected": "env", "via": "login", "argv0": "sh", "argc": "3"})},
		{"userns mode", call{Args: []string{h.chosUserns, "exec", "two", "true"}}, nil, 0,
			with(map[string]string{"tree": "two", "mode": "userns", "view": "kept"})},
		{"userns mode --fresh", call{Args: []string{h.chosUserns, "exec", "--fresh", "two", "true"}}, nil, 0,
			with(map[string]string{"tree": "two", "mode": "userns", "view": "fresh"})},
		{"odd cwd", call{Args: []string{h.chos, "exec", "two", "true"}, Dir: odd}, nil, 0,
			with(map[string]string{"cwd": odd})},
		{"host", chosCall("exec", "local", "true"), nil, 0, nil},
		// two launches; the socket is reached through the host's root in the view
		{"from inside a tree", chosCall("exec", "two", "chos", "exec", "three", "true"), nil, 0,
			with(map[string]string{"tree": "three", "mode": "userns", "argv0": "true", "cwd": h.home})},
		{"unknown tree", chosCall("exec", "nosuchtree", "true"), nil, 125,
			with(map[string]string{"tree": "nosuchtree", "selected": "argument", "view": "-", "reason": `unknown OS tree "nosuchtree"*`})},
		{"forbidden tree", chosCall("exec", "two", "true"), func(t *testing.T) { auditConfig(t, "%TREE two\nusers = root\n") }, 125,
			with(map[string]string{"tree": "two", "reason": "you may not use tree two*"})},
	}
	seen := len(d.lines(t))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.before != nil {
				c.before(t)
			}
			wantStatus(t, run(t, c.c), c.status)
			lines := d.lines(t)
			got := lines[seen:]
			seen = len(lines)
			n := 1
			switch {
			case c.want == nil:
				n = 0
			case c.name == "from inside a tree":
				n = 2
			}
			switch {
			case len(got) != n:
				t.Errorf("%d lines, want exactly %d: %v", len(got), n, got)
			case n == 0:
			default:
				got = got[len(got)-1:]
				event, prio := "launch", "local5.info"
				if c.status != 0 {
					event, prio = "refuse", "local5.notice"
				}
				if got[0].event != event || got[0].priority != prio {
					t.Errorf("line is %s %s, want %s %s:\n%s", got[0].priority, got[0].event, prio, event, got[0].text)
				}
				wantFields(t, got[0], c.want)
				if _, leaked := got[0].fields["HOME"]; leaked || strings.Contains(got[0].text, "PATH=") {
					t.Errorf("the environment is in the line: %s", got[0].text)
				}
			}
		})
	}
}

// The PAM module and the SPANK plugin run `chos prepare`: each session or
// job step moved into a tree is one line too.
func TestAuditLogsPreparedSessionsAndJobs(t *testing.T) {
	d := startRsyslog(t)
	auditConfig(t, "%AUDIT\nfacility = local5\nsocket = "+d.sock+"\n")
	setDotfile(t, "two\n")
	seen := len(d.lines(t))

	svc := pamService(t, "session required "+pamModule(t))
	wantStatus(t, pamtester(t, svc), 0)
	lines := d.lines(t)
	if got := lines[seen:]; len(got) != 1 {
		t.Errorf("PAM session: %d lines, want 1: %v", len(got), got)
	} else {
		wantFields(t, got[0], map[string]string{"user": h.user, "uid": strconv.Itoa(h.uid), "tree": "two", "selected": "dotfile", "via": "pam", "service": svc, "mode": "setuid"})
	}
	seen = len(lines)

	// the Slurm plugin's call, made here directly (the plugin itself is
	// tested in slurm_spank_test.go)
	sv, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	must(t, err)
	mine, theirs := os.NewFile(uintptr(sv[0]), "reply"), os.NewFile(uintptr(sv[1]), "fd3")
	defer mine.Close()
	groups := []string{}
	for _, g := range h.extraGIDs {
		groups = append(groups, strconv.Itoa(g))
	}
	cmd := exec.Command(h.chos, "prepare", "--service=slurm", "--user="+h.user, "--uid="+strconv.Itoa(h.uid),
		"--gid="+strconv.Itoa(h.gid), "--groups="+strings.Join(groups, ","), "--tree=three", "--job=4242", "--step=0", "--cwd="+h.tmp)
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Env, cmd.Dir = rootEnv(), "/"
	out, err := cmd.CombinedOutput()
	theirs.Close()
	reply := make([]byte, 4096)
	n, _ := mine.Read(reply)
	if err != nil || !strings.Contains(string(reply[:n]), "enter=1") {
		t.Fatalf("chos prepare: %v\n%s\nreply: %s", err, out, reply[:n])
	}
	if got := d.lines(t)[seen:]; len(got) != 1 {
		t.Errorf("Slurm step: %d lines, want 1: %v", len(got), got)
	} else {
		wantFields(t, got[0], map[string]string{"user": h.user, "tree": "three", "selected": "argument", "via": "slurm", "job": "4242.0", "cwd": h.tmp})
	}
	seen = len(d.lines(t))

	// A user's own chos prepare (the submit-time --check, here of a tree
	// that does not exist) is logged, but what its flags claim (a job, a
	// directory, a batch script) stays out of the line; the lines above,
	// from root, are the control.
	wantStatus(t, chos(t, "prepare", "--check", "--service=slurm", "--tree=chos-itest-nosuchtree", "--job=999", "--step=0", "--cwd=/forged", "--batch-script=/forged/job.sh"), 125)
	if got := d.lines(t)[seen:]; len(got) != 1 {
		t.Errorf("a user's chos prepare: %d lines, want 1: %v", len(got), got)
	} else {
		wantFields(t, got[0], map[string]string{"uid": strconv.Itoa(h.uid), "via": "prepare --check"})
		for _, claimed := range []string{"job=", "/forged", "via=slurm"} {
			if strings.Contains(got[0].text, claimed) {
				t.Errorf("the line of a user's chos prepare carries %q: %s", claimed, got[0].text)
			}
		}
	}
	seen = len(d.lines(t))

	// A user's chos prepare in the root helper's form is refused before
	// the configuration is read: its line still goes to %AUDIT's socket,
	// not to /dev/log.
	r := chos(t, "prepare", "--service=pam", "--user=root", "--uid=0", "--gid=0")
	wantStatus(t, r, 125)
	if got := d.lines(t)[seen:]; len(got) != 1 {
		t.Errorf("a user's refused chos prepare: %d lines on %%AUDIT's socket, want 1: %v\n%s", len(got), got, r)
	} else {
		wantFields(t, got[0], map[string]string{"uid": strconv.Itoa(h.uid), "via": "prepare", "reason": "*not by users*"})
		if got[0].priority != "local5.notice" {
			t.Errorf("want a local5.notice refusal: %s", got[0].text)
		}
	}
}

// What a user gives (the command, a working directory's name, $CHOS)
// cannot forge a line: a newline and the text of another line stay inside
// one quoted value of the user's own line.
func TestAuditLinesCannotBeForged(t *testing.T) {
	d := startRsyslog(t)
	auditConfig(t, "%AUDIT\nfacility = local5\nsocket = "+d.sock+"\n")
	forged := "\nchos[1]: launch user=root uid=0 tree=two via=pam"
	dir := filepath.Join(h.home, unique(t)+forged)
	userDir(t, dir)
	for _, c := range []struct {
		name   string
		c      call
		status int
	}{
		{"command", chosCall("exec", "two", "true"+forged), 127},
		{"working directory", call{Args: []string{h.chos, "exec", "two", "true"}, Dir: dir}, 0},
		{"$CHOS", call{Args: []string{h.chos, "exec", "--", "true"}, Env: []string{"CHOS=two" + forged}}, 125},
	} {
		t.Run(c.name, func(t *testing.T) {
			seen := len(d.lines(t))
			wantStatus(t, run(t, c.c), c.status)
			got := d.lines(t)[seen:]
			if len(got) != 1 {
				t.Fatalf("%d lines, want 1: %v", len(got), got)
			}
			wantFields(t, got[0], map[string]string{"uid": strconv.Itoa(h.uid), "user": h.user})
			if !strings.Contains(got[0].text, `\n`) {
				t.Errorf("the newline is not escaped in the line: %s", got[0].text)
			}
		})
	}
}

func TestAuditOffWritesNothing(t *testing.T) {
	d := startRsyslog(t)
	for _, c := range []struct {
		facility string
		lines    int
	}{{"local5", 1}, {"off", 0}} { // the first is the control
		t.Run(c.facility, func(t *testing.T) {
			auditConfig(t, "%AUDIT\nfacility = "+c.facility+"\nsocket = "+d.sock+"\n")
			seen := len(d.lines(t))
			wantStatus(t, chos(t, "exec", "two", "true"), 0)
			wantStatus(t, chos(t, "exec", "nosuchtree", "true"), 125)
			if got := d.lines(t)[seen:]; len(got) != 2*c.lines {
				t.Errorf("facility %s: %d lines, want %d: %v", c.facility, len(got), 2*c.lines, got)
			}
		})
	}
}

// A configuration chos cannot read cannot say where to log: its refusal
// goes to the defaults, authpriv on /dev/log. /dev/log is our rsyslogd's
// socket, bound over a tmpfs /dev in a mount namespace of the test's own.
func TestAuditRefusalOfABadConfigurationGoesToTheDefaults(t *testing.T) {
	d := startRsyslog(t)
	auditConfig(t, "%AUDIT\nfacility = local5\nsocket = "+d.sock+"\n")
	auditConfig(t, "%TREE two\ncolour = red\n")
	seen := len(d.lines(t))
	script := `mount -t tmpfs -o mode=0755 tmpfs /dev && : >/dev/log && mount --bind "$1" /dev/log && shift && exec "$@"`
	u := call{}.account()
	r := run(t, call{Root: true, Args: append([]string{"unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", d.sock},
		append([]string{"setpriv", "--reuid", u.name, "--regid", u.group, "--init-groups", "--"}, h.chos, "exec", "two", "true")...)})
	wantStatus(t, r, 125)
	got := d.lines(t)[seen:]
	if len(got) != 1 {
		t.Fatalf("%d lines, want 1: %v\n%s", len(got), got, r)
	}
	if got[0].priority != "authpriv.notice" || got[0].event != "refuse" {
		t.Errorf("want an authpriv.notice refusal: %s", got[0].text)
	}
	// (refused before chos looked the user up: the uid only)
	wantFields(t, got[0], map[string]string{"user": "-", "uid": strconv.Itoa(h.uid), "reason": "*colour*"})
}

// A socket that is missing, or full because nobody reads it, neither fails
// nor delays a launch (the measured cost is in docs/PERFORMANCE.md).
func TestAuditNeverBlocksALaunch(t *testing.T) {
	full := filepath.Join(h.tmp, unique(t)+".sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	must(t, err)
	defer unix.Close(fd)
	must(t, unix.Bind(fd, &unix.SockaddrUnix{Name: full}))
	t.Cleanup(func() { os.Remove(full) })
	must(t, os.Chmod(full, 0o666))
	fillSocket(t, full)

	for _, c := range []struct{ name, socket string }{
		{"missing", filepath.Join(h.tmp, "nosuch.sock")},
		{"full", full},
	} {
		t.Run(c.name, func(t *testing.T) {
			auditConfig(t, "%AUDIT\nsocket = "+c.socket+"\n")
			for _, bin := range []string{h.chos, h.chosUserns} {
				start := time.Now()
				// generous: a launch waiting for the socket would never end
				r := run(t, call{Args: []string{bin, "exec", "two", "true"}, Timeout: 10 * time.Second})
				wantStatus(t, r, 0)
				t.Logf("%s: %v", bin, time.Since(start))
				r = run(t, call{Args: []string{bin, "exec", "nosuchtree", "true"}, Timeout: 10 * time.Second})
				wantStatus(t, r, 125)
			}
		})
	}
}

// fillSocket sends to a datagram socket until its queue is full, and
// checks (the control) that a blocking sender would now wait.
func fillSocket(t testing.TB, path string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	must(t, err)
	defer unix.Close(fd)
	for i := 0; ; i++ {
		err := unix.Sendto(fd, make([]byte, 256), 0, &unix.SockaddrUnix{Name: path})
		if errors.Is(err, unix.EAGAIN) && i > 0 {
			break
		}
		if err != nil {
			t.Fatalf("filling %s: %v after %d datagrams", path, err, i)
		}
	}
	bfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	must(t, err)
	defer unix.Close(bfd)
	must(t, unix.SetsockoptTimeval(bfd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &unix.Timeval{Usec: 300000}))
	start := time.Now()
	err = unix.Sendto(bfd, []byte("x"), 0, &unix.SockaddrUnix{Name: path})
	if !errors.Is(err, unix.EAGAIN) || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("control: a blocking send to the full %s returned %v after %v; want it to wait out its 300 ms timeout", path, err, time.Since(start))
	}
}
