// Command prepare-peer speaks the shims' side of the root-helper protocol
// (PREPARE-PROTOCOL.md) as a scripted peer: it sends whatever reply a test
// asks for, including replies the real `chos prepare` never sends (a wrong
// descriptor, no "end", no answer at all), so that the tests can see the
// PAM module refuse them. It also records how it was started.
//
// The script is the file "scenario" next to the executable:
//
//	mode=mntns|netns|file|none   the descriptor to attach (default none)
//	status=N                     exit status (default 0)
//	sleep=SECONDS                before replying
//	stderr=TEXT                  a line written to stderr
//	---
//	the reply payload, sent verbatim in one sendmsg on fd 3
//
// mntns is a new mount namespace with a tmpfs on DIR/mnt holding the file
// "hello": a process that enters it sees the file, the host does not.

// The runtime would otherwise open cgroup files before main, and the record
// is to show only the descriptors the module passed.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	exe, err := os.Executable()
	if err != nil {
		fail(err)
	}
	dir := filepath.Dir(exe)
	record(filepath.Join(dir, "record"))
	data, err := os.ReadFile(filepath.Join(dir, "scenario"))
	if err != nil {
		fail(err)
	}
	head, payload, _ := strings.Cut(string(data), "---\n")
	opts := map[string]string{}
	for _, line := range strings.Split(head, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			opts[k] = v
		}
	}
	if s := opts["sleep"]; s != "" {
		n, _ := strconv.Atoi(s)
		time.Sleep(time.Duration(n) * time.Second)
	}
	if s := opts["stderr"]; s != "" {
		fmt.Fprintln(os.Stderr, s)
	}
	var rights []byte
	switch opts["mode"] {
	case "mntns":
		rights = unix.UnixRights(mountNamespace(filepath.Join(dir, "mnt")))
	case "netns":
		rights = unix.UnixRights(open("/proc/self/ns/net"))
	case "file":
		rights = unix.UnixRights(open(exe))
	}
	if err := unix.Sendmsg(3, []byte(payload), rights, nil, 0); err != nil {
		fail(fmt.Errorf("sendmsg on fd 3: %w", err))
	}
	status, _ := strconv.Atoi(opts["status"])
	os.Exit(status)
}

// mountNamespace makes a mount namespace (this thread's) with a tmpfs on
// mnt holding "hello", and returns a descriptor of it.
func mountNamespace(mnt string) int {
	runtime.LockOSThread() // for good: the thread's namespace changes
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		fail(err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		fail(err)
	}
	if err := unix.Mount("peer", mnt, "tmpfs", 0, "mode=0755"); err != nil {
		fail(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "hello"), []byte("in the prepared namespace\n"), 0o644); err != nil {
		fail(err)
	}
	return open("/proc/thread-self/ns/mnt")
}

func open(path string) int {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		fail(fmt.Errorf("open %s: %w", path, err))
	}
	return fd
}

// record writes argv, the environment, the open descriptors and the ids.
func record(path string) {
	var b strings.Builder
	fmt.Fprintf(&b, "argv=%q\nenv=%q\n", os.Args, os.Environ())
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		// (ReadDir's own descriptor is closed by now)
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			fmt.Fprintf(&b, "fd%s=%s\n", e.Name(), strings.SplitN(target, ":", 2)[0])
		}
	}
	ruid, euid, suid := unix.Getresuid()
	rgid, egid, sgid := unix.Getresgid()
	groups, _ := unix.Getgroups()
	fmt.Fprintf(&b, "uids=%d,%d,%d\ngids=%d,%d,%d\ngroups=%v\n", ruid, euid, suid, rgid, egid, sgid, groups)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "prepare-peer: "+err.Error())
	os.Exit(125)
}
