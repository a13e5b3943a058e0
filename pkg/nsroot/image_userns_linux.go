package nsroot

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/spec"
)

// In user-namespace mode an image is served by squashfuse, run as the
// user. Its life must cover every process that uses the view, and no more:
// the command, and whatever it leaves running in the view. So squashfuse
// does not run inside the view's mount namespace (it would keep that
// namespace, and so itself, alive forever), nor die with the command (a
// background job of the command would lose its files). The child mounts
// FUSE in the view and hands the connection to this process, which starts
// squashfuse on it (libfuse takes /dev/fd/N as an already mounted
// connection) in its own session, outside the view. When the view's last
// process exits, the namespace and its mount go, the kernel aborts the
// connection, and squashfuse ends: it never outlives the view's last user.
// Charliecloud and enroot instead keep the daemon with the launcher, which
// then cannot return before the daemon's last user is done.

// squashfusePrograms are tried in order, in the host's /usr/local/bin,
// /usr/bin and /bin: the low-level server is the faster one.
var squashfusePrograms = []string{"squashfuse_ll", "squashfuse"}

// FindSquashfuse finds the host's squashfuse below hostRoot (where the
// host's root is seen from here: "" for /), returning its path there.
func FindSquashfuse(hostRoot string) (string, error) {
	for _, name := range squashfusePrograms {
		for _, dir := range []string{"/usr/local/bin", "/usr/bin", "/bin"} {
			p := filepath.Join(dir, name)
			if unix.Access(filepath.Join("/", hostRoot, p), unix.X_OK) == nil {
				return p, nil
			}
		}
	}
	return "", errors.New("squashfuse is not installed (Debian and Ubuntu: squashfuse; Fedora, EL: squashfuse): a user namespace mounts image trees with it")
}

// imageServer starts squashfuse for the images a user-namespace child
// mounts.
type imageServer struct {
	steps []spec.Mount
	prog  string // squashfuse, below steps' HostRoot
	here  *os.File
	child *os.File // the child's end, fd imageServerFD there
	// hidden are the descriptors serve made close-on-exec.
	hidden []int
	mu     sync.Mutex
	failed []string // what squashfuse said when it ended badly
}

// newImageServer prepares the server of v's images; nil when v has none.
func newImageServer(v *spec.View) (*imageServer, error) {
	steps := imageSteps(v)
	if len(steps) == 0 {
		return nil, nil
	}
	prog, err := FindSquashfuse(steps[0].HostRoot)
	if err != nil {
		return nil, fmt.Errorf("tree %s is an image (%s): %w", v.Tree, steps[0].Source, err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("making a socket for the image server: %w", err)
	}
	return &imageServer{steps: steps, prog: prog, here: os.NewFile(uintptr(fds[0]), "image server"),
		child: os.NewFile(uintptr(fds[1]), "image client")}, nil
}

// serve answers the child's requests until it closes its end; call it once
// the child has started.
func (s *imageServer) serve() {
	if s == nil {
		return
	}
	s.child.Close()
	// The descriptors this process inherited are the command's (the child
	// has its copies now): squashfuse, which may outlive the command, must
	// not hold a caller's pipe open.
	if fds, err := inheritedFDs(); err == nil {
		for _, fd := range fds {
			if fd > 2 {
				unix.CloseOnExec(fd)
				s.hidden = append(s.hidden, fd)
			}
		}
	}
	go func() {
		for {
			image, fuse, err := s.receive()
			if err != nil {
				return // the child is done (or gone)
			}
			reply := imageServed
			if err := s.start(image, fuse); err != nil {
				reply = err.Error()
			}
			fuse.Close()
			if _, err := s.here.Write([]byte(reply)); err != nil {
				return
			}
		}
	}()
}

// inheritAgain gives back to the processes this one starts the
// descriptors serve hid from squashfuse: once the view is built, for the
// command, which a kept view's launch forks from this process.
func (s *imageServer) inheritAgain() {
	if s == nil {
		return
	}
	for _, fd := range s.hidden {
		unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0)
	}
	s.hidden = nil
}

// receive reads one request: the image's path and the FUSE connection.
func (s *imageServer) receive() (string, *os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(s.here.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil || n == 0 {
		return "", nil, fmt.Errorf("image server: %v", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return "", nil, fmt.Errorf("image server: no connection sent")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return "", nil, fmt.Errorf("image server: no connection sent")
	}
	return string(buf[:n]), os.NewFile(uintptr(fds[0]), "/dev/fuse"), nil
}

// start runs squashfuse on the connection fuse for image, which must be
// one of the plan's images. squashfuse reads the image through a
// descriptor opened here, so that the file served is the one checked.
func (s *imageServer) start(image string, fuse *os.File) error {
	var step *spec.Mount
	for i := range s.steps {
		if s.steps[i].Source == image {
			step = &s.steps[i]
		}
	}
	if step == nil {
		return fmt.Errorf("image server: %s is not an image of this view", image)
	}
	img, err := os.Open(image)
	if err != nil {
		return fmt.Errorf("opening image: %w", err)
	}
	defer img.Close()
	var stderr bytes.Buffer
	cmd := &exec.Cmd{
		Path: s.prog,
		// fd 3 is the connection, fd 4 the image.
		Args:       []string{filepath.Base(s.prog), "-f", "/dev/fd/4", "/dev/fd/3"},
		Env:        []string{},
		Dir:        "/",
		ExtraFiles: []*os.File{fuse, img},
		Stderr:     &limitedBuffer{buf: &stderr, max: 4096},
		// Its own session: the terminal's signals are for the command.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if step.HostRoot != "" {
		// From inside a view: the host's squashfuse, with the host's
		// libraries, in a user namespace of its own rooted at the host.
		uid, gid := os.Getuid(), os.Getgid()
		cmd.Path = s.prog
		cmd.SysProcAttr.Cloneflags = unix.CLONE_NEWUSER
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: uid, HostID: uid, Size: 1}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: gid, HostID: gid, Size: 1}}
		cmd.SysProcAttr.Chroot = step.HostRoot
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s for image %s: %w", s.prog, image, err)
	}
	go func() {
		// Reaped here while chos lives; by init after.
		if err := cmd.Wait(); err != nil {
			s.mu.Lock()
			s.failed = append(s.failed, fmt.Sprintf("%s serving %s: %v: %s", filepath.Base(s.prog), image, err, firstLine(stderr.String())))
			s.mu.Unlock()
		}
	}()
	return nil
}

// failures are what squashfuse said if it ended badly while the launch
// ran (the child reported its own error already).
func (s *imageServer) failures() []spec.Note {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var notes []spec.Note
	for _, f := range s.failed {
		notes = append(notes, spec.Warning("%s", f))
	}
	return notes
}

// close ends the server's side (squashfuse goes on).
func (s *imageServer) close() {
	if s == nil {
		return
	}
	s.child.Close()
	s.here.Close()
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf *bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}
