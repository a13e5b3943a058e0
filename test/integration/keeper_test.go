package integration

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// In user-namespace mode a view is kept by a process of the user's (a
// keeper) and joined by the user's later launches of it (README: "User
// namespaces"); the keeper ends keeperIdle after the last launch ended.

// keeperIdle is nsroot.KeeperIdle; keeperGone bounds how long after the
// last launch a keeper may still be seen.
const (
	keeperIdle = 10 * time.Second
	keeperGone = keeperIdle + 5*time.Second
)

// keeper is a keeper process: its pid, parent and view's mount namespace.
type keeper struct {
	pid, ppid int
	tree, ns  string
}

// keepersOf lists uid's keepers.
func keepersOf(uid int) []keeper {
	var out []keeper
	for _, pid := range processes(func(pid int, read func(string) (string, bool)) bool {
		cmdline, ok := read("cmdline")
		status, ok2 := read("status")
		args := strings.Split(cmdline, "\x00")
		return ok && ok2 && len(args) > 2 && args[1] == "__chos_userns_keeper" &&
			strings.Contains(status, fmt.Sprintf("\nUid:\t%d\t", uid))
	}) {
		k := keeper{pid: pid}
		k.ns, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
		// (Read again: a keeper that ended meanwhile shows no command line.)
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
			if args := strings.Split(string(cmdline), "\x00"); len(args) > 2 {
				k.tree = args[2]
			}
		}
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if i := strings.LastIndexByte(string(stat), ')'); i >= 0 {
				if f := strings.Fields(string(stat[i+1:])); len(f) > 1 {
					k.ppid, _ = strconv.Atoi(f[1])
				}
			}
		}
		if k.ns != "" {
			out = append(out, k)
		}
	}
	return out
}

// keptViews are the mount namespaces uid's keepers of tree keep.
func keptViews(uid int, tree string) map[string]bool {
	views := map[string]bool{}
	for _, k := range keepersOf(uid) {
		if k.tree == tree {
			views[k.ns] = true
		}
	}
	return views
}

// waitNoKeepers waits until uid has no keeper left, nor a keeper's
// socket (an ending process's files go after its command line): nothing
// of a user's launches stays longer than keeperIdle after the last one.
func waitNoKeepers(uid int) error {
	if !waitFor(keeperGone, func() bool { return len(keepersOf(uid))+len(keeperAddressesOf(uid)) == 0 }) {
		return fmt.Errorf("keepers of uid %d still run %v after the last launch: %+v %v", uid, keeperGone, keepersOf(uid), keeperAddressesOf(uid))
	}
	return nil
}

