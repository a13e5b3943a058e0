package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// chos is invisible to its command: everything exec(2) keeps, chos keeps
// (README: "What the command keeps"). Each case sets up a process state
// with testdata/procstate, runs the same probe with and without chos, and
// compares what the probe reports.

// procstate is testdata/procstate, built once per run where every tree
// sees it.
func procstate(t testing.TB) string {
	t.Helper()
	// It reads what the Go runtime recorded of its start state.
	return tmpProgram(t, "procstate", "-ldflags=-checklinkname=0")
}

// stateCase is one process state a caller hands to its command.
type stateCase struct {
	name string
	// setup are procstate exec options, applied by the caller just before
	// it executes the command (or chos).
	setup []string
	// files are passed as descriptors 3, 4, ..., the same open files in
	// every run of the case.
	files func(t *testing.T) []*os.File
	// args follow `report OUT ACTION` in the probe's argv.
	args []string
	// dir is the working directory's name, below a new directory of the
	// user's.
	dir string
	// action is what the probe does last: exit:N or die:SIG.
	action string
	// stack, when not zero, is the soft RLIMIT_STACK of the caller's
	// parent, a shell of the user's that this test starts with it (as
	// when the caller inherits a shell's `ulimit -s`).
	stack uint64
	// check proves that the reference run has the state set up.
	check func(t *testing.T, ref probeReport)
}

// launchVariant is one way the command is started through chos.
type launchVariant struct {
	name   string
	argv   []string // chos and its arguments, up to the command
	tree   string   // canonical name: the value of CHOS ("local": the host)
	cached bool     // the launch enters a cached view
	kept   bool     // the launch joins the view a keeper of the user's keeps
	fresh  bool     // every launch builds a view of its own
}

func launchVariants() []launchVariant {
	return []launchVariant{
		{name: "setuid cached", argv: []string{h.chos, "exec", "one"}, tree: "one", cached: true},
		{name: "setuid fresh", argv: []string{h.chos, "exec", "--fresh", "one"}, tree: "one", fresh: true},
		{name: "setuid host", argv: []string{h.chos, "exec", "local"}, tree: "local"},
		{name: "userns", argv: []string{h.chosUserns, "exec", "one"}, tree: "one", kept: true},
		{name: "userns fresh", argv: []string{h.chosUserns, "exec", "--fresh", "one"}, tree: "one", fresh: true},
		{name: "userns host", argv: []string{h.chosUserns, "exec", "local"}, tree: "local"},
	}
}

// probeReport is what the probe reported, and how it ended.
type probeReport struct {
	values  map[string]string
	started int // the pid of the caller started (a session and process group leader)
	tty     string
}

func (r probeReport) has(key, sub string) bool {
	v, ok := r.values[key]
	return ok && strings.Contains(v, sub)
}

// list is the comma-separated value of key as a set.
func (r probeReport) list(key string) map[string]bool {
	set := map[string]bool{}
	for _, s := range strings.Split(r.values[key], ",") {
		if s != "" {
			set[s] = true
		}
	}
	return set
}

func (r probeReport) String() string {
	keys := make([]string, 0, len(r.values))
	for k := range r.values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s\t%s\n", k, r.values[k])
	}
	return b.String()
}

