package audit

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestMessageFieldsInDocumentedOrder(t *testing.T) {
	cases := []struct {
		e    Event
		want string
	}{
		{Event{User: "alice", UID: 1000, Tree: "el7", Selected: "dotfile", Mode: "setuid", View: "cached", Via: "exec", Argv0: "make", Argc: 3, Cwd: "/home/alice/src"},
			"launch user=alice uid=1000 tree=el7 selected=dotfile mode=setuid view=cached via=exec argv0=make argc=3 cwd=/home/alice/src"},
		{Event{Refused: `unknown OS tree "el9"`, User: "bob", UID: 1001, Tree: "el9", Selected: "env", Mode: "setuid", Via: "exec", Argv0: "ls", Argc: 1, Cwd: "/tmp"},
			`refuse user=bob uid=1001 tree=el9 selected=env mode=setuid view=- via=exec argv0=ls argc=1 cwd=/tmp reason="unknown OS tree \"el9\""`},
		{Event{User: "carol", UID: 1002, Tree: "el7", Selected: "none", Mode: "setuid", View: "cached", Via: "pam", Service: "sshd"},
			"launch user=carol uid=1002 tree=el7 selected=none mode=setuid view=cached via=pam argv0=- argc=0 cwd=- service=sshd"},
		{Event{User: "dave", UID: 1003, Tree: "el9", Selected: "plugin", Mode: "setuid", View: "cached", Via: "slurm", Cwd: "/home/dave",
			Devices: "nvidia.com/gpu=0,nvidia.com/gpu=1", Job: "7.0"},
			`launch user=dave uid=1003 tree=el9 selected=plugin mode=setuid view=cached via=slurm argv0=- argc=0 cwd=/home/dave devices="nvidia.com/gpu=0,nvidia.com/gpu=1" job=7.0`},
		{Event{User: "dave", UID: 1003, Tree: "el7", Selected: "argument", Mode: "setuid", View: "fresh", Via: "exec", Argv0: "make", Argc: 1, Cwd: "/tmp",
			Warning: "not caching tree el7: cache directory /run/chos: read-only file system"},
			`launch user=dave uid=1003 tree=el7 selected=argument mode=setuid view=fresh via=exec argv0=make argc=1 cwd=/tmp warning="not caching tree el7: cache directory /run/chos: read-only file system"`},
		// what the user controls cannot add a field or a line
		{Event{User: "eve", Argv0: "x tree=el9\nlaunch", Cwd: "/a b=c", Via: "exec"},
			`launch user=eve uid=0 tree=- selected=- mode=- view=- via=exec argv0="x tree=el9\nlaunch" argc=0 cwd="/a b=c"`},
	}
	for _, c := range cases {
		if got := Message(c.e); got != c.want {
			t.Errorf("Message:\n got %s\nwant %s", got, c.want)
		}
	}
}

func TestMessageCutsLongValues(t *testing.T) {
	m := Message(Event{Cwd: "/" + strings.Repeat("é", 2000)})
	cwd := regexp.MustCompile(`cwd=(\S+)`).FindStringSubmatch(m)
	if cwd == nil || len(cwd[1]) > 1024+3 || !strings.HasSuffix(cwd[1], "...") || !utf8Valid(cwd[1]) {
		t.Errorf("long cwd not cut to 1024 bytes at a character boundary: %d bytes: %.80q", len(m), m)
	}
}

func utf8Valid(s string) bool { return !strings.ContainsRune(s, '\uFFFD') }

// listen binds a datagram socket in a new directory, as a syslog daemon's
// /dev/log, and returns its path and descriptor.
func listen(t *testing.T) (string, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	return path, fd
}

func TestLogSendsOneSyslogDatagram(t *testing.T) {
	path, fd := listen(t)
	l, err := New("local3", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Log(Event{User: "alice", UID: 1000, Tree: "el7", Via: "shell"}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
	if err != nil {
		t.Fatalf("nothing received: %v", err)
	}
	// local3 = 19, info = 6: 19*8+6 = 158
	re := regexp.MustCompile(`^<158>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d chos\[\d+\]: launch user=alice uid=1000 tree=el7 `)
	if !re.Match(buf[:n]) {
		t.Errorf("datagram %q does not match %s", buf[:n], re)
	}
	if _, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT); !errors.Is(err, unix.EAGAIN) {
		t.Errorf("a second datagram, or error %v", err)
	}
	// refusals are notices: 19*8+5
	l.Log(Event{Refused: "no"})
	if n, _, _ := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT); !strings.HasPrefix(string(buf[:n]), "<157>") {
		t.Errorf("refusal datagram %q is not a notice of local3", buf[:n])
	}
}

