// Package integration tests an installed chos end to end: it builds three
// busybox OS trees, installs chos with its paths compiled in under a private
// base directory (setuid root, plus a plain copy of the same binary for
// user-namespace mode), creates an unprivileged user with supplementary
// groups, and runs chos as that user, the way users and batch jobs run it.
// The behaviours both modes share are one table, TestBothModes, run in each.
//
// It needs root (to install the setuid binary, create the user and look
// at the result from the host). Without root it fails, unless
// CHOS_INTEGRATION_SKIP=1 is set outside CI.
//
//	go test -count=1 -p 1 -v ./test/integration/...
package integration

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// harness is what TestMain set up, shared by every test.
type harness struct {
	repo string // repository root

	base       string // root-owned 0755 directory under /var/lib holding everything
	etc        string // SYSCONFDIR compiled into chos
	config     string // SYSCONFDIR/chos
	configText string // the configuration every test starts from
	chosRoot   string // CHOSROOT compiled into chos
	cacheDir   string // CACHEDIR compiled into chos (setuid mode keeps views there)
	prefix     string
	chos       string            // the installed setuid-root chos
	chosUserns string            // the same binary without the setuid bit: userns mode
	trees      map[string]string // tree name -> path on the host
	osIDs      map[string]string // tree name -> ID in its os-release
	osNames    map[string]string // tree name -> PRETTY_NAME

	user        string // the unprivileged test user
	uid, gid    int
	home        string
	group       string   // the user's primary group
	extraGroups []string // supplementary groups made for the user
	extraGIDs   []int

	hostOSRelease map[string]string // the host's /etc/os-release

	tmp string // a root-owned 0755 scratch directory in /tmp (shared with the trees)
}

var h *harness

// treeSpecs are the trees every test may use: name, os-release ID, PRETTY_NAME.
var treeSpecs = []struct{ name, id, pretty string }{
	{"one", "chosone", "Chos Test One"},
	{"two", "chostwo", "Chos Test Two"},
	{"three", "chosthree", "Chos Test Three"},
}

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		msg := "chos integration tests need root: they install chos setuid root, create a user and build OS trees"
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, strings.Repeat("!", 78))
			fmt.Fprintln(os.Stderr, "!!! FAIL: "+msg)
			fmt.Fprintln(os.Stderr, "!!! CI is set: a test that needs root must run as root in CI, not be skipped.")
			fmt.Fprintln(os.Stderr, strings.Repeat("!", 78))
			return 1
		}
		if os.Getenv("CHOS_INTEGRATION_SKIP") == "1" {
			fmt.Fprintln(os.Stderr, "SKIPPING ALL chos integration tests (CHOS_INTEGRATION_SKIP=1): "+msg)
			return 0
		}
		fmt.Fprintln(os.Stderr, "FAIL: "+msg+".\nRun as root, or set CHOS_INTEGRATION_SKIP=1 to skip them on purpose.")
		return 1
	}

	cl := &cleanups{}
	pkgCleanups = cl
	// An interrupted run still removes the user, the trees and the
	// installation. (A `go test -timeout` panic cannot be caught: every
	// command has its own much shorter timeout so that it never comes to it.)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "integration: %v: cleaning up\n", s)
		cl.run()
		os.Exit(1)
	}()

	code := 1
	if err := setup(cl); err != nil {
		fmt.Fprintln(os.Stderr, "integration: setup failed: "+err.Error())
	} else {
		code = m.Run()
	}
	if !cl.run() && code == 0 {
		code = 1
	}
	return code
}

// pkgCleanups are the cleanups of the package run (also run on SIGINT).
var pkgCleanups *cleanups

// atExit registers fn with the package's cleanups, for fixtures started
// lazily by a test but shared by all (an sshd, a snapshot to compare).
// Register before changing anything: after an interrupt, tests go on
// running while the cleanups run, and a fixture must then not start.
func atExit(fn func() error) error {
	if !pkgCleanups.add(fn) {
		return errors.New("the package's cleanups have run (interrupted?)")
	}
	return nil
}

// cleanups run in reverse order of registration, once.
type cleanups struct {
	mu   sync.Mutex
	fns  []func() error
	done bool
}

// add registers fn, unless the cleanups have run (false).
func (c *cleanups) add(fn func() error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fns = append(c.fns, fn)
	return !c.done
}

// run runs every cleanup and reports whether all succeeded.
func (c *cleanups) run() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return true
	}
	c.done = true
	killAllGroups()
	ok := true
	for i := len(c.fns) - 1; i >= 0; i-- {
		if err := c.fns[i](); err != nil {
			fmt.Fprintln(os.Stderr, "integration: CLEANUP FAILED: "+err.Error())
			ok = false
		}
	}
	return ok
}