// stateCases are the states compared. Every case also compares the
// session, process group, controlling terminal (each run is a session
// leader on a terminal of the case's own), working directory, argv,
// environment, limits, nice value, affinity, umask and oom_score_adj.
func stateCases() []stateCase {
	return []stateCase{
		{name: "defaults", action: "exit:0"},
		{
			name: "descriptors",
			// 0 (the terminal): non-blocking, as a program may leave it.
			// 3: read-only at offset 3; 4: a pipe's write end, non-blocking;
			// 5 (moved to 7): read-write, append; 6: close-on-exec (gone);
			// 9 and 200: duplicates of 3 and 4, with gaps below them.
			files: func(t *testing.T) []*os.File {
				dir := t.TempDir()
				ro := filepath.Join(dir, "ro")
				must(t, os.WriteFile(ro, []byte("0123456789"), 0o644))
				f3, err := os.Open(ro)
				must(t, err)
				_, err = f3.Seek(3, 0)
				must(t, err)
				pr, pw, err := os.Pipe()
				must(t, err)
				f5, err := os.OpenFile(filepath.Join(dir, "append"), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
				must(t, err)
				f6, err := os.Open(ro)
				must(t, err)
				t.Cleanup(func() { f3.Close(); pr.Close(); pw.Close(); f5.Close(); f6.Close() })
				return []*os.File{f3, pw, f5, f6}
			},
			setup:  []string{"--nonblock", "0", "--nonblock", "4", "--dup", "3:9", "--dup", "4:200", "--dup", "5:7", "--close", "5", "--cloexec", "6"},
			action: "exit:0",
			check: func(t *testing.T, ref probeReport) {
				for _, fd := range []string{"fd.3", "fd.4", "fd.7", "fd.9", "fd.200"} {
					if _, ok := ref.values[fd]; !ok {
						t.Errorf("control: the caller has no %s:\n%s", fd, ref)
					}
				}
				for _, fd := range []string{"fd.5", "fd.6"} {
					if _, ok := ref.values[fd]; ok {
						t.Errorf("control: the caller still has %s:\n%s", fd, ref)
					}
				}
				if !ref.has("fd.3", "pos=3 ") || !ref.has("fd.4", "flags=04001 ") || !ref.has("fd.0", "04002 ") {
					t.Errorf("control: fd 3 is not at offset 3, or fd 4 or 0 not non-blocking:\n%s", ref)
				}
			},
		},
		{
			name:  "ignored signals",
			setup: []string{"--ignore", "HUP,INT,QUIT,USR1,USR2,PIPE,ALRM,TERM,CHLD,TSTP,TTIN,TTOU,URG,XCPU,WINCH,SYS,40,64"},
			// (the probe itself is started ignoring them: it runs to its end)
			action: "exit:0",
			check: func(t *testing.T, ref probeReport) {
				ign := ref.list("signals.ignored")
				for _, s := range []string{"HUP", "INT", "QUIT", "PIPE", "TERM", "CHLD", "TSTP", "URG", "40", "64"} {
					if !ign[s] {
						t.Errorf("control: the probe does not see SIG%s ignored:\n%s", s, ref)
					}
				}
			},
		},
		{
			name:   "blocked signals",
			setup:  []string{"--block", "HUP,INT,QUIT,USR1,USR2,PIPE,ALRM,TERM,CHLD,CONT,TSTP,URG,WINCH,SYS,40,64"},
			action: "exit:0",
			check: func(t *testing.T, ref probeReport) {
				blk := ref.list("signals.blocked")
				for _, s := range []string{"HUP", "INT", "TERM", "USR1", "CHLD", "WINCH", "40", "64"} {
					if !blk[s] {
						t.Errorf("control: the probe does not see SIG%s blocked:\n%s", s, ref)
					}
				}
			},
		},
		{
			name: "limits, nice, affinity, umask, oom_score_adj",
			setup: []string{"--rlimit", "nofile=700:900", "--rlimit", "core=4096:8192", "--rlimit", "cpu=3600:7200",
				"--rlimit", "msgqueue=4096:8192", "--nice", "5", "--cpus", "0", "--umask", "0027", "--oom", "345"},
			// Above the 8 MiB to which a setuid exec caps it (the caller's
			// parent has it too, as when a shell's `ulimit -s` is inherited).
			stack:  unix.RLIM_INFINITY,
			action: "exit:0",
			check: func(t *testing.T, ref probeReport) {
				for k, v := range map[string]string{"rlimit.nofile": "700:900", "rlimit.core": "4096:8192", "rlimit.stack": "inf:",
					"nice": "5", "affinity": "0", "umask": "0027", "oom_score_adj": "345"} {
					if !strings.HasPrefix(ref.values[k], v) {
						t.Errorf("control: the probe's %s is %q, want %q:\n%s", k, ref.values[k], v, ref)
					}
				}
			},
		},
		{
			name: "bytes that are not UTF-8",
			dir:  "odd \xff\xfe\x01 dir\nname",
			args: []string{"\xff", "", "\x01\x02\x7f", "line\nbreak", "ü", "\xc3\x28", "--", "-v"},
			setup: []string{
				"--env-hex", hexOf("ODD=\xff\xfe"), "--env-hex", hexOf("\xffKEY=1"), "--env-hex", hexOf("NOEQUALS"),
				"--env-hex", "", "--env-hex", hexOf("DUP=1"), "--env-hex", hexOf("DUP=2"), "--env-hex", hexOf("PATH=/usr/bin:/bin"),
			},
			action: "exit:0",
			check: func(t *testing.T, ref probeReport) {
				if !ref.has("argv[4]", `"\xff"`) || !ref.has("cwd.path", `\xff\xfe\x01 dir\nname`) {
					t.Errorf("control: the probe does not see the bytes given:\n%s", ref)
				}
				var env []string
				for k, v := range ref.values {
					if strings.HasPrefix(k, "env[") {
						env = append(env, v)
					}
				}
				if !contains(env, `"ODD=\xff\xfe"`) || !contains(env, `""`) || !contains(env, `"NOEQUALS"`) {
					t.Errorf("control: the probe's environment lacks the odd entries:\n%s", ref)
				}
			},
		},
		{name: "exit status 42", action: "exit:42"},
		{name: "death by SIGTERM", action: "die:TERM"},
		{name: "death by SIGINT", action: "die:INT"},
		{name: "death by SIGKILL", action: "die:KILL"},
	}
}

func hexOf(s string) string { return fmt.Sprintf("%x", s) }

// TestCommandKeepsWhatExecKeeps runs each state's probe without chos and
// through each launch variant, and compares every attribute.
func TestCommandKeepsWhatExecKeeps(t *testing.T) {
	bin := procstate(t)
	// The cached variant enters a view that exists.
	wantStatus(t, chos(t, "exec", "one", "true"), 0)
	for _, c := range stateCases() {
		t.Run(c.name, func(t *testing.T) {
			s := newStateSession(t, bin, c)
			ref, ok := s.run(t, nil)
			if !ok {
				return
			}
			if c.check != nil {
				c.check(t, ref)
			}
			for _, v := range launchVariants() {
				t.Run(v.name, func(t *testing.T) {
					got, ok := s.run(t, v.argv)
					if !ok {
						return
					}
					wantVariantView(t, v, got.values["mntns"])
					if d := compareStates(ref, got, v.tree); len(d) > 0 {
						t.Errorf("through chos, the command's state differs from the caller's:\n  %s\nwithout chos:\n%swith chos:\n%s",
							strings.Join(d, "\n  "), ref, got)
					}
				})
			}
		})
	}
	t.Run("control: a changed attribute is seen", func(t *testing.T) {
		base := stateCase{name: "base", action: "exit:0"}
		s := newStateSession(t, bin, base)
		ref, ok := s.run(t, nil)
		if !ok {
			return
		}
		changed := base
		changed.setup = []string{"--ignore", "USR2", "--block", "XFSZ", "--umask", "0002", "--nice", "7", "--oom", "200",
			"--rlimit", "core=1:1", "--dup", "0:77", "--env-hex", hexOf("EXTRA=1")}
		changed.args = []string{"extra"}
		changed.action = "exit:3"
		s.c = changed
		other := filepath.Join(s.dir, "other")
		userDir(t, other)
		s.dir = other
		got, ok := s.run(t, nil)
		if !ok {
			return
		}
		d := strings.Join(compareStates(ref, got, ""), "\n")
		for _, key := range []string{"signals.ignored", "signals.blocked", "umask", "nice", "oom_score_adj", "rlimit.core",
			"fd.77", "argv[4]", "env", "cwd.path", "cwd.id", "exit"} {
			if !strings.Contains(d, key) {
				t.Errorf("the comparison does not report the changed %s; it reports:\n%s", key, d)
			}
		}
	})
}

// wantVariantView checks, right after a launch, that it ran where its
// variant says (a control): a cached launch in a view the cache holds, a
// kept one in a view a keeper of the user's keeps, a fresh one elsewhere
// but not on the host, a host launch on the host.
// (Namespaces that ended may see their numbers again.)
func wantVariantView(t *testing.T, v launchVariant, ns string) {
	t.Helper()
	host, err := os.Readlink("/proc/self/ns/mnt")
	must(t, err)
	cached := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(hostCacheDir(t), v.tree+".*.mnt"))
	for _, f := range files {
		var st unix.Stat_t
		var sfs unix.Statfs_t
		if unix.Statfs(f, &sfs) == nil && sfs.Type == unix.NSFS_MAGIC && unix.Stat(f, &st) == nil {
			cached[fmt.Sprintf("mnt:[%d]", st.Ino)] = true
		}
	}
	kept := keptViews(h.uid, v.tree)
	switch {
	case v.cached && !cached[ns],
		v.kept && !kept[ns],
		v.fresh && (cached[ns] || kept[ns] || ns == host),
		v.tree == "local" && ns != host:
		t.Errorf("control: variant %q ran in mount namespace %s (host %s, cached views of %s %v, kept %v)", v.name, ns, host, v.tree, cached, kept)
	}
}

