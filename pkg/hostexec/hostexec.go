// Package hostexec starts the host's programs inside a view whose tree
// lacks them (sftp-server, scp and rsync for logins into an old tree).
// A dynamically linked host program cannot simply be executed there: the
// kernel would start the tree's dynamic loader, which would load the
// tree's libraries. Instead the host's own loader, found from the
// program's PT_INTERP, starts it with the host's library directories
// (ld.so(8): "ld.so [--library-path PATH] PROGRAM"). Every host path is
// resolved on the host, as the host resolves it, before it is handed to
// the view, where an absolute link would otherwise lead into the tree.
//
// The package reads files only; the caller decides with whose rights.
package hostexec

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/inroot"
)

// Argv is the command line that starts the host program bin, with args,
// inside a view that shows the host's root at viewHost ("/" when the
// "view" is the host itself). root is where this process sees the host's
// root; bin is a host path. The program must be executable by this
// process's effective ids: the loader would otherwise run what execve
// refuses. A statically linked program is started directly.
func Argv(root, viewHost, bin string, args ...string) ([]string, error) {
	bin, err := Resolve(root, bin)
	if err != nil {
		return nil, err
	}
	if err := executable(root, bin); err != nil {
		return nil, err
	}
	info, err := readELF(join(root, bin))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", bin, err)
	}
	interp := info.interp
	if interp == "" {
		return append([]string{join(viewHost, bin)}, args...), nil
	}
	loader, err := Resolve(root, interp)
	if err != nil {
		return nil, fmt.Errorf("the dynamic loader of %s: %w", bin, err)
	}
	dirs := LibraryDirs(root, loader, runPaths(info.runPaths, path.Dir(bin)))
	for i, d := range dirs {
		dirs[i] = join(viewHost, d)
	}
	argv := []string{join(viewHost, loader)}
	if len(dirs) > 0 {
		argv = append(argv, "--library-path", strings.Join(dirs, ":"))
	}
	return append(append(argv, join(viewHost, bin)), args...), nil
}

// LookPath finds name in the directories of pathList (a $PATH value) the
// way a shell inside root would: the first regular file this process may
// execute. It returns the path as found (links unresolved), "" if none.
func LookPath(root, pathList, name string) string {
	if strings.Contains(name, "/") {
		return ""
	}
	for _, dir := range filepath.SplitList(pathList) {
		if !path.IsAbs(dir) {
			continue // relative PATH entries depend on the directory: never
		}
		p := path.Join(dir, name)
		if real, err := Resolve(root, p); err == nil && executable(root, real) == nil {
			return p
		}
	}
	return ""
}

// IsExecutable says whether p (a path inside root) is a regular file this
// process may execute.
func IsExecutable(root, p string) bool {
	real, err := Resolve(root, p)
	return err == nil && executable(root, real) == nil
}

// Resolve resolves every link of p inside root, as a process whose root
// directory it is would, and returns the path inside root.
func Resolve(root, p string) (string, error) {
	f, err := inroot.OpenPath(root, p, unix.O_PATH)
	if err != nil {
		return "", err
	}
	defer f.Close()
	real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", p, err)
	}
	if root = filepath.Clean(root); root != "/" {
		rel, ok := strings.CutPrefix(real, root)
		if !ok || (rel != "" && rel[0] != '/') {
			return "", fmt.Errorf("resolving %s: %s is outside %s", p, real, root)
		}
		real = "/" + strings.TrimPrefix(rel, "/")
	}
	return real, nil
}

// executable says why p (resolved, inside root) cannot be executed.
func executable(root, p string) error {
	full := join(root, p)
	fi, err := os.Stat(full)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", p)
	}
	// access(2) also refuses files on noexec mounts.
	if err := unix.Faccessat(unix.AT_FDCWD, full, unix.X_OK, unix.AT_EACCESS); err != nil {
		return &fs.PathError{Op: "execute", Path: p, Err: err}
	}
	return nil
}

// runPaths are the program's own DT_RUNPATH (else DT_RPATH) directories (list),
// $ORIGIN replaced by origin, its directory. Relative ones are dropped.
func runPaths(list []string, origin string) []string {
	var dirs []string
	for _, l := range list {
		for _, d := range strings.Split(l, ":") {
			d = strings.ReplaceAll(strings.ReplaceAll(d, "${ORIGIN}", origin), "$ORIGIN", origin)
			if path.IsAbs(d) {
				dirs = append(dirs, d)
			}
		}
	}
	return dirs
}

// LibraryDirs are the host's library directories in the order the host's
// loader searches them: the program's own run paths, those of
// /etc/ld.so.conf (what ldconfig caches), then the loader's own directory
// (where libc lives) and the generic system directories. Each is resolved
// on the host; missing ones, duplicates and any with a ':' are left out.
func LibraryDirs(root, loader string, runPaths []string) []string {
	candidates := append([]string{}, runPaths...)
	candidates = append(candidates, ConfDirs(root, "/etc/ld.so.conf")...)
	candidates = append(candidates, path.Dir(loader), "/lib64", "/usr/lib64", "/lib", "/usr/lib")
	seen := map[string]bool{}
	var dirs []string
	for _, d := range candidates {
		real, err := Resolve(root, d)
		if err != nil || seen[real] || strings.Contains(real, ":") {
			continue
		}
		if fi, err := os.Stat(join(root, real)); err != nil || !fi.IsDir() {
			continue
		}
		seen[real] = true
		dirs = append(dirs, real)
	}
	return dirs
}

// ConfDirs are the directories an ld.so.conf file (inside root) lists, in
// order, its "include" globs followed as ldconfig(8) follows them
// (relative patterns are relative to the including file's directory).
func ConfDirs(root, file string) []string {
	return confDirs(root, file, 0)
}

func confDirs(root, file string, depth int) []string {
	if depth > 10 { // an include loop
		return nil
	}
	f, err := inroot.OpenPath(root, file, unix.O_RDONLY)
	if err != nil {
		return nil
	}
	defer f.Close()
	var dirs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0 || fields[0] == "hwcap":
		case fields[0] == "include":
			for _, pattern := range fields[1:] {
				if !path.IsAbs(pattern) {
					pattern = path.Join(path.Dir(file), pattern)
				}
				matches, _ := filepath.Glob(join(root, pattern)) // sorted, as ldconfig's glob(3)
				for _, m := range matches {
					if rel, err := filepath.Rel(filepath.Clean(root), m); err == nil {
						dirs = append(dirs, confDirs(root, "/"+rel, depth+1)...)
					}
				}
			}
		default:
			// One or more directories; "DIR=TYPE" is the old libc5 form.
			for _, d := range strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' || r == ',' || r == ':' }) {
				d, _, _ = strings.Cut(d, "=")
				if path.IsAbs(d) {
					dirs = append(dirs, path.Clean(d))
				}
			}
		}
	}
	return dirs
}

// join is p (absolute) inside root.
func join(root, p string) string { return path.Join("/", root, p) }
