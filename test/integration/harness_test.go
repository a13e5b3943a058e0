package integration

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The harness itself: a command that hangs is killed with everything it
// started, and statuses are decoded as a shell reports them.
func TestHarnessKillsHungCommandsAndDecodesStatus(t *testing.T) {
	cmd := exec.Command("sh", "-c", `sleep 300 & echo $!; wait`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	r, err := runWithTimeout(cmd, time.Second, nil)
	if !r.timedOut || err == nil || time.Since(start) > 15*time.Second {
		t.Fatalf("a hung command was not stopped: %v\n%s", err, r)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(r.stdout))
	time.Sleep(100 * time.Millisecond)
	if pid <= 0 || alive(pid) {
		t.Errorf("the hung command's child %q survived", r.stdout)
	}

	for _, c := range []struct {
		script string
		want   int
		sig    bool
	}{{"exit 0", 0, false}, {"exit 42", 42, false}, {"kill -TERM $$", 143, true}, {"kill -KILL $$", 137, true}} {
		cmd := exec.Command("sh", "-c", c.script)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		r, err := runWithTimeout(cmd, commandTimeout, nil)
		if err != nil || r.status != c.want || r.signaled != c.sig {
			t.Errorf("sh -c %q: %v\n%s", c.script, err, r)
		}
	}
	r = shellRun(t, call{Args: []string{"sh", "-c", "kill -TERM $$"}})
	if r.status != 143 {
		t.Errorf("through a shell, death by SIGTERM is %d, want 143", r.status)
	}
}

// alive says whether a process exists and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
