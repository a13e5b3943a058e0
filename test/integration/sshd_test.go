package integration

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A real OpenSSH sshd for the login tests (login-feasibility.md §7): one
// root-owned directory per package run holds the host key, the
// authorized keys (AuthorizedKeysFile DIR/keys/%u, so no home is written)
// and the users' client keys. Each distinct sshdOptions gets its own sshd
// on 127.0.0.1 and a free port, started on first use, kept for the rest
// of the run and killed by the package cleanups.

// sshdOptions is what may differ between the sshds of one run.
type sshdOptions struct {
	// Config is appended to the base configuration, e.g. a Match block
	// with a ForceCommand (Match blocks must come last: give them last).
	Config []string
	// PAMService runs sshd under this name: Linux-PAM then reads
	// /etc/pam.d/PAMService (sshd's service is basename(argv[0]); Linux-PAM
	// lowercases it, so it must be lowercase).
	PAMService string
	// Binds run sshd in a private mount namespace with each host path
	// Binds[i][0] bound over Binds[i][1]: sessions then see them, and the
	// host's files are never changed.
	Binds [][2]string
}

func (o sshdOptions) key() string { return fmt.Sprintf("%q", o) }

// sshServer is one running sshd.
type sshServer struct {
	opts sshdOptions
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when sshd exited

	logMu sync.Mutex
	log   bytes.Buffer // sshd -e: everything it logs
}

func (s *sshServer) Write(p []byte) (int, error) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.Write(p)
}

func (s *sshServer) logText() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.log.String()
}

// sshFixture is shared by the package run.
var sshFixture struct {
	once sync.Once
	err  error
	dir  string // root's, 0755, under h.base

	mu      sync.Mutex
	stopped bool // by the package cleanups: start no more
	servers map[string]*sshServer
	keys    map[string]string // user -> private client key
}

// sshdFor returns the sshd for opts, starting it on first use. A failing
// test shows what sshd logged while it ran.
func sshdFor(t testing.TB, opts sshdOptions) *sshServer {
	t.Helper()
	sshFixture.once.Do(func() { sshFixture.err = setupSSHFixture() })
	if sshFixture.err != nil {
		t.Fatalf("sshd fixture: %v", sshFixture.err)
	}
	sshFixture.mu.Lock()
	defer sshFixture.mu.Unlock()
	if sshFixture.stopped {
		t.Fatal("sshd fixture: stopped by the package cleanups (interrupted?)")
	}
	s := sshFixture.servers[opts.key()]
	if s == nil {
		var err error
		if s, err = startSSHD(opts); err != nil {
			t.Fatalf("starting sshd: %v", err)
		}
		sshFixture.servers[opts.key()] = s
	}
	select {
	case <-s.done:
		t.Fatalf("sshd on port %d has exited:\n%s", s.port, s.logText())
	default:
	}
	mark := len(s.logText())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sshd (port %d) logged during the test:\n%s", s.port, s.logText()[mark:])
		}
	})
	return s
}

func setupSSHFixture() error {
	sshFixture.servers = map[string]*sshServer{}
	sshFixture.keys = map[string]string{}
	if err := atExit(stopSSHFixture); err != nil {
		return err
	}
	dir := filepath.Join(h.base, "sshd")
	for _, d := range []string{dir, filepath.Join(dir, "keys"), filepath.Join(dir, "bin"), filepath.Join(dir, "clients")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return err
		}
	}
	sshFixture.dir = dir
	if out, err := runSetup(30*time.Second, dir, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "chos-itest host",
		"-f", filepath.Join(dir, "ssh_host_ed25519_key")); err != nil {
		return fmt.Errorf("ssh-keygen (host key): %w\n%s", err, out)
	}
	return nil
}

