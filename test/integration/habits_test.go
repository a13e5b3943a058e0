package integration

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Users' habits on clusters (issue 20): what a command gets without chos it
// gets with chos, and chos never runs a command somewhere the user did not
// choose. Each test has a control: the same command without chos, which
// shows what the check would see if chos got it wrong.

// A PATH within the kernel's limit for one variable (MAX_ARG_STRLEN, 128
// KiB) but too long for chos to append /.chos/bin: the command runs with
// PATH unchanged, and -v says why chos is not on it.
func TestLongPathStillExecutes(t *testing.T) {
	// Found at once: the padding after /bin is never searched.
	long := "/usr/bin:/bin"
	for i := 0; len(long) < 131060; i++ {
		long += ":/nonexistent/" + strconv.Itoa(i)
	}
	long = long[:131060]
	script := `printf %s "$PATH" | wc -c`
	t.Run("control: the same PATH with /.chos/bin cannot be executed", func(t *testing.T) {
		r := run(t, call{Args: []string{"/bin/sh", "-c", script}, Env: []string{"PATH=" + long}})
		if !wantStatus(t, r, 0) || strings.TrimSpace(r.stdout) != "131060" {
			t.Errorf("without chos, the command does not run with the PATH given:\n%s", r)
		}
		// (the shell appends it: this test's own exec would fail)
		r = run(t, call{Args: []string{"/bin/sh", "-c", `PATH="$PATH:/.chos/bin"; /bin/true; echo "status $?"`}, Env: []string{"PATH=" + long}})
		if strings.TrimSpace(r.stdout) == "status 0" {
			t.Errorf("a PATH of %d bytes can be executed: the test proves nothing:\n%s", len(long)+11, r)
		}
	})
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			r := run(t, call{Args: []string{m.bin, "-v", "exec", "one", "/bin/sh", "-c", script}, Env: []string{"PATH=" + long}})
			if !wantStatus(t, r, 0) {
				return
			}
			if got := strings.TrimSpace(r.stdout); got != "131060" {
				t.Errorf("the command's PATH has %s bytes, want the caller's 131060:\n%s", got, r)
			}
			if !strings.Contains(r.stderr, "PATH left unchanged") {
				t.Errorf("-v does not say that PATH was left without /.chos/bin:\n%s", r)
			}
			r = run(t, call{Args: []string{m.bin, "exec", "one", "/bin/sh", "-c", script}, Env: []string{"PATH=" + long}})
			if wantStatus(t, r, 0) && r.stderr != "" {
				t.Errorf("without -v, chos says something:\n%s", r)
			}
		})
	}
}

// dotfileCase is a ~/.chos a test makes.
type dotfileCase struct {
	name string
	make func(t *testing.T)
}

// unreadableDotfiles are ~/.chos files that are there but that the user
// cannot read: each names tree two, which a readable one would select.
var unreadableDotfiles = []dotfileCase{
	{"mode 000", func(t *testing.T) { setDotfile(t, "two\n"); must(t, os.Chmod(dotfilePath(), 0)) }},
	{"a directory", func(t *testing.T) {
		clearDotfile(t)
		must(t, os.Mkdir(dotfilePath(), 0o755))
		must(t, os.Chown(dotfilePath(), h.uid, h.gid))
		t.Cleanup(func() { os.RemoveAll(dotfilePath()) })
	}},
}

// wantDotfileRefusal checks that r is chos's one-line refusal naming
// ~/.chos, with status 125.
func wantDotfileRefusal(t *testing.T, r result) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.status != 125 || len(lines) != 1 || !strings.HasPrefix(lines[0], "chos: cannot read "+dotfilePath()) {
		t.Errorf("want status 125 and one line chos: cannot read %s...:\n%s", dotfilePath(), r)
	}
}

