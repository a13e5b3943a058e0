package integration

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The packages a site installs: make install as a packager runs it, the
// Debian packages installed for real and purged, the RPMs' file lists.

// TestMakeInstallStagesAsAPackagerWould installs into a staging directory
// with DESTDIR and PREFIX, as root and as a user: the same files and modes,
// and the setuid bit only from root.
func TestMakeInstallStagesAsAPackagerWould(t *testing.T) {
	stage, err := os.MkdirTemp(h.tmp, "stage-") // (t.TempDir's parent is root's 0700)
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(stage) })
	must(t, os.Chmod(stage, 0o755))
	vars := []string{"PREFIX=/usr", "SYSCONFDIR=/etc", "CHOSROOT=/chos", "CACHEDIR=/run/chos",
		"PAMDIR=/usr/lib64/security", "SPANKDIR=/usr/lib64/slurm"}
	// the build, then the install, as root
	root := filepath.Join(stage, "root")
	r := run(t, makeCall(append([]string{"install", "DESTDIR=" + root}, vars...)...))
	wantStatus(t, r, 0)
	// the install of that build by an unprivileged packager (make -o build:
	// the user has no Go caches of their own here)
	user := filepath.Join(stage, "user")
	userDirAt(t, user)
	r = run(t, call{Dir: h.repo, Args: append([]string{"make", "-o", "build", "install", "DESTDIR=" + filepath.Join(user, "tree")}, vars...), Timeout: time.Minute})
	wantStatus(t, r, 0)
	if !strings.Contains(r.stderr, "is NOT setuid root") {
		t.Errorf("no warning that the user's install is not setuid:\n%s", r)
	}
	want := map[string]string{
		"/usr/bin/chos":                                  "-rwsr-xr-x",
		"/usr/libexec/chos/chos-cdi":                     "-rwxr-xr-x",
		"/usr/share/man/man1/chos.1":                     "-rw-r--r--",
		"/usr/share/man/man8/pam_chos.8":                 "-rw-r--r--",
		"/usr/share/man/man8/chos_spank.8":               "-rw-r--r--",
		"/usr/lib64/security/pam_chos.so":                "-rw-r--r--",
		"/usr/lib64/slurm/chos_spank.so":                 "-rw-r--r--",
		"/usr/share/chos/profile.d/chos.sh":              "-rw-r--r--",
		"/usr/share/chos/profile.d/chos.csh":             "-rw-r--r--",
		"/usr/share/doc/chos/chos.example":               "-rw-r--r--",
		"/usr/share/bash-completion/completions/chos":    "-rw-r--r--",
		"/usr/share/zsh/site-functions/_chos":            "-rw-r--r--",
		"/usr/share/fish/vendor_completions.d/chos.fish": "-rw-r--r--",
		"/etc/chos":   "-rw-r--r--",
		"/etc/chos.d": "drwxr-xr-x",
		"/chos":       "drwxr-xr-x",
	}
	for _, c := range []struct {
		dir    string
		uid    int
		setuid bool
	}{{root, 0, true}, {filepath.Join(user, "tree"), h.uid, false}} {
		got := stagedFiles(t, c.dir)
		for p, mode := range want {
			if !c.setuid && p == "/usr/bin/chos" {
				mode = "-rwxr-xr-x"
			}
			f, ok := got[p]
			switch {
			case !ok:
				t.Errorf("%s: %s not installed", c.dir, p)
			case f.mode != mode || f.uid != c.uid:
				t.Errorf("%s: %s is %s uid %d, want %s uid %d", c.dir, p, f.mode, f.uid, mode, c.uid)
			}
		}
		for p, f := range got {
			if _, ok := want[p]; !ok && !f.dir {
				t.Errorf("%s: %s installed, not in the list", c.dir, p)
			}
			if f.dir && f.mode != "drwxr-xr-x" {
				t.Errorf("%s: directory %s is %s", c.dir, p, f.mode)
			}
		}
	}
	// the sample is the configuration of a new installation, byte for byte
	sample, _ := os.ReadFile(filepath.Join(h.repo, "etc", "chos.example"))
	if got, _ := os.ReadFile(filepath.Join(root, "etc", "chos")); !bytes.Equal(got, sample) {
		t.Errorf("the staged /etc/chos is not the sample")
	}
}

// makeCall runs make in the repository as root, with the Go toolchain the
// tests were started with.
func makeCall(args ...string) call {
	return call{Root: true, Dir: h.repo, Args: append([]string{"make"}, args...), Timeout: 10 * time.Minute,
		Env: []string{"PATH=" + os.Getenv("PATH")}}
}

