package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// 7. The tree is read-only inside, for the user and for root alike, and
// nothing of it changes on the host.
func TestTreeIsReadOnly(t *testing.T) {
	tree := h.trees["one"]
	before := snapshotTree(t, tree)
	rootBefore := snapshotTree(t, h.chosRoot)
	writes := []struct {
		name  string
		cmd   string
		leave string // what would appear in the tree on the host
	}{
		{"usr", "touch /usr/x", "usr/x"},
		{"etc", "touch /etc/x", "etc/x"},
		{"etc os-release", "echo ID=hacked > /etc/os-release", ""},
		{"bin", "touch /bin/x", "bin/x"},
		{"root file", "touch /newfile", "newfile"},
		{"root dir", "mkdir /newdir", "newdir"},
		{"rename in root", "mv /etc /etc2", "etc2"},
	}
	for _, who := range []string{"user", "root"} {
		for _, w := range writes {
			t.Run(who+"/"+w.name, func(t *testing.T) {
				c := chosCall("exec", "one", "sh", "-c", w.cmd)
				c.Root = who == "root"
				r := run(t, c)
				if r.status == 0 {
					t.Errorf("the write succeeded:\n%s", r)
				}
				if r.status == 125 {
					t.Errorf("chos failed instead of running the command:\n%s", r)
				}
				// Root has every capability: only a read-only mount stops it.
				if who == "root" && !strings.Contains(r.stderr, "Read-only file system") {
					t.Errorf("root's write did not fail with EROFS:\n%s", r)
				}
				if w.leave != "" {
					for _, p := range []string{filepath.Join(tree, w.leave), filepath.Join(h.chosRoot, w.leave)} {
						if _, err := os.Lstat(p); err == nil {
							t.Errorf("%s appeared on the host", p)
						}
					}
				}
			})
		}
	}
	if d := diffSnapshots(before, snapshotTree(t, tree)); len(d) > 0 {
		t.Errorf("tree one changed on the host:\n%s", strings.Join(d, "\n"))
	}
	if d := diffSnapshots(rootBefore, snapshotTree(t, h.chosRoot)); len(d) > 0 {
		t.Errorf("the assembly directory %s changed on the host:\n%s", h.chosRoot, strings.Join(d, "\n"))
	}
	// and the tree still reads as before
	wantOSID(t, chos(t, "exec", "one", "cat", "/etc/os-release"), "chosone")
}

// 8. /tmp and the home directory are the host's, both ways.
func TestTmpAndHomeAreSharedWithHost(t *testing.T) {
	u := unique(t)
	inTmp, inHome := filepath.Join("/tmp", u+"-in"), filepath.Join(h.home, u+"-in")
	outTmp, outHome := filepath.Join("/tmp", u+"-out"), filepath.Join(h.home, u+"-out")
	t.Cleanup(func() {
		for _, p := range []string{inTmp, inHome, outTmp, outHome} {
			os.Remove(p)
		}
	})

	// written inside, read on the host
	r := chos(t, "exec", "one", "sh", "-c", `echo "tmp from $CHOS" > "$1" && echo "home from $CHOS" > "$HOME/$2"`, "sh", inTmp, filepath.Base(inHome))
	wantStatus(t, r, 0)
	for p, want := range map[string]string{inTmp: "tmp from one\n", inHome: "home from one\n"} {
		data, err := os.ReadFile(p)
		if err != nil || string(data) != want {
			t.Errorf("on the host %s = %q (%v), want %q", p, data, err, want)
			continue
		}
		fi, _ := os.Stat(p)
		if uid := fileUID(fi); uid != h.uid {
			t.Errorf("%s is owned by uid %d, want the user's %d", p, uid, h.uid)
		}
	}

	// written on the host, read inside
	writeUserFile(t, outTmp, "tmp from host "+u+"\n", 0o644)
	writeUserFile(t, outHome, "home from host "+u+"\n", 0o644)
	r = chos(t, "exec", "two", "cat", outTmp, outHome)
	wantStatus(t, r, 0)
	if want := "tmp from host " + u + "\nhome from host " + u + "\n"; r.stdout != want {
		t.Errorf("inside tree two: %q, want %q", r.stdout, want)
	}
}

// 10. Launches, failed ones included, leave the host's mount table as it was.
func TestLaunchesLeaveHostMountTableUnchanged(t *testing.T) {
	clearDotfile(t)
	gone, _ := addGoneTree(t)
	notInView := h.base
	launches := []struct {
		name string
		c    call
		want int
	}{
		{"ok", chosCall("exec", "one", "true"), 0},
		{"ok two", chosCall("exec", "two", "cat", "/etc/os-release"), 0},
		{"status", chosCall("exec", "three", "sh", "-c", "exit 3"), 3},
		{"unknown tree", chosCall("exec", "chos-itest-nosuchtree", "true"), 125},
		{"missing command", chosCall("exec", "one", "chos-itest-no-such-command"), 127},
		{"missing tree path", chosCall("exec", gone, "true"), 125},
		{"cwd not in view", call{Args: []string{h.chos, "exec", "one", "true"}, Dir: notInView}, 125},
		{"killed", chosCall("exec", "one", "sh", "-c", "kill -TERM $$"), 143},
		{"host", chosCall("exec", "local", "true"), 0},
		{"legacy", chosCall("true"), 0},
		{"as root", call{Args: []string{h.chos, "exec", "one", "true"}, Root: true}, 0},
	}
	before := readMountinfo(t)
	for i := 0; i < 50; i++ {
		l := launches[i%len(launches)]
		r := run(t, l.c)
		if r.status != l.want {
			t.Errorf("launch %d (%s): status %d, want %d:\n%s", i, l.name, r.status, l.want, r)
		}
	}
	after := readMountinfo(t)
	if before != after {
		onlyBefore, onlyAfter := lineDiff(before, after)
		t.Errorf("the host's mount table changed:\nonly before:\n  %s\nonly after:\n  %s",
			strings.Join(onlyBefore, "\n  "), strings.Join(onlyAfter, "\n  "))
	}
	if m := mountsUnder(h.base); len(m) > 0 {
		t.Errorf("mounts under %s on the host: %v", h.base, m)
	}
	if ents, _ := os.ReadDir(h.chosRoot); len(ents) > 0 {
		t.Errorf("the assembly directory %s is not empty: %v", h.chosRoot, ents)
	}
}

