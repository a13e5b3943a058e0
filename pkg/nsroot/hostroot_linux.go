package nsroot

import (
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/spec"
)

// HostRoot is what a process that moved to the host's root knows of where
// it came from.
type HostRoot struct {
	// Cwd is the working directory's path as the view showed it (the host's
	// root may not reach it; the directory itself stays the process's).
	Cwd string
	// Self is chos's own binary on the host: what views bind at
	// /.chos/bin/chos.
	Self string
}

// EnterHostRoot moves the whole process to the host's root, which a view
// shows at dir (plan.HostDir). A privileged chos started inside a view (a
// tree with `setuid = allow`, or root) calls it before it reads anything
// with root's rights: from then on every path it resolves (the
// configuration, trees, bind sources, links in them), every program it
// runs as root (unsquashfs, getent) and every library and loader
// configuration those programs load are the host's, never the tree's.
// Without it, a tree's /etc/ld.so.preload would be read by the host's
// loader running as root (the class of sudo's CVE-2025-32463, a chroot
// whose nsswitch.conf a user wrote), and a host path reached through an
// absolute symbolic link would resolve in the tree.
//
// Every thread shares the process's root until one unshares it (the
// namespace work that comes later): chroot(2) moves them all. The process
// stays in the view's mount namespace; a builder leaves it
// (leaveOuterView).
func EnterHostRoot(dir string) (HostRoot, error) {
	var hr HostRoot
	cwd, err := Getwd(nil) // (also longer than PATH_MAX)
	if err != nil {
		return hr, fmt.Errorf("reading the working directory: %w", err)
	}
	hr.Cwd = cwd
	// Only chos mounts a directory there: root's, the host's root.
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE|unix.STATX_UID, &stx); err != nil {
		return hr, fmt.Errorf("inspecting the host's root at %s: %w", dir, err)
	}
	mountRoot := stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
	if stx.Mode&unix.S_IFMT != unix.S_IFDIR || stx.Uid != 0 || !mountRoot {
		return hr, fmt.Errorf("%s is not the host's root as chos binds it (a root-owned directory that is a mount)", dir)
	}
	// chos as the view binds it: its file system's device and its path
	// in that file system, found again on the host afterwards.
	self, err := os.Executable()
	if err != nil {
		return hr, fmt.Errorf("finding the chos binary: %w", err)
	}
	bound, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(self))
	if err != nil || len(bound) == 0 {
		return hr, fmt.Errorf("finding the mount of %s in this view: %v", self, err)
	}
	if err := unix.Chroot(dir); err != nil {
		return hr, fmt.Errorf("moving to the host's root at %s: %w", dir, err)
	}
	if hr.Self, err = onHost(bound[len(bound)-1]); err != nil {
		return hr, err
	}
	return hr, nil
}

// onHost finds, on the host (the process's root), the file that the bind
// m shows: on a mount of the same file system whose root is above it, the
// same file as this process's executable.
func onHost(m *mountinfo.Info) (string, error) {
	var exe unix.Stat_t
	if err := unix.Stat(spec.SelfExe, &exe); err != nil {
		return "", fmt.Errorf("inspecting the chos binary: %w", err)
	}
	mounts, err := mountinfo.GetMounts(func(h *mountinfo.Info) (skip, stop bool) {
		return h.Major != m.Major || h.Minor != m.Minor, false
	})
	if err != nil {
		return "", fmt.Errorf("reading the host's mounts: %w", err)
	}
	for _, h := range mounts {
		rel, ok := strings.CutPrefix(m.Root, strings.TrimSuffix(h.Root, "/")+"/")
		if !ok {
			continue
		}
		p := path.Join(h.Mountpoint, rel)
		var st unix.Stat_t
		if unix.Lstat(p, &st) == nil && st.Dev == exe.Dev && st.Ino == exe.Ino {
			return p, nil
		}
	}
	return "", fmt.Errorf("chos (%s in its file system) is on none of the host's mounts", m.Root)
}