// userDirAt creates dir, a directory the test user owns, whose parent is root's.
func userDirAt(t testing.TB, dir string) {
	t.Helper()
	must(t, os.Mkdir(dir, 0o755))
	must(t, os.Chown(dir, h.uid, h.gid))
}

type stagedFile struct {
	mode string
	uid  int
	dir  bool
}

// stagedFiles lists a staged tree: path inside it -> mode and owner.
func stagedFiles(t testing.TB, dir string) map[string]stagedFile {
	t.Helper()
	files := map[string]stagedFile{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		files[strings.TrimPrefix(p, dir)] = stagedFile{mode: modeString(fi.Mode()), uid: int(fi.Sys().(*syscall.Stat_t).Uid), dir: fi.IsDir()}
		return nil
	})
	must(t, err)
	return files
}

// modeString is a mode as ls -l shows it (setuid as s).
func modeString(m fs.FileMode) string {
	s := []byte(m.Perm().String())
	if m.IsDir() {
		s[0] = 'd'
	}
	if m&fs.ModeSetuid != 0 {
		s[3] = 's'
	}
	return string(s)
}

// The Debian packages.
var debPackages = []string{"chos", "libpam-chos", "slurm-chos-plugin"}

// debInstalled says which of the packages dpkg has installed or half-
// installed (anything but not-installed).
func debInstalled() []string {
	var have []string
	for _, p := range debPackages {
		out, _ := runSetup(time.Minute, "/", "dpkg-query", "-W", "-f=${db:Status-Status}", p)
		if s := strings.TrimSpace(out); s != "" && s != "not-installed" && !strings.Contains(s, "no packages found") {
			have = append(have, p)
		}
	}
	return have
}

// dpkgState is every package's version and state, to compare before and after.
func dpkgState(t testing.TB) string {
	out, err := runSetup(time.Minute, "/", "dpkg-query", "-W", "-f=${Package} ${Version} ${db:Status-Abbrev}\n")
	must(t, err)
	return out
}

// apt runs apt-get as root, noninteractive, waiting for another apt or dpkg
// (another test run) to finish.
func apt(t testing.TB, args ...string) result {
	t.Helper()
	return run(t, call{Root: true, Dir: filepath.Join(h.repo, "build", "deb"), Timeout: 5 * time.Minute,
		Env:  []string{"DEBIAN_FRONTEND=noninteractive"},
		Args: append([]string{"apt-get", "-y", "-o", "DPkg::Lock::Timeout=300"}, args...)})
}