// stateSession runs the probe of one case, on a terminal of its own.
type stateSession struct {
	bin    string
	c      stateCase
	files  []*os.File
	tty    *os.File
	ttyOut *bytes.Buffer
	ttyMu  *sync.Mutex
	dir    string
	out    string // where the probe writes its report
}

func newStateSession(t *testing.T, bin string, c stateCase) *stateSession {
	t.Helper()
	s := &stateSession{bin: bin, c: c, ttyOut: &bytes.Buffer{}, ttyMu: &sync.Mutex{}}
	if c.files != nil {
		s.files = c.files(t)
	}
	master, tty := newPTY(t)
	s.tty = tty
	t.Cleanup(func() { tty.Close(); master.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			s.ttyMu.Lock()
			s.ttyOut.Write(buf[:n])
			s.ttyMu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	top := filepath.Join(h.home, unique(t))
	s.dir = top
	if c.dir != "" {
		s.dir = filepath.Join(top, c.dir)
	}
	userDir(t, s.dir)
	outDir := filepath.Join(h.tmp, unique(t))
	must(t, os.Mkdir(outDir, 0o700))
	must(t, os.Chown(outDir, h.uid, h.gid))
	t.Cleanup(func() { os.RemoveAll(outDir) })
	s.out = filepath.Join(outDir, "report")
	if c.stack != 0 {
		var old unix.Rlimit
		must(t, unix.Prlimit(0, unix.RLIMIT_STACK, nil, &old))
		if c.stack > old.Max {
			t.Fatalf("cannot raise this test's soft stack limit to %d (hard limit %d)", c.stack, old.Max)
		}
		must(t, unix.Prlimit(0, unix.RLIMIT_STACK, &unix.Rlimit{Cur: c.stack, Max: old.Max}, nil))
		t.Cleanup(func() { unix.Prlimit(0, unix.RLIMIT_STACK, &old, nil) })
	}
	return s
}

// run starts `procstate exec SETUP -- [LAUNCHER...] procstate report ...`
// as the user, as a session leader with the case's terminal as its
// controlling terminal, and returns the report.
func (s *stateSession) run(t *testing.T, launcher []string) (probeReport, bool) {
	t.Helper()
	os.Remove(s.out)
	argv := append([]string{"procstate", "exec"}, s.c.setup...)
	argv = append(append(append(argv, "--"), launcher...), s.bin, "report", s.out, s.c.action)
	argv = append(argv, s.c.args...)
	gids := []uint32{uint32(h.gid)}
	for _, g := range h.extraGIDs {
		gids = append(gids, uint32(g))
	}
	path := s.bin
	if s.c.stack != 0 {
		path, argv = "/bin/sh", append([]string{"sh", "-c", `"$@"; exit $?`, "sh", s.bin}, argv[1:]...)
	}
	cmd := &exec.Cmd{
		Path: path, Args: argv, Dir: s.dir, Env: userEnv(),
		Stdin: s.tty, Stdout: s.tty, Stderr: s.tty, ExtraFiles: s.files,
		SysProcAttr: &syscall.SysProcAttr{
			Setsid: true, Setctty: true, Ctty: 0,
			Credential: &syscall.Credential{Uid: uint32(h.uid), Gid: uint32(h.gid), Groups: gids},
		},
	}
	desc := describe(call{Args: argv, Dir: s.dir})
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start %s: %v", desc, err)
	}
	pid := cmd.Process.Pid
	groupsMu.Lock()
	groups[pid] = true
	groupsMu.Unlock()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(commandTimeout):
		syscall.Kill(-pid, syscall.SIGKILL)
		<-done
		t.Errorf("%s: still running after %v; the terminal showed:\n%s", desc, commandTimeout, s.ttyText())
		return probeReport{}, false
	}
	syscall.Kill(-pid, syscall.SIGKILL) // nothing it started may outlive it
	groupsMu.Lock()
	delete(groups, pid)
	groupsMu.Unlock()

	rep := probeReport{values: map[string]string{}, started: pid}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case ws.Exited():
		rep.values["exit"] = fmt.Sprintf("exited %d", ws.ExitStatus())
	case ws.Signaled():
		rep.values["exit"] = fmt.Sprintf("killed by %v (core dumped %v)", ws.Signal(), ws.CoreDump())
	}
	data, err := os.ReadFile(s.out)
	if err != nil {
		t.Errorf("%s: no report (%v), %s; the terminal showed:\n%s", desc, err, rep.values["exit"], s.ttyText())
		return rep, false
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		k, v, _ := strings.Cut(line, "\t")
		rep.values[k] = v
	}
	return rep, true
}