// Only a missing ~/.chos means no selection: one that is there but cannot
// be read is refused (125, one line naming it), never taken as none, which
// would run the command in the default tree or on the host.
func TestUnreadableDotfileIsRefused(t *testing.T) {
	const show = `sed -n 's/^ID=//p' /etc/os-release`
	for _, m := range modes() {
		t.Run(m.name+"/control: a readable ~/.chos selects, a missing one does not", func(t *testing.T) {
			setDotfile(t, "two\n")
			if r := m.chos(t, "exec", "--", "sh", "-c", show); !wantStatus(t, r, 0) || strings.TrimSpace(r.stdout) != h.osIDs["two"] {
				t.Errorf("a readable ~/.chos naming two does not select it:\n%s", r)
			}
			clearDotfile(t)
			if r := m.chos(t, "exec", "--", "sh", "-c", show); !wantStatus(t, r, 0) || strings.TrimSpace(r.stdout) != h.osIDs["one"] {
				t.Errorf("without ~/.chos the command does not run in the default tree:\n%s", r)
			}
		})
		for _, d := range unreadableDotfiles {
			t.Run(m.name+"/"+d.name, func(t *testing.T) {
				d.make(t)
				for _, args := range [][]string{
					{"exec", "--", "sh", "-c", show},
					{"sh", "-c", show}, // the legacy form
					{"shell"},
				} {
					r := run(t, call{Args: append([]string{m.bin}, args...), Stdin: []byte(show + "\n")})
					wantDotfileRefusal(t, r)
					if r.stdout != "" {
						t.Errorf("the command ran:\n%s", r)
					}
				}
			})
		}
	}
}

// `chos login` (sshd's ForceCommand) refuses an unreadable ~/.chos as it
// refuses an unknown tree: one line, status 125, nothing run.
func TestUnreadableDotfileRefusesSSHLogin(t *testing.T) {
	s := forcedSSHD(t, "internal-sftp")
	marker := filepath.Join(h.home, "chos-itest-ran")
	for _, d := range append(unreadableDotfiles, dotfileCase{"control: readable", func(t *testing.T) { setDotfile(t, "two\n") }}) {
		t.Run(d.name, func(t *testing.T) {
			d.make(t)
			os.Remove(marker)
			t.Cleanup(func() { os.Remove(marker) })
			r := s.sshWith(t, nil, "touch "+marker)
			_, err := os.Stat(marker)
			if strings.HasPrefix(d.name, "control") {
				if !wantStatus(t, r, 0) || err != nil {
					t.Errorf("the login with a readable ~/.chos did not run the command (%v):\n%s", err, r)
				}
				return
			}
			wantDotfileRefusal(t, r)
			if err == nil {
				t.Error("the command ran")
			}
		})
	}
}

// pam_chos refuses the session (onerr=fail, the default) or keeps it on
// the host with the message (onerr=succeed), as for an unknown tree.
func TestUnreadableDotfileRefusesPamSession(t *testing.T) {
	show := "session optional pam_exec.so stdout " + where(t)
	for _, d := range unreadableDotfiles {
		for _, onerr := range []string{"", "onerr=succeed"} {
			t.Run(d.name+" "+onerr, func(t *testing.T) {
				d.make(t)
				r := pamtesterAs(t, pamService(t, pamChos(t, onerr), show), h.user, nil, nil)
				id, _ := whereShown(r.stdout)
				msg := "chos: cannot read " + dotfilePath()
				if onerr == "" {
					if r.status == 0 || strings.Contains(r.stderr, "successfully opened") || !strings.Contains(r.stderr, msg) {
						t.Errorf("want the session refused with %q:\n%s", msg, r)
					}
					return
				}
				if wantStatus(t, r, 0) && (id != h.hostOSRelease["ID"] || !strings.Contains(r.stderr, msg) ||
					!strings.Contains(r.stderr, "; staying on the host\n")) {
					t.Errorf("want the session on the host with the warning %q...; staying on the host:\n%s", msg, r)
				}
			})
		}
	}
	t.Run("control: readable", func(t *testing.T) {
		setDotfile(t, "two\n")
		r := pamtesterAs(t, pamService(t, pamChos(t), show), h.user, nil, nil)
		if id, _ := whereShown(r.stdout); !wantStatus(t, r, 0) || id != h.osIDs["two"] {
			t.Errorf("the session is in ID=%s, want tree two:\n%s", id, r)
		}
	})
}

// cwdVariants are the launches whose working directory must be the
// caller's very one: setuid cached and fresh, userns.
func cwdVariants() []launchVariant {
	return []launchVariant{
		{name: "setuid cached", argv: []string{h.chos, "exec", "one"}, cached: true},
		{name: "setuid fresh", argv: []string{h.chos, "exec", "--fresh", "one"}, fresh: true},
		{name: "userns", argv: []string{h.chosUserns, "exec", "one"}, fresh: true},
	}
}

