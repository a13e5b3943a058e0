package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Image trees: a tree path naming a squashfs image file (README: "Image
// trees"). Images are built here with mksquashfs from busybox trees and from
// the debootstrapped Debian tree.

// imageTree builds a squashfs image of a fresh busybox tree whose os-release
// has a unique ID (returned), so that what a launch shows can only come
// from this image.
func imageTree(t *testing.T) (img, id string) {
	t.Helper()
	id = "chosimage" + randHex(4)
	src := filepath.Join(h.base, unique(t)+"-src")
	defer os.RemoveAll(src)
	if out, err := runSetup(2*time.Minute, h.repo, "scripts/mkbusyboxtree", src, id, "Chos Image "+id); err != nil {
		t.Fatalf("mkbusyboxtree: %v\n%s", err, out)
	}
	return squashImage(t, src), id
}

// withImageTrees adds name:path lines to the configuration for one test.
func withImageTrees(t *testing.T, trees ...string) {
	t.Helper()
	text := h.configText
	for i := 0; i+1 < len(trees); i += 2 {
		text += trees[i] + ":" + trees[i+1] + "\n"
	}
	setConfig(t, text)
}

// afterImages drops the cache at the end of the test and checks that no
// loop device of the images is left.
func afterImages(t *testing.T, imgs ...string) {
	t.Helper()
	t.Cleanup(func() {
		emptyCache(t)
		for _, img := range imgs {
			wantNoLoopDevices(t, img)
		}
	})
}

// fuseForUsers lets unprivileged users open /dev/fuse for the rest of the
// run, as udev does on most systems (0666); the mode it had is restored at
// the end. Userns mode needs it to mount images with squashfuse.
var fuseMode struct {
	once sync.Once
	err  error
}

func fuseForUsers(t *testing.T) {
	t.Helper()
	fuseMode.once.Do(func() {
		var st unix.Stat_t
		if fuseMode.err = unix.Stat("/dev/fuse", &st); fuseMode.err != nil {
			return
		}
		mode := st.Mode & 0o7777
		if mode&0o006 == 0o006 {
			return
		}
		if fuseMode.err = atExit(func() error { return os.Chmod("/dev/fuse", os.FileMode(mode)) }); fuseMode.err != nil {
			return
		}
		fuseMode.err = os.Chmod("/dev/fuse", 0o666)
	})
	if fuseMode.err != nil {
		t.Fatalf("/dev/fuse (module fuse): %v", fuseMode.err)
	}
}

// imageMount is the file system type of what a launch shows at
// /.chos/image ("" if nothing is mounted there).
func imageMount(t *testing.T, c call) string {
	t.Helper()
	c.Args = append(c.Args, "cat", "/proc/self/mountinfo")
	r := run(t, c)
	if !wantStatus(t, r, 0) {
		return ""
	}
	for _, l := range strings.Split(r.stdout, "\n") {
		f := strings.Fields(l)
		for i, x := range f {
			if x == "-" && i+1 < len(f) && len(f) > 4 && f[4] == "/.chos/image" {
				return f[i+1]
			}
		}
	}
	return ""
}

func TestImageTreeShowsTheImagesOSInEveryLaunchKind(t *testing.T) {
	needLoopSquashfs(t)
	fuseForUsers(t)
	img, id := imageTree(t)
	deb := squashImage(t, debianTree(t))
	withImageTrees(t, "img", img, "debimg", deb)
	afterImages(t, img, deb)
	debVersion, err := os.ReadFile(filepath.Join(debianTree(t), "etc/debian_version"))
	must(t, err)
	// Control: nothing but the image has this ID, and the host is not Debian 11.
	if h.hostOSRelease["ID"] == id || strings.HasPrefix(h.hostOSRelease["VERSION_ID"], "11") {
		t.Fatalf("control: the host's os-release %v could pass for an image's", h.hostOSRelease)
	}
	for _, k := range launchKinds() {
		t.Run(k.name, func(t *testing.T) {
			wantOSID(t, run(t, call{Args: k.exec("img", "cat", "/etc/os-release")}), id)
			// Debian's /etc/os-release is a link to ../usr/lib/os-release.
			r := run(t, call{Args: k.exec("debimg", "sh", "-c", "cat /etc/os-release; cat /etc/debian_version; id -un")})
			if wantStatus(t, r, 0) {
				rel := parseOSRelease(r.stdout)
				if rel["ID"] != "debian" || rel["VERSION_ID"] != `11` || !strings.Contains(r.stdout, string(debVersion)) ||
					!strings.HasSuffix(r.stdout, h.user+"\n") {
					t.Errorf("the Debian image's view shows:\n%s", r)
				}
			}
			want := "squashfs"
			if k.userns {
				want = "fuse.squashfuse"
			}
			if got := imageMount(t, call{Args: k.exec("img")}); got != want {
				t.Errorf("/.chos/image is %q, want %q", got, want)
			}
			// The tree is read-only, whatever mounts it.
			r = run(t, call{Args: k.exec("img", "sh", "-c", "touch /usr/x 2>&1 || echo refused")})
			if !strings.Contains(r.stdout, "refused") {
				t.Errorf("the image is writable:\n%s", r)
			}
		})
	}
	if got := imageMount(t, call{Args: []string{h.chos, "exec", "one"}}); got != "" {
		t.Errorf("control: a directory tree's view has %q at /.chos/image", got)
	}
}

func TestImageTreeIsListedAndCheckedWithTheOSInsideIt(t *testing.T) {
	needLoopSquashfs(t)
	img, id := imageTree(t)
	plain := filepath.Join(h.base, unique(t)+".sqsh")
	must(t, writeRootFile(plain, "not an image\n", 0o644))
	defer os.Remove(plain)
	withImageTrees(t, "img", img, "plain", plain)
	afterImages(t, img)

	trees := listJSON(t, chosCall("list", "--json"))
	if got := trees["img"]; got.OS != "Chos Image "+id || !got.Usable {
		t.Errorf("chos list: the image tree is %+v, want OS %q, usable", got, "Chos Image "+id)
	}
	if got := trees["plain"]; got.Usable || !strings.Contains(got.Problem, "not a squashfs image") {
		t.Errorf("control: chos list calls a plain file %+v", got)
	}
	wantStatus(t, chos(t, "exec", "img", "true"), 0)
	r := chos(t, "check", "img")
	wantStatus(t, r, 0)
	var st unix.Stat_t
	must(t, unix.Stat("/dev/fuse", &st))
	if st.Mode&0o006 != 0o006 {
		// (setuid mode needs squashfuse only to switch from inside a tree)
		wantLinesStarting(t, r, "warn squashfuse: /usr/bin/squashfuse_ll is installed, but /dev/fuse is not usable by you")
		fuseForUsers(t)
		r = chos(t, "check", "img")
	}
	wantLinesStarting(t, r, "ok   loop devices: ", "ok   squashfs: ", "ok   squashfuse: /usr/bin/squashfuse_ll", "ok   loop devices held: img: loop",
		"ok   tree img: "+img+": Chos Image "+id,
		"ok   tree img image: "+img+": a squashfs image, root's and only root's to change; mounted: loop")
	if !strings.Contains(r.stdout, "cached view "+filepath.Join(hostCacheDir(t), "img.")) {
		t.Errorf("chos check does not name the cached view the image is mounted in:\n%s", r)
	}
	r = chos(t, "check", "plain")
	wantStatus(t, r, 1)
	wantLinesStarting(t, r, "FAIL tree plain: not a squashfs image: "+plain)
	// Inside the image tree, chos knows where it is.
	r = chos(t, "exec", "img", "chos", "current")
	if wantStatus(t, r, 0) && strings.TrimSpace(r.stdout) != "img" {
		t.Errorf("chos current inside the image tree: %s", r)
	}
	setDotfile(t, "img\n")
	wantOSID(t, chos(t, "exec", "--", "cat", "/etc/os-release"), id)
	// A login shell (its /bin/sh, and the tree's /etc/chos.conf, looked up
	// in the image) keeps chos on PATH through the image's /etc/profile.
	c := chosCall("shell")
	c.Stdin = []byte(`echo "0=$0 CHOS=$CHOS PATH=$PATH"; cat /etc/os-release` + "\n")
	r = run(t, c)
	if wantStatus(t, r, 0) && (!strings.Contains(r.stdout, "0=-sh CHOS=img PATH=") || !strings.Contains(r.stdout, "/.chos/bin") ||
		parseOSRelease(r.stdout)["ID"] != id) {
		t.Errorf("chos shell in the image tree:\n%s", r)
	}
	// sshd's ForceCommand finds the user's shell (/bin/sh) in the image:
	// no "your shell is not in tree" warning.
	c = chosCall("login")
	c.Env = []string{"SSH_ORIGINAL_COMMAND=cat /etc/os-release", "CHOS=img"}
	r = run(t, c)
	wantOSID(t, r, id)
	if r.stderr != "" {
		t.Errorf("chos login in the image tree warns:\n%s", r)
	}
	// chos plan shows the image mounted and its entries bound from it.
	r = chos(t, "plan", "img", "--", "true")
	if wantStatus(t, r, 0) && (!strings.Contains(r.stdout, "image     "+img+" -> /.chos/image  [ro,nosuid,nodev]") ||
		!strings.Contains(r.stdout, "bind      /.chos/image/usr -> /usr  [rec,ro,nosuid,nodev,nofollow,from the view]")) {
		t.Errorf("chos plan of the image tree:\n%s", r)
	}
}

// wantLinesStarting checks that, for each prefix, a line of r's stdout
// starts with it.
func wantLinesStarting(t testing.TB, r result, prefixes ...string) {
	t.Helper()
	for _, p := range prefixes {
		found := false
		for _, l := range strings.Split(r.stdout, "\n") {
			found = found || strings.HasPrefix(l, p)
		}
		if !found {
			t.Errorf("no line starting with %q:\n%s", p, r)
		}
	}
}

// devicesSeen samples the loop devices bound to img until stop is closed.
func devicesSeen(t *testing.T, img string, stop <-chan struct{}) <-chan map[string]bool {
	out := make(chan map[string]bool, 1)
	go func() {
		seen := map[string]bool{}
		for {
			for _, d := range boundTo(t, img) {
				seen[d] = true
			}
			select {
			case <-stop:
				out <- seen
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return out
}

func TestConcurrentFirstLaunchesOfAnImageUseOneLoopDevice(t *testing.T) {
	needLoopSquashfs(t)
	img, id := imageTree(t)
	withImageTrees(t, "img", img)
	afterImages(t, img)
	for _, kind := range []struct {
		name string
		opts []string
	}{{"cached", nil}, {"fresh", []string{"--fresh"}}} {
		t.Run(kind.name, func(t *testing.T) {
			emptyCache(t)
			wantNoLoopDevices(t, img)
			if kind.opts != nil {
				// Private views share the device while one of them lives.
				b := start(t, chosCall(append(append([]string{"exec"}, kind.opts...), "img", "sh", "-c", "echo ready; exec sleep 60")...))
				if !b.waitLine("ready", 30*time.Second) {
					return
				}
			}
			stop := make(chan struct{})
			seen := devicesSeen(t, img, stop)
			const n = 32
			results := make([]result, n)
			var wg sync.WaitGroup
			for i := range results {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					results[i] = chos(t, append(append([]string{"exec"}, kind.opts...), "img", "cat", "/etc/os-release")...)
				}(i)
			}
			wg.Wait()
			close(stop)
			for _, r := range results {
				wantOSID(t, r, id)
			}
			devs := <-seen
			if len(devs) != 1 {
				t.Errorf("%d concurrent first launches used loop devices %v, want one", n, devs)
			}
		})
	}
}

func TestReplacedImageIsSeenByTheNextLaunchWhileRunningOnesKeepTheOld(t *testing.T) {
	needLoopSquashfs(t)
	img, oldID := imageTree(t)
	next, newID := imageTree(t)
	withImageTrees(t, "img", img)
	afterImages(t, img)
	emptyCache(t)
	before := readMountinfo(t)
	beforeLoops := losetupLists(t, imagesDir.get(t))

	fifo := filepath.Join(h.tmp, unique(t))
	must(t, unix.Mkfifo(fifo, 0o666))
	must(t, os.Chmod(fifo, 0o666))
	defer os.Remove(fifo)
	running := start(t, chosCall("exec", "img", "sh", "-c", "cat /etc/os-release; echo ready; read x < "+fifo+"; cat /etc/os-release"))
	if !running.waitLine("ready", 30*time.Second) {
		return
	}
	// An admin replaces the image: a new file renamed over the old one.
	must(t, os.Rename(next, img))
	wantOSID(t, chos(t, "exec", "img", "cat", "/etc/os-release"), newID)
	if got := boundTo(t, img); len(got) != 2 {
		t.Errorf("loop devices of the old and the new image: %v, want two", got)
	}
	r := chos(t, "cache")
	if wantStatus(t, r, 0) && (validCached(t, "img") != 1 ||
		!strings.Contains(r.stdout, "the current image") || !strings.Contains(r.stdout, "replaced since: kept by running processes")) {
		t.Errorf("chos cache does not show the new view and the old image in use:\n%s", r)
	}
	must(t, os.WriteFile(fifo, []byte("go on\n"), 0o644))
	done := running.wait(30 * time.Second)
	if wantStatus(t, done, 0) {
		if ids := strings.Count(done.stdout, "ID="+oldID+"\n"); ids != 2 || strings.Contains(done.stdout, newID) {
			t.Errorf("the launch started before the replacement did not see the old image throughout:\n%s", done)
		}
	}
	// The old image goes with its last process; the new one with the drop.
	if !waitFor(5*time.Second, func() bool { return len(boundTo(t, img)) == 1 }) {
		t.Errorf("after the last process of the old view exited, loop devices %v, want the new image's only", boundTo(t, img))
	}
	emptyCache(t)
	wantNoLoopDevices(t, img)
	if got := losetupLists(t, imagesDir.get(t)); !sameSet(got, beforeLoops) {
		t.Errorf("losetup -a: before %v, after %v", beforeLoops, got)
	}
	if after := readMountinfo(t); after != before {
		onlyBefore, onlyAfter := lineDiff(before, after)
		t.Errorf("the host's mount table differs after the drop:\nonly before: %v\nonly after: %v", onlyBefore, onlyAfter)
	}
}

func TestBadImagesAreRefusedAndLeaveNothing(t *testing.T) {
	needLoopSquashfs(t)
	good, id := imageTree(t)
	data, err := os.ReadFile(good)
	must(t, err)
	dir := filepath.Join(h.base, unique(t))
	must(t, os.Mkdir(dir, 0o755))
	must(t, os.Chmod(dir, 0o755))
	defer os.RemoveAll(dir)
	groupWritable := filepath.Join(dir, "group-writable")
	must(t, os.Mkdir(groupWritable, 0o775))
	must(t, os.Chmod(groupWritable, 0o775))

	write := func(path string, content []byte) string {
		must(t, writeRootFile(path, string(content), 0o644))
		return path
	}
	corrupt := append([]byte{}, data...)
	for i := 96; i < len(corrupt); i++ {
		corrupt[i] ^= 0x5a
	}
	userOwned := write(filepath.Join(dir, "user-owned.sqsh"), data)
	must(t, os.Chown(userOwned, h.uid, h.gid))
	cases := []struct {
		tree, path, want string
		userns           bool // refused in userns mode too
	}{
		{"good", write(filepath.Join(dir, "good.sqsh"), data), "", false},
		{"userowned", userOwned, userOwned + " is owned by uid " + strconv.Itoa(h.uid) + ", not root: the setuid chos refuses it", false},
		{"groupwritable", write(filepath.Join(groupWritable, "x.sqsh"), data), groupWritable + "/x.sqsh: " + groupWritable + " is writable by group or others (mode 0775): the setuid chos refuses it", false},
		{"corrupt", write(filepath.Join(dir, "corrupt.sqsh"), corrupt), "not a squashfs image: " + filepath.Join(dir, "corrupt.sqsh") + " cannot be read", true},
		{"plain", write(filepath.Join(dir, "plain"), []byte("#!/bin/sh\necho this file is a shell script, not a squashfs image\n")), "not a squashfs image: " + filepath.Join(dir, "plain") + " starts with", true},
	}
	var conf []string
	for _, c := range cases {
		conf = append(conf, c.tree, c.path)
	}
	withImageTrees(t, conf...)
	fuseForUsers(t)
	emptyCache(t)
	before := readMountinfo(t)
	for _, k := range launchKinds() {
		for _, c := range cases {
			t.Run(k.name+"/"+c.tree, func(t *testing.T) {
				r := run(t, call{Args: k.exec(c.tree, "cat", "/etc/os-release")})
				if c.want == "" || (k.userns && !c.userns) {
					wantOSID(t, r, id) // control: the same image, where it may be mounted
					return
				}
				if !wantStatus(t, r, 125) {
					return
				}
				if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); len(lines) != 1 || !strings.Contains(lines[0], c.want) {
					t.Errorf("want one line with %q:\n%s", c.want, r)
				}
				if got := boundTo(t, c.path); len(got) > 0 {
					t.Errorf("loop devices left bound to %s: %v", c.path, got)
				}
			})
		}
	}
	emptyCache(t)
	for _, c := range cases {
		wantNoLoopDevices(t, c.path)
	}
	if after := readMountinfo(t); after != before {
		onlyBefore, onlyAfter := lineDiff(before, after)
		t.Errorf("the host's mount table differs:\nonly before: %v\nonly after: %v", onlyBefore, onlyAfter)
	}
	// (what a keeper keeps goes keeperIdle after the last launch)
	if !waitFor(keeperGone, func() bool { return len(squashfuseOf(h.uid)) == 0 }) {
		t.Errorf("squashfuse processes left: %v", squashfuseOf(h.uid))
	}
}

// squashfuseOf lists the squashfuse processes of uid.
func squashfuseOf(uid int) []int {
	return processes(func(pid int, read func(string) (string, bool)) bool {
		cmdline, ok := read("cmdline")
		status, ok2 := read("status")
		return ok && ok2 && strings.HasPrefix(filepath.Base(strings.Split(cmdline, "\x00")[0]), "squashfuse") &&
			strings.Contains(status, fmt.Sprintf("\nUid:\t%d\t", uid)) && alive(pid)
	})
}

// In userns mode squashfuse serves the image as long as a process uses the
// view, the command, what it left running or the view's keeper, and ends
// with the last one.
func TestUsernsImageServerEndsWithTheViewsLastProcess(t *testing.T) {
	fuseForUsers(t)
	img, id := imageTree(t)
	withImageTrees(t, "img", img)
	if !waitFor(keeperGone, func() bool { return len(squashfuseOf(h.uid)) == 0 }) {
		t.Fatalf("squashfuse processes of the test user before the test: %v", squashfuseOf(h.uid))
	}
	wantOSID(t, run(t, call{Args: []string{h.chosUserns, "exec", "img", "cat", "/etc/os-release"}}), id)
	// The kept view: served until its keeper ends, keeperIdle after the
	// last launch.
	if got := squashfuseOf(h.uid); len(got) != 1 || len(keptViews(h.uid, "img")) != 1 {
		t.Errorf("after the first launch, squashfuse processes %v and keepers %+v, want one of each", got, keepersOf(h.uid))
	}
	wantOSID(t, run(t, call{Args: []string{h.chosUserns, "exec", "img", "cat", "/etc/os-release"}}), id)
	if got := squashfuseOf(h.uid); len(got) != 1 {
		t.Errorf("a launch that joins the kept view started another squashfuse: %v", got)
	}
	if !waitFor(keeperGone, func() bool { return len(squashfuseOf(h.uid)) == 0 }) {
		t.Errorf("squashfuse still runs %v after the last launch ended: %v", keeperGone, squashfuseOf(h.uid))
	}

	// A view of the launch's own (--fresh): served while the command runs.
	wantOSID(t, run(t, call{Args: []string{h.chosUserns, "exec", "--fresh", "img", "cat", "/etc/os-release"}}), id)
	if !waitFor(5*time.Second, func() bool { return len(squashfuseOf(h.uid)) == 0 }) {
		t.Errorf("squashfuse still runs after the command exited: %v", squashfuseOf(h.uid))
	}

	dur := uniqueSleep()
	// The job leaves the command's process group (which the harness kills)
	// before the command exits.
	marker := filepath.Join(h.home, unique(t))
	defer os.Remove(marker)
	r := run(t, call{Args: []string{h.chosUserns, "exec", "--fresh", "img", "sh", "-c",
		"setsid sh -c 'echo $$ > " + marker + "; exec sleep " + dur + "' >/dev/null 2>&1 </dev/null & " +
			"while [ ! -s " + marker + " ]; do sleep 0.05; done"}})
	wantStatus(t, r, 0)
	var sleepers []int
	waitFor(10*time.Second, func() bool { sleepers = pidsRunning("sleep", dur); return len(sleepers) > 0 })
	defer func() {
		for _, pid := range sleepers {
			unix.Kill(pid, unix.SIGKILL)
		}
	}()
	if len(sleepers) != 1 {
		t.Fatalf("the background job of the command: %v\n%s", sleepers, r)
	}
	time.Sleep(200 * time.Millisecond)
	if got := squashfuseOf(h.uid); len(got) != 1 {
		t.Errorf("while a background job of the command uses the view, squashfuse processes %v, want one", got)
	}
	// It still reads the image.
	if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/etc/os-release", sleepers[0])); err != nil || parseOSRelease(string(data))["ID"] != id {
		t.Errorf("the background job's view no longer reads the image: %q, %v", data, err)
	}
	unix.Kill(sleepers[0], unix.SIGKILL)
	if !waitFor(5*time.Second, func() bool { return len(squashfuseOf(h.uid)) == 0 }) {
		t.Errorf("squashfuse outlived the view's last process: %v", squashfuseOf(h.uid))
	}
}

// Switching trees from inside a tree is a user-namespace launch (the
// setuid bit does not work there): an image tree is then mounted by the
// host's squashfuse.
func TestSwitchingToAndFromAnImageTreeFromInsideATree(t *testing.T) {
	needLoopSquashfs(t)
	fuseForUsers(t)
	img, id := imageTree(t)
	withImageTrees(t, "img", img)
	afterImages(t, img)
	wantOSID(t, chos(t, "exec", "one", "chos", "exec", "img", "cat", "/etc/os-release"), id)
	wantOSID(t, chos(t, "exec", "img", "chos", "exec", "two", "cat", "/etc/os-release"), h.osIDs["two"])
	wantOSID(t, chos(t, "exec", "img", "chos", "exec", "img", "cat", "/etc/os-release"), id)
	// Control: the outer tree is what it says.
	wantOSID(t, chos(t, "exec", "one", "cat", "/etc/os-release"), h.osIDs["one"])
	if !waitFor(15*time.Second, func() bool { return len(squashfuseOf(h.uid)) == 0 }) {
		t.Errorf("squashfuse outlived the nested launches: %v", squashfuseOf(h.uid))
	}
}

// The SPANK plugin (and pam_chos) go through `chos prepare`, which enters
// the image tree's cached view and hands it to slurmstepd.
func TestSlurmJobRunsInAnImageTree(t *testing.T) {
	needLoopSquashfs(t)
	c := chosJobs(t)
	img, id := imageTree(t)
	withImageTrees(t, "img", img)
	afterImages(t, img)
	emptyCache(t)
	wantOSID(t, run(t, c.user("srun", "--chos=img", "cat", "/etc/os-release")), id)
	r := run(t, c.user("srun", "-n2", "--chos=img", "sh", "-c", "readlink /proc/self/ns/mnt; grep -c ' /.chos/image .* squashfs ' /proc/self/mountinfo"))
	if wantStatus(t, r, 0) {
		lines := strings.Fields(r.stdout)
		sort.Strings(lines)
		if len(lines) != 4 || lines[0] != "1" || lines[1] != "1" || lines[2] != lines[3] {
			t.Errorf("two tasks in one view with the image mounted once:\n%s", r)
		}
	}
	// Control: the job's view is the one a launch enters (the cache's).
	if ns := nsID(t, "exec", "img"); ns == "" || !strings.Contains(r.stdout, ns) {
		t.Errorf("the job's namespace is not the cached view %s:\n%s", ns, r)
	}
	if got := boundTo(t, img); len(got) != 1 {
		t.Errorf("loop devices after the jobs: %v, want one", got)
	}
	c.wantNodeIdle(t)
}