func (s *stateSession) ttyText() string {
	s.ttyMu.Lock()
	defer s.ttyMu.Unlock()
	return s.ttyOut.String()
}

// compareStates lists the attributes in which got (through chos, tree
// named CHOS; "" for none) differs from ref (without chos). The pid and
// parent pid, and the mount namespace, differ by design. The environment
// may differ only as documented: CHOS set to the tree, /.chos/bin at the
// end of PATH in a tree.
func compareStates(ref, got probeReport, tree string) []string {
	norm := func(r probeReport) map[string]string {
		m := map[string]string{}
		for k, v := range r.values {
			switch k {
			case "pid", "ppid", "mntns":
				continue
			case "pgrp", "session", "tpgid":
				if v == strconv.Itoa(r.started) {
					v = "the caller started"
				}
			}
			if !strings.HasPrefix(k, "env[") {
				m[k] = v
			}
		}
		return m
	}
	a, b := norm(ref), norm(got)
	var diffs []string
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		va, oka := a[k]
		vb, okb := b[k]
		switch {
		case !oka:
			diffs = append(diffs, fmt.Sprintf("%s: only with chos: %s", k, vb))
		case !okb:
			diffs = append(diffs, fmt.Sprintf("%s: only without chos: %s", k, va))
		case va != vb:
			diffs = append(diffs, fmt.Sprintf("%s: %s without chos, %s with", k, va, vb))
		}
	}
	want := expectedEnv(envOf(ref), tree)
	if have := envOf(got); strings.Join(have, "\n") != strings.Join(want, "\n") {
		diffs = append(diffs, fmt.Sprintf("env: got\n    %s\n  want\n    %s", strings.Join(have, "\n    "), strings.Join(want, "\n    ")))
	}
	return diffs
}