// stopSSHFixture stops every sshd (SIGTERM, then SIGKILL) and removes
// what the fixture made outside h.base.
func stopSSHFixture() error {
	sshFixture.mu.Lock()
	defer sshFixture.mu.Unlock()
	sshFixture.stopped = true
	var errs []string
	for _, s := range sshFixture.servers {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
			select {
			case <-s.done:
			case <-time.After(5 * time.Second):
				errs = append(errs, fmt.Sprintf("sshd (pid %d) survived SIGKILL", s.cmd.Process.Pid))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("stopping the sshd fixture: %s", strings.Join(errs, "; "))
	}
	return nil
}

// sshdConfig is the base configuration plus opts.Config.
func sshdConfig(opts sshdOptions) string {
	d := sshFixture.dir
	lines := []string{
		"HostKey " + filepath.Join(d, "ssh_host_ed25519_key"),
		"AuthorizedKeysFile " + filepath.Join(d, "keys", "%u"),
		// useradd leaves the password locked: without PAM sshd refuses the
		// account even for a key ("account is locked").
		"UsePAM yes",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin no",
		"AllowGroups " + h.group,
		"AcceptEnv CHOS LANG LC_*",
		"X11Forwarding yes",
		"PrintMotd no",
		"LogLevel VERBOSE",
	}
	return strings.Join(append(lines, opts.Config...), "\n") + "\n"
}

// startSSHD starts sshd for opts on a free port and waits until it
// accepts connections.
func startSSHD(opts sshdOptions) (*sshServer, error) {
	if opts.PAMService != "" && opts.PAMService != strings.ToLower(opts.PAMService) {
		return nil, fmt.Errorf("PAM service %q: Linux-PAM lowercases service names, use a lowercase one", opts.PAMService)
	}
	if err := privsepDir(); err != nil {
		return nil, err
	}
	cfg := filepath.Join(sshFixture.dir, "sshd_config-"+randHex(4))
	if err := writeRootFile(cfg, sshdConfig(opts), 0o644); err != nil {
		return nil, err
	}
	// sshd re-executes itself by argv[0], which must be absolute.
	bin := "/usr/sbin/sshd"
	if opts.PAMService != "" {
		bin = filepath.Join(sshFixture.dir, "bin", opts.PAMService)
		if err := os.Symlink("/usr/sbin/sshd", bin); err != nil && !os.IsExist(err) {
			return nil, err
		}
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		argv := []string{bin, "-D", "-e", "-f", cfg, "-o", "Port=" + strconv.Itoa(port),
			"-o", "ListenAddress=127.0.0.1", "-o", "PidFile=none"}
		argv = withBinds(opts.Binds, argv...)
		s := &sshServer{opts: opts, port: port, done: make(chan struct{})}
		s.cmd = exec.Command(argv[0], argv[1:]...)
		s.cmd.Dir, s.cmd.Env = "/", rootEnv()
		s.cmd.Stdout, s.cmd.Stderr = s, s
		// Pdeathsig, as for the Slurm daemons: a test binary killed outright
		// (go test -timeout, a panic) leaves no sshd behind.
		s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
		s.cmd.WaitDelay = 2 * time.Second // sessions may hold sshd's stderr
		if err := startOnDaemonThread(s.cmd); err != nil {
			return nil, err
		}
		go func() { s.cmd.Wait(); close(s.done) }()
		if lastErr = s.waitReady(5 * time.Second); lastErr == nil {
			return s, nil
		}
		s.cmd.Process.Kill()
		<-s.done
		if !strings.Contains(s.logText(), "Address already in use") {
			break
		}
	}
	return nil, lastErr
}

// privsepDir makes /run/sshd, sshd's privilege separation directory,
// which it refuses to start (or to accept a connection) without. It is
// left in place: concurrent test runs and a real sshd share it, and it is
// what openssh-server's own start-up makes (on /run, a tmpfs).
func privsepDir() error {
	if err := os.Mkdir("/run/sshd", 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	return nil
}

// waitReady waits until sshd says it listens and a connection succeeds.
func (s *sshServer) waitReady(timeout time.Duration) error {
	listening := fmt.Sprintf("Server listening on 127.0.0.1 port %d.", s.port)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("sshd exited before listening (%v):\n%s", s.cmd.ProcessState, s.logText())
		default:
		}
		if strings.Contains(s.logText(), listening) {
			if c, err := net.DialTimeout("tcp", s.addr(), time.Second); err == nil {
				c.Close()
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("sshd not ready after %v:\n%s", timeout, s.logText())
}

func (s *sshServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// withBinds is argv run as root in a private mount namespace in which
// each host path binds[i][0] is bound over binds[i][1] (argv itself
// without binds): the host's files stay as they are.
func withBinds(binds [][2]string, argv ...string) []string {
	if len(binds) == 0 {
		return argv
	}
	script := "set -e"
	for _, b := range binds {
		script += "; mount --bind " + shellQuote(b[0]) + " " + shellQuote(b[1])
	}
	return append([]string{"unshare", "--mount", "--propagation", "private", "--",
		"/bin/sh", "-c", script + `; exec "$@"`, "sh"}, argv...)
}

// freePort is a TCP port on 127.0.0.1 that was free a moment ago.
// sshClientKey is the private key the test user logs in with (made on
// first use, readable only by the user; its public half is in
// keys/USER, root's, as StrictModes wants).
func sshClientKey(t testing.TB) string {
	t.Helper()
	return sshClientKeyOf(t, call{}.account())
}

// sshClientKeyOf is sshClientKey for any test user.
func sshClientKeyOf(t testing.TB, u testUser) string {
	t.Helper()
	sshFixture.once.Do(func() { sshFixture.err = setupSSHFixture() })
	if sshFixture.err != nil {
		t.Fatalf("sshd fixture: %v", sshFixture.err)
	}
	sshFixture.mu.Lock()
	defer sshFixture.mu.Unlock()
	if k := sshFixture.keys[u.name]; k != "" {
		return k
	}
	key, pub, err := newClientKey(u.name, u.uid, u.gid)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeRootFile(filepath.Join(sshFixture.dir, "keys", u.name), pub, 0o644); err != nil {
		t.Fatal(err)
	}
	sshFixture.keys[u.name] = key
	return key
}

// newClientKey makes an ed25519 key pair in clients/NAME (0700, the
// user's) and returns the private key's path and the public key.
func newClientKey(name string, uid, gid int) (key, pub string, err error) {
	dir := filepath.Join(sshFixture.dir, "clients", name)
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		return "", "", err
	}
	key = filepath.Join(dir, "id_ed25519-"+randHex(3))
	if out, err := runSetup(30*time.Second, dir, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", key); err != nil {
		return "", "", fmt.Errorf("ssh-keygen: %w\n%s", err, out)
	}
	for _, p := range []string{dir, key, key + ".pub"} {
		if err := os.Chown(p, uid, gid); err != nil {
			return "", "", err
		}
	}
	data, err := os.ReadFile(key + ".pub")
	return key, string(data), err
}

// sshArgs is the client command line (for the test user) logging in to s
// with key and running remote (none: a login shell); extra goes before
// the destination (-tt, -o SendEnv=CHOS...).
func (s *sshServer) sshArgs(key string, extra []string, remote ...string) []string {
	return s.sshArgsAs(h.user, key, extra, remote...)
}

// sshArgsAs is sshArgs for the test user named user.
func (s *sshServer) sshArgsAs(user, key string, extra []string, remote ...string) []string {
	argv := append([]string{"ssh"}, s.clientOptions(key, "-p")...)
	argv = append(argv, extra...)
	argv = append(argv, user+"@127.0.0.1")
	return append(argv, remote...)
}

// clientOptions are the options of ssh, scp and sftp (which take the
// port as -P: portFlag) for logging in to s with key.
func (s *sshServer) clientOptions(key, portFlag string) []string {
	return []string{"-F", "/dev/null", "-i", key, portFlag, strconv.Itoa(s.port),
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"}
}

// ssh runs remote over ssh as the test user, with stdin (nil: none).
func (s *sshServer) ssh(t testing.TB, stdin []byte, remote ...string) result {
	t.Helper()
	if stdin == nil {
		stdin = []byte{}
	}
	return run(t, call{Args: s.sshArgs(sshClientKey(t), nil, remote...), Stdin: stdin})
}

func TestSSHLoginRunsCommandsAsTheUser(t *testing.T) {
	s := sshdFor(t, sshdOptions{})

	r := s.ssh(t, nil, "id", "-u")
	if wantStatus(t, r, 0) && strings.TrimSpace(r.stdout) != strconv.Itoa(h.uid) {
		t.Errorf("ssh ran id -u as uid %q, want %d:\n%s", r.stdout, h.uid, r)
	}
	wantStatus(t, s.ssh(t, nil, "exit 7"), 7)
	r = s.ssh(t, []byte("through stdin\n"), "cat")
	if wantStatus(t, r, 0) && r.stdout != "through stdin\n" {
		t.Errorf("stdin did not pass through ssh:\n%s", r)
	}

	// control: another key is refused, so the logins above used the key
	wrong, _, err := newClientKey(h.user+"-unknown", h.uid, h.gid)
	must(t, err)
	r = run(t, call{Args: s.sshArgs(wrong, nil, "id", "-u"), Stdin: []byte{}})
	if r.status != 255 || !strings.Contains(r.stderr, "Permission denied") {
		t.Errorf("a key not in AuthorizedKeysFile was not refused:\n%s", r)
	}
}

// The fixture's sshd can run under a PAM service of its own, so that a
// test adds session modules without touching /etc/pam.d/sshd.
func TestSSHDRunsUnderItsOwnPAMService(t *testing.T) {
	s := sshdFor(t, sshdOptions{PAMService: pamService(t, "@include sshd")})
	wantStatus(t, s.ssh(t, nil, "true"), 0)
	// control: its session stack is the one used
	s = sshdFor(t, sshdOptions{PAMService: pamService(t, "@include sshd", "session requisite pam_deny.so")})
	if r := s.ssh(t, nil, "true"); r.status == 0 {
		t.Errorf("a login through a PAM service whose session fails succeeded:\n%s", r)
	}
}
