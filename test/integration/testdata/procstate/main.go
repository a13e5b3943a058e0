// Command procstate sets up and reports the process state that exec(2)
// keeps, for the tests that check chos passes all of it to its command.
//
//	procstate exec [SETUP...] -- PROGRAM ARGS...
//	procstate report OUT ACTION ARGS...
//
// exec applies SETUP (descriptors, signal dispositions and mask, limits,
// nice value, affinity, umask, oom_score_adj, environment) to itself and
// executes PROGRAM. report writes, to the new file OUT, one "key<TAB>value"
// line per attribute, values quoted as Go strings so that every byte shows,
// then acts: ACTION "exit:N" exits with N, "die:SIG" dies by SIG.
//
// Being a Go program, report cannot read its start state from the kernel
// alone: the runtime installs its signal handlers and changes the signal
// mask and the soft RLIMIT_NOFILE before main runs. It reads what the
// runtime recorded of them instead, through go:linkname: build it with
// -ldflags=-checklinkname=0.
package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// What the runtime recorded of the start state (see the package comment).
//
//go:linkname fwdSig runtime.fwdSig
var fwdSig [65]uintptr

//go:linkname initSigmask runtime.initSigmask
var initSigmask [2]uint32

//go:linkname origRlimitNofile syscall.origRlimitNofile
var origRlimitNofile atomic.Pointer[syscall.Rlimit]

func init() { runtime.LockOSThread() }

func main() {
	if len(os.Args) < 2 {
		fail("usage: procstate exec SETUP... -- PROGRAM ARGS... | procstate report OUT ACTION ARGS...")
	}
	switch os.Args[1] {
	case "exec":
		setupAndExec(os.Args[2:])
	case "report":
		report(os.Args[2:])
	default:
		fail("unknown subcommand " + os.Args[1])
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "procstate: "+msg)
	os.Exit(99)
}

func must(what string, err error) {
	if err != nil {
		fail(what + ": " + err.Error())
	}
}

var signalNames = map[string]int{
	"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "BUS": 7, "FPE": 8, "USR1": 10,
	"SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15, "STKFLT": 16, "CHLD": 17, "CONT": 18,
	"TSTP": 20, "TTIN": 21, "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27,
	"WINCH": 28, "IO": 29, "PWR": 30, "SYS": 31,
}