func setup(cl *cleanups) error {
	h = &harness{trees: map[string]string{}, osIDs: map[string]string{}, osNames: map[string]string{}}
	var err error
	if h.repo, err = repoRoot(); err != nil {
		return err
	}
	warnLeftovers()

	// The base: root's, 0755, not under /tmp, so that the configuration
	// and every directory above it pass chos's ownership checks.
	if h.base, err = os.MkdirTemp("/var/lib", "chos-itest-"); err != nil {
		return err
	}
	cl.add(func() error { return removeUnmounted(h.base) })
	if err := os.Chmod(h.base, 0o755); err != nil {
		return err
	}
	if err := checkRootOwnedPath(h.base); err != nil {
		return err
	}
	if h.tmp, err = os.MkdirTemp("/tmp", "chos-itest-"); err != nil {
		return err
	}
	cl.add(func() error { return removeUnmounted(h.tmp) })
	if err := os.Chmod(h.tmp, 0o755); err != nil {
		return err
	}
	h.etc = filepath.Join(h.base, "etc")
	h.config = filepath.Join(h.etc, "chos")
	h.prefix = filepath.Join(h.base, "prefix")
	h.chosRoot = filepath.Join(h.base, "root")
	h.cacheDir = filepath.Join(h.base, "cache")
	h.chos = filepath.Join(h.prefix, "bin", "chos")

	// the trees
	for _, ts := range treeSpecs {
		dir := filepath.Join(h.base, "trees", ts.name)
		if out, err := runSetup(2*time.Minute, h.repo, "scripts/mkbusyboxtree", dir, ts.id, ts.pretty); err != nil {
			return fmt.Errorf("mkbusyboxtree %s: %w\n%s", dir, err, out)
		}
		h.trees[ts.name], h.osIDs[ts.name], h.osNames[ts.name] = dir, ts.id, ts.pretty
	}
	if err := os.Chmod(filepath.Join(h.base, "trees"), 0o755); err != nil {
		return err
	}

	// the configuration, then the installation (which keeps it)
	if err := os.Mkdir(h.etc, 0o755); err != nil {
		return err
	}
	h.configText = fmt.Sprintf("%%SHELLS\none:%s\ntwo:%s\nthree:%s\ndefault:%s\nlocal:/\n",
		h.trees["one"], h.trees["two"], h.trees["three"], h.trees["one"])
	if err := writeRootFile(h.config, h.configText, 0o644); err != nil {
		return err
	}
	// Setuid launches keep each tree's view as a mount namespace pinned in
	// CACHEDIR/ns: under the base, never in the host's /run/chos, and
	// dropped (then checked gone) before the base is removed.
	cl.add(dropCache)
	// The modules go under the prefix too, never into the system's PAM
	// and Slurm plugin directories.
	if out, err := runSetup(5*time.Minute, h.repo, "make", "install",
		"PREFIX="+h.prefix, "SYSCONFDIR="+h.etc, "CHOSROOT="+h.chosRoot, "CACHEDIR="+h.cacheDir,
		"PAMDIR="+filepath.Join(h.prefix, "lib", "security"), "SPANKDIR="+filepath.Join(h.prefix, "lib", "slurm")); err != nil {
		return fmt.Errorf("make install: %w\n%s", err, out)
	}
	fi, err := os.Stat(h.chos)
	if err != nil {
		return err
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode()&os.ModeSetuid == 0 {
		return fmt.Errorf("%s is not setuid root after make install (uid %d, mode %v)", h.chos, st.Uid, fi.Mode())
	}
	if data, err := os.ReadFile(h.config); err != nil || string(data) != h.configText {
		return fmt.Errorf("make install changed %s (err %v)", h.config, err)
	}
	// bin/chos is shared with whoever else builds in the repository: make
	// sure the installed one has this run's paths compiled in.
	if out, _ := runSetup(30*time.Second, "/", h.chos, "--help"); !strings.Contains(out, h.config) {
		return fmt.Errorf("%s does not have SYSCONFDIR %s compiled in (was bin/chos rebuilt concurrently?):\n%s", h.chos, h.etc, out)
	}
	if out, err := runSetup(30*time.Second, "/", h.chos, "help", "cache"); err == nil && !strings.Contains(out, h.cacheDir) {
		return fmt.Errorf("%s does not have CACHEDIR %s compiled in:\n%s", h.chos, h.cacheDir, out)
	}

	// The same binary without the setuid bit, for user-namespace mode. The
	// command line dispatches on argv[0], so it is called chos too.
	h.chosUserns = filepath.Join(h.base, "userns", "bin", "chos")
	if err := installPlainCopy(h.chos, h.chosUserns); err != nil {
		return err
	}

	// the user, with two supplementary groups besides their own
	h.user = "chost" + randHex(3)
	h.extraGroups = []string{h.user + "a", h.user + "b"}
	for _, g := range h.extraGroups {
		if out, err := runSetup(30*time.Second, "/", "groupadd", g); err != nil {
			return fmt.Errorf("groupadd %s: %w\n%s", g, err, out)
		}
		g := g
		cl.add(func() error {
			if out, err := runSetup(30*time.Second, "/", "groupdel", g); err != nil {
				return fmt.Errorf("groupdel %s: %w\n%s", g, err, out)
			}
			return nil
		})
	}
	// A uid of its own on the machine: the kernel counts a uid's processes
	// against RLIMIT_NPROC across every PID namespace, and another run in a
	// fresh root of its own would have useradd's first one too.
	uid, err := freeUID()
	if err != nil {
		return err
	}
	if out, err := runSetup(30*time.Second, "/", "useradd", "-m", "-U", "-u", strconv.Itoa(uid), "-s", "/bin/sh",
		"-c", "chos integration test", "-G", strings.Join(h.extraGroups, ","), h.user); err != nil {
		return fmt.Errorf("useradd %s: %w\n%s", h.user, err, out)
	}
	cl.add(removeUser)
	u, err := user.Lookup(h.user)
	if err != nil {
		return err
	}
	h.uid, _ = strconv.Atoi(u.Uid)
	h.gid, _ = strconv.Atoi(u.Gid)
	h.home = u.HomeDir
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return err
	}
	h.group = g.Name
	for _, name := range h.extraGroups {
		g, err := user.LookupGroup(name)
		if err != nil {
			return err
		}
		gid, _ := strconv.Atoi(g.Gid)
		h.extraGIDs = append(h.extraGIDs, gid)
	}
	if h.home != "/home/"+h.user {
		return fmt.Errorf("home of %s is %s, want /home/%s", h.user, h.home, h.user)
	}

	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return err
	}
	h.hostOSRelease = parseOSRelease(string(data))
	if h.hostOSRelease["ID"] == "" {
		return fmt.Errorf("the host's /etc/os-release has no ID")
	}
	fmt.Fprintf(os.Stderr, "integration: base %s, user %s (uid %d gid %d groups %v), chos %s (setuid), %s (userns)\n",
		h.base, h.user, h.uid, h.gid, h.extraGIDs, h.chos, h.chosUserns)
	return nil
}