// endKeepers is waitNoKeepers before a user is removed: keepers that
// outlive keeperGone are reported, and so is any other process of the
// user's still running 10 s later (a keeper's image server ends just
// after it); then they are killed, so that the user does not stay on the
// machine for them.
func endKeepers(uid int) error {
	err := waitNoKeepers(uid)
	of := func() []int {
		return processes(func(pid int, read func(string) (string, bool)) bool {
			status, ok := read("status")
			return ok && strings.Contains(status, fmt.Sprintf("\nUid:\t%d\t", uid)) && alive(pid)
		})
	}
	if waitFor(10*time.Second, func() bool { return len(of()) == 0 }) {
		return err
	}
	var left []string
	for _, pid := range of() {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		left = append(left, fmt.Sprintf("%d %q", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
		syscall.Kill(pid, syscall.SIGKILL)
	}
	waitFor(5*time.Second, func() bool { return len(of()) == 0 })
	return errors.Join(err, fmt.Errorf("processes of uid %d left running: %s", uid, strings.Join(left, "; ")))
}

// keeperAddresses are the abstract socket names of uid's keepers.
func keeperAddresses(t testing.TB, uid int) []string {
	t.Helper()
	if _, err := os.Stat("/proc/net/unix"); err != nil {
		t.Fatal(err)
	}
	return keeperAddressesOf(uid)
}

func keeperAddressesOf(uid int) []string {
	data, _ := os.ReadFile("/proc/net/unix")
	prefix := fmt.Sprintf("@chos-userns/%d/", uid)
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		// (listening sockets: flags __SO_ACCEPTCON; accepted ones share the name)
		if f := strings.Fields(l); len(f) == 8 && f[3] == "00010000" && strings.HasPrefix(f[7], prefix) {
			out = append(out, f[7])
		}
	}
	sort.Strings(out)
	return out
}

// usernsNS is the mount namespace a userns launch of args runs in.
func usernsNS(t testing.TB, args ...string) string {
	t.Helper()
	r := run(t, call{Args: append(append([]string{h.chosUserns}, args...), "readlink", "/proc/self/ns/mnt")})
	if !wantStatus(t, r, 0) {
		return ""
	}
	return strings.TrimSpace(r.stdout)
}

// viewShape is a view's mount table without what differs between two
// builds of the same view (mount ids, devices of new file systems, the
// descriptors an overlay's layers were given by).
func viewShape(mountinfo string) []string {
	var out []string
	fds := regexp.MustCompile(`/proc/self/fd/[0-9]+`)
	for _, l := range strings.Split(strings.TrimSpace(fds.ReplaceAllString(mountinfo, "/proc/self/fd/N")), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 6 || len(g) < 3 {
			out = append(out, l)
			continue
		}
		// mount point, its options; type, source, super options
		out = append(out, strings.Join([]string{f[4], f[5], g[0], g[1], g[2]}, " "))
	}
	sort.Strings(out)
	return out
}

func TestUsernsLaunchesJoinTheViewTheirKeeperKeeps(t *testing.T) {
	first := usernsNS(t, "exec", "one")
	second := usernsNS(t, "exec", "one")
	if first == "" || first != second {
		t.Errorf("two userns launches of one ran in mount namespaces %q and %q, want the kept one", first, second)
	}
	if !keptViews(h.uid, "one")[first] {
		t.Errorf("the launches ran in %s, which no keeper of the user keeps: %+v", first, keepersOf(h.uid))
	}
	// Control: --fresh builds a view of its own.
	if fresh := usernsNS(t, "exec", "--fresh", "one"); fresh == "" || fresh == first {
		t.Errorf("--fresh ran in %q, want a namespace other than the kept %s", fresh, first)
	}
	if other := usernsNS(t, "exec", "two"); other == first {
		t.Errorf("tree two ran in tree one's kept view %s", first)
	}

	t.Run("the view is the one a fresh launch builds", func(t *testing.T) {
		script := "cat /proc/self/mountinfo; echo; ls -la / /etc; cat /etc/passwd /etc/group /etc/os-release"
		kept := run(t, call{Args: []string{h.chosUserns, "exec", "one", "sh", "-c", script}})
		fresh := run(t, call{Args: []string{h.chosUserns, "exec", "--fresh", "one", "sh", "-c", script}})
		if !wantStatus(t, kept, 0) || !wantStatus(t, fresh, 0) {
			return
		}
		km, krest, _ := strings.Cut(kept.stdout, "\n\n")
		fm, frest, _ := strings.Cut(fresh.stdout, "\n\n")
		onlyKept, onlyFresh := lineDiff(strings.Join(viewShape(km), "\n"), strings.Join(viewShape(fm), "\n"))
		if len(onlyKept)+len(onlyFresh) > 0 {
			t.Errorf("the kept view's mounts differ from a fresh view's:\nonly kept: %q\nonly fresh: %q", onlyKept, onlyFresh)
		}
		// (dates and link counts of / aside, the listings are the same)
		strip := func(s string) []string {
			var out []string
			for _, l := range strings.Split(s, "\n") {
				if f := strings.Fields(l); len(f) >= 9 {
					l = strings.Join(append([]string{f[0], f[2], f[3]}, f[8:]...), " ")
				}
				out = append(out, l)
			}
			return out
		}
		if k, f := strip(krest), strip(frest); strings.Join(k, "\n") != strings.Join(f, "\n") {
			t.Errorf("the kept view shows other files than a fresh one:\nkept:\n%s\nfresh:\n%s", krest, frest)
		}
		// Control: the shape tells two trees apart.
		if a, b := viewShape(km), viewShape(strings.ReplaceAll(km, "chos:one", "chos:two")); strings.Join(a, "\n") == strings.Join(b, "\n") {
			t.Errorf("control: the mount tables of two trees compare equal")
		}
	})

	t.Run("the keeper is not the launch's child", func(t *testing.T) {
		waitNoKeepers(h.uid)
		b := start(t, call{Args: []string{h.chosUserns, "exec", "one", "sh", "-c", "echo ready; exec sleep 1000"}})
		if !b.waitLine("ready", 10*time.Second) {
			return
		}
		ks := keepersOf(h.uid)
		if len(ks) != 1 {
			t.Fatalf("keepers of the user after the first launch: %+v, want one", ks)
		}
		if ks[0].ppid == b.pid {
			t.Errorf("the keeper %d is a child of the launch %d", ks[0].pid, b.pid)
		}
		if kids := commandsOf(b.pid); len(kids) != 1 {
			t.Errorf("the launch %d has children %v, want only its command (and its signal witness)", b.pid, kids)
		}
	})

	t.Run("the keeper holds none of the caller's descriptors", func(t *testing.T) {
		waitNoKeepers(h.uid)
		// The launch that starts the keeper writes to a pipe the caller
		// reads to its end: the end comes when the command ends.
		for _, c := range []struct {
			name    string
			command string
			late    bool
		}{
			{"first launch", "true", false},
			// Control: a process that does hold the pipe delays its end.
			{"control: a background job holds it", "sleep 6 & true", true},
		} {
			t.Run(c.name, func(t *testing.T) {
				began := time.Now()
				r := run(t, call{Args: []string{"sh", "-c", "out=$(" + h.chosUserns + " exec one sh -c '" + c.command + "'); echo done"}})
				wantStatus(t, r, 0)
				if late := time.Since(began) > 5*time.Second; late != c.late {
					t.Errorf("the caller's pipe ended after %v (late: %v, want %v):\n%s", time.Since(began), late, c.late, r)
				}
			})
		}
	})
}

func TestKeptViewsAreTheirUsersOnly(t *testing.T) {
	other := otherUser(t)
	mine := usernsNS(t, "exec", "one")
	r := run(t, call{User: other, Args: []string{h.chosUserns, "exec", "one", "readlink", "/proc/self/ns/mnt"}})
	wantStatus(t, r, 0)
	if theirs := strings.TrimSpace(r.stdout); theirs == "" || theirs == mine {
		t.Errorf("another user's launch ran in %q, the test user's kept view is %s", theirs, mine)
	}
	if ks := keepersOf(other.uid); len(ks) == 0 {
		t.Errorf("the other user's launch left no keeper of their own")
	}
	usernsNS(t, "exec", "one") // (the test user's keeper is alive)
	addrs := keeperAddresses(t, h.uid)
	if len(addrs) == 0 {
		t.Fatalf("no keeper socket of uid %d in /proc/net/unix", h.uid)
	}
	client := buildTestProgram(t, t.TempDir(), "keeperclient")
	must(t, os.Chmod(filepath.Dir(client), 0o755))
	for _, c := range []struct {
		name string
		user *testUser
		want string
	}{
		{"another user gets nothing", other, "nothing"},
		{"control: the user gets the namespaces", nil, "namespaces 2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, call{User: c.user, Args: []string{client, addrs[0]}})
			wantStatus(t, r, 0)
			if got := strings.TrimSpace(r.stdout); got != c.want {
				t.Errorf("connecting to %s: %q, want %q", addrs[0], got, c.want)
			}
		})
	}
}