// envOf is the reported environment, in order (quoted values).
func envOf(r probeReport) []string {
	var env []string
	for i := 0; ; i++ {
		v, ok := r.values[fmt.Sprintf("env[%d]", i)]
		if !ok {
			return env
		}
		env = append(env, v)
	}
}

// expectedEnv is env (quoted entries) as chos passes it into tree: CHOS
// set last, /.chos/bin at the end of PATH inside a tree.
func expectedEnv(env []string, tree string) []string {
	if tree == "" {
		return env
	}
	var out []string
	for _, q := range env {
		kv, err := strconv.Unquote(q)
		if err != nil {
			out = append(out, q)
			continue
		}
		if strings.HasPrefix(kv, "CHOS=") {
			continue
		}
		if v, ok := strings.CutPrefix(kv, "PATH="); ok && tree != "local" {
			kv = "PATH=" + v + ":/.chos/bin"
		}
		out = append(out, strconv.Quote(kv))
	}
	return append(out, strconv.Quote("CHOS="+tree))
}

// Interactive job control through chos, as without it: Ctrl-Z stops the
// command and `bg` lets it run to its end, every time.
func TestJobControlStopAndBackground(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			s := startPTY(t, call{Args: []string{"bash", "--norc", "--noprofile", "-i"}, Env: []string{"PS1=$ "}})
			from, ok := s.ready(20 * time.Second)
			if !ok {
				return
			}
			s.send("set -b") // report a background job's end at once
			for round := 1; round <= 20; round++ {
				dur := fmt.Sprintf("0.7%05d", round*1000+int(randByte()))
				if from, ok = stopAndBackground(t, s, from, m.bin+" exec one sleep "+dur, "sleep", dur); !ok {
					t.Fatalf("round %d of 20 failed", round)
				}
			}
		})
	}
	// Control: a job that stops again after `bg` is caught.
	t.Run("control: a job that stops again", func(t *testing.T) {
		s := startPTY(t, call{Args: []string{"bash", "--norc", "--noprofile", "-i"}, Env: []string{"PS1=$ "}})
		from, ok := s.ready(20 * time.Second)
		if !ok {
			return
		}
		s.send("set -b")
		dur := fmt.Sprintf("0.7%05d", int(randByte()))
		_, err := jobRound(s, from, fmt.Sprintf(`sh -c 'sleep %s; kill -TSTP $$'`, dur), "sleep", dur)
		if err == nil || !strings.Contains(err.Error(), "Stopped") {
			t.Errorf("a job that stops itself again after bg was not reported (%v)", err)
		}
	})
}

