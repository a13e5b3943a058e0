package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/plan"
)

// Attacks of one user on chos, seen from another: the setuid chos must not
// let a user stall other users' launches, make root bind what the user
// cannot reach, or decide the modes of what root creates.

// promptly is how long a launch may take on a loaded 2-core machine before
// it counts as stalled.
const promptly = 8 * time.Second

// timedLaunch runs the other user's first launch of tree one and says
// whether it completed within d.
func timedLaunch(t *testing.T, victim *testUser, d time.Duration) (result, bool) {
	t.Helper()
	c := call{User: victim, Args: []string{h.chos, "exec", "one", "cat", "/etc/os-release"}, Timeout: d}
	argv := c.argv()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = victim.home, victim.env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r, err := runWithTimeout(cmd, d, nil)
	r.cmd = describe(c)
	return r, err == nil && !r.timedOut
}

// fullPipe is a pipe whose buffer is full and which nobody reads: a process
// writing to it blocks.
func fullPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	must(t, err)
	t.Cleanup(func() { r.Close(); w.Close() })
	fd := int(w.Fd()) // (Fd puts the file in blocking mode: once, before)
	must(t, unix.SetNonblock(fd, true))
	chunk := make([]byte, 4096)
	for {
		if _, err := unix.Write(fd, chunk); err != nil {
			break
		}
	}
	must(t, unix.SetNonblock(fd, false))
	return r, w
}

// processState is the state letter of /proc/PID/stat (R, S, T, Z...).
func processState(pid int) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2 : i+3]
	}
	return ""
}

// holdBuildLock empties the cache and takes tree one's build lock, as a
// builder holds it: a first launch's builder waits until the returned
// file is closed.
func holdBuildLock(t *testing.T) *os.File {
	t.Helper()
	emptyCache(t)
	must(t, os.MkdirAll(hostCacheDir(t), 0o755))
	lock, err := os.OpenFile(filepath.Join(hostCacheDir(t), "one.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	must(t, err)
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		lock.Close()
		t.Fatal(err)
	}
	return lock
}

func TestNoUserCanStallAnotherUsersFirstLaunch(t *testing.T) {
	victim := otherUser(t)
	// An optional bind that is skipped gives the attacker's `chos -v` a
	// note to write.
	setConfig(t, h.configText+"%TREE one\nbind = /nonexistent/chos-itest /chos-itest optional\n")

	t.Run("control: a held build lock stalls a first launch", func(t *testing.T) {
		lock := holdBuildLock(t)
		defer lock.Close()
		if r, ok := timedLaunch(t, victim, 3*time.Second); ok {
			t.Fatalf("the first launch completed while root held the tree's build lock; the stall checks below cannot fail:\n%s", r)
		}
		// The builder outlives its launch (as it must: others will enter
		// what it builds); let it finish once the lock is free, before the
		// next case drops the cache.
		lock.Close()
		buildersLeft(promptly)
	})

	t.Run("attacker's stderr is a full pipe", func(t *testing.T) {
		emptyCache(t)
		_, w := fullPipe(t)
		c := call{Args: []string{h.chos, "-v", "exec", "one", "true"}}
		argv := c.argv()
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir, cmd.Env, cmd.Stderr = h.home, userEnv(), w
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		must(t, cmd.Start())
		defer func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() }()
		// The attacker's chos blocks writing its note, after its view was
		// built: wait until it sleeps in that write.
		deadline := time.Now().Add(promptly)
		for time.Now().Before(deadline) && !strings.Contains(readFile(t, "/proc/"+strconv.Itoa(cmd.Process.Pid)+"/wchan"), "pipe") {
			time.Sleep(20 * time.Millisecond)
		}
		if wchan := readFile(t, "/proc/"+strconv.Itoa(cmd.Process.Pid)+"/wchan"); !strings.Contains(wchan, "pipe") {
			t.Fatalf("control: the attacker's chos is not blocked on its stderr (wchan %q, state %s)", wchan, processState(cmd.Process.Pid))
		}
		r, ok := timedLaunch(t, victim, promptly)
		if !ok {
			t.Fatalf("another user's launch did not complete while the attacker's chos was blocked on stderr:\n%s", r)
		}
		wantOSID(t, r, h.osIDs["one"])
	})

	t.Run("attacker stops its own launches", func(t *testing.T) {
		// The attacker stops every chos process it may signal, at several
		// moments of its first launch.
		t.Cleanup(func() { killStopped(t) }) // (also after a failure: a stopped builder stalls later tests)
		for _, delay := range []time.Duration{0, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond} {
			emptyCache(t)
			att := start(t, call{Args: []string{h.chos, "exec", "one", "sleep", "30"}})
			time.Sleep(delay)
			r := run(t, call{Args: []string{"sh", "-c", `for p in $(pgrep -x chos); do kill -STOP "$p" 2>/dev/null; done; kill -STOP -` + strconv.Itoa(att.pid) + ` 2>/dev/null; true`}})
			wantStatus(t, r, 0)
			vr, ok := timedLaunch(t, victim, promptly)
			if !ok {
				t.Fatalf("another user's launch did not complete while the attacker's launch was stopped %v after it started:\n%s", delay, vr)
			}
			wantOSID(t, vr, h.osIDs["one"])
			syscall.Kill(-att.pid, syscall.SIGKILL)
			att.wait(promptly)
			killStopped(t)
		}
	})
}