func TestKeeperEndsAfterTheUsersLastLaunch(t *testing.T) {
	if err := waitNoKeepers(h.uid); err != nil {
		t.Fatal(err)
	}
	b := start(t, call{Args: []string{h.chosUserns, "exec", "one", "sh", "-c", "echo ready; exec sleep 1000"}})
	if !b.waitLine("ready", 10*time.Second) {
		return
	}
	// A second launch while the first runs joins it, and ends.
	usernsNS(t, "exec", "one")
	// Control: while a launch runs, the view is kept past keeperIdle.
	time.Sleep(keeperIdle + 2*time.Second)
	if ks := keepersOf(h.uid); len(ks) != 1 {
		t.Errorf("while a launch runs, %d keepers (want 1): %+v", len(ks), ks)
	}
	if addrs := keeperAddresses(t, h.uid); len(addrs) != 1 {
		t.Errorf("while a launch runs, keeper sockets %v, want one", addrs)
	}
	must(t, syscall.Kill(b.pid, syscall.SIGTERM))
	b.wait(10 * time.Second)
	began := time.Now()
	if err := waitNoKeepers(h.uid); err != nil {
		t.Error(err)
	} else if gone := time.Since(began); gone < keeperIdle-time.Second {
		t.Errorf("the keeper ended %v after the last launch, before keeperIdle (%v)", gone, keeperIdle)
	}
	if addrs := keeperAddresses(t, h.uid); len(addrs) != 0 {
		t.Errorf("keeper sockets left: %v", addrs)
	}
}