// TestDebianPackagesInstallWorkAndPurgeClean builds the .debs (make deb),
// has lintian check them, installs them for real with apt-get, uses chos
// as a user, and purges them: the machine is left as it was. A second
// round shows that an existing /etc/chos (a site's, kept from CHOS) is
// never overwritten.
func TestDebianPackagesInstallWorkAndPurgeClean(t *testing.T) {
	if have := debInstalled(); len(have) > 0 {
		t.Fatalf("packages %v are installed on this machine: not touching them", have)
	}
	r := run(t, makeCall("deb"))
	if !wantStatus(t, r, 0) {
		t.FailNow()
	}
	var debs []string
	for _, p := range debPackages {
		m, _ := filepath.Glob(filepath.Join(h.repo, "build", "deb", p+"_*.deb"))
		if len(m) != 1 {
			t.Fatalf("make deb made %v for %s", m, p)
		}
		debs = append(debs, "./"+filepath.Base(m[0]))
	}
	r = run(t, call{Root: true, Dir: filepath.Join(h.repo, "build", "deb"), Args: append([]string{"lintian", "--fail-on", "error"}, debs...), Timeout: 5 * time.Minute})
	if wantStatus(t, r, 0) && regexp.MustCompile(`(?m)^E: `).MatchString(r.stdout) {
		t.Errorf("lintian reports errors:\n%s", r)
	}

	// What the packages contain, and what of it the machine already has
	// (directories such as /usr/share/man; nothing else may exist).
	var contents []string
	for _, deb := range debs {
		r := run(t, call{Root: true, Dir: filepath.Join(h.repo, "build", "deb"), Args: []string{"dpkg-deb", "--fsys-tarfile", deb}})
		wantStatus(t, r, 0)
		cmd := call{Root: true, Args: []string{"tar", "-t"}, Stdin: []byte(r.stdout)}
		list := run(t, cmd)
		for _, p := range strings.Split(strings.TrimSpace(list.stdout), "\n") {
			if p = strings.TrimSuffix(strings.TrimPrefix(p, "."), "/"); p != "" {
				contents = append(contents, p)
			}
		}
	}
	sort.Strings(contents)
	existed := map[string]bool{}
	for _, p := range contents {
		if _, err := os.Lstat(p); err == nil {
			existed[p] = true
			// (directories, or links to one: /lib)
			if fi, err := os.Stat(p); (err != nil || !fi.IsDir()) && p != "/etc/chos" {
				t.Fatalf("%s exists and is not from a chos package: not installing over it", p)
			}
		}
	}
	for _, p := range []string{"/run/chos", "/etc/chos.dpkg-dist", "/etc/chos.dpkg-new"} {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s exists: not installing", p)
		}
	}
	before := dpkgState(t)

	// Cleanups, also after a failure or an interrupt: purge, then put back
	// a /etc/chos that was there (renamed away, so the first round starts
	// without one).
	var once sync.Once
	backup := ""
	if existed["/etc/chos"] {
		backup = "/etc/chos.itest-" + randHex(4)
	}
	dropIn := filepath.Join("/etc/chos.d", unique(t)+".conf")
	cleanup := func() error {
		var err error
		once.Do(func() {
			os.Remove(dropIn)
			if have := debInstalled(); len(have) > 0 {
				if out, perr := runSetup(5*time.Minute, "/", "apt-get", append([]string{"purge", "-y", "-o", "DPkg::Lock::Timeout=300"}, have...)...); perr != nil {
					err = fmt.Errorf("purging %v: %v\n%s", have, perr, out)
				}
			}
			if backup != "" {
				if rerr := os.Rename(backup, "/etc/chos"); rerr != nil {
					err = fmt.Errorf("restoring /etc/chos from %s: %v", backup, rerr)
				}
			}
		})
		return err
	}
	must(t, atExit(cleanup))
	t.Cleanup(func() {
		if err := cleanup(); err != nil {
			t.Error(err)
		}
		if after := dpkgState(t); after != before {
			a, b := lineDiff(before, after)
			t.Errorf("the installed packages changed: before only %v, after only %v", a, b)
		}
	})
	if backup != "" {
		must(t, os.Rename("/etc/chos", backup))
	}

	purgedClean := func(t *testing.T) {
		t.Helper()
		wantStatus(t, apt(t, append([]string{"purge"}, debInstalled()...)...), 0)
		if have := debInstalled(); len(have) > 0 {
			t.Errorf("still installed after purge: %v", have)
		}
		for _, p := range append(contents, "/run/chos", "/etc/chos.dpkg-dist", "/etc/chos.dpkg-old") {
			if _, err := os.Lstat(p); err == nil && !existed[p] {
				t.Errorf("%s is left after purge", p)
			}
		}
		if m := mountsUnder("/run/chos"); len(m) > 0 {
			t.Errorf("mounts left after purge: %v", m)
		}
	}

	t.Run("fresh install", func(t *testing.T) {
		wantStatus(t, apt(t, append([]string{"install"}, debs...)...), 0)
		fi, err := os.Stat("/usr/bin/chos")
		if err != nil || fi.Mode()&fs.ModeSetuid == 0 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
			t.Fatalf("/usr/bin/chos is not setuid root: %v %v", fi, err)
		}
		sample, _ := os.ReadFile(filepath.Join(h.repo, "etc", "chos.example"))
		if got, _ := os.ReadFile("/etc/chos"); !bytes.Equal(got, sample) {
			t.Errorf("/etc/chos is not the sample")
		}
		out, _ := runSetup(time.Minute, "/", "dpkg-query", "-W", "-f=${Conffiles}", "chos")
		if !strings.Contains(out, "/etc/chos ") {
			t.Errorf("/etc/chos is not a conffile: %q", out)
		}
		for _, c := range []call{{Root: true, Args: []string{"/usr/bin/chos", "check"}}, {Args: []string{"/usr/bin/chos", "check"}}} {
			r := run(t, c)
			wantStatus(t, r, 0)
		}
		// a user runs a command in a tree
		must(t, writeRootFile(dropIn, "%SHELLS\nitest:"+h.trees["one"]+"\n", 0o644))
		wantOSID(t, run(t, call{Args: []string{"/usr/bin/chos", "exec", "itest", "cat", "/etc/os-release"}}), "chosone")
		if len(mountsUnder("/run/chos")) == 0 {
			t.Errorf("the launch cached no namespace in /run/chos")
		}
		must(t, os.Remove(dropIn))
		purgedClean(t)
	})

	t.Run("existing /etc/chos is kept", func(t *testing.T) {
		legacy, err := os.ReadFile(filepath.Join(h.repo, "pkg", "config", "testdata", "legacy", "etc-chos"))
		must(t, err)
		must(t, writeRootFile("/etc/chos", string(legacy), 0o644))
		// dpkg asks about a conffile that exists; --force-confold answers
		// "keep mine" (README: Installing)
		wantStatus(t, apt(t, "-o", "Dpkg::Options::=--force-confold", "install", debs[0]), 0)
		if got, _ := os.ReadFile("/etc/chos"); !bytes.Equal(got, legacy) {
			t.Errorf("the package changed the existing /etc/chos:\n%s", got)
		}
		wantStatus(t, run(t, call{Root: true, Args: []string{"/usr/bin/chos", "check"}}), 0)
		purgedClean(t)
		if _, err := os.Lstat("/etc/chos"); err == nil {
			t.Errorf("/etc/chos is left after purge")
		}
	})
}