// killStopped kills what the attacker stopped outside their launch's
// process group: a builder caught between its fork and its exec, while
// its real uid is still the user's (it holds nothing yet, but would stay
// stopped).
func killStopped(t *testing.T) {
	t.Helper()
	run(t, call{Args: []string{"sh", "-c", `pkill -KILL -u "$(id -u)" -x chos; true`}})
}

// buildersLeft waits up to d until no view builder runs, nor a process
// with one of launches' command lines (a builder forked but not yet
// executed still shows its launch's), and returns those running then.
func buildersLeft(d time.Duration, launches ...[]string) []int {
	builders := func() []int {
		pids := pidsRunning("chos", "__chos_build_view")
		for _, argv := range launches {
			pids = append(pids, pidsRunning(argv...)...)
		}
		return pids
	}
	for deadline := time.Now().Add(d); len(builders()) > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	return builders()
}

// No user can stall another user's image trees. A launch of an image tree
// sets up a loop device under a lock on /dev/loop-control; for private
// views (--fresh, cache = no, a launch from a view) that was done in the
// caller's own process, which its user could stop holding the lock. The
// attacker does what issue 19 did: launches with the lowest priority,
// watches /proc/locks (anyone may read it) for that lock held by a process
// of theirs, and stops that process (anyone may stop their own) the moment
// it appears; then stops every chos of theirs. Another user's fresh launch
// of another image, and their first cached launch of it, then complete
// promptly. Control: root holding that lock (as a stopped launch did)
// makes the other user's launch wait.
func TestNoUserCanStallAnotherUsersImageTrees(t *testing.T) {
	needLoopSquashfs(t)
	victim := otherUser(t)
	attacked, _ := imageTree(t)
	img, id := imageTree(t)
	withImageTrees(t, "attacked", attacked, "img", img)
	afterImages(t, attacked, img)
	victimLaunch := func(t *testing.T, fresh bool, d time.Duration) (result, bool) {
		args := []string{h.chos, "exec"}
		if fresh {
			args = append(args, "--fresh")
		}
		return timedRun(t, call{User: victim, Args: append(args, "img", "cat", "/etc/os-release")}, d)
	}
	waitBuilders := func() { buildersLeft(20 * time.Second) }
	var ctl unix.Stat_t
	must(t, unix.Stat("/dev/loop-control", &ctl))
	// how /proc/locks names the file: MAJOR:MINOR:INODE of its file system
	ctlKey := fmt.Sprintf("%02x:%02x:%d", unix.Major(ctl.Dev), unix.Minor(ctl.Dev), ctl.Ino)

	t.Run("control: a held lock on /dev/loop-control stalls a launch", func(t *testing.T) {
		emptyCache(t)
		f, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
		must(t, err)
		defer f.Close()
		must(t, unix.Flock(int(f.Fd()), unix.LOCK_EX))
		if r, ok := victimLaunch(t, true, 3*time.Second); ok {
			t.Fatalf("a fresh launch of an image completed while root held the lock on /dev/loop-control; the checks below cannot fail:\n%s", r)
		}
		f.Close()
		waitBuilders()
	})

	for _, fresh := range []bool{true, false} {
		kind := map[bool]string{true: "fresh", false: "cached"}[fresh]
		t.Run("attacker stops its "+kind+" launches holding what they hold", func(t *testing.T) {
			t.Cleanup(func() { killStopped(t) }) // (also after a failure: a stopped builder stalls later tests)
			for try := 0; try < 8; try++ {
				emptyCache(t)
				args := []string{"chrt", "-i", "0", "nice", "-n", "19", h.chos, "exec"}
				if fresh {
					args = append(args, "--fresh")
				}
				att := start(t, call{Args: append(args, "attacked", "sleep", "30")})
				stopped := stopLockHolder(t, h.uid, ctlKey, att.pid, promptly)
				wantStatus(t, run(t, call{Args: []string{"sh", "-c", `for p in $(pgrep -u "$(id -u)" -x chos); do kill -STOP "$p" 2>/dev/null; done; kill -STOP -` + strconv.Itoa(att.pid) + ` 2>/dev/null; true`}}), 0)
				if held := locksHeldBy(t, h.uid); len(held) > 0 {
					t.Errorf("try %d: the attacker's stopped processes hold locks:\n%s", try, strings.Join(held, "\n"))
				}
				for _, victimFresh := range []bool{true, false} {
					r, ok := victimLaunch(t, victimFresh, promptly)
					if !ok {
						t.Fatalf("try %d: another user's %s launch of an image did not complete while the attacker's %s launch was stopped (holding /dev/loop-control's lock: %v):\n%s",
							try, map[bool]string{true: "fresh", false: "first cached"}[victimFresh], kind, stopped, r)
					}
					wantOSID(t, r, id)
				}
				syscall.Kill(-att.pid, syscall.SIGKILL)
				att.wait(promptly)
				killStopped(t)
				waitBuilders()
			}
		})
	}
}