// A working directory on a file system that denies root: the user's own
// FUSE mount without allow_other (squashfuse here; sshfs and rclone are
// alike), which FUSE closes to every process whose ids are not all the
// owner's. The command runs in that very directory, as without chos.
func TestWorkingDirectoryRootCannotEnter(t *testing.T) {
	fuseForUsers(t)
	src := filepath.Join(h.base, unique(t)+"-src")
	must(t, os.MkdirAll(filepath.Join(src, "sub"), 0o755))
	t.Cleanup(func() { os.RemoveAll(src) })
	flag := "on the user's FUSE mount " + randHex(4)
	must(t, os.WriteFile(filepath.Join(src, "sub", "flag"), []byte(flag+"\n"), 0o644))
	img := squashImage(t, src)
	mnt := filepath.Join(h.home, unique(t))
	userDir(t, mnt)
	if r := run(t, call{Args: []string{"squashfuse", img, mnt}}); !wantStatus(t, r, 0) {
		t.Fatal("the user cannot mount an image with squashfuse")
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	wantStatus(t, chos(t, "exec", "one", "true"), 0) // the cached view exists first
	dir := filepath.Join(mnt, "sub")
	script := `cat flag && stat -c %d:%i .`
	// (the user's shell changes to it: this test's exec would as root)
	in := func(argv ...string) []string {
		return append([]string{"sh", "-c", `cd "$0" && exec "$@"`, dir}, argv...)
	}
	ref := run(t, call{Args: in("sh", "-c", script)})
	t.Run("control", func(t *testing.T) {
		if !wantStatus(t, ref, 0) || !strings.HasPrefix(ref.stdout, flag+"\n") {
			t.Errorf("without chos, the command does not run in the FUSE mount:\n%s", ref)
		}
		var st unix.Stat_t
		if err := unix.Stat(dir, &st); !errors.Is(err, unix.EACCES) {
			t.Errorf("root may look into the user's FUSE mount (%v): the test proves nothing", err)
		}
	})
	for _, v := range cwdVariants() {
		t.Run(v.name, func(t *testing.T) {
			r := run(t, call{Args: in(append(append([]string{}, v.argv...), "sh", "-c", script)...)})
			if !wantStatus(t, r, 0) || r.stdout != ref.stdout {
				t.Errorf("the command did not run in the caller's directory (want %q):\n%s", ref.stdout, r)
			}
		})
	}
}

// A working directory longer than PATH_MAX (4,500 bytes) that the view
// shows: the command runs in that very directory, as without chos.
func TestWorkingDirectoryLongerThanPathMax(t *testing.T) {
	top := filepath.Join(h.home, unique(t))
	userDir(t, top)
	name := strings.Repeat("d", 200)
	var cds []string // relative steps, each far below PATH_MAX
	for n := len(top); n <= 4500; n += 1 + len(name) {
		cds = append(cds, name)
	}
	mk := "cd " + top + " && for d in " + strings.Join(cds, " ") + `; do mkdir "$d" && cd -P "$d" || exit 1; done`
	if r := run(t, call{Args: []string{"sh", "-c", mk}}); !wantStatus(t, r, 0) {
		t.Fatal("cannot make the deep directory")
	}
	// Each caller changes to it in steps, then executes its command there.
	enter := "cd " + top + " && cd -P " + strings.Join(cds, " && cd -P ") + ` && exec "$@"`
	script := `stat -c %d:%i .`
	full := top + "/" + strings.Join(cds, "/")
	in := func(argv ...string) []string { return append([]string{"sh", "-c", enter, "sh"}, argv...) }
	ref := run(t, call{Args: in("sh", "-c", script)})
	t.Run("control", func(t *testing.T) {
		if !wantStatus(t, ref, 0) {
			return
		}
		if r := run(t, call{Args: []string{"sh", "-c", `cd "$1"`, "sh", full}}); r.status == 0 {
			t.Errorf("a plain chdir to the directory's path works: the test proves nothing:\n%s", r)
		}
	})
	wantStatus(t, chos(t, "exec", "one", "true"), 0)
	for _, v := range cwdVariants() {
		t.Run(v.name, func(t *testing.T) {
			r := run(t, call{Args: in(append(append([]string{}, v.argv...), "sh", "-c", script)...)})
			if !wantStatus(t, r, 0) || r.stdout != ref.stdout {
				t.Errorf("the command did not run in the caller's directory (want %q):\n%s", ref.stdout, r)
			}
		})
	}
}

// A cache directory that cannot take a new view (out of inodes, read-only,
// or broken in a way only the builder sees): every launch still runs, in
// a private view, with one warning; the audit line says so where the
// launch can tell before building. A small tmpfs on the compiled-in cache
// directory makes each case.
func TestUnwritableCacheFallsBackToPrivateView(t *testing.T) {
	d := startRsyslog(t)
	auditConfig(t, "%AUDIT\nfacility = local5\nsocket = "+d.sock+"\n")
	show := []string{"sed", "-n", "s/^ID=//p", "/etc/os-release"}
	for _, c := range []struct {
		name    string
		opts    string             // of the tmpfs
		prepare func(t *testing.T) // after mounting it
		warning string             // "" for none
		audited bool               // the audit line says view=fresh and warning=
	}{
		{"control: a writable cache", "nr_inodes=64", nil, "", false},
		{"out of inodes", "nr_inodes=1", nil, "no free inode", true},
		{"read-only", "ro", nil, "read-only file system", true},
		{"a file where a directory must be", "nr_inodes=64", func(t *testing.T) {
			ns := filepath.Join(h.cacheDir, "ns")
			must(t, os.WriteFile(ns, nil, 0o644))
			t.Cleanup(func() { os.Remove(ns) }) // (before `chos cache drop`)
		}, "not a directory", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			emptyCache(t)
			must(t, os.MkdirAll(h.cacheDir, 0o755))
			must(t, unix.Mount("chos-itest-cache", h.cacheDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,"+c.opts))
			t.Cleanup(func() {
				wantStatus(t, run(t, call{Root: true, Args: []string{h.chos, "cache", "drop"}}), 0)
				if err := unix.Unmount(h.cacheDir, unix.MNT_DETACH); err != nil {
					t.Errorf("unmounting the test's cache: %v", err)
				}
			})
			if c.prepare != nil {
				c.prepare(t)
			}
			seen := len(d.lines(t))
			for i := 0; i < 2; i++ {
				r := chos(t, append([]string{"exec", "one"}, show...)...)
				if !wantStatus(t, r, 0) || strings.TrimSpace(r.stdout) != h.osIDs["one"] {
					t.Errorf("launch %d did not run in tree one:\n%s", i+1, r)
				}
				lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
				switch {
				case c.warning == "" && r.stderr != "":
					t.Errorf("launch %d warns:\n%s", i+1, r)
				case c.warning != "" && (len(lines) != 1 || !strings.HasPrefix(lines[0], "chos: warning: not caching tree one: ") ||
					!strings.Contains(lines[0], c.warning)):
					t.Errorf("launch %d: want one warning chos: warning: not caching tree one: ...%s:\n%s", i+1, c.warning, r)
				}
			}
			got := d.lines(t)[seen:]
			if len(got) != 2 {
				t.Fatalf("%d audit lines, want 2: %v", len(got), got)
			}
			switch {
			case c.warning == "":
				wantFields(t, got[0], map[string]string{"view": "built"})
				wantFields(t, got[1], map[string]string{"view": "cached"})
			case c.audited:
				for _, l := range got {
					wantFields(t, l, map[string]string{"view": "fresh", "warning": "not caching tree one: *" + c.warning + "*"})
				}
			}
			if r := chos(t, append([]string{"exec", "--fresh", "one"}, show...)...); !wantStatus(t, r, 0) || r.stderr != "" {
				t.Errorf("a --fresh launch does not run without a word:\n%s", r)
			}
		})
	}
}

// A low process limit (ulimit -u), a few above what the user runs already:
// chos runs the command, or refuses with one line and status 125, in both
// modes; never a crash of the Go runtime ("fatal error: newosproc", a stack
// dump, status 2). The command itself starts no process, so without chos
// it runs at every limit. One case is left: a chos without the setuid bit
// cannot start at all below the threads the Go runtime starts before any of
// chos's code runs (its setuid start is root's, which the limit spares).
func TestLowProcessLimit(t *testing.T) {
	// The user's tasks (threads) as the kernel counts them against the
	// limit, other PID namespaces' included: the least limit under which a
	// subshell may start one more process is that count plus the two (sh
	// tries a fork once; bash would retry for half a minute). Then a limit
	// n above it, and chos in place of this shell.
	const script = `lo=1 hi=$(ulimit -Hu); [ "$hi" = unlimited ] && hi=4194304
while [ $lo -lt $hi ]; do mid=$(((lo + hi) / 2))
  if (ulimit -u $mid && exec sh -c '/bin/true && exit 0') 2>/dev/null; then hi=$mid; else lo=$((mid + 1)); fi
done
ulimit -u $((lo - 2 + $1)) && shift && exec "$@"`
	wantStatus(t, chos(t, "exec", "one", "true"), 0) // (the cached view exists first)
	for _, m := range append(modes(), mode{name: "setuid binary --mode=userns", bin: h.chos, userns: true}) {
		t.Run(m.name, func(t *testing.T) {
			var ran, unstarted []int
			for n := 1; n <= 24; n++ {
				argv := []string{m.bin}
				if m.bin == h.chos && m.userns {
					argv = append(argv, "--mode=userns")
				}
				argv = append(argv, "exec", "one", "echo", "ran")
				r := run(t, call{Args: append([]string{"bash", "-c", script, "bash", strconv.Itoa(n)}, argv...)})
				lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
				switch {
				case r.status == 0 && r.stdout == "ran\n" && r.stderr == "":
					ran = append(ran, n)
				case r.status == 125 && len(lines) == 1 && strings.HasPrefix(lines[0], "chos: ") && r.stdout == "":
				case m.bin == h.chosUserns && strings.Contains(r.stderr, "fatal error: newosproc") && !strings.Contains(r.stderr, "main.main("):
					unstarted = append(unstarted, n) // (before main: the runtime's own start)
				default:
					t.Errorf("ulimit -u %d above the user's processes: want the command run, or one chos: line and status 125:\n%s", n, r)
				}
			}
			t.Logf("ran at %v above the user's processes; the Go runtime could not start at %v", ran, unstarted)
			// (3 threads, or 4 when a goroutine of the runtime's start blocks
			// long enough for it to start another: it varies with the load)
			if len(unstarted) > 4 || (len(unstarted) > 0 && unstarted[len(unstarted)-1] != len(unstarted)) {
				t.Errorf("the Go runtime cannot start chos at %v above the user's processes: more than the 4 it needs for itself", unstarted)
			}
			if m.bin == h.chos && !m.userns && len(ran) != 24 {
				t.Errorf("setuid mode ran only at %v of 1 to 24 above the user's processes", ran)
			}
			if len(ran) == 0 || ran[len(ran)-1] != 24 {
				t.Errorf("chos did not run at 24 above the user's processes")
			}
		})
	}
	t.Run("control: without chos", func(t *testing.T) {
		for n := 1; n <= 24; n++ {
			r := run(t, call{Args: []string{"bash", "-c", script, "bash", strconv.Itoa(n), "echo", "ran"}})
			if !wantStatus(t, r, 0) || r.stdout != "ran\n" {
				t.Errorf("without chos, at %d above the user's processes:\n%s", n, r)
			}
		}
		r := run(t, call{Args: []string{"bash", "-c", script, "bash", "0", "sh", "-c", "/bin/true && exit 0"}})
		if r.status == 0 {
			t.Errorf("a shell at its process limit could start a process: the limit does not hold:\n%s", r)
		}
	})
}

// A signal sent to the process group of a command (a terminal, a shell's
// `kill %1`, scancel, `kill -- -PGID`) arrives once, as without chos; one
// sent to chos's own pid (the userns helper's) arrives once too, forwarded.
// The command (testdata/sigcount, below /tmp so that every tree has it)
// prints each signal it gets, as soon as it gets it: a second one, a few
// microseconds later, is not merged with the first.
func TestSignalToProcessGroupArrivesOnce(t *testing.T) {
	counter := []string{sigcount(t), "4s"}
	for _, c := range []struct {
		name  string
		argv  []string // up to the command
		group bool     // signals to the process group, else to the pid started
	}{
		{"control: without chos", nil, true},
		{"setuid", []string{h.chos, "exec", "one"}, true},
		{"userns", []string{h.chosUserns, "exec", "one"}, true},
		{"userns: to chos's pid", []string{h.chosUserns, "exec", "one"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := start(t, call{Args: append(append([]string{}, c.argv...), counter...)})
			if !b.waitLine("ready", 10*time.Second) {
				return
			}
			to := b.pid
			if c.group {
				to = -b.pid
			}
			var want []string
			for round := 0; round < 3; round++ {
				for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGUSR1} {
					must(t, syscall.Kill(to, sig))
					time.Sleep(200 * time.Millisecond)
				}
				want = append(want, "TERM", "USR1")
			}
			r := b.wait(10 * time.Second)
			if got := strings.Fields(strings.TrimPrefix(r.stdout, "ready\n")); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("the command got %q, want each signal once (%q):\n%s", got, want, r)
			}
		})
	}
}

