// Package trust decides whether root may act on a host path on someone's
// behalf: whether anyone but root could change what the path names. A path
// whose every directory is owned by root and not writable by group or
// others can only be redirected by root, so checking it and then opening it
// by name is as safe as opening it through checked descriptors. The rule is
// the one OpenSSH applies to its configuration (StrictModes) and
// pam_namespace and soperator to their directories.
package trust

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Error says which component makes a path untrusted.
type Error struct {
	Path      string // the path asked about
	Component string // the file or directory at fault
	Reason    string // "owned by uid 1000, not root", "writable by group or others (mode 0777)"
}

func (e *Error) Error() string {
	if e.Component == e.Path {
		return fmt.Sprintf("%s is %s", e.Path, e.Reason)
	}
	return fmt.Sprintf("%s: %s is %s", e.Path, e.Component, e.Reason)
}

// maxLinks bounds the symbolic links followed, as the kernel's ELOOP does.
const maxLinks = 40

// CheckPath checks that path, every directory leading to it and, where it
// is reached through symbolic links, every component of their targets are
// owned by root and not writable by group or others. For files root acts on
// as they are: configuration, images.
func CheckPath(path string) error { return walk(path, true) }

// CheckParents checks every directory leading to path, links followed with
// each step checked, but not the final file or directory itself, which may
// be anyone's (a world-writable scratch file system): only root can change
// what the path names. For bind sources.
func CheckParents(path string) error { return walk(path, false) }

func walk(path string, final bool) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("checking %s: not an absolute path", path)
	}
	if err := checkOwner(path, "/"); err != nil {
		return err
	}
	pending := strings.Split(path, "/")
	cur := "/"
	links := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur) // cur has no links left in it: exact
			continue
		}
		next := filepath.Join(cur, c)
		fi, err := os.Lstat(next)
		if err != nil {
			return fmt.Errorf("checking %s: %w", path, err)
		}
		last := !hasMore(pending)
		if fi.Mode()&fs.ModeSymlink != 0 {
			// The link lies in a trusted directory; what it points to is
			// checked by the same rule, step by step.
			if links++; links > maxLinks {
				return fmt.Errorf("checking %s: %w", path, syscall.ELOOP)
			}
			target, err := os.Readlink(next)
			if err != nil {
				return fmt.Errorf("checking %s: %w", path, err)
			}
			if filepath.IsAbs(target) {
				cur = "/"
			}
			pending = append(strings.Split(target, "/"), pending...)
			continue
		}
		if !last || final {
			if err := checkOwner(path, next); err != nil {
				return err
			}
		}
		if !last && !fi.IsDir() {
			return fmt.Errorf("checking %s: %s: %w", path, next, syscall.ENOTDIR)
		}
		cur = next
	}
	return nil
}

// hasMore says whether components other than empty ones or "." remain.
func hasMore(pending []string) bool {
	for _, c := range pending {
		if c != "" && c != "." {
			return true
		}
	}
	return false
}

func checkOwner(path, p string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("checking %s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("checking %s: no owner information for %s", path, p)
	}
	switch {
	case st.Uid != 0:
		return &Error{Path: path, Component: p, Reason: fmt.Sprintf("owned by uid %d, not root", st.Uid)}
	case fi.Mode().Perm()&0o022 != 0:
		return &Error{Path: path, Component: p, Reason: fmt.Sprintf("writable by group or others (mode %04o)", fi.Mode().Perm())}
	}
	return nil
}

// IsUntrusted says whether err is a refusal by this package (rather than,
// say, a missing file).
func IsUntrusted(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