// stopLockHolder watches /proc/locks until a process that a user with uid
// may signal (its real or saved uid is theirs) holds the lock on the file
// key names, and stops it, as that user could; or until the process pid
// has executed its command (sleep), or d has passed. It says whether it
// stopped one.
func stopLockHolder(t *testing.T, uid int, key string, pid int, d time.Duration) bool {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		for _, l := range strings.Split(readFile(t, "/proc/locks"), "\n") {
			f := strings.Fields(l)
			if len(f) < 6 || f[1] != "FLOCK" || f[5] != key {
				continue
			}
			holder, _ := strconv.Atoi(f[4])
			for _, line := range strings.Split(readFile(t, "/proc/"+f[4]+"/status"), "\n") {
				ids, ok := strings.CutPrefix(line, "Uid:")
				u := strings.Fields(ids)
				if ok && len(u) >= 3 && (u[0] == strconv.Itoa(uid) || u[2] == strconv.Itoa(uid)) && holder > 0 {
					syscall.Kill(holder, syscall.SIGSTOP)
					return true
				}
			}
		}
		if strings.TrimSpace(readFile(t, "/proc/"+strconv.Itoa(pid)+"/comm")) == "sleep" {
			return false
		}
	}
	return false
}

// locksHeldBy lists the lines of /proc/locks (world-readable) whose
// process runs with uid as its real or effective uid.
func locksHeldBy(t testing.TB, uid int) []string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(readFile(t, "/proc/locks"), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		pid := f[4]
		if f[1] == "->" && len(f) > 5 { // a waiter: "N: -> FLOCK ADVISORY WRITE PID ..."
			pid = f[5]
		}
		for _, line := range strings.Split(readFile(t, "/proc/"+pid+"/status"), "\n") {
			ids, ok := strings.CutPrefix(line, "Uid:")
			if u := strings.Fields(ids); ok && len(u) >= 2 && (u[0] == strconv.Itoa(uid) || u[1] == strconv.Itoa(uid)) {
				out = append(out, l+"  ("+strings.TrimSpace(readFile(t, "/proc/"+pid+"/comm"))+")")
			}
		}
	}
	return out
}

