package nsroot

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A launch refuses when the process limit leaves less room than it needs,
// counting the caller's tasks (threads included); with room, it goes on.
func TestTaskRoom(t *testing.T) {
	mine := userTasks(os.Getuid())
	if mine < runtime.NumCPU() && mine < 2 {
		t.Fatalf("userTasks = %d: this process alone has more threads", mine)
	}
	// (tasks that end between the two counts can make the system's fewer
	// once: a parser that undercounts does so every time)
	for try := 1; ; try++ {
		all, ok := systemTasks()
		if ok && all >= mine {
			break
		}
		if try == 5 {
			t.Fatalf("systemTasks = %d, %v: fewer than this user's %d, 5 times", all, ok, mine)
		}
		mine = userTasks(os.Getuid())
	}
	var old unix.Rlimit
	must(t, unix.Getrlimit(unix.RLIMIT_NPROC, &old))
	defer unix.Setrlimit(unix.RLIMIT_NPROC, &old)
	for _, tc := range []struct {
		name  string
		limit uint64
		need  int
		ok    bool
	}{
		{"the hard limit", old.Max, 10, old.Max > uint64(mine)+10},
		{"room to spare", uint64(mine) + 1000, 10, true},
		// (a few more tasks may come and go meanwhile)
		{"no room", uint64(mine), 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			must(t, unix.Setrlimit(unix.RLIMIT_NPROC, &unix.Rlimit{Cur: min(tc.limit, old.Max), Max: old.Max}))
			err := checkTaskRoom(os.Getuid(), tc.need)
			if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), "ulimit -u")) {
				t.Errorf("checkTaskRoom = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
