package nsroot

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// RLIMIT_NPROC counts a user's tasks, threads included, and the Go runtime
// cannot do without a thread it asks for: it dies ("fatal error:
// newosproc", a stack dump, status 2). A user-namespace launch adds tasks
// to the caller's: the child, the threads the Go runtime starts in it until
// it executes the command, a few more of this process's while it waits,
// squashfuse for an image. So it first checks that the limit leaves room
// for them, and otherwise refuses with one line (status 125). (Setuid mode
// needs none of this: root's threads are not counted, and the command
// replaces chos.)

// userNSTasks is the room a launch in userns mode needs beyond this
// process's threads so far: measured (TestLowProcessLimit), at most 6: the
// child's 4 (its own, the Go runtime's monitor and a worker with
// GOMAXPROCS=1 and no collector, the template thread of LockOSThread) and
// 2 this process starts while it waits (os/signal's thread, a worker);
// with 2 to spare, as the runtime starts threads when it sees fit.
const userNSTasks = 8

// imageTasks is what squashfuse adds for an image tree (libfuse's threads).
const imageTasks = 3

// checkTaskRoom refuses a launch that needs more tasks than the process
// limit leaves the caller (real uid uid).
func checkTaskRoom(uid, need int) error {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NPROC, &lim); err != nil || lim.Cur == unix.RLIM_INFINITY {
		return nil
	}
	// No user has more tasks than the whole system: then there is room
	// without counting (one small read, where counting reads every
	// process's status).
	if all, ok := systemTasks(); ok && uint64(all+need) <= lim.Cur {
		return nil
	}
	have := userTasks(uid)
	if uint64(have+need) <= lim.Cur {
		return nil
	}
	room := 0
	if lim.Cur > uint64(have) {
		room = int(lim.Cur) - have
	}
	return fmt.Errorf("your process limit (ulimit -u %d) leaves room for %d more processes and threads, and a launch in user-namespace mode needs %d: raise it, or end some of the %d you have", lim.Cur, room, need, have)
}

// systemTasks is the number of tasks on the system, every PID namespace's
// (the fourth field of /proc/loadavg: running/total).
func systemTasks() (int, bool) {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	f := bytes.Fields(data)
	if len(f) < 4 {
		return 0, false
	}
	_, total, ok := bytes.Cut(f[3], []byte("/"))
	n, err := strconv.Atoi(string(total))
	return n, ok && err == nil
}

// userTasks counts the tasks whose real uid is uid, among the processes
// this process can see.
func userTasks(uid int) int {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	want := []byte(strconv.Itoa(uid))
	n := 0
	for _, p := range procs {
		if p.Name()[0] < '0' || p.Name()[0] > '9' {
			continue
		}
		data, err := os.ReadFile("/proc/" + p.Name() + "/status")
		if err != nil {
			continue
		}
		if real, threads := statusIDs(data); bytes.Equal(real, want) {
			n += threads
		}
	}
	return n
}

// statusIDs reads the real uid and the number of threads from a
// /proc/PID/status file.
func statusIDs(status []byte) (realUID []byte, threads int) {
	for _, line := range bytes.Split(status, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte("Uid:")); ok {
			if f := bytes.Fields(rest); len(f) > 0 {
				realUID = f[0]
			}
		} else if rest, ok := bytes.CutPrefix(line, []byte("Threads:")); ok {
			threads, _ = strconv.Atoi(string(bytes.TrimSpace(rest)))
		}
	}
	return realUID, threads
}
