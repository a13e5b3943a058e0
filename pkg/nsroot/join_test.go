//go:build chos_linkname && !mips && !mipsle && !mips64 && !mips64le

package nsroot

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/spec"
)

// A command started by forkJoin runs in the joined namespaces, and where it
// cannot run, says so as Launch does (status and message), or asks for a
// view of the launch's own. Each case has a control that runs without the
// namespaces, or that Launch's own lookup gives.
func TestJoinedCommandRunsInTheNamespacesOrSaysWhyNot(t *testing.T) {
	user, mnt, dir := holdNamespaces(t)
	out := filepath.Join(t.TempDir(), "out")
	if _, err := os.ReadFile(filepath.Join(dir, "mark")); err == nil {
		t.Fatal("control: this process sees the holder's mark: the test proves nothing")
	}
	var here unix.Stat_t
	if err := unix.Stat("/", &here); err != nil {
		t.Fatal(err)
	}
	nofile, known := callerNofile()
	if !known {
		t.Fatal("the open file limit this process was started with is unknown (built without chos_linkname?)")
	}
	plan := func(path string, argv ...string) *spec.Plan {
		p := &spec.Plan{View: spec.View{Tree: "joined"}}
		p.Dir, p.Path, p.Argv = "/", path, append([]string{path}, argv...)
		p.Env = []string{"PATH=/usr/bin:/bin"}
		return p
	}
	for _, c := range []struct {
		name    string
		p       *spec.Plan
		status  int    // 0: it ran
		message string // Launch's
		private bool
	}{
		{name: "runs in the joined view", p: plan("sh", "-c", "cat "+dir+"/mark > "+out)},
		{name: "not on PATH", p: plan("chos-no-such-command"), status: StatusNotFound,
			message: "chos-no-such-command: command not found in tree joined"},
		{name: "missing", p: plan("/chos/no/such/file"), status: StatusNotFound,
			message: "/chos/no/such/file: no such file or directory"},
		{name: "a directory", p: plan("/"), status: StatusNotExecutable, message: "/: is a directory"},
		{name: "not executable", p: plan(dir + "/mark"), status: StatusNotExecutable,
			message: dir + "/mark: permission denied"},
		{name: "working directory missing", p: func() *spec.Plan { p := plan("true"); p.Dir = "/chos/no/such/dir"; return p }(),
			status: StatusFailed, message: "working directory /chos/no/such/dir is not available in tree joined: no such file or directory"},
		{name: "working directory is another", p: func() *spec.Plan {
			p := plan("true")
			p.DirID = &spec.FileID{Dev: here.Dev, Ino: here.Ino + 1}
			return p
		}(), private: true},
		{name: "control: the working directory is the one", p: func() *spec.Plan {
			p := plan("true")
			p.DirID = &spec.FileID{Dev: here.Dev, Ino: here.Ino}
			return p
		}()},
	} {
		t.Run(c.name, func(t *testing.T) {
			os.Remove(out)
			pid, lerr, private, err := startJoined(c.p, user, mnt, nofile)
			if err != nil {
				t.Fatal(err)
			}
			if (private != "") != c.private {
				t.Fatalf("private view: %q, want %v", private, c.private)
			}
			if c.private {
				return
			}
			if c.status != 0 {
				if lerr == nil {
					unix.Wait4(pid, nil, 0, nil)
					t.Fatalf("the command ran, want status %d: %s", c.status, c.message)
				}
				if lerr.Status != c.status || lerr.Error() != c.message {
					t.Errorf("got %d %q, want %d %q", lerr.Status, lerr.Error(), c.status, c.message)
				}
				return
			}
			if lerr != nil {
				t.Fatalf("%d %v", lerr.Status, lerr)
			}
			var ws unix.WaitStatus
			if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
				t.Fatalf("the command: %v, status %v", err, ws)
			}
			if c.p.Argv[0] == "sh" {
				if got, _ := os.ReadFile(out); string(got) != holderMark {
					t.Errorf("the command read %q, want the joined view's mark", got)
				}
			}
		})
	}
	// The messages are Launch's own: its lookup says the same on the host.
	for _, c := range []struct{ path, want string }{
		{"/chos/no/such/file", "/chos/no/such/file: no such file or directory"},
		{"/", "/: is a directory"},
		{"chos-no-such-command", "chos-no-such-command: command not found"},
	} {
		if _, lerr := lookPath(c.path, "/usr/bin:/bin"); lerr == nil || lerr.Error() != c.want {
			t.Errorf("control: Launch's lookup of %s says %v, want %q", c.path, lerr, c.want)
		}
	}
}

