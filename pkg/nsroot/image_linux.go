package nsroot

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/loopdev"
	"github.com/chos-hpc/chos/pkg/spec"
	"github.com/chos-hpc/chos/pkg/trust"
)

// An image tree's view mounts the image once, on a directory of the view's
// own tmpfs, and binds its entries from there. In setuid mode the mount is
// the kernel's, inside the view's namespace: for a cached view one loop
// device and one mount serve every launch, and when the view is dropped and
// its last process exits the mount goes with the namespace and the loop
// device, set up with LO_FLAGS_AUTOCLEAR, with its last user. Nothing of
// it is ever in the host's mount table.

// CheckImageTrust refuses an image the kernel must not parse: one that
// anyone but root could write, or replace through a directory on its path
// (pkg/trust.CheckPath). Apptainer's reason: a kernel mount of a user-
// writable image "enables potential attacks on the kernel".
func CheckImageTrust(image string) error {
	err := trust.CheckPath(image)
	var te *trust.Error
	if errors.As(err, &te) {
		return fmt.Errorf("refusing to mount image %s: %s is %s; the kernel mounts only images that root owns, reached through directories only root can change", image, te.Component, te.Reason)
	}
	return err
}

// mountImage carries out an OpImage step.
func mountImage(root *os.File, m spec.Mount, mode Mode) error {
	if mode == UserNamespace {
		return mountImageFUSE(root, m)
	}
	if err := CheckImageTrust(m.Source); err != nil {
		return err
	}
	img, err := os.OpenFile(m.Source, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("opening image: %w", err)
	}
	defer img.Close()
	if fi, err := img.Stat(); err != nil || !fi.Mode().IsRegular() {
		return fmt.Errorf("image %s is not a regular file", m.Source)
	}
	if err := loopdev.CheckSquashfs(img); err != nil {
		return err
	}
	if err := loopdev.CheckKernelSquashfs(); err != nil {
		return err
	}
	dst, err := mountpoint(root, m.Target, true)
	if err != nil {
		return err
	}
	defer dst.Close()
	// The device stays bound while this descriptor is open, then while
	// the mount uses it.
	dev, err := loopdev.AttachShared(img)
	if err != nil {
		return fmt.Errorf("attaching image %s to a loop device: %w", m.Source, err)
	}
	defer dev.Close()
	flags := uintptr(unix.MS_RDONLY | unix.MS_NODEV)
	if m.NoSuid {
		flags |= unix.MS_NOSUID
	}
	err = unix.Mount(dev.Name(), fdPath(dst.point), "squashfs", flags, "")
	switch {
	case errors.Is(err, unix.ENODEV):
		return fmt.Errorf("mounting image %s: %w (mount: %w)", m.Source, loopdev.ErrNoSquashfs, err)
	case err != nil:
		return fmt.Errorf("mounting image %s (squashfs on %s): %w: the image is damaged, or compressed in a way this kernel cannot read", m.Source, dev.Name(), err)
	}
	return nil
}

// imageServerFD is where a user-namespace child finds its socket to the
// image server of its parent (RunInUserNS), when its view has an image:
// the descriptor after the plan's, named on its command line.
var imageServerFD = -1

// useImageServer takes arg as the image server's descriptor; it is closed
// on exec, so that the command never inherits it.
func useImageServer(arg string) bool {
	fd, err := strconv.Atoi(arg)
	if err != nil || fd < 3 {
		return false
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return false
	}
	unix.CloseOnExec(fd)
	imageServerFD = fd
	return true
}

// mountImageFUSE mounts an image in a user namespace: the kernel lets a
// user namespace mount FUSE, not squashfs. This child opens /dev/fuse (the
// connection must be opened in the namespace that mounts it), mounts it,
// and hands the connection to the parent, which starts squashfuse on it
// outside this namespace (see imageServer for why).
func mountImageFUSE(root *os.File, m spec.Mount) error {
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening /dev/fuse to mount image %s with squashfuse: %w%s", m.Source, err, fuseHint(err))
	}
	defer unix.Close(fd)
	dst, err := mountpoint(root, m.Target, true)
	if err != nil {
		return err
	}
	defer dst.Close()
	// default_permissions: the kernel checks modes as for any file system;
	// no allow_other: only the caller's own processes see it.
	opts := fmt.Sprintf("fd=%d,rootmode=40000,user_id=%d,group_id=%d,default_permissions", fd, os.Getuid(), os.Getgid())
	if err := unix.Mount(m.Source, fdPath(dst.point), "fuse.squashfuse", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mounting FUSE for image %s: %w", m.Source, err)
	}
	if imageServerFD < 0 {
		return fmt.Errorf("mounting image %s: no image server (a user-namespace launch that is not RunInUserNS's child)", m.Source)
	}
	sock := os.NewFile(uintptr(imageServerFD), "image server")
	defer sock.Close()
	if err := unix.Sendmsg(imageServerFD, []byte(m.Source), unix.UnixRights(fd), nil, 0); err != nil {
		return fmt.Errorf("handing the FUSE connection of image %s to chos: %w", m.Source, err)
	}
	buf := make([]byte, 4096)
	n, err := sock.Read(buf)
	if err != nil {
		return fmt.Errorf("waiting for squashfuse to serve image %s: %w", m.Source, err)
	}
	if reply := string(buf[:n]); reply != imageServed {
		return errors.New(reply)
	}
	return nil
}

// imageServed is the image server's reply once squashfuse runs.
const imageServed = "ok"

func fuseHint(err error) string {
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		return " (no FUSE in this kernel or /dev: modprobe fuse)"
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		var st unix.Stat_t
		if unix.Stat("/dev/fuse", &st) == nil {
			return fmt.Sprintf(" (mode %04o: only root may use FUSE here; udev makes it 0666 on most systems)", st.Mode&0o7777)
		}
	}
	return ""
}

// imageSteps are the OpImage steps of v.
func imageSteps(v *spec.View) []spec.Mount {
	var out []spec.Mount
	for _, m := range v.Mounts {
		if m.Op == spec.OpImage {
			out = append(out, m)
		}
	}
	return out
}

// firstLine keeps a program's complaint to one line.
func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}