func randByte() byte { b, _ := strconv.ParseUint(randHex(1), 16, 8); return byte(b) }

// stopAndBackground is one round of jobRound that fails the test.
func stopAndBackground(t *testing.T, s *ptySession, from int, cmdline string, proc ...string) (int, bool) {
	t.Helper()
	next, err := jobRound(s, from, cmdline, proc...)
	if err != nil {
		t.Errorf("%v\nthe terminal showed, from the round's start:\n%s", err, s.output()[from:])
		return from, false
	}
	return next, true
}

// jobRound types cmdline, waits until proc (argv) runs, types Ctrl-Z, then
// `bg`, and requires the job to be reported Stopped (by SIGTSTP, as bash
// says it of a plain Ctrl-Z), then Done. It returns the output offset
// after the round.
func jobRound(s *ptySession, from int, cmdline string, proc ...string) (int, error) {
	s.send(cmdline)
	if !waitFor(10*time.Second, func() bool { return len(pidsRunning(proc...)) > 0 }) {
		return from, fmt.Errorf("%q did not start within 10 s", strings.Join(proc, " "))
	}
	if _, err := s.master.Write([]byte{0x1a}); err != nil { // Ctrl-Z
		return from, err
	}
	stopped := regexp.MustCompile(`\[1\]\+\s+(Stopped[^\n]*?)\s+` + regexp.QuoteMeta(cmdline) + `\n`)
	m, next, err := s.find(stopped, from, 10*time.Second)
	if err != nil {
		return from, fmt.Errorf("after Ctrl-Z: %w", err)
	}
	if m[1] != "Stopped" {
		return from, fmt.Errorf("after Ctrl-Z the job is %q, not \"Stopped\" (stopped by another signal than SIGTSTP)", m[1])
	}
	s.send("bg")
	end := regexp.MustCompile(`\[1\]\+\s+(Done|Stopped[^\n]*?|Exit \d+|Killed|Terminated|Hangup|Interrupt)\s+` + regexp.QuoteMeta(cmdline) + `\n`)
	m, next, err = s.find(end, next, 10*time.Second)
	if err != nil {
		return from, fmt.Errorf("after bg: %w", err)
	}
	if m[1] != "Done" {
		return from, fmt.Errorf("after bg the job is %s, not Done", m[1])
	}
	return next, nil
}