func signalNumber(s string) int {
	if n, ok := signalNames[s]; ok {
		return n
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 64 {
		fail("bad signal " + s)
	}
	return n
}

func signalName(n int) string {
	for k, v := range signalNames {
		if v == n {
			return k
		}
	}
	return strconv.Itoa(n)
}

var rlimitNames = map[string]int{
	"cpu": unix.RLIMIT_CPU, "fsize": unix.RLIMIT_FSIZE, "data": unix.RLIMIT_DATA, "stack": unix.RLIMIT_STACK,
	"core": unix.RLIMIT_CORE, "rss": unix.RLIMIT_RSS, "nproc": unix.RLIMIT_NPROC, "nofile": unix.RLIMIT_NOFILE,
	"memlock": unix.RLIMIT_MEMLOCK, "as": unix.RLIMIT_AS, "locks": unix.RLIMIT_LOCKS, "sigpending": unix.RLIMIT_SIGPENDING,
	"msgqueue": unix.RLIMIT_MSGQUEUE, "nice": unix.RLIMIT_NICE, "rtprio": unix.RLIMIT_RTPRIO, "rttime": unix.RLIMIT_RTTIME,
}

func limitValue(s string) uint64 {
	if s == "inf" {
		return unix.RLIM_INFINITY
	}
	n, err := strconv.ParseUint(s, 10, 64)
	must("limit "+s, err)
	return n
}

func fdPair(s string) (int, int) {
	a, b, ok := strings.Cut(s, ":")
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil {
		fail("bad pair " + s)
	}
	return x, y
}

// setupAndExec applies each SETUP option in order, then executes.
//
//	--dup A:B  --close A  --cloexec A  --nonblock A    descriptors
//	--ignore SIG,...  --block SIG,...                   dispositions, mask
//	--rlimit NAME=SOFT:HARD  --nice N  --cpus N,...     limits, scheduling
//	--umask OCTAL  --oom N                              umask, oom_score_adj
//	--env-clear  --env-hex HEX                          environment
func setupAndExec(args []string) {
	env := os.Environ()
	var blocked []int
	for len(args) > 0 && args[0] != "--" {
		opt := args[0]
		if len(args) < 2 && opt != "--env-clear" {
			fail("option " + opt + " needs a value")
		}
		val := ""
		if opt != "--env-clear" {
			val, args = args[1], args[2:]
		} else {
			args = args[1:]
		}
		switch opt {
		case "--dup":
			a, b := fdPair(val)
			must("dup", unix.Dup3(a, b, 0))
		case "--close":
			n, _ := strconv.Atoi(val)
			must("close", unix.Close(n))
		case "--cloexec":
			n, _ := strconv.Atoi(val)
			_, err := unix.FcntlInt(uintptr(n), unix.F_SETFD, unix.FD_CLOEXEC)
			must("cloexec", err)
		case "--nonblock":
			n, _ := strconv.Atoi(val)
			must("nonblock", unix.SetNonblock(n, true))
		case "--ignore":
			for _, s := range strings.Split(val, ",") {
				act := [4]uint64{1} // SIG_IGN; the rest (flags, mask) zero
				if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(signalNumber(s)), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0); e != 0 {
					fail("ignoring " + s + ": " + e.Error())
				}
			}
		case "--block":
			for _, s := range strings.Split(val, ",") {
				blocked = append(blocked, signalNumber(s))
			}
		case "--rlimit":
			name, lim, _ := strings.Cut(val, "=")
			soft, hard, _ := strings.Cut(lim, ":")
			r, ok := rlimitNames[name]
			if !ok {
				fail("unknown limit " + name)
			}
			// (syscall.Setrlimit, so that Go's exec does not put back
			// the soft RLIMIT_NOFILE it started with)
			must("setrlimit "+name, syscall.Setrlimit(r, &syscall.Rlimit{Cur: limitValue(soft), Max: limitValue(hard)}))
		case "--nice":
			n, _ := strconv.Atoi(val)
			must("setpriority", unix.Setpriority(unix.PRIO_PROCESS, 0, n))
		case "--cpus":
			var set unix.CPUSet
			for _, c := range strings.Split(val, ",") {
				n, _ := strconv.Atoi(c)
				set.Set(n)
			}
			must("sched_setaffinity", unix.SchedSetaffinity(0, &set))
		case "--umask":
			n, err := strconv.ParseUint(val, 8, 32)
			must("umask", err)
			unix.Umask(int(n))
		case "--oom":
			must("oom_score_adj", os.WriteFile("/proc/self/oom_score_adj", []byte(val), 0))
		case "--env-clear":
			env = nil
		case "--env-hex":
			b, err := hex.DecodeString(val)
			must("env-hex", err)
			env = append(env, string(b))
		default:
			fail("unknown option " + opt)
		}
	}
	if len(args) < 2 {
		fail("no program after --")
	}
	argv := args[1:]
	// Last, on the thread that executes: the runtime keeps its own mask
	// until here.
	var set [2]uint32
	for _, s := range blocked {
		set[(s-1)/32] |= 1 << ((s - 1) % 32)
	}
	if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0); e != 0 {
		fail("sigprocmask: " + e.Error())
	}
	err := syscall.Exec(argv[0], argv, env)
	fail("exec " + argv[0] + ": " + err.Error())
}

