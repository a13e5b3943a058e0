package devices

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/chos-hpc/chos/pkg/trust"
)

// Specs lists the spec files of dirs as the CDI library scans them (files
// named *.json or *.yaml directly in each directory; a missing directory
// has none). With mustTrust (chos holds root's rights) every file, and
// every directory above it, must be root's and not writable by group or
// others, as the configuration must: a spec names what root binds into
// views. Anything else refuses, naming the file.
func Specs(dirs []string, mustTrust bool) ([]string, error) {
	var out []string
	for _, dir := range dirs {
		if mustTrust {
			if err := trust.CheckPath(dir); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return nil, &SpecError{Spec: dir, Err: err}
			}
		}
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, &SpecError{Spec: dir, Err: err}
		}
		names := make([]string, 0, len(entries))
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			if ext := path.Ext(e.Name()); ext == ".json" || ext == ".yaml" {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names) // (os.ReadDir sorts already; the order is the library's)
		for _, n := range names {
			p := path.Join(dir, n)
			if mustTrust {
				if err := trust.CheckPath(p); err != nil {
					return nil, &SpecError{Spec: p, Err: err}
				}
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// Stamp identifies a spec file's content by device, inode, size and
// times: a cached view with devices is entered only while every spec file
// it was built from is the same (a spec regenerated in place gives
// another stamp).
func Stamp(p string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		return "spec " + p + " missing"
	}
	return "spec " + p + " " + strconv.FormatUint(st.Dev, 10) + ":" + strconv.FormatUint(st.Ino, 10) +
		" size " + strconv.FormatInt(st.Size, 10) + " mtime " + strconv.FormatInt(st.Mtim.Nano(), 10) +
		" ctime " + strconv.FormatInt(st.Ctim.Nano(), 10)
}

// SpecError is a spec file (or directory) that cannot be used.
type SpecError struct {
	Spec string
	Err  error
}

func (e *SpecError) Error() string {
	if trust.IsUntrusted(e.Err) {
		return "refusing CDI spec " + e.Spec + ": " + e.Err.Error() + " (specs say what root binds into views: they must be root's, as /etc/chos)"
	}
	return "CDI spec " + e.Spec + ": " + strings.TrimPrefix(e.Err.Error(), "checking "+e.Spec+": ")
}
func (e *SpecError) Unwrap() error { return e.Err }
