package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

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
# this "host" namespace's cache: with / shared, its directory's mount also
# reached the namespace of the test, which must not keep it
` + h.chos + ` cache drop
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