// report collects the state first (before this process opens anything),
// writes it, then acts.
func report(args []string) {
	if len(args) < 2 {
		fail("usage: procstate report OUT ACTION ARGS...")
	}
	out, action := args[0], args[1]
	var lines []string
	add := func(key, format string, a ...any) { lines = append(lines, key+"\t"+fmt.Sprintf(format, a...)) }

	lines = append(lines, descriptors()...)
	for i, a := range os.Args {
		add(fmt.Sprintf("argv[%d]", i), "%q", a)
	}
	environ, err := os.ReadFile("/proc/self/environ") // the kernel's copy, every entry
	must("environ", err)
	if len(environ) > 0 {
		for i, kv := range strings.Split(strings.TrimSuffix(string(environ), "\x00"), "\x00") {
			add(fmt.Sprintf("env[%d]", i), "%q", kv)
		}
	}
	wd, err := unix.Getwd()
	must("getcwd", err)
	add("cwd.path", "%q", wd)
	var st unix.Stat_t
	must("stat .", unix.Stat(".", &st))
	add("cwd.id", "%d:%d", st.Dev, st.Ino)

	var ignored, blocked []string
	for s := 1; s <= 64; s++ {
		var old [4]uint64
		if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(s), 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0); e != 0 && s != 9 && s != 19 {
			fail("sigaction: " + e.Error())
		}
		if fwdSig[s] == 1 || old[0] == 1 { // SIG_IGN, recorded by the runtime or left alone by it
			ignored = append(ignored, signalName(s))
		}
		if initSigmask[(s-1)/32]&(1<<((s-1)%32)) != 0 {
			blocked = append(blocked, signalName(s))
		}
	}
	add("signals.ignored", "%s", strings.Join(ignored, ","))
	add("signals.blocked", "%s", strings.Join(blocked, ","))

	names := make([]string, 0, len(rlimitNames))
	for n := range rlimitNames {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		var l unix.Rlimit
		must("getrlimit", unix.Prlimit(0, rlimitNames[n], nil, &l))
		if n == "nofile" {
			if orig := origRlimitNofile.Load(); orig != nil {
				l.Cur = orig.Cur
			}
		}
		add("rlimit."+n, "%s:%s", limitString(l.Cur), limitString(l.Max))
	}

	stat := procFields("/proc/self/stat")
	add("pid", "%s", stat[0])
	add("ppid", "%s", stat[3])
	add("pgrp", "%s", stat[4])
	add("session", "%s", stat[5])
	add("tty_nr", "%s", stat[6])
	add("tpgid", "%s", stat[7])
	add("nice", "%s", stat[18])
	add("sched.policy", "%s/%s", stat[40], stat[39])
	prio, _, e := unix.RawSyscall(unix.SYS_IOPRIO_GET, 1, 0, 0) // IOPRIO_WHO_PROCESS, self
	if e != 0 {
		fail("ioprio_get: " + e.Error())
	}
	add("ioprio", "%d", prio)
	var cpus unix.CPUSet
	must("sched_getaffinity", unix.SchedGetaffinity(0, &cpus))
	var list []string
	for c := 0; c < 1024; c++ {
		if cpus.IsSet(c) {
			list = append(list, strconv.Itoa(c))
		}
	}
	add("affinity", "%s", strings.Join(list, ","))
	status, err := os.ReadFile("/proc/self/status")
	must("status", err)
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "Umask:"); ok {
			add("umask", "%s", strings.TrimSpace(v))
		}
	}
	oom, err := os.ReadFile("/proc/self/oom_score_adj")
	must("oom_score_adj", err)
	add("oom_score_adj", "%s", strings.TrimSpace(string(oom)))
	ns, err := os.Readlink("/proc/self/ns/mnt")
	must("mnt ns", err)
	add("mntns", "%s", ns)

	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	must("report", err)
	_, err = f.WriteString(strings.Join(lines, "\n") + "\n")
	must("report", err)
	must("report", f.Close())

	switch kind, arg, _ := strings.Cut(action, ":"); kind {
	case "exit":
		n, _ := strconv.Atoi(arg)
		os.Exit(n)
	case "die":
		s := signalNumber(arg)
		dfl := [4]uint64{0} // SIG_DFL
		unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(s), uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0)
		var set [2]uint32
		set[(s-1)/32] = 1 << ((s - 1) % 32)
		unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_UNBLOCK, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0)
		unix.Tgkill(unix.Getpid(), unix.Gettid(), unix.Signal(s))
		fail("still alive after signal " + arg)
	}
	fail("unknown action " + action)
}

func limitString(v uint64) string {
	if v == unix.RLIM_INFINITY {
		return "inf"
	}
	return strconv.FormatUint(v, 10)
}

// procFields are the fields of /proc/self/stat, the command name (field 2,
// in parentheses) kept as one.
func procFields(file string) []string {
	data, err := os.ReadFile(file)
	must(file, err)
	s := string(data)
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < open {
		fail("cannot parse " + file)
	}
	return append([]string{strings.TrimSpace(s[:open]), s[open : close+1]}, strings.Fields(s[close+1:])...)
}

// descriptors lists every inherited descriptor before anything else is
// opened: number, file type, device and inode, open flags, offset and
// mount id (from fdinfo).
func descriptors() []string {
	dir, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	must("open /proc/self/fd", err)
	var fds []int
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(dir, buf)
		must("getdents", err)
		if n == 0 {
			break
		}
		for b := buf[:n]; len(b) > 0; {
			reclen := int(*(*uint16)(unsafe.Pointer(&b[16])))
			name := b[19:reclen]
			if i := strings.IndexByte(string(name), 0); i >= 0 {
				name = name[:i]
			}
			if fd, err := strconv.Atoi(string(name)); err == nil && fd != dir {
				fds = append(fds, fd)
			}
			b = b[reclen:]
		}
	}
	unix.Close(dir)
	sort.Ints(fds)
	var lines []string
	for _, fd := range fds {
		// Close-on-exec ones are this process's own (the runtime keeps
		// cgroup files open): none was inherited.
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue
		}
		var st unix.Stat_t
		must("fstat", unix.Fstat(fd, &st))
		info, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
		must("fdinfo", err)
		fields := map[string]string{}
		for _, l := range strings.Split(string(info), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok {
				fields[k] = strings.TrimSpace(v)
			}
		}
		lines = append(lines, fmt.Sprintf("fd.%d\ttype=%o dev=%d ino=%d flags=%s pos=%s mnt=%s",
			fd, st.Mode&unix.S_IFMT, st.Dev, st.Ino, fields["flags"], fields["pos"], fields["mnt_id"]))
	}
	return lines
}