// 17. A file system mounted on the host after the launch reaches the
// running command (the host's / being shared, as systemd makes it).
func TestHostMountAfterLaunchIsVisible(t *testing.T) {
	flag, cmdOut, outer, detail := mountAfterLaunch(t, "shared", 100)
	if !strings.Contains(outer, "status=0") {
		t.Errorf("the command failed:\n%s", detail)
	}
	if strings.TrimSpace(cmdOut) != flag {
		t.Errorf("the command did not see the file on the tmpfs mounted after its launch:\n%s", detail)
	}

	// Control: the same with the "host" root private, where nothing
	// propagates: the command must not see it, so the check above can fail.
	t.Run("control private host", func(t *testing.T) {
		flag, cmdOut, outer, detail := mountAfterLaunch(t, "private", 20)
		if strings.Contains(cmdOut, flag) || strings.Contains(outer, "status=0") {
			t.Errorf("the command saw a mount that cannot have propagated; the scenario is broken:\n%s", detail)
		}
	})
}

// mountAfterLaunch runs, as root in a new mount namespace with the given
// propagation that plays the host, a command in tree one that waits (tries
// times 0.1 s) for a file on a tmpfs that is mounted on the "host" under
// the user's home once the command runs. It returns the flag written, the
// command's stdout, the outer script's stdout and a description.
func mountAfterLaunch(t *testing.T, propagation string, tries int) (flag, cmdOut, outer, detail string) {
	t.Helper()
	u := unique(t)
	mnt := filepath.Join(h.home, "mnt-"+u)
	userDir(t, mnt)
	ready := filepath.Join(h.home, "ready-"+u)
	t.Cleanup(func() { os.Remove(ready) })
	flag = "flag " + u
	outDir := t.TempDir()

	// The command: says whether the flag is there at its start (it must
	// not be), tells it is running, waits for the flag, prints it.
	inner := `if [ -e "$1/flag" ]; then echo "flag-at-start"; fi; : > "$2"; ` +
		`i=0; while [ ! -e "$1/flag" ] && [ $i -lt ` + fmt.Sprint(tries) + ` ]; do sleep 0.1; i=$((i+1)); done; cat "$1/flag"`
	// The outer script is root in the new mount namespace.
	script := `
set -u
mnt=$1 ready=$2 flag=$3 out=$4; shift 4
"$@" >"$out/stdout" 2>"$out/stderr" &
pid=$!
i=0; while [ ! -e "$ready" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
[ -e "$ready" ] || echo "never-ready"
[ -e "$mnt/flag" ] && echo "flag-before-mount"
grep -q " $mnt " /proc/self/mountinfo && echo "mounted-before"
mount -t tmpfs -o mode=0755 tmpfs "$mnt" || echo "mount-failed"
printf '%s\n' "$flag" > "$mnt/flag"
wait $pid
echo "status=$?"
umount "$mnt"
`
	user := []string{"setpriv", "--reuid", h.user, "--regid", h.group, "--init-groups", "--",
		"env", "-i", "HOME=" + h.home, "USER=" + h.user, "PATH=/usr/local/bin:/usr/bin:/bin",
		h.chos, "exec", "one", "sh", "-c", inner, "sh", mnt, ready}
	args := append([]string{"unshare", "--mount", "--propagation", propagation, "--", "sh", "-c", script, "sh", mnt, ready, flag, outDir}, user...)
	r := run(t, call{Args: args, Root: true})
	stdout, _ := os.ReadFile(filepath.Join(outDir, "stdout"))
	stderr, _ := os.ReadFile(filepath.Join(outDir, "stderr"))
	detail = fmt.Sprintf("%s\ncommand stdout: %q\ncommand stderr: %q", r, stdout, stderr)
	wantStatus(t, r, 0)
	for _, bad := range []string{"never-ready", "flag-before-mount", "mounted-before", "mount-failed"} {
		if strings.Contains(r.stdout, bad) {
			t.Errorf("%s:\n%s", bad, detail)
		}
	}
	if strings.Contains(string(stdout), "flag-at-start") {
		t.Errorf("the flag existed before the mount: the test proves nothing:\n%s", detail)
	}
	// Nothing of it reached the real host.
	if _, err := os.Stat(filepath.Join(mnt, "flag")); err == nil {
		t.Errorf("the flag file is in the host's %s", mnt)
	}
	return flag, string(stdout), r.stdout, detail
}

func fileUID(fi os.FileInfo) int {
	if fi == nil {
		return -1
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}
