package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/loopdev"
	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/ostree"
)

// imageTrees are the configured trees that are image files.
func (cl *cmdline) imageTrees(cat *ostree.Catalog) []*ostree.Tree {
	var out []*ostree.Tree
	for _, t := range cat.Trees {
		if !t.Host && ostree.IsImage(cl.inv.HostPath(t.Path)) {
			out = append(out, t)
		}
	}
	return out
}

// checkImageSupport reports what mounting images needs: in setuid mode
// loop devices and the kernel's squashfs, in userns mode squashfuse and
// /dev/fuse. Missing support fails the check only where an image tree is
// configured and this mode needs it.
func (cl *cmdline) checkImageSupport(k *checker, cat *ostree.Catalog) {
	images := len(cl.imageTrees(cat)) > 0
	need := func(mode bool) func(what, detail string, args ...any) {
		if images && mode {
			return k.fail
		}
		return k.warn
	}
	suffix := " (needed for image trees only; none is configured)"
	if images {
		suffix = ""
	}
	if err := loopSupport(); err != nil {
		need(!cl.inv.Privilege.UserNS)("loop devices", "%v: the setuid chos cannot mount image trees%s", err, suffix)
	} else {
		k.ok("loop devices", "/dev/loop-control")
	}
	if err := loopdev.CheckKernelSquashfs(); err != nil {
		need(!cl.inv.Privilege.UserNS)("squashfs", "%v%s", err, suffix)
	} else {
		k.ok("squashfs", "the kernel mounts squashfs images")
	}
	// squashfuse also serves switches to an image tree from inside a tree,
	// which are user-namespace launches in both modes.
	if prog, err := nsroot.FindSquashfuse(cl.inv.HostPrefix); err != nil {
		need(cl.inv.Privilege.UserNS)("squashfuse", "%v%s", err, suffix)
	} else if err := unix.Access(cl.inv.HostPath("/dev/fuse"), unix.R_OK|unix.W_OK); err != nil {
		need(cl.inv.Privilege.UserNS)("squashfuse", "%s is installed, but /dev/fuse is not usable by you (%v): user namespaces cannot mount image trees%s", prog, err, suffix)
	} else {
		k.ok("squashfuse", "%s: user namespaces mount image trees with it", prog)
	}
	if images {
		k.ok("loop devices held", "%s", cl.heldDevices(cat))
	}
}

// loopSupport tells whether loop devices can be had, without root: the
// control device is there (root opens it, which loads the module).
func loopSupport() error {
	if os.Geteuid() == 0 {
		return loopdev.CheckLoopSupport()
	}
	var st unix.Stat_t
	if err := unix.Stat("/dev/loop-control", &st); err != nil {
		return fmt.Errorf("%w: /dev/loop-control: %w", loopdev.ErrNoLoopSupport, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR {
		return fmt.Errorf("%w: /dev/loop-control is not a character device", loopdev.ErrNoLoopSupport)
	}
	return nil
}

// imageDevices are the bound loop devices that read t's image (the current
// file, or one renamed over since).
func (cl *cmdline) imageDevices(t *ostree.Tree) []loopdev.Device {
	devs, _ := loopdev.List()
	real, err := filepath.EvalSymlinks(cl.inv.HostPath(t.Path))
	if err != nil {
		real = cl.inv.HostPath(t.Path)
	}
	var out []loopdev.Device
	for _, d := range devs {
		// sysfs shows the host's path (views bind the host's /sys).
		if filepath.Join("/", cl.inv.HostPrefix, d.Backing) == real {
			out = append(out, d)
		}
	}
	return out
}

func describeDevice(d loopdev.Device) string {
	if d.Replaced {
		return d.Name + " (an image renamed over since: processes started before keep it)"
	}
	return d.Name
}

// heldDevices describes the loop devices that read configured images.
func (cl *cmdline) heldDevices(cat *ostree.Catalog) string {
	var held []string
	for _, t := range cl.imageTrees(cat) {
		for _, d := range cl.imageDevices(t) {
			held = append(held, fmt.Sprintf("%s: %s", t.Name, describeDevice(d)))
		}
	}
	if len(held) == 0 {
		return "none (no image tree is mounted)"
	}
	return strings.Join(held, "; ")
}

// checkImage reports an image tree's state: whether the kernel may mount
// it, whether it is a squashfs image, and where it is mounted.
func (cl *cmdline) checkImage(k *checker, cat *ostree.Catalog, t *ostree.Tree) {
	root := cl.inv.HostPath(t.Path)
	if t.Host || !ostree.IsImage(root) {
		return
	}
	what := "tree " + t.Name + " image"
	trusted := "" // (checkTree reports an untrusted path)
	if nsroot.CheckImageTrust(root) == nil {
		trusted = ", root's and only root's to change"
	}
	im, err := ostree.OpenImage(root)
	if err != nil {
		k.fail(what, "%v", err)
		return
	}
	im.Close()
	state := "not mounted: the next launch mounts it"
	var where []string
	for _, d := range cl.imageDevices(t) {
		where = append(where, describeDevice(d))
	}
	if !cl.inv.Privilege.UserNS {
		if states, err := cl.cacheStates(cat); err == nil {
			for _, s := range states {
				if s.tree == t && s.Mounted {
					v := "older"
					if s.valid {
						v = "valid"
					}
					where = append(where, fmt.Sprintf("cached view %s (%s)", s.File, v))
				}
			}
		}
	}
	if len(where) > 0 {
		state = "mounted: " + strings.Join(where, ", ")
	}
	k.ok(what, "%s: a squashfs image%s; %s", t.Path, trusted, state)
}

// printImagesInUse lists, below `chos cache`, the loop devices of image
// trees: a replaced image stays on its device, in views that were dropped,
// until their last process exits.
func (cl *cmdline) printImagesInUse(w io.Writer, cat *ostree.Catalog) {
	first := true
	for _, t := range cl.imageTrees(cat) {
		for _, d := range cl.imageDevices(t) {
			if first {
				fmt.Fprintln(w, "\nIMAGE TREE\tLOOP DEVICE\tSTATE\tIMAGE")
				first = false
			}
			state := "the current image"
			if d.Replaced {
				state = "replaced since: kept by running processes"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.Name, d.Name, state, d.Backing)
		}
	}
}