// The command runs in the caller's very directory (same device and inode),
// or chos fails: never in another directory of the same name.
//   - A file system mounted on the host after the tree's view was cached,
//     where nothing propagates into the view: the cached view shows the
//     directory underneath; chos builds a private view, which copies the
//     caller's mounts, and says so under -v.
//   - A directory the caller is in, then covered by a mount on the host:
//     the cached view, older, still shows it; a private one shows the
//     mount on top, and chos fails.
func TestWorkingDirectoryIsTheCallersOwn(t *testing.T) {
	wantStatus(t, chos(t, "exec", "one", "true"), 0) // the cached view exists first
	// and so does the kept one, for the whole test
	holder := start(t, call{Args: []string{h.chosUserns, "exec", "one", "sh", "-c", "echo ready; exec sleep 1000"}})
	if !holder.waitLine("ready", 10*time.Second) {
		return
	}
	top := filepath.Join(h.home, unique(t))
	userDir(t, top)
	mounted := filepath.Join(top, "mounted")
	covered := filepath.Join(top, "covered")
	flag := "flag " + randHex(4) + "\n"
	hidden := "under the mount " + randHex(4) + "\n"
	for _, d := range []string{mounted, covered} {
		userDir(t, d)
		// A bind of the directory on itself, made private: nothing mounted
		// on it propagates into an existing view, whatever the propagation
		// of the host's /.
		for _, args := range [][]string{{"mount", "--bind", d, d}, {"mount", "--make-private", d}} {
			if out, err := runSetup(30*time.Second, "/", args[0], args[1:]...); err != nil {
				t.Fatalf("%q: %v\n%s", args, err, out)
			}
		}
		d := d
		t.Cleanup(func() {
			syscall.Unmount(d, syscall.MNT_DETACH)
			syscall.Unmount(d, syscall.MNT_DETACH)
		})
	}
	mountTmpfs := func(d, content string) {
		t.Helper()
		opts := fmt.Sprintf("mode=0755,uid=%d,gid=%d", h.uid, h.gid)
		if out, err := runSetup(30*time.Second, "/", "mount", "-t", "tmpfs", "-o", opts, "chos-itest", d); err != nil {
			t.Fatalf("mounting a tmpfs on %s: %v\n%s", d, err, out)
		}
		writeUserFile(t, filepath.Join(d, "flag"), content, 0o644)
	}
	idOf := func(d string) string {
		var st syscall.Stat_t
		must(t, syscall.Stat(d, &st))
		return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	}
	mountTmpfs(mounted, flag)
	mountedID := idOf(mounted)
	writeUserFile(t, filepath.Join(covered, "flag"), hidden, 0o644)
	coveredID := idOf(covered)

	// Control: the cached view shows what is underneath the new mount.
	r := chos(t, "exec", "one", "ls", "-a", mounted)
	wantStatus(t, r, 0)
	if strings.Contains(r.stdout, "flag") {
		t.Fatalf("the cached view shows the tmpfs mounted after it was built: the test proves nothing:\n%s", r)
	}

	script := `cat flag && stat -c %d:%i .`
	type variant struct {
		name   string
		argv   []string // chos and its options, up to the tree
		cached bool
		host   bool
	}
	variants := []variant{
		{"setuid cached", []string{h.chos, "-v", "exec"}, true, false},
		{"setuid fresh", []string{h.chos, "-v", "exec", "--fresh"}, false, false},
		{"userns kept", []string{h.chosUserns, "-v", "exec"}, true, false},
		{"userns fresh", []string{h.chosUserns, "-v", "exec", "--fresh"}, false, false},
	}
	for _, v := range variants {
		t.Run("mounted after the view/"+v.name, func(t *testing.T) {
			r := run(t, call{Args: append(v.argv, "one", "sh", "-c", script)}.in(mounted))
			wantStatus(t, r, 0)
			if want := flag + mountedID + "\n"; r.stdout != want {
				t.Errorf("the command did not run in the caller's directory %s (device:inode %s):\n%s", mounted, mountedID, r)
			}
			if says := strings.Contains(r.stderr, "private view"); says != v.cached {
				t.Errorf("-v says a private view was built instead of the cached (or kept) one: %v, want %v:\n%s", says, v.cached, r)
			}
			// without -v, nothing is said
			quiet := append([]string{v.argv[0]}, v.argv[2:]...)
			r = run(t, call{Args: append(quiet, "one", "sh", "-c", script)}.in(mounted))
			wantStatus(t, r, 0)
			if r.stderr != "" {
				t.Errorf("chos printed something without -v:\n%s", r)
			}
		})
	}

	// Each caller waits in the directory until it is covered, then runs
	// chos (the mount goes again after each).
	for _, v := range append(variants, variant{"setuid host", []string{h.chos, "exec"}, false, true},
		variant{"userns host", []string{h.chosUserns, "exec"}, false, true}) {
		t.Run("covered after cd/"+v.name, func(t *testing.T) {
			tree := "one"
			if v.host {
				tree = "local"
			}
			gate := filepath.Join(h.tmp, unique(t))
			t.Cleanup(func() { os.Remove(gate) })
			argv := append(append([]string{}, v.argv...), tree, "sh", "-c", script)
			b := start(t, call{Dir: covered, Args: append([]string{"sh", "-c",
				`echo ready; while [ ! -e "$0" ]; do sleep 0.05; done; exec "$@"`, gate}, argv...)})
			if !b.waitLine("ready", 10*time.Second) {
				return
			}
			mountTmpfs(covered, "the mount on top\n")
			defer syscall.Unmount(covered, syscall.MNT_DETACH)
			must(t, os.WriteFile(gate, nil, 0o644))
			r := b.wait(commandTimeout)
			r.stdout = strings.TrimPrefix(r.stdout, "ready\n")
			if v.cached || v.host {
				// the caller's directory is still there for it
				if r.status != 0 || r.stdout != hidden+coveredID+"\n" {
					t.Errorf("the command did not run in the caller's (covered) directory %s, device:inode %s:\n%s", covered, coveredID, r)
				}
				return
			}
			if r.status != 125 || r.stdout != "" || !strings.Contains(r.stderr, covered) || !strings.Contains(r.stderr, "another directory") {
				t.Errorf("want a failure (125) naming %s as another directory there, and the command not run:\n%s", covered, r)
			}
		})
	}
}
