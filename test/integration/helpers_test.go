package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// commandTimeout bounds every command a test runs.
const commandTimeout = 30 * time.Second

// call is one command run by a test.
type call struct {
	Args []string
	// Dir is the working directory; default the user's home (root: /).
	Dir string
	// Env is added to the clean environment (KEY=VALUE, replacing the same
	// KEY). The clean environment has HOME, USER and PATH only: no CHOS.
	Env   []string
	Stdin []byte
	// Root runs the command as root instead of the test user.
	Root bool
	// User runs the command as another unprivileged user than the test
	// user (otherUser).
	User    *testUser
	Timeout time.Duration
}

// testUser is an unprivileged account the tests run commands as.
type testUser struct {
	name, group, home string
	uid, gid          int
}

// account is who runs c (unless c.Root).
func (c call) account() testUser {
	if c.User != nil {
		return *c.User
	}
	return testUser{name: h.user, group: h.group, home: h.home, uid: h.uid, gid: h.gid}
}

// env is the clean environment of the user.
func (u testUser) env() []string {
	return []string{"HOME=" + u.home, "USER=" + u.name, "PATH=/usr/local/bin:/usr/bin:/bin"}
}

// result is what a command did.
type result struct {
	cmd    string
	stdout string
	stderr string
	// status is the exit status, 128+N for death by signal N (as a shell
	// reports it), -1 if the command did not finish.
	status   int
	signaled bool
	timedOut bool
}

func (r result) String() string {
	return fmt.Sprintf("command: %s\nstatus:  %d (signaled %v, timed out %v)\nstdout:  %s\nstderr:  %s",
		r.cmd, r.status, r.signaled, r.timedOut, clip(r.stdout), clip(r.stderr))
}

func clip(s string) string {
	if len(s) > 3000 {
		return strconv.Quote(s[:3000]) + fmt.Sprintf("... (%d bytes)", len(s))
	}
	return strconv.Quote(s)
}

// userEnv is the clean environment of the test user.
func userEnv() []string { return call{}.account().env() }

