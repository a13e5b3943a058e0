package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ptySession is a command on a terminal of its own, driven as a person
// would: type a line, read what appears. Interactive logins (su -l, ssh
// -tt, login shells) need it: shells are interactive only on a terminal.
type ptySession struct {
	t      testing.TB
	desc   string
	master *os.File
	pid    int

	mu  sync.Mutex
	out bytes.Buffer // everything the terminal showed, \r removed

	readDone chan struct{}
	done     chan struct{}
	status   int
}

// startPTY starts c as the session leader of a new terminal (its
// controlling terminal), killed with its process group at the end of the
// test.
func startPTY(t testing.TB, c call) *ptySession {
	t.Helper()
	master, tty := newPTY(t)

	argv := c.argv()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = h.home, mergeEnv(append(userEnv(), "TERM=dumb"), c.Env)
	if c.Root {
		cmd.Dir, cmd.Env = "/", mergeEnv(append(rootEnv(), "TERM=dumb"), c.Env)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	s := &ptySession{t: t, desc: describe(c), master: master, readDone: make(chan struct{}), done: make(chan struct{}), status: -1}
	err := cmd.Start()
	tty.Close()
	if err != nil {
		master.Close()
		t.Fatalf("cannot start %s: %v", s.desc, err)
	}
	s.pid = cmd.Process.Pid
	groupsMu.Lock()
	groups[s.pid] = true
	groupsMu.Unlock()
	go func() {
		defer close(s.readDone)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			s.mu.Lock()
			s.out.Write(bytes.ReplaceAll(buf[:n], []byte("\r"), nil))
			s.mu.Unlock()
			if err != nil { // EIO once no process has the terminal open
				return
			}
		}
	}()
	go func() {
		cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Exited() {
			s.status = ws.ExitStatus()
		}
		close(s.done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-s.pid, syscall.SIGKILL)
		<-s.done
		master.Close()
		groupsMu.Lock()
		delete(groups, s.pid)
		groupsMu.Unlock()
		if t.Failed() {
			t.Logf("the terminal of %s showed:\n%s", s.desc, s.output())
		}
	})
	return s
}

// newPTY opens a new terminal: its master side and its slave side (not
// yet anyone's controlling terminal).
func newPTY(t testing.TB) (master, tty *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	must(t, err)
	fd := int(master.Fd())
	must(t, unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	must(t, err)
	// wide enough that no line is wrapped or redrawn by line editors
	must(t, unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: 50, Col: 400}))
	tty, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	must(t, err)
	return master, tty
}

func (s *ptySession) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// send types line and Enter.
func (s *ptySession) send(line string) {
	if _, err := s.master.Write([]byte(line + "\n")); err != nil {
		s.t.Errorf("typing into %s: %v", s.desc, err)
	}
}

// expect waits until the output from offset from on matches re, and
// returns the match and the offset after it; false if the session ended or
// the timeout passed first (the test then failed).
func (s *ptySession) expect(re *regexp.Regexp, from int, timeout time.Duration) ([]string, int, bool) {
	s.t.Helper()
	m, next, err := s.find(re, from, timeout)
	if err != nil {
		s.t.Errorf("%s %v", s.desc, err)
		return nil, from, false
	}
	return m, next, true
}

// find is expect without failing the test.
func (s *ptySession) find(re *regexp.Regexp, from int, timeout time.Duration) ([]string, int, error) {
	deadline := time.Now().Add(timeout)
	for {
		out := s.output()
		if loc := re.FindStringSubmatchIndex(out[from:]); loc != nil {
			m := make([]string, len(loc)/2)
			for i := range m {
				if loc[2*i] >= 0 {
					m[i] = out[from+loc[2*i] : from+loc[2*i+1]]
				}
			}
			return m, from + loc[1], nil
		}
		select {
		case <-s.readDone:
			return nil, from, fmt.Errorf("ended without printing %v", re)
		default:
		}
		if time.Now().After(deadline) {
			return nil, from, fmt.Errorf("printed no %v within %v", re, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ready waits until a shell reads commands: it types a marker command
// (every 3 s) until the output shows it, and all it typed has run. The
// typed line's echo does not match: the marker is written with "" in the
// middle. It returns the output offset after the last marker.
func (s *ptySession) ready(timeout time.Duration) (int, bool) {
	s.t.Helper()
	hex := randHex(3)
	marker := "READY" + hex + "\n"
	deadline := time.Now().Add(timeout)
	for sent := 0; time.Now().Before(deadline); {
		s.send(`echo READY""` + hex)
		sent++
		shown := func(out string) bool { return strings.Count(out, marker) == sent }
		if out := s.waitOutput(shown, 3*time.Second); shown(out) {
			return strings.LastIndex(out, marker) + len(marker), true
		}
		select {
		case <-s.readDone:
			s.t.Errorf("%s ended before reading commands", s.desc)
			return 0, false
		default:
		}
	}
	s.t.Errorf("%s did not read commands within %v", s.desc, timeout)
	return 0, false
}

// waitOutput returns the output once done says so, or after timeout.
func (s *ptySession) waitOutput(done func(string) bool, timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		out := s.output()
		if done(out) || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait waits for the command to end after the terminal's input is done.
func (s *ptySession) wait(timeout time.Duration) int {
	s.t.Helper()
	select {
	case <-s.done:
		return s.status
	case <-time.After(timeout):
		s.t.Errorf("%s still running after %v", s.desc, timeout)
		return -1
	}
}