// freeUID is a random uid from 20000 to 59999 that no account has.
func freeUID() (int, error) {
	for i := 0; i < 100; i++ {
		n, err := strconv.ParseUint(randHex(2), 16, 16)
		if err != nil {
			return 0, err
		}
		uid := 20000 + int(n)%40000
		if _, err := user.LookupId(strconv.Itoa(uid)); err != nil {
			if _, err := user.LookupGroupId(strconv.Itoa(uid)); err != nil {
				return uid, nil
			}
		}
	}
	return 0, errors.New("no free uid from 20000 to 59999")
}

// installPlainCopy copies the setuid binary src to dst (creating its
// directories, root's 0755) as root's, mode 0755: no setuid bit.
func installPlainCopy(src, dst string) error {
	for _, d := range []string{filepath.Dir(filepath.Dir(dst)), filepath.Dir(dst)} {
		if err := os.Mkdir(d, 0o755); err != nil && !os.IsExist(err) {
			return err
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := writeRootFile(dst, string(data), 0o755); err != nil {
		return err
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return err
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode() != 0o755 {
		return fmt.Errorf("%s: uid %d, mode %v; want root's, 0755, no setuid bit", dst, st.Uid, fi.Mode())
	}
	return nil
}

// repoRoot is ../.. of this file (or of the package directory go test runs in).
func repoRoot() (string, error) {
	var candidates []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		candidates = append(candidates, filepath.Join(filepath.Dir(file), "..", ".."))
	}
	if wd, err := os.Getwd(); err == nil {
		candidates = append(candidates, filepath.Join(wd, "..", ".."))
	}
	for _, c := range candidates {
		data, err := os.ReadFile(filepath.Join(c, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/chos-hpc/chos") {
			return filepath.Abs(c)
		}
	}
	return "", fmt.Errorf("cannot find the chos repository from %v", candidates)
}

// warnLeftovers points at what an earlier, killed run may have left.
func warnLeftovers() {
	if ents, err := os.ReadDir("/var/lib"); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "chos-itest-") {
				fmt.Fprintf(os.Stderr, "integration: warning: /var/lib/%s is left from an earlier run\n", e.Name())
			}
		}
	}
	if f, err := os.Open("/etc/passwd"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fields := strings.Split(sc.Text(), ":"); len(fields) == 7 && fields[4] == "chos integration test" {
				fmt.Fprintf(os.Stderr, "integration: warning: user %s is left from an earlier run\n", fields[0])
			}
		}
		f.Close()
	}
}