// TestRPMPackagesListTheirFilesWithTheirModes builds the RPMs with rpmbuild
// (make rpm) and checks each one's file list and modes (rpm -qlpv), its
// configuration files and its dependencies.
func TestRPMPackagesListTheirFilesWithTheirModes(t *testing.T) {
	r := run(t, makeCall("rpm"))
	if !wantStatus(t, r, 0) {
		t.FailNow()
	}
	rpm := func(pkg string, args ...string) string {
		t.Helper()
		m, _ := filepath.Glob(filepath.Join(h.repo, "build", "rpm", "RPMS", "*", pkg+"-0*.rpm"))
		if len(m) != 1 {
			t.Fatalf("make rpm made %v for %s", m, pkg)
		}
		r := run(t, call{Root: true, Args: append(append([]string{"rpm"}, args...), m[0])})
		wantStatus(t, r, 0)
		return r.stdout
	}
	for _, c := range []struct {
		pkg   string
		files []string // "MODE PATH" as rpm -qlpv shows them (owner root root)
		deps  []string
	}{
		{"chos", []string{
			"-rwsr-xr-x /usr/bin/chos", "-rwxr-xr-x /usr/libexec/chos/chos-cdi", "-rw-r--r-- /etc/chos", "drwxr-xr-x /etc/chos.d", "drwxr-xr-x /chos",
			"-rw-r--r-- /usr/share/man/man1/chos.1", "-rw-r--r-- /usr/share/bash-completion/completions/chos",
			"-rw-r--r-- /usr/share/zsh/site-functions/_chos", "-rw-r--r-- /usr/share/fish/vendor_completions.d/chos.fish",
			"-rw-r--r-- /usr/share/chos/profile.d/chos.sh", "-rw-r--r-- /usr/share/doc/chos/chos.example",
		}, nil},
		{"chos-pam", []string{"-rw-r--r-- /usr/lib64/security/pam_chos.so", "-rw-r--r-- /usr/share/man/man8/pam_chos.8"},
			[]string{"chos(x86-64) = 0.1.0-1", "libpam.so.0()(64bit)"}},
		{"chos-slurm", []string{"-rw-r--r-- /usr/lib64/slurm/chos_spank.so", "-rw-r--r-- /usr/share/man/man8/chos_spank.8"},
			[]string{"chos(x86-64) = 0.1.0-1", "slurm(x86-64) >= ", "slurm(x86-64) < "}},
	} {
		t.Run(c.pkg, func(t *testing.T) {
			list := rpm(c.pkg, "-qlpv")
			for _, f := range c.files {
				mode, path, _ := strings.Cut(f, " ")
				re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(mode) + `\s+\d+\s+root\s+root\s+.*\s` + regexp.QuoteMeta(path) + `(\.gz)?$`)
				if !re.MatchString(list) {
					t.Errorf("rpm -qlpv %s: no %s owned by root:\n%s", c.pkg, f, list)
				}
			}
			deps := rpm(c.pkg, "-qpR")
			for _, d := range c.deps {
				if !strings.Contains(deps, d) {
					t.Errorf("%s does not require %q:\n%s", c.pkg, d, deps)
				}
			}
		})
	}
	if conf := rpm("chos", "-qpc"); strings.TrimSpace(conf) != "/etc/chos" {
		t.Errorf("configuration files of chos: %q, want /etc/chos", conf)
	}
}
