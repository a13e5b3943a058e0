package integration

import (
	"strconv"
	"strings"
	"testing"
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
		r = run(t, call{Args: []string{"/bin/sh", "-c", script}, Env: []string{"PATH=" + long + ":/.chos/bin"}})
		if r.status == 0 {
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