// dropCache removes the namespaces that setuid launches cached under
// h.cacheDir (`chos cache drop`, as root), and fails if any mount is left
// there.
func dropCache() error {
	if len(mountsUnder(h.cacheDir)) == 0 {
		return nil
	}
	out, err := runSetup(30*time.Second, "/", h.chos, "cache", "drop")
	if m := mountsUnder(h.cacheDir); len(m) > 0 {
		return fmt.Errorf("mounts left under %s after `chos cache drop` (%v):\n%s%v", h.cacheDir, err, out, m)
	}
	return nil
}

func removeUser() error {
	keepers := endKeepers(h.uid)
	if m := mountsUnder(h.home); len(m) > 0 {
		return errors.Join(keepers, fmt.Errorf("not removing user %s: mounts under %s: %v", h.user, h.home, m))
	}
	if out, err := runSetup(30*time.Second, "/", "userdel", "-r", h.user); err != nil {
		// userdel -r exits 12 when only the mail spool is missing.
		if _, lerr := user.Lookup(h.user); lerr == nil {
			return errors.Join(keepers, fmt.Errorf("userdel -r %s: %w\n%s", h.user, err, out))
		}
	}
	if _, err := os.Lstat(h.home); err == nil {
		return errors.Join(keepers, fmt.Errorf("%s still exists after userdel -r", h.home))
	}
	return keepers
}

// removeUnmounted removes dir, but never while anything is mounted under
// it: a leaked mount is unmounted (and reported) first, and if that fails
// the directory is left alone.
func removeUnmounted(dir string) error {
	var report error
	if m := mountsUnder(dir); len(m) > 0 {
		report = fmt.Errorf("mounts left under %s (a chos bug: launches must not leave mounts on the host): %v", dir, m)
		for round := 0; round < 5 && len(m) > 0; round++ {
			sort.Sort(sort.Reverse(sort.StringSlice(m))) // deepest first
			for _, p := range m {
				syscall.Unmount(p, syscall.MNT_DETACH)
			}
			m = mountsUnder(dir)
		}
		if len(m) > 0 {
			return fmt.Errorf("%v; NOT removing %s: still mounted: %v", report, dir, m)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return errors.Join(report, err)
	}
	return report
}

// mountsUnder lists the mount points at or below dir in this process's
// mount namespace (the host's).
func mountsUnder(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return []string{"cannot read /proc/self/mountinfo: " + err.Error()}
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

// unescapeMountinfo undoes the octal escapes (\040) of /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// checkRootOwnedPath checks what chos will check of the configuration's
// directories: root's, not writable by group or others, up to /.
func checkRootOwnedPath(p string) error {
	for ; ; p = filepath.Dir(p) {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
			return fmt.Errorf("%s must be root's and not group/other writable (uid %d, mode %v)", p, st.Uid, fi.Mode())
		}
		if p == "/" {
			return nil
		}
	}
}

// runSetup runs a setup command as root with a timeout, returning its
// output. The user database commands are retried while another process
// holds its lock.
func runSetup(timeout time.Duration, dir string, name string, args ...string) (string, error) {
	for attempt := 0; ; attempt++ {
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		r, err := runWithTimeout(cmd, timeout, nil)
		out := r.stdout + r.stderr
		if err == nil && r.status != 0 {
			err = fmt.Errorf("exit status %d", r.status)
		}
		userDB := strings.HasPrefix(name, "user") || strings.HasPrefix(name, "group")
		if err != nil && userDB && attempt < 10 && strings.Contains(out, "lock") {
			time.Sleep(300 * time.Millisecond)
			continue
		}
		return out, err
	}
}

func writeRootFile(path, content string, mode os.FileMode) error {
	tmp := path + ".tmp-" + randHex(4)
	if err := os.WriteFile(tmp, []byte(content), mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil { // not subject to the umask
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