func TestLogOffSendsNothing(t *testing.T) {
	path, fd := listen(t)
	l, err := New(Off, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Log(Event{User: "alice"}); err != nil || l.Enabled() {
		t.Fatalf("off logger: %v, enabled %v", err, l.Enabled())
	}
	if _, _, err := unix.Recvfrom(fd, make([]byte, 64), unix.MSG_DONTWAIT); !errors.Is(err, unix.EAGAIN) {
		t.Errorf("off logger sent something (%v)", err)
	}
	if _, err := New("mail", path); err == nil {
		t.Error("facility mail accepted")
	}
}

// A socket nobody reads fills up; Log then returns at once with EAGAIN
// instead of waiting. The control: a blocking send to it does wait.
func TestLogNeverWaitsForAFullOrMissingSocket(t *testing.T) {
	path, _ := listen(t)
	fill := func() {
		fd, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK, 0)
		defer unix.Close(fd)
		for i := 0; ; i++ {
			if err := unix.Sendto(fd, make([]byte, 512), 0, &unix.SockaddrUnix{Name: path}); err != nil {
				if !errors.Is(err, unix.EAGAIN) || i == 0 {
					t.Fatalf("filling %s: %v after %d datagrams", path, err, i)
				}
				return
			}
		}
	}
	fill()
	// control: a blocking sender is stuck (a receive timeout of 200 ms
	// on the sending side does not apply to send; SO_SNDTIMEO does)
	bfd, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	defer unix.Close(bfd)
	unix.SetsockoptTimeval(bfd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &unix.Timeval{Usec: 200000})
	start := time.Now()
	err := unix.Sendto(bfd, []byte("x"), 0, &unix.SockaddrUnix{Name: path})
	if !errors.Is(err, unix.EAGAIN) || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("control: a blocking send to the full socket returned %v after %v, want EAGAIN after its 200 ms timeout", err, time.Since(start))
	}

	l, _ := New(DefaultFacility, path)
	missing, _ := New(DefaultFacility, filepath.Join(t.TempDir(), "nosuch"))
	for _, c := range []struct {
		name string
		l    *Logger
		want error
	}{{"full", l, unix.EAGAIN}, {"missing", missing, unix.ENOENT}} {
		start := time.Now()
		err := c.l.Log(Event{User: "alice"})
		// generous: a blocking send would take forever
		if d := time.Since(start); !errors.Is(err, c.want) || d > 2*time.Second {
			t.Errorf("%s socket: Log returned %v after %v, want %v at once", c.name, err, d, c.want)
		}
	}
}

func TestCheckSocket(t *testing.T) {
	path, _ := listen(t)
	if err := CheckSocket(path); err != nil {
		t.Error(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if err := CheckSocket(file); err == nil {
		t.Error("a plain file passes as a socket")
	}
}

// The cost of one audit line, for docs/PERFORMANCE.md.
func BenchmarkLog(b *testing.B) {
	for _, kind := range []string{"read", "full", "missing"} {
		b.Run(kind, func(b *testing.B) {
			dir := b.TempDir()
			path := filepath.Join(dir, "log")
			if kind != "missing" {
				fd, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
				defer unix.Close(fd)
				unix.Bind(fd, &unix.SockaddrUnix{Name: path})
				if kind == "read" {
					go func() {
						buf := make([]byte, 4096)
						for {
							if _, _, err := unix.Recvfrom(fd, buf, 0); err != nil {
								return
							}
						}
					}()
				}
			}
			l, _ := New(DefaultFacility, path)
			e := Event{User: "alice", UID: 1000, Tree: "el7", Selected: "dotfile", Mode: "setuid", View: "cached", Via: "exec", Argv0: "make", Argc: 3, Cwd: "/home/alice/src"}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				l.Log(e)
			}
		})
	}
}