// sigcount is testdata/sigcount, built once per run.
func sigcount(t *testing.T) string {
	t.Helper()
	return tmpProgram(t, "sigcount")
}

// The soft stack limit reaches the command on every path where chos can
// know it: a setuid exec lowers one above 8 MiB to 8 MiB, and chos then
// takes its parent's where the parent runs as the caller. Each case runs
// `sh -c 'ulimit -s'` without chos (the control: what the command should
// get), and in both modes.
func TestStackLimitOfTheCaller(t *testing.T) {
	const show = "ulimit -s"
	// (a program that sets its own limit and executes the rest in place)
	const pyExec = `import os, resource, sys
resource.setrlimit(resource.RLIMIT_STACK, (resource.RLIM_INFINITY, resource.getrlimit(resource.RLIMIT_STACK)[1]))
os.execvp(sys.argv[1], sys.argv[1:])`
	var old unix.Rlimit
	must(t, unix.Prlimit(0, unix.RLIMIT_STACK, nil, &old))
	if old.Max != unix.RLIM_INFINITY {
		t.Fatalf("the hard stack limit is %d: these cases need it unlimited", old.Max)
	}
	t.Cleanup(func() { unix.Prlimit(0, unix.RLIMIT_STACK, &old, nil) })
	c := slurm(t)
	for _, tc := range []struct {
		name string
		// argv runs launcher (chos and its arguments up to the command;
		// none for the control) and the command.
		argv func(launcher ...string) []string
		env  []string
		// parent is this test's own soft limit while the case runs: the
		// parent of a caller that executes chos in place.
		parent uint64
		setuid string // what the command gets in setuid mode, if not the control's
		why    string
	}{
		{name: "inherited from the shell that starts chos",
			argv: func(l ...string) []string {
				return append([]string{"sh", "-c", `ulimit -S -s unlimited && "$@"; exit`, "sh"}, append(l, "sh", "-c", show)...)
			}},
		{name: "set by a program that executes chos in place (Python's os.execvp)",
			argv: func(l ...string) []string {
				return append([]string{"sh", "-c", `ulimit -S -s 8192 && "$@"; exit`, "sh", "python3", "-c", pyExec}, append(l, "sh", "-c", show)...)
			},
			setuid: "8192", why: "the case left: chos gets the limit of its parent, the shell"},
		{name: "a parent of root's with a higher limit than the caller's (as slurmstepd of a slurmd with LimitSTACK=infinity)",
			argv: func(l ...string) []string {
				return append([]string{"sh", "-c", `ulimit -S -s 8192 && exec "$@"`, "sh"}, append(l, "sh", "-c", show)...)
			},
			parent: unix.RLIM_INFINITY},
		{name: "srun chos exec with a limit Slurm propagated",
			argv: func(l ...string) []string {
				return append([]string{"bash", "-c", `ulimit -S -s unlimited && srun "$@"`, "bash"}, append(l, "sh", "-c", show)...)
			},
			env:    c.user().Env,
			setuid: "8192", why: "the case left: slurmstepd sets the task's limit after forking it, and leaves no trace of it"},
		{name: "srun of a shell that starts chos",
			argv: func(l ...string) []string {
				return append([]string{"bash", "-c", `ulimit -S -s unlimited && srun sh -c '"$@"; exit' sh "$@"`, "bash"}, append(l, "sh", "-c", show)...)
			},
			env: c.user().Env},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.parent != 0 {
				must(t, unix.Prlimit(0, unix.RLIMIT_STACK, &unix.Rlimit{Cur: tc.parent, Max: old.Max}, nil))
				defer unix.Prlimit(0, unix.RLIMIT_STACK, &old, nil)
			}
			ref := run(t, call{Args: tc.argv(), Env: tc.env})
			want := strings.TrimSpace(ref.stdout)
			if !wantStatus(t, ref, 0) || want == "" {
				t.Fatal("control: the command does not run without chos")
			}
			for _, m := range modes() {
				r := run(t, call{Args: tc.argv(m.bin, "exec", "one"), Env: tc.env})
				want := want
				if m.name == "setuid" && tc.setuid != "" {
					want = tc.setuid
				}
				if got := strings.TrimSpace(r.stdout); !wantStatus(t, r, 0) || got != want {
					t.Errorf("%s mode: the command's soft stack limit is %q, want %q (without chos: %q) %s:\n%s", m.name, got, want, strings.TrimSpace(ref.stdout), tc.why, r)
				}
			}
		})
	}
}