// Another user who takes a keeper's name first (abstract names are first
// come, first served, and /proc/net/unix lists them all) and listens with
// a full queue, never accepting, must cost the user's launches no more
// than the view a fresh launch builds: a blocking connect would wait for
// room in that queue forever.
func TestAnotherUserCannotStallLaunchesBySquattingAKeeper(t *testing.T) {
	other := otherUser(t)
	if err := waitNoKeepers(h.uid); err != nil {
		t.Fatal(err)
	}
	usernsNS(t, "exec", "one")
	addrs := keeperAddresses(t, h.uid)
	if len(addrs) != 1 {
		t.Fatalf("keeper sockets of uid %d after one launch: %v, want one", h.uid, addrs)
	}
	addr := addrs[0]
	if err := waitNoKeepers(h.uid); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	must(t, os.Chmod(dir, 0o755))
	squatter := buildTestProgram(t, dir, "keepersquatter")
	client := buildTestProgram(t, dir, "keeperclient")
	s := start(t, call{User: other, Args: []string{squatter, addr}})
	if !s.waitLine("ready", 10*time.Second) {
		return
	}
	// Control: a plain (blocking) connect to the name, as the user's
	// launches made it, waits.
	c := start(t, call{Args: []string{client, addr}})
	select {
	case <-c.done:
		t.Errorf("control: a blocking connect to the squatted %s returned: %s", addr, c.result())
	case <-time.After(3 * time.Second):
	}
	began := time.Now()
	l := start(t, call{Args: []string{h.chosUserns, "exec", "one", "readlink", "/proc/self/ns/mnt"}})
	r := l.wait(20 * time.Second)
	if took := time.Since(began); r.status != 0 || took > 10*time.Second || !strings.HasPrefix(r.stdout, "mnt:") {
		t.Errorf("a launch of the user while uid %d squats %s took %v:\n%s", other.uid, addr, took, r)
	}
	if ks := keepersOf(h.uid); len(ks) != 0 {
		t.Errorf("the user has keepers %+v, though the name was taken", ks)
	}
}

// Only the user can enter their kept view: another user can neither open
// the keeper's namespaces through /proc nor join them (setns needs
// CAP_SYS_ADMIN in the keeper's user namespace, which only its owner has).
// Control: the user themselves enters it so.
func TestAnotherUserCannotEnterAKeptView(t *testing.T) {
	other := otherUser(t)
	b := start(t, call{Args: []string{h.chosUserns, "exec", "one", "sh", "-c", "readlink /proc/self/ns/mnt; exec sleep 1000"}})
	var view string
	select {
	case view = <-b.lines:
	case <-time.After(10 * time.Second):
		t.Fatalf("the launch printed nothing:\n%s", b.result())
	}
	ks := keepersOf(h.uid)
	if len(ks) != 1 || ks[0].ns != view {
		t.Fatalf("keepers of the user: %+v, want one keeping %s", ks, view)
	}
	pid := strconv.Itoa(ks[0].pid)
	enter := []string{"nsenter", "-t", pid, "-U", "-m", "--preserve-credentials", "readlink", "/proc/self/ns/mnt"}
	for _, c := range []struct {
		name string
		user *testUser
		in   bool
	}{
		{"another user", other, false},
		{"control: the user", nil, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, call{User: c.user, Args: enter})
			if in := r.status == 0 && strings.TrimSpace(r.stdout) == view; in != c.in {
				t.Errorf("entered the kept view %s: %v, want %v:\n%s", view, in, c.in, r)
			}
		})
	}
}