func rootEnv() []string {
	return []string{"HOME=/root", "USER=root", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
}

// mergeEnv sets each KEY=VALUE of extra in base.
func mergeEnv(base, extra []string) []string {
	out := append([]string{}, base...)
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, b := range out {
			if strings.HasPrefix(b, k+"=") {
				out[i], replaced = kv, true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// argv is what actually runs for c: as the user, through setpriv with the
// user's real ids and groups (initgroups), as a login would give them.
func (c call) argv() []string {
	if c.Root {
		return c.Args
	}
	u := c.account()
	return append([]string{"setpriv", "--reuid", u.name, "--regid", u.group, "--init-groups", "--"}, c.Args...)
}

// run runs c and returns what it did; it fails the test only if the
// command could not be started or timed out.
func run(t testing.TB, c call) result {
	t.Helper()
	if len(c.Args) == 0 {
		t.Fatal("run: no command")
	}
	argv := c.argv()
	cmd := exec.Command(argv[0], argv[1:]...)
	env := c.account().env()
	cmd.Dir = c.account().home
	if c.Root {
		env = rootEnv()
		cmd.Dir = "/"
	}
	if c.Dir != "" {
		cmd.Dir = c.Dir
	}
	cmd.Env = mergeEnv(env, c.Env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = commandTimeout
	}
	out, err := runWithTimeout(cmd, timeout, c.Stdin)
	out.cmd = describe(c)
	if out.timedOut {
		t.Errorf("timed out after %v:\n%s", timeout, out)
		return out
	}
	if err != nil && out.status < 0 {
		t.Fatalf("cannot run %s: %v", out.cmd, err)
	}
	return out
}

func describe(c call) string {
	var b strings.Builder
	switch {
	case c.Root:
		b.WriteString("[root] ")
	case c.User != nil:
		b.WriteString("[" + c.User.name + "] ")
	default:
		b.WriteString("[user] ")
	}
	for _, e := range c.Env {
		b.WriteString(shellQuote(e) + " ")
	}
	for i, a := range c.Args {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(shellQuote(a))
	}
	if c.Dir != "" {
		b.WriteString("   (in " + c.Dir + ")")
	}
	if c.Stdin != nil {
		b.WriteString(fmt.Sprintf("   (stdin %d bytes)", len(c.Stdin)))
	}
	return b.String()
}

var plainArg = regexp.MustCompile(`^[A-Za-z0-9_./:=+@%,-]+$`)

func shellQuote(s string) string {
	if plainArg.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// process groups of commands still running, killed at cleanup
var (
	groupsMu sync.Mutex
	groups   = map[int]bool{}
)

func killAllGroups() {
	groupsMu.Lock()
	defer groupsMu.Unlock()
	for pgid := range groups {
		syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

// runWithTimeout runs cmd (which must have Setpgid set) with stdin; when
// the timeout's context expires its whole process group is killed.
func runWithTimeout(cmd *exec.Cmd, timeout time.Duration, stdin []byte) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// exec.Cmd takes its context at creation: carry the command over.
	c := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	c.Args, c.Dir, c.Env, c.SysProcAttr = cmd.Args, cmd.Dir, cmd.Env, cmd.SysProcAttr
	if c.SysProcAttr == nil || !c.SysProcAttr.Setpgid {
		panic("runWithTimeout: Setpgid must be set")
	}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = 10 * time.Second // for pipes held open by what the group started
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if stdin != nil {
		c.Stdin = bytes.NewReader(stdin)
	}
	res := result{status: -1, cmd: strings.Join(cmd.Args, " ")}
	if err := c.Start(); err != nil {
		return res, err
	}
	pgid := c.Process.Pid
	groupsMu.Lock()
	groups[pgid] = true
	groupsMu.Unlock()
	defer func() {
		// Nothing a command started may outlive it.
		syscall.Kill(-pgid, syscall.SIGKILL)
		groupsMu.Lock()
		delete(groups, pgid)
		groupsMu.Unlock()
	}()

	err := c.Wait()
	res.stdout, res.stderr = stdout.String(), stderr.String()
	if ctx.Err() != nil {
		res.timedOut = true
		return res, ctx.Err()
	}
	if c.ProcessState != nil {
		ws := c.ProcessState.Sys().(syscall.WaitStatus)
		switch {
		case ws.Exited():
			res.status = ws.ExitStatus()
		case ws.Signaled():
			res.status, res.signaled = 128+int(ws.Signal()), true
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		err = nil
	}
	return res, err
}

// shellStatusMarker ends the stderr of shellRun with the status the shell saw.
const shellStatusMarker = "\nchos-itest-shell-status="

// shellRun runs c.Args from a POSIX shell (as the same user) and reports
// the exit status as that shell sees it in $?.
func shellRun(t testing.TB, c call) result {
	t.Helper()
	inner := c
	inner.Args = append([]string{"sh", "-c", `"$@"; printf '` + strings.ReplaceAll(shellStatusMarker, "\n", `\n`) + `%d\n' "$?" >&2`, "sh"}, c.Args...)
	r := run(t, inner)
	r.cmd = "sh -c '\"$@\"; echo $?' " + describe(c)
	i := strings.LastIndex(r.stderr, shellStatusMarker)
	if i < 0 {
		t.Errorf("the shell did not report a status:\n%s", r)
		r.status = -1
		return r
	}
	st, err := strconv.Atoi(strings.TrimSpace(r.stderr[i+len(shellStatusMarker):]))
	if err != nil {
		t.Errorf("bad status line from the shell:\n%s", r)
	}
	r.status, r.signaled, r.stderr = st, false, r.stderr[:i]
	return r
}

// chos runs the installed chos as the test user.
func chos(t testing.TB, args ...string) result {
	t.Helper()
	return run(t, call{Args: append([]string{h.chos}, args...)})
}

// chosCall is a call of the installed chos.
func chosCall(args ...string) call { return call{Args: append([]string{h.chos}, args...)} }

// wantStatus reports a status other than want.
func wantStatus(t testing.TB, r result, want int) bool {
	t.Helper()
	if r.status != want {
		t.Errorf("exit status %d, want %d:\n%s", r.status, want, r)
		return false
	}
	return true
}

// wantOSID checks that r ran in the OS with os-release ID id.
func wantOSID(t testing.TB, r result, id string) {
	t.Helper()
	if !wantStatus(t, r, 0) {
		return
	}
	if got := parseOSRelease(r.stdout)["ID"]; got != id {
		t.Errorf("os-release ID %q, want %q:\n%s", got, id, r)
	}
}

func parseOSRelease(s string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok && k != "" && !strings.HasPrefix(k, "#") {
			m[k] = strings.Trim(v, `"'`)
		}
	}
	return m
}

// validNames parses the "valid names: a, b, c" list of an unknown-tree error.
func validNames(stderr string) []string {
	_, list, ok := strings.Cut(stderr, "valid names:")
	if !ok {
		return nil
	}
	list, _, _ = strings.Cut(list, "\n")
	var names []string
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	return names
}

// wantValidNames checks that an error lists every name in want as valid.
func wantValidNames(t testing.TB, r result, want ...string) {
	t.Helper()
	got := validNames(r.stderr)
	have := map[string]bool{}
	for _, n := range got {
		have[n] = true
	}
	for _, n := range want {
		if !have[n] {
			t.Errorf("valid names %q lack %q:\n%s", got, n, r)
		}
	}
}

// unique is a file name no other test or run uses.
func unique(t testing.TB) string {
	name := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")
	if len(name) > 40 {
		name = name[:40]
	}
	return "chos-itest-" + name + "-" + randHex(4)
}

// setConfig replaces the configuration for one test.
func setConfig(t testing.TB, text string) {
	t.Helper()
	if err := writeRootFile(h.config, text, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(restoreConfig(t))
}

func restoreConfig(t testing.TB) func() {
	return func() {
		if err := writeRootFile(h.config, h.configText, 0o644); err != nil {
			t.Errorf("restoring %s: %v", h.config, err)
		}
		os.Chown(h.config, 0, 0)
	}
}

// addGoneTree adds a tree whose path does not exist to the configuration,
// for one test, and returns its name.
func addGoneTree(t testing.TB) (name, path string) {
	t.Helper()
	path = filepath.Join(h.base, "nonexistent", "gone")
	setConfig(t, h.configText+"gone:"+path+"\n")
	return "gone", path
}

func dotfilePath() string { return filepath.Join(h.home, ".chos") }

// setDotfile writes the user's ~/.chos (owned by the user) for one test.
func setDotfile(t testing.TB, content string) {
	t.Helper()
	clearDotfile(t)
	writeUserFile(t, dotfilePath(), content, 0o644)
}

// clearDotfile removes ~/.chos now and after the test.
func clearDotfile(t testing.TB) {
	t.Helper()
	if err := os.Remove(dotfilePath()); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dotfilePath()) })
}

// writeUserFile writes a file owned by the test user.
func writeUserFile(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(path, h.uid, h.gid); err != nil {
		t.Fatal(err)
	}
}

// userDir makes dir (and its missing parents below the user's home) owned
// by the user; removed after the test.
func userDir(t testing.TB, dir string) {
	t.Helper()
	rel, err := filepath.Rel(h.home, dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		t.Fatalf("userDir: %s is not below %s", dir, h.home)
	}
	p := h.home
	for _, c := range strings.Split(rel, "/") {
		p = filepath.Join(p, c)
		if err := os.Mkdir(p, 0o755); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
		if err := os.Lchown(p, h.uid, h.gid); err != nil {
			t.Fatal(err)
		}
	}
	top := filepath.Join(h.home, strings.Split(rel, "/")[0])
	t.Cleanup(func() { os.RemoveAll(top) })
}

// readMountinfo is the host's mount table as this process sees it, without
// the mounts of other test runs and of `make bench` on the same machine.
func readMountinfo(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var keep []string
	for _, l := range strings.Split(string(data), "\n") {
		other := strings.Contains(l, "/chos-itest-") || strings.Contains(l, "/chos-bench") || strings.Contains(l, "/schroot/mount/")
		if other && !strings.Contains(l, h.base+"/") && !strings.Contains(l, h.tmp) {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// lineDiff lists the (non-empty) lines only in a and only in b.
func lineDiff(a, b string) (onlyA, onlyB []string) {
	count := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(b, "\n") {
		count[l]--
	}
	delete(count, "")
	for l, n := range count {
		for ; n > 0; n-- {
			onlyA = append(onlyA, l)
		}
		for ; n < 0; n++ {
			onlyB = append(onlyB, l)
		}
	}
	sort.Strings(onlyA)
	sort.Strings(onlyB)
	return
}

// fileState is what snapshotTree records of one file.
type fileState struct {
	mode  os.FileMode
	size  int64
	mtime int64
	uid   uint32
	link  string
}

// snapshotTree records every file of a directory tree (without following
// links), to see that nothing changed.
func snapshotTree(t testing.TB, root string) map[string]fileState {
	t.Helper()
	snap, err := snapshotFiles(root)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// snapshotFiles is snapshotTree for code without a test at hand.
func snapshotFiles(root string) (map[string]fileState, error) {
	snap := map[string]fileState{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		fs := fileState{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime().UnixNano(), uid: st.Uid}
		if fi.Mode()&os.ModeSymlink != 0 {
			fs.link, _ = os.Readlink(p)
		}
		snap[p] = fs
		return nil
	})
	return snap, err
}

func diffSnapshots(before, after map[string]fileState) []string {
	var d []string
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			d = append(d, "removed "+p)
		case a != b:
			d = append(d, fmt.Sprintf("changed %s: %+v -> %+v", p, b, a))
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			d = append(d, "added "+p)
		}
	}
	sort.Strings(d)
	return d
}

// sameSet compares two lists of numbers as sets.
func sameSet(a, b []string) bool {
	set := func(l []string) string {
		m := map[string]bool{}
		for _, x := range l {
			m[x] = true
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return strings.Join(keys, ",")
	}
	return set(a) == set(b)
}

// buildEuid builds testdata/euid (static) into dir and returns its path.
func buildEuid(t testing.TB, dir string) string {
	t.Helper()
	return buildTestProgram(t, dir, "euid")
}

// buildTestProgram builds testdata/NAME (static, with the extra go build
// flags) into dir and returns its path.
func buildTestProgram(t testing.TB, dir, name string, flags ...string) string {
	t.Helper()
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	out := filepath.Join(dir, name)
	args := append(append([]string{"build", "-o", out}, flags...), "./test/integration/testdata/"+name)
	cmd := exec.CommandContext(context.Background(), goBin, args...)
	cmd.Dir = h.repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r, err := runWithTimeout(cmd, 2*time.Minute, nil)
	if err != nil || r.status != 0 {
		t.Fatalf("building testdata/%s: %v\n%s", name, err, r)
	}
	return out
}

var (
	tmpProgramsMu sync.Mutex
	tmpPrograms   = map[string]string{}
)

// tmpProgram is testdata/NAME (with the extra go build flags), built once
// per run where every tree sees it at the same path: below /tmp, in a
// root-owned directory.
func tmpProgram(t testing.TB, name string, flags ...string) string {
	t.Helper()
	tmpProgramsMu.Lock()
	defer tmpProgramsMu.Unlock()
	if p, ok := tmpPrograms[name]; ok {
		return p
	}
	dir := filepath.Join(h.tmp, name)
	must(t, os.MkdirAll(dir, 0o755))
	p := buildTestProgram(t, dir, name, flags...)
	tmpPrograms[name] = p
	return p
}

// copyFile copies src to dst with mode, owned by root.
func copyFile(t testing.TB, src, dst string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dst, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, mode); err != nil { // after chown, which clears setuid
		t.Fatal(err)
	}
}

// vsysLink is a symbolic link NAME to the installed setuid chos: the vsys
// form that takes the tree name from argv[0].
func vsysLink(t testing.TB, name string) string {
	t.Helper()
	return vsysLinkTo(t, h.chos, name)
}

// vsysLinkTo is a symbolic link NAME to the chos binary bin, in a
// root-owned directory next to bin's own (prefix/links for prefix/bin/chos).
func vsysLinkTo(t testing.TB, bin, name string) string {
	t.Helper()
	dir := filepath.Join(filepath.Dir(filepath.Dir(bin)), "links")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, name)
	if target, err := os.Readlink(link); err == nil && target == bin {
		return link
	}
	os.Remove(link)
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// background is a command started by start, whose output can be read while
// it runs.
type background struct {
	t    testing.TB
	desc string
	// pid is the process started. For the user, setpriv execs its
	// command, so this is chos itself: in userns mode, the helper.
	pid int

	mu             sync.Mutex
	stdout, stderr bytes.Buffer

	lines   chan string   // stdout, line by line
	outDone chan struct{} // stdout and stderr reached EOF
	done    chan struct{} // the process exited; status set
	status  int           // as a shell reports it: 128+N for signal N
	sig     bool
}

// start starts c (without stdin) in its own process group, killed with
// everything in it at the end of the test.
func start(t testing.TB, c call) *background {
	t.Helper()
	if c.Stdin != nil {
		t.Fatal("start: stdin is not supported")
	}
	argv := c.argv()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = c.account().home, mergeEnv(c.account().env(), c.Env)
	if c.Root {
		cmd.Dir, cmd.Env = "/", mergeEnv(rootEnv(), c.Env)
	}
	if c.Dir != "" {
		cmd.Dir = c.Dir
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	outR, outW, err := os.Pipe()
	must(t, err)
	errR, errW, err := os.Pipe()
	must(t, err)
	cmd.Stdout, cmd.Stderr = outW, errW
	b := &background{t: t, desc: describe(c), lines: make(chan string, 1000),
		outDone: make(chan struct{}), done: make(chan struct{}), status: -1}
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		t.Fatalf("cannot start %s: %v", b.desc, err)
	}
	b.pid = cmd.Process.Pid
	groupsMu.Lock()
	groups[b.pid] = true
	groupsMu.Unlock()

	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		defer outR.Close()
		br := bufio.NewReader(outR)
		for {
			line, err := br.ReadString('\n')
			b.mu.Lock()
			b.stdout.WriteString(line)
			b.mu.Unlock()
			if line != "" {
				select {
				case b.lines <- strings.TrimSuffix(line, "\n"):
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		defer readers.Done()
		defer errR.Close()
		buf := make([]byte, 4096)
		for {
			n, err := errR.Read(buf)
			b.mu.Lock()
			b.stderr.Write(buf[:n])
			b.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() { readers.Wait(); close(b.outDone) }()
	go func() {
		cmd.Wait()
		if ps := cmd.ProcessState; ps != nil {
			ws := ps.Sys().(syscall.WaitStatus)
			switch {
			case ws.Exited():
				b.status = ws.ExitStatus()
			case ws.Signaled():
				b.status, b.sig = 128+int(ws.Signal()), true
			}
		}
		close(b.done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-b.pid, syscall.SIGKILL)
		select {
		case <-b.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s: still not reaped 10 s after SIGKILL", b.desc)
		}
		groupsMu.Lock()
		delete(groups, b.pid)
		groupsMu.Unlock()
	})
	return b
}

// result is what the command did so far.
func (b *background) result() result {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := result{cmd: b.desc, stdout: b.stdout.String(), stderr: b.stderr.String(), status: -1}
	select {
	case <-b.done:
		r.status, r.signaled = b.status, b.sig
	default:
	}
	return r
}

// waitLine waits for a line of stdout equal to want; false (and the test
// failed) if the command ended or the timeout passed first.
func (b *background) waitLine(want string, timeout time.Duration) bool {
	b.t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case l := <-b.lines:
			if l == want {
				return true
			}
		case <-b.outDone:
			b.t.Errorf("the command closed its output without printing %q:\n%s", want, b.result())
			return false
		case <-timer.C:
			b.t.Errorf("no line %q after %v:\n%s", want, timeout, b.result())
			return false
		}
	}
}

// wait waits for the process started to exit and returns what it did,
// with its output up to then (and up to a second more of it).
func (b *background) wait(timeout time.Duration) result {
	b.t.Helper()
	select {
	case <-b.done:
	case <-time.After(timeout):
		r := b.result()
		r.timedOut = true
		b.t.Errorf("still running after %v:\n%s", timeout, r)
		return r
	}
	select {
	case <-b.outDone:
	case <-time.After(time.Second):
	}
	return b.result()
}

// processes lists the pids of /proc for which match, given the pid and a
// reader of one of its /proc files, says yes.
func processes(match func(pid int, read func(file string) (string, bool)) bool) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		read := func(file string) (string, bool) {
			data, err := os.ReadFile("/proc/" + e.Name() + "/" + file)
			return string(data), err == nil
		}
		if match(pid, read) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// pidsRunning lists the live processes whose command line is exactly argv.
func pidsRunning(argv ...string) []int {
	want := strings.Join(argv, "\x00") + "\x00"
	return processes(func(pid int, read func(string) (string, bool)) bool {
		cmdline, ok := read("cmdline")
		return ok && cmdline == want && alive(pid)
	})
}

// procStatusOf is /proc/PID/status, parsed.
func procStatusOf(t testing.TB, pid int) map[string]string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatalf("reading the status of process %d: %v", pid, err)
	}
	return procStatus(string(data))
}

// builtOnce is a fixture the first test that asks for it builds, once per
// run of the package: every test that asks gets it, or fails with the
// build's error.
type builtOnce[T any] func() (T, error)

func buildOnce[T any](build func() (T, error)) builtOnce[T] { return sync.OnceValues(build) }

func (b builtOnce[T]) get(t testing.TB) T {
	t.Helper()
	v, err := b()
	if err != nil {
		t.Fatal(err)
	}
	return v
}