// What the joined command gets of this process: its descriptors without
// close-on-exec (and no other), no capability, no_new_privs, the signals
// it was started ignoring, and the soft open file limit it was started
// with, not the one the Go runtime raised for itself.
func TestJoinedCommandGetsWhatExecKeeps(t *testing.T) {
	user, mnt, _ := holdNamespaces(t)
	out := filepath.Join(t.TempDir(), "out")
	kept, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	if _, err := unix.FcntlInt(kept.Fd(), unix.F_SETFD, 0); err != nil {
		t.Fatal(err)
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	nofile, known := callerNofile()
	if !known {
		t.Fatal("the open file limit this process was started with is unknown (built without chos_linkname?)")
	}
	p := &spec.Plan{View: spec.View{Tree: "joined"}}
	p.Dir, p.Path, p.Env = "/", "/bin/sh", []string{"PATH=/usr/bin:/bin"}
	p.Argv = []string{"sh", "-c", "{ ls /proc/self/fd; echo --; grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|SigIgn)' /proc/self/status; ulimit -Sn; } > " + out}
	saved := start
	defer func() { start = saved }()
	start.Ignored = start.Ignored.With(int(syscall.SIGUSR2))
	pid, lerr, private, err := startJoined(p, user, mnt, nofile)
	if err != nil || lerr != nil || private != "" {
		t.Fatalf("%v %v %q", err, lerr, private)
	}
	if _, err := unix.Wait4(pid, nil, 0, nil); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := string(data)
	for _, want := range []string{"\n" + strconv.Itoa(int(kept.Fd())) + "\n", "CapEff:\t0000000000000000", "CapPrm:\t0000000000000000",
		"CapBnd:\t0000000000000000", "NoNewPrivs:\t1"} {
		if !strings.Contains("\n"+got, want) {
			t.Errorf("the command's state lacks %q:\n%s", want, got)
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if hex, ok := strings.CutPrefix(l, "SigIgn:\t"); ok {
			if set, err := strconv.ParseUint(hex, 16, 64); err != nil || !SignalSet(set).Has(int(syscall.SIGUSR2)) {
				t.Errorf("SIGUSR2, ignored by the caller, is not ignored by the command: %s", l)
			}
		}
	}
	inherited, err := inheritedFDs()
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	fdList, _, _ := strings.Cut(got, "--\n")
	for _, l := range strings.Split(fdList, "\n") {
		if l != "" && strings.Trim(l, "0123456789") == "" {
			listed[l] = true
		}
	}
	for _, fd := range inherited {
		if !listed[strconv.Itoa(fd)] {
			t.Errorf("the command lacks descriptor %d, which this process has without close-on-exec:\n%s", fd, got)
		}
	}
	// (and ls's own)
	if len(listed) != len(inherited)+1 {
		t.Errorf("the command has descriptors %v, want %v and the one ls reads", listed, inherited)
	}
	wantLimit := nofile.Cur
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if last := lines[len(lines)-1]; last != strconv.Itoa(int(wantLimit)) && !(wantLimit == unix.RLIM_INFINITY && last == "unlimited") {
		t.Errorf("the command's soft open file limit is %s, want %d (this process's is %d)", last, wantLimit, lim.Cur)
	}
}