// timedRun runs c and says whether it completed within d (a process
// group that is still running then is killed).
func timedRun(t *testing.T, c call, d time.Duration) (result, bool) {
	t.Helper()
	argv := c.argv()
	cmd := exec.Command(argv[0], argv[1:]...)
	u := c.account()
	cmd.Dir, cmd.Env = u.home, mergeEnv(u.env(), c.Env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r, err := runWithTimeout(cmd, d, nil)
	r.cmd = describe(c)
	return r, err == nil && !r.timedOut && r.status == 0
}

// The builder of a shared view runs with the limits chos chose, not its
// launcher's: a user whose first launch of a tree has a file size limit
// of 0 and a limit of 10 descriptors still gets a complete view (the
// files it adds to /etc whole), and so does the next user, who enters the
// view that launch built; the command still has the caller's limits. The
// limits are soft ones: raising a hard limit takes CAP_SYS_RESOURCE,
// which root may lack in a container (README: "What the command keeps").
// Control: the limits do bite a process that keeps them.
func TestViewBuilderRunsWithChosLimits(t *testing.T) {
	victim := otherUser(t)
	const limits = "ulimit -S -f 0; ulimit -S -n 10"
	r := run(t, call{Args: []string{"sh", "-c", limits + "; echo x > limit-probe; echo status=$?; rm -f limit-probe"}})
	if strings.Contains(r.stdout, "status=0") {
		t.Fatalf("control: a write under %q succeeded; the test cannot fail:\n%s", limits, r)
	}
	snippet := plan.PathSnippets["profile.d/chos.sh"]
	show := "ulimit -S -f; ulimit -S -n; cat /etc/profile.d/chos.sh"
	for _, fresh := range []bool{false, true} {
		name := map[bool]string{false: "cached", true: "fresh"}[fresh]
		t.Run(name, func(t *testing.T) {
			emptyCache(t)
			launch := h.chos + " exec one"
			if fresh {
				launch = h.chos + " exec --fresh one"
			}
			r := run(t, call{Args: []string{"sh", "-c", limits + "; exec " + launch + " sh -c '" + show + "'"}})
			wantStatus(t, r, 0)
			if want := "0\n10\n" + snippet; r.stdout != want {
				t.Errorf("under %q: the command's limits and the view's /etc/profile.d/chos.sh:\n%q\nwant\n%q\n%s", limits, r.stdout, want, r)
			}
			if fresh {
				return
			}
			r = run(t, call{User: victim, Args: []string{h.chos, "exec", "one", "cat", "/etc/profile.d/chos.sh"}})
			if wantStatus(t, r, 0) && r.stdout != snippet {
				t.Errorf("another user entering the view built under those limits sees /etc/profile.d/chos.sh as %q, want %q", r.stdout, snippet)
			}
		})
	}
}

func readFile(t testing.TB, p string) string {
	data, _ := os.ReadFile(p)
	return string(data)
}

// A user cannot signal the builder of a cached view: its ids are all root's.
func TestViewBuilderEntryIsRefusedToUsers(t *testing.T) {
	r := run(t, call{Args: []string{"sh", "-c", "exec 3</dev/null 4>/dev/null; exec " + h.chos + " __chos_build_view"}})
	wantStatus(t, r, 125)
	if !strings.Contains(r.stderr, "only root may") {
		t.Errorf("the builder entry point does not refuse a user:\n%s", r)
	}
	// Control: root gets past that check (and fails on the empty input).
	r = run(t, call{Root: true, Args: []string{"sh", "-c", "exec 3</dev/null 4>/dev/null; exec " + h.chos + " __chos_build_view"}})
	if strings.Contains(r.stderr, "only root may") {
		t.Errorf("root was refused as if a user:\n%s", r)
	}
}

// Every host path root opens for a view must be reachable only through
// directories that only root can change: otherwise a user swaps a component
// for a link to what they cannot read, and every user of the cached view
// sees it.
func TestRootBindsOnlyWhatOnlyRootCanRedirect(t *testing.T) {
	base := filepath.Join(h.base, "attack-"+randHex(3))
	secret := filepath.Join(base, "secret")
	mine := filepath.Join(base, "mine")    // the attacker's directory
	rootDir := filepath.Join(base, "root") // root's, for the control
	for _, d := range []string{base, secret, mine, rootDir, filepath.Join(rootDir, "data")} {
		must(t, os.MkdirAll(d, 0o755))
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	must(t, os.Chmod(secret, 0o700))
	must(t, os.WriteFile(filepath.Join(secret, "file"), []byte("chos-secret-content\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(rootDir, "data", "file"), []byte("chos-public-content\n"), 0o644))
	must(t, os.Chown(mine, h.uid, h.gid))
	// What the attacker does in their own directory: links to root's
	// secret and to a tree.
	for link, target := range map[string]string{"data": secret, "tree": h.trees["two"]} {
		must(t, os.Symlink(target, filepath.Join(mine, link)))
		must(t, os.Lchown(filepath.Join(mine, link), h.uid, h.gid))
	}
	// Control: the link really leads root to the secret.
	if data, err := os.ReadFile(filepath.Join(mine, "data", "file")); err != nil || !strings.Contains(string(data), "chos-secret") {
		t.Fatalf("control: root cannot read the secret through the attacker's link (%v); the test cannot fail", err)
	}

	cases := []struct {
		name   string
		config string
		argv   []string
		status int
		fault  string // the path the refusal must name
	}{
		{"control: a bind through root's directories", "%TREE one\nbind = " + rootDir + "/data /chos-data\n",
			[]string{"exec", "one", "cat", "/chos-data/file"}, 0, ""},
		{"bind source through a user's directory", "%TREE one\nbind = " + mine + "/data /chos-data\n",
			[]string{"exec", "one", "cat", "/chos-data/file"}, 125, mine},
		{"site bind through a user's directory", "%BIND\n" + mine + "/data /chos-data\n",
			[]string{"exec", "one", "cat", "/chos-data/file"}, 125, mine},
		{"optional bind through a user's directory is skipped", "%TREE one\nbind = " + mine + "/data /chos-data optional\n",
			[]string{"exec", "one", "sh", "-c", "cat /chos-data/file; true"}, 0, ""},
		{"tree through a user's directory", "evil:" + mine + "/tree\n",
			[]string{"exec", "evil", "cat", "/etc/os-release"}, 125, mine},
	}
	for _, c := range cases {
		for _, fresh := range []bool{false, true} {
			name := c.name
			args := c.argv
			if fresh {
				name += " (fresh)"
				args = append([]string{args[0], "--fresh"}, args[1:]...)
			}
			t.Run(name, func(t *testing.T) {
				cfg := h.configText
				if strings.HasPrefix(c.config, "%") {
					cfg += c.config
				} else {
					cfg = strings.Replace(cfg, "local:/\n", "local:/\n"+c.config, 1)
				}
				setConfig(t, cfg)
				r := chos(t, args...)
				if strings.Contains(r.stdout, "chos-secret") {
					t.Fatalf("root's secret was shown to the user:\n%s", r)
				}
				wantStatus(t, r, c.status)
				if c.fault != "" && !strings.Contains(r.stderr, c.fault+" is owned by uid "+strconv.Itoa(h.uid)) {
					t.Errorf("the refusal does not name %s as the user's:\n%s", c.fault, r)
				}
				if strings.HasPrefix(c.name, "control") && !strings.Contains(r.stdout, "chos-public-content") {
					t.Errorf("control: the bind through root's directories did not work:\n%s", r)
				}
			})
		}
	}

	t.Run("chos check reports it", func(t *testing.T) {
		setConfig(t, h.configText+"%TREE one\nbind = "+mine+"/data /chos-data\n")
		r := chos(t, "check", "one")
		wantStatus(t, r, 1)
		if !strings.Contains(r.stdout, "FAIL") || !strings.Contains(r.stdout, mine+" is owned by uid") {
			t.Errorf("chos check does not report the untrusted bind:\n%s", r)
		}
	})
}

// A bind's destination may lie below a host directory users write to (a
// site binding into /tmp, or into a scratch file system): a user's link
// there must not move root's mount onto another file of the view, which
// every user of the cached view would then see. Here the attacker makes
// the destination's directory, then the destination itself, a link to
// /etc; the launch is refused (the bind is required), and another user's
// /etc/passwd is the host's. Control: a plain directory there, made by the
// same user, gets the bind.
func TestBindDestinationNeverFollowsAUsersLink(t *testing.T) {
	victim := otherUser(t)
	src := filepath.Join(h.base, unique(t)+"-src")
	must(t, os.MkdirAll(src, 0o755))
	t.Cleanup(func() { os.RemoveAll(src) })
	must(t, writeRootFile(filepath.Join(src, "passwd"), "chos-bound-content\n", 0o644))
	place := filepath.Join("/tmp", unique(t)) // /tmp: a default bind, anyone's to write
	t.Cleanup(func() { os.RemoveAll(place) })
	cases := []struct {
		name, dest string
		attack     func(t *testing.T) // what the user makes at place
		refused    bool
	}{
		{"control: a directory of the user's", place + "/sub/passwd", func(t *testing.T) {
			run(t, call{Args: []string{"sh", "-c", "mkdir -p " + place + "/sub && : > " + place + "/sub/passwd"}})
		}, false},
		{"the destination's directory is a link", place + "/sub/passwd", func(t *testing.T) {
			run(t, call{Args: []string{"sh", "-c", "mkdir -p " + place + " && ln -s /etc " + place + "/sub"}})
		}, true},
		{"the destination is a link", place + "/sub", func(t *testing.T) {
			run(t, call{Args: []string{"sh", "-c", "mkdir -p " + place + " && ln -s /etc " + place + "/sub"}})
		}, true},
	}
	for _, c := range cases {
		for _, fresh := range []bool{false, true} {
			name := c.name
			args := []string{"exec", "one", "sh", "-c", "cat /etc/passwd " + place + "/sub/passwd"}
			if fresh {
				name += " (fresh)"
				args = append([]string{"exec", "--fresh"}, args[1:]...)
			}
			t.Run(name, func(t *testing.T) {
				emptyCache(t)
				os.RemoveAll(place)
				c.attack(t)
				source := filepath.Join(src, "passwd")
				if !strings.HasSuffix(c.dest, "/passwd") {
					source = src
				}
				setConfig(t, h.configText+"%TREE one\nbind = "+source+" "+c.dest+"\n")
				r := chos(t, args...)
				if c.refused {
					wantStatus(t, r, 125)
					if !strings.Contains(r.stderr, "symbolic link") {
						t.Errorf("the refusal does not name the link:\n%s", r)
					}
				} else if wantStatus(t, r, 0) && !strings.Contains(r.stdout, "chos-bound-content") {
					t.Errorf("control: the bind did not land in the user's directory:\n%s", r)
				}
				vr := run(t, call{User: victim, Args: append([]string{h.chos}, args...)})
				if strings.Contains(vr.stdout, "chos-bound-content\n") && !strings.Contains(vr.stdout, "root:") {
					t.Errorf("another user's /etc/passwd is the bound file:\n%s", vr)
				}
			})
		}
	}
}

// What the setuid chos creates has the modes chos chose, whatever umask the
// user who happens to launch first has.
func TestCacheModesDoNotDependOnTheFirstLaunchersUmask(t *testing.T) {
	bystander := otherUser(t) // first: making a user rewrites /etc/passwd, which the view's key covers
	emptyCache(t)
	must(t, os.RemoveAll(h.cacheDir))
	// Control: the umask is in effect for what the user creates.
	r := run(t, call{Args: []string{"sh", "-c", "umask 0777; rm -f umask-probe; touch umask-probe; stat -c %a umask-probe; rm -f umask-probe"}})
	if strings.TrimSpace(r.stdout) != "0" {
		t.Fatalf("control: a file made under umask 0777 has mode %q, want 0; the test cannot fail", r.stdout)
	}
	r = run(t, call{Args: []string{"sh", "-c", "umask 0777; exec " + h.chos + " exec one true"}})
	wantStatus(t, r, 0)
	for p, want := range map[string]os.FileMode{
		h.cacheDir:                                 0o755,
		filepath.Join(h.cacheDir, "ns"):            0o755,
		hostCacheDir(t):                            0o755,
		hostCacheDir(t) + ".lock":                  0o600,
		filepath.Join(hostCacheDir(t), "one.lock"): 0o600,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if fi.Mode().Perm() != want || fi.Sys().(*syscall.Stat_t).Uid != 0 {
			t.Errorf("%s: mode %04o uid %d, want %04o and root's", p, fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Uid, want)
		}
	}
	r = run(t, call{User: bystander, Args: []string{h.chos, "cache", "list"}})
	wantStatus(t, r, 0)
	if !strings.Contains(r.stdout, "valid") {
		t.Errorf("another user's `chos cache list` does not show the cached view:\n%s", r)
	}
	wantStatus(t, run(t, call{User: bystander, Args: []string{h.chos, "check"}}), 0)
}

// optProbe makes /opt/probe in the test tree named tree, which must have
// no /opt, removed after the test; it returns its path on the host.
func optProbe(t *testing.T, tree string) string {
	t.Helper()
	dir := filepath.Join(h.trees[tree], "opt")
	if _, err := os.Lstat(dir); err == nil {
		t.Fatalf("%s exists already", dir)
	}
	must(t, os.MkdirAll(filepath.Join(dir, "probe"), 0o755))
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "probe")
}

// `setuid = allow` makes the tree's setuid-root programs give root, as on
// the host, and lets chos itself switch trees from inside it with root's
// rights (exact groups); a tree without it gives neither.
func TestSetuidAllowTreeGivesItsSetuidProgramsRoot(t *testing.T) {
	setConfig(t, h.configText+"%TREE three\nsetuid = allow\n")
	probe := buildTestProgram(t, t.TempDir(), "capprobe")
	for _, tree := range []string{"one", "three"} {
		copyFile(t, probe, filepath.Join(optProbe(t, tree), "capprobe"), os.ModeSetuid|0o755)
	}
	parse := func(out string) map[string]string {
		m := map[string]string{}
		for _, l := range strings.Split(out, "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				m[k] = v
			}
		}
		return m
	}
	for _, fresh := range []string{"", "--fresh"} {
		args := func(tree string) []string {
			a := []string{"exec"}
			if fresh != "" {
				a = append(a, fresh)
			}
			return append(a, tree, "/opt/probe/capprobe")
		}
		r := chos(t, args("three")...)
		wantStatus(t, r, 0)
		got := parse(r.stdout)
		if got["euid"] != "0" || allZero(got["CapEff"]) || got["CapEff"] != got["CapBnd"] || got["NoNewPrivs"] != "0" {
			t.Errorf("setuid-root program in a setuid = allow tree %s: %v, want euid 0 with every capability of the bounding set:\n%s", fresh, got, r)
		}
		// Control: the same program in a tree without it.
		r = chos(t, args("one")...)
		wantStatus(t, r, 0)
		got = parse(r.stdout)
		if got["euid"] != strconv.Itoa(h.uid) || !allZero(got["CapEff"]) || got["NoNewPrivs"] != "1" {
			t.Errorf("control: setuid-root program in tree one %s: %v, want the user's euid, no capability, no_new_privs:\n%s", fresh, got, r)
		}
	}

	// From inside the setuid = allow tree, chos switches trees with root's
	// rights: the user's exact groups, not the overflow group of a user
	// namespace.
	r := chos(t, "exec", "three", "/.chos/bin/chos", "exec", "two", "sh", "-c", "cat /etc/os-release; echo groups=$(id -G); /.chos/bin/chos current")
	wantStatus(t, r, 0)
	if got := parseOSRelease(r.stdout)["ID"]; got != h.osIDs["two"] {
		t.Errorf("switching from three to two: os-release ID %q:\n%s", got, r)
	}
	if !strings.Contains(r.stdout, "\ntwo\n") && !strings.HasSuffix(r.stdout, "two\n") {
		t.Errorf("chos current inside does not say two:\n%s", r)
	}
	if strings.Contains(r.stdout, "65534") {
		t.Errorf("switching from a setuid = allow tree went through a user namespace (overflow group shown):\n%s", r)
	}
}

// The root builder of a shared view does not keep what its launcher's
// user gave it to slow it or to reach it: an idle scheduling class, a nice
// value, a narrow CPU affinity, an idle I/O class, a high OOM score,
// descriptors left open across exec. The control is the user's own chos,
// which keeps them all.
func TestViewBuilderDropsTheLaunchersSchedulingAndDescriptors(t *testing.T) {
	lock := holdBuildLock(t) // the builder waits here, for us to look at it
	defer lock.Close()
	// The user's launch runs in a cgroup of its own (as a delegated one
	// would be), which the builder must leave.
	cg, line := launchCgroup(t)
	att := start(t, call{Root: true, Args: []string{"bash", "-c", "echo $$ > " + cg + "/cgroup.procs && exec 77</dev/null && " +
		"exec setpriv --reuid=" + strconv.Itoa(h.uid) + " --regid=" + strconv.Itoa(h.gid) + " --init-groups taskset -c 0 chrt -i 0 nice -n 19 ionice -c 3 choom -n 900 -- " + h.chos + " exec one true"}})
	waited := false
	defer func() {
		if !waited {
			lock.Close()
			att.wait(promptly)
		}
	}()

	var builder int
	deadline := time.Now().Add(promptly)
	for builder == 0 && time.Now().Before(deadline) {
		if pids := pidsRunning("chos", "__chos_build_view"); len(pids) > 0 {
			builder = pids[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	if builder == 0 {
		t.Fatal("no view builder started")
	}
	// It detaches before it takes the tree's lock: look once it waits for
	// ours (on a busy machine an idle-class process may take a while).
	for until := time.Now().Add(time.Minute); !waitsOnLock(t, builder) && time.Now().Before(until); {
		time.Sleep(10 * time.Millisecond)
	}
	launcher := 0
	for _, pid := range pidsRunning(h.chos, "exec", "one", "true") {
		launcher = pid
	}
	cgroupOf := func(pid int) string {
		for _, l := range strings.Split(readFile(t, "/proc/"+strconv.Itoa(pid)+"/cgroup"), "\n") {
			if i := strings.Index(l, line); i >= 0 && (line != "0::" || i == 0) {
				return l[i+len(line):]
			}
		}
		return "?"
	}
	want := "/" + filepath.Base(cg)
	if got := cgroupOf(launcher); got != want {
		t.Errorf("control: the user's chos is in cgroup %q, want %q", got, want)
	}
	if got := cgroupOf(builder); got != "/" {
		t.Errorf("the builder stayed in cgroup %q (want the root cgroup)", got)
	}
	look := func(pid int) (nice, policy string, fd77 bool, cpus string) {
		f := strings.Fields(readFile(t, "/proc/"+strconv.Itoa(pid)+"/stat")[strings.LastIndexByte(readFile(t, "/proc/"+strconv.Itoa(pid)+"/stat"), ')')+2:])
		_, err := os.Lstat("/proc/" + strconv.Itoa(pid) + "/fd/77")
		for _, l := range strings.Split(readFile(t, "/proc/"+strconv.Itoa(pid)+"/status"), "\n") {
			if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
				cpus = strings.TrimSpace(v)
			}
		}
		// fields after the command: state is f[0]; nice is field 19, policy 41
		return f[16], f[38], err == nil, cpus
	}
	if nice, policy, fd77, cpus := look(launcher); launcher == 0 || nice != "19" || policy != "5" || !fd77 || cpus != "0" {
		t.Fatalf("control: the user's chos (pid %d) has nice %s, policy %s, fd 77 %v, CPUs %s; the test cannot fail", launcher, nice, policy, fd77, cpus)
	}
	nice, policy, fd77, cpus := look(builder)
	if nice != "0" || policy != "0" || fd77 || (cpus == "0" && runtime.NumCPU() > 1) {
		t.Errorf("the builder has nice %s, policy %s, fd 77 %v, CPUs %s; want 0, 0 (SCHED_OTHER), no fd 77, every CPU", nice, policy, fd77, cpus)
	}
	// The I/O class and the OOM score: idle and 900 for the user's chos
	// (the control), none and 0 for the builder.
	io := func(pid int) string {
		return strings.TrimSpace(run(t, call{Root: true, Args: []string{"ionice", "-p", strconv.Itoa(pid)}}).stdout)
	}
	oom := func(pid int) string {
		return strings.TrimSpace(readFile(t, "/proc/"+strconv.Itoa(pid)+"/oom_score_adj"))
	}
	if io(launcher) != "idle" || oom(launcher) != "900" {
		t.Errorf("control: the user's chos has I/O class %q and oom_score_adj %s, want idle and 900", io(launcher), oom(launcher))
	}
	if got := io(builder); !strings.HasPrefix(got, "none") || oom(builder) != "0" {
		t.Errorf("the builder has I/O class %q and oom_score_adj %s, want none and 0", got, oom(builder))
	}
	// and, the lock free, it builds the view: the launch completes
	lock.Close()
	waited = true
	wantStatus(t, att.wait(promptly), 0)
}

// waitsOnLock says whether pid waits for a file lock (a blocked request in
// /proc/locks: "N: -> FLOCK ADVISORY WRITE PID ...").
func waitsOnLock(t *testing.T, pid int) bool {
	for _, l := range strings.Split(readFile(t, "/proc/locks"), "\n") {
		if f := strings.Fields(l); len(f) > 5 && f[1] == "->" && f[5] == strconv.Itoa(pid) {
			return true
		}
	}
	return false
}

// launchCgroup makes a cgroup for a test's launch, in the freezer hierarchy
// (cgroup v1) or the unified one, and removes it after the test. It returns
// its directory and the prefix of its line in /proc/PID/cgroup.
func launchCgroup(t *testing.T) (dir, line string) {
	t.Helper()
	for _, c := range []struct{ base, line string }{
		{"/sys/fs/cgroup/freezer", ":freezer:"},
		{"/sys/fs/cgroup/unified", "0::"},
		{"/sys/fs/cgroup", "0::"},
	} {
		if _, err := os.Stat(filepath.Join(c.base, "cgroup.procs")); err != nil {
			continue
		}
		if c.line == "0::" {
			if _, err := os.Stat(filepath.Join(c.base, "cgroup.controllers")); err != nil {
				continue // a v1 hierarchy's directory, not the unified one
			}
		}
		dir = filepath.Join(c.base, "chos-itest-"+strconv.Itoa(os.Getpid()))
		must(t, os.Mkdir(dir, 0o755))
		t.Cleanup(func() {
			err := os.Remove(dir)
			for i := 0; i < 100 && err != nil; i++ {
				time.Sleep(20 * time.Millisecond) // until its processes are gone
				err = os.Remove(dir)
			}
			if err != nil {
				t.Errorf("removing the test's cgroup: %v", err)
			}
		})
		return dir, c.line // ("N:freezer:/path" in v1, "0::/path" in v2)
	}
	t.Fatal("no cgroup hierarchy to put a launch in (/sys/fs/cgroup)")
	return "", ""
}
