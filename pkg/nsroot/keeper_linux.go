package nsroot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/spec"
)

// In user-namespace mode a view is the user's own: a user namespace mapping
// only their ids, and a mount namespace built in it. Built afresh, it costs
// every launch a second Go start and the whole view. So the first launch of
// a view starts a keeper: chos again, in a user and mount namespace of its
// own, which builds the view once, gives up its capabilities, and hands the
// two namespaces (descriptors, over a socket) to each later launch of the
// same view by the same user, which joins them (join_linux.go) the way
// rootless podman's launches join the user namespace its pause process
// keeps. Each launch holds its connection until its command ends; the
// keeper ends KeeperIdle after the last one closes. What stays after a
// user's last launch is that process, for KeeperIdle: no file, no mount in
// the host's table (the socket is an abstract one, gone with the process).
//
// The socket's name says whose view it is and of what: the user's uid and
// the view's key (Cache.Key), which covers the configuration, every step,
// the identity of what the view binds by reference, the caller's ids and
// identity layer, and the mount namespace the view's binds come from,
// which the keeper pins (an open descriptor keeps its inode number from
// being reused). So a launch joins only a view exactly like the one it
// would build; anything else is another name, and another keeper.
//
// No other user can enter or change a kept view. The kernel lets only a
// process with CAP_SYS_ADMIN in the keeper's user namespace join it, that
// is its owner, the user; the keeper answers only connections of its own
// uid, and a launch joins only namespaces that the keeper's socket gives
// after checking, before it reads anything, that the socket is the user's
// own (SO_PEERCRED), and then that the user namespace is owned by the user
// and a child of the launch's own, and the mount namespace belongs to it.
// A name taken by someone else (abstract names are first come, first
// served) only costs that user's launches the view a fresh launch builds.

// keeperArg marks the re-executed chos that builds and keeps a view.
const keeperArg = "__chos_userns_keeper"

// IsKeeper says whether this process was started as a keeper.
func IsKeeper(args []string) bool { return len(args) >= 2 && args[1] == keeperArg }

// KeeperIdle is how long a keeper keeps its view after the last launch
// using it ended.
const KeeperIdle = spec.KeptFor

// The keeper's descriptors: its request (the view), its result, the
// mount namespace its view's binds come from (pinned), and the image
// server's socket when the view has an image.
const (
	keeperInFD    = 3
	keeperOutFD   = 4
	keeperPinFD   = 5
	keeperImageFD = 6
)

// keeperQueueWait bounds the wait for room in a keeper's queue of
// connections (checked every keeperQueueRetry): a keeper accepts at once,
// so a queue full for longer is no keeper's (dialKeeper).
const (
	keeperQueueWait  = 100 * time.Millisecond
	keeperQueueRetry = 5 * time.Millisecond
)

// keeperJoinTimeout bounds the wait for a keeper's answer: a keeper
// stopped or gone astray costs a launch this much, then the view is built
// for it.
const keeperJoinTimeout = 5 * time.Second

// KeeperAddress is the abstract socket name of the keeper of view c for
// uid.
func KeeperAddress(c *spec.Cache, uid int) string {
	return "@chos-userns/" + strconv.Itoa(uid) + "/" + spec.Stem(c.Tree) + "." + c.Key
}

// keptView is a joined keeper: its namespaces, and the connection the
// launch holds while its command runs.
type keptView struct {
	conn, user, mnt int
	notes           []spec.Note
}

func (k *keptView) close() {
	unix.Close(k.user)
	unix.Close(k.mnt)
	unix.Close(k.conn)
}

// errNoKeeper: no keeper of this view serves (none yet, or it just ended).
var errNoKeeper = errors.New("no keeper")

// startAndJoinKeeper starts the keeper of p's view and joins it. With no
// error and no keeper, the view is not kept (a concurrent first launch of
// it took the name first, or something is amiss, which the notes say):
// the launch builds a view of its own. An error is a build that failed:
// the launch fails as it would have building the view itself.
func startAndJoinKeeper(p *spec.Plan, images *imageServer) (*keptView, []spec.Note, error) {
	res, err := startKeeper(p, images)
	if err != nil || res.Private {
		return nil, res.Notes, err
	}
	k, err := dialKeeper(KeeperAddress(p.Cache, os.Getuid()))
	if err != nil {
		return nil, []spec.Note{spec.Notef("not joining the kept view of tree %s: %v", p.Tree, err)}, nil
	}
	return k, nil, nil // (the build's notes come with the keeper's answer)
}

// dialKeeper connects to the keeper at addr and receives its namespaces.
func dialKeeper(addr string) (*keptView, error) {
	// Connected without waiting: a blocking connect waits, with no bound,
	// for room in the queue of whoever serves the name, and another user
	// may have taken it first, listening with a full queue and never
	// accepting (/proc/net/unix lists every keeper's name). A queue still
	// full after keeperQueueWait (a keeper empties its own at once) is not
	// joined: the launch builds its view.
	conn, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("making a socket: %w", err)
	}
	fail := func(err error) (*keptView, error) {
		unix.Close(conn)
		return nil, err
	}
	for waited := time.Duration(0); ; waited += keeperQueueRetry {
		err = unix.Connect(conn, &unix.SockaddrUnix{Name: addr})
		if !errors.Is(err, unix.EAGAIN) || waited >= keeperQueueWait {
			break
		}
		time.Sleep(keeperQueueRetry)
	}
	if err != nil {
		if errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.ENOENT) {
			return fail(errNoKeeper)
		}
		if errors.Is(err, unix.EAGAIN) {
			return fail(fmt.Errorf("%s accepts no connection (its queue stayed full for %v)", addr, keeperQueueWait))
		}
		return fail(fmt.Errorf("connecting to %s: %w", addr, err))
	}
	if err := unix.SetNonblock(conn, false); err != nil {
		return fail(fmt.Errorf("connecting to %s: %w", addr, err))
	}
	// The socket's owner, before anything is read from it.
	cred, err := unix.GetsockoptUcred(conn, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return fail(fmt.Errorf("asking who serves %s: %w", addr, err))
	}
	if int(cred.Uid) != os.Getuid() {
		return fail(fmt.Errorf("%s is served by uid %d, not yours", addr, cred.Uid))
	}
	tv := unix.NsecToTimeval(keeperJoinTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(conn, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail(fmt.Errorf("setting a timeout on %s: %w", addr, err))
	}
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(2*4))
	n, oobn, _, _, err := unix.Recvmsg(conn, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return fail(fmt.Errorf("reading %s: %w", addr, err))
	}
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
		fds, _ = unix.ParseUnixRights(&msgs[0])
	}
	if n == 0 || len(fds) != 2 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return fail(errNoKeeper) // (ended meanwhile)
	}
	k := &keptView{conn: conn, user: fds[0], mnt: fds[1]}
	r := &wireReader{b: buf[:n]}
	k.notes = r.notes()
	if err := r.done("the keeper's answer"); err != nil {
		k.close()
		return nil, err
	}
	if err := checkKeptNamespaces(k.user, k.mnt); err != nil {
		k.close()
		return nil, err
	}
	return k, nil
}

// Namespace ioctls (linux/nsfs.h).
const (
	nsGetUserNS   = 0xb7<<8 | 1
	nsGetParent   = 0xb7<<8 | 2
	nsGetOwnerUID = 0xb7<<8 | 4
)

// checkKeptNamespaces checks that user is a user namespace of this user's,
// a child of this process's own, and mnt a mount namespace that belongs to
// it.
func checkKeptNamespaces(user, mnt int) error {
	var uid uint32
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(user), nsGetOwnerUID, uintptr(unsafe.Pointer(&uid))); e != 0 {
		return fmt.Errorf("the kept view's user namespace: %w", e)
	}
	if int(uid) != os.Getuid() {
		return fmt.Errorf("the kept view's user namespace is uid %d's", uid)
	}
	same := func(fd int, than string) error {
		var a, b unix.Stat_t
		if err := unix.Fstat(fd, &a); err != nil {
			return err
		}
		if err := unix.Stat(than, &b); err != nil {
			return err
		}
		if a.Dev != b.Dev || a.Ino != b.Ino {
			return errors.New("not the same namespace")
		}
		return nil
	}
	parent, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(user), nsGetParent, 0)
	if e != 0 {
		return fmt.Errorf("the kept view's user namespace: %w", e)
	}
	err := same(int(parent), "/proc/thread-self/ns/user")
	unix.Close(int(parent))
	if err != nil {
		return fmt.Errorf("the kept view's user namespace is not a child of yours: %w", err)
	}
	owner, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(mnt), nsGetUserNS, 0)
	if e != 0 {
		return fmt.Errorf("the kept view's mount namespace: %w", e)
	}
	defer unix.Close(int(owner))
	var a, b unix.Stat_t
	if unix.Fstat(int(owner), &a) != nil || unix.Fstat(user, &b) != nil || a.Ino != b.Ino || a.Dev != b.Dev {
		return errors.New("the kept view's mount namespace is not its user namespace's")
	}
	return nil
}

// startKeeper starts the keeper of p's view and waits until it serves (or
// says that it will not).
func startKeeper(p *spec.Plan, images *imageServer) (res builderResult, err error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return res, fmt.Errorf("starting a keeper: %w", err)
	}
	defer inR.Close()
	defer inW.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		return res, fmt.Errorf("starting a keeper: %w", err)
	}
	defer outR.Close()
	defer outW.Close()
	null, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
	if err != nil {
		return res, fmt.Errorf("starting a keeper: %w", err)
	}
	defer null.Close()
	pin, err := os.Open("/proc/thread-self/ns/mnt")
	if err != nil {
		return res, fmt.Errorf("starting a keeper: %w", err)
	}
	defer pin.Close()
	files := []*os.File{null, null, null, inR, outW, pin}
	argv := []string{"chos", keeperArg, p.Tree}
	if images != nil {
		argv = append(argv, strconv.Itoa(keeperImageFD))
		files = append(files, images.child)
	}
	spawn, err := prepareSpawn(files, argv)
	if err != nil {
		return res, fmt.Errorf("starting a keeper: %w", err)
	}
	err = spawnDetached(spawn)
	spawn.close()
	if err != nil {
		return res, fmt.Errorf("starting a user namespace (see `chos check`): %w", err)
	}
	inR.Close()
	outW.Close()
	// (The command, forked later, must get the caller's descriptors: the
	// image server keeps them from squashfuse only while the view is built.)
	images.serve()
	defer images.inheritAgain()
	go func() {
		req := builderRequest{View: p.View, Layer: p.Layer}
		inW.Write(req.encode())
		inW.Close()
	}()
	data, err := io.ReadAll(outR)
	if err == nil {
		err = res.decode(data)
	}
	if err != nil {
		// Gone without a word: the launch builds its own.
		res.Private = true
		res.Notes = append(res.Notes, spec.Notef("the keeper of tree %s ended before it served: %v", p.Tree, err))
		return res, nil
	}
	if res.Err != "" {
		return res, errors.New(res.Err)
	}
	return res, nil
}

// RunKeeper is the keeper's side: it builds the view it is given, then
// keeps it for the user's launches until KeeperIdle after the last one
// ended. It returns the exit status.
func RunKeeper(args []string) int {
	// As for the user-namespace child: harmless only in a user namespace
	// of the caller's own.
	if err := ownUserNamespace(); err != nil {
		fmt.Fprintf(os.Stderr, "chos: refusing to act as a keeper: %v\n", err)
		return StatusFailed
	}
	out := os.NewFile(keeperOutFD, "result")
	var res builderResult
	report := func(status int) int {
		out.Write(res.encode())
		out.Close()
		return status
	}
	// Nothing of the launch that started it but what it was given: the
	// caller's descriptors would stay open as long as the keeper.
	last := keeperPinFD
	if len(args) == 4 {
		if args[3] != strconv.Itoa(keeperImageFD) || !useImageServer(args[3]) {
			res.Err = fmt.Sprintf("%s: bad image server descriptor %q", keeperArg, args[3])
			return report(StatusFailed)
		}
		last = keeperImageFD
	}
	if fds, err := inheritedFDs(); err == nil {
		for _, fd := range fds {
			if fd > last {
				unix.Close(fd)
			}
		}
	}
	unix.CloseOnExec(keeperPinFD) // (pinned: kept open, never passed on)
	var req builderRequest
	in := os.NewFile(keeperInFD, "view")
	data, err := io.ReadAll(in)
	in.Close()
	if err == nil {
		err = req.decode(data)
	}
	if err == nil && req.View.Cache == nil {
		err = errors.New("the view to keep has no key")
	}
	if err != nil {
		res.Err = fmt.Sprintf("reading the view to keep: %v", err)
		return report(StatusFailed)
	}
	v := &req.View
	// A connection of another user's shows the kernel's overflow uid (they
	// are not mapped here): a keeper of that uid (nobody) could not tell
	// them from its own user's, and keeps nothing.
	if data, err := os.ReadFile("/proc/sys/kernel/overflowuid"); err != nil || strings.TrimSpace(string(data)) == strconv.Itoa(os.Getuid()) {
		res.Private = true
		res.Notes = []spec.Note{spec.Notef("not keeping the view of tree %s: uid %d is the kernel's overflow uid", v.Tree, os.Getuid())}
		return report(0)
	}
	// The name first: a concurrent first launch of the same view that
	// took it builds and keeps that view; this launch builds its own.
	lis, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		err = unix.Bind(lis, &unix.SockaddrUnix{Name: KeeperAddress(v.Cache, os.Getuid())})
	}
	if errors.Is(err, unix.EADDRINUSE) {
		res.Private = true
		return report(0)
	}
	if err != nil {
		res.Private = true
		res.Notes = []spec.Note{spec.Notef("not keeping the view of tree %s: %v", v.Tree, err)}
		return report(0)
	}
	_, notes, err := enterView(v, req.Layer, UserNamespace)
	if err == nil {
		// Nothing in the view may change it from now on: neither this
		// process nor the launches (which drop theirs before their
		// command runs) keep a capability.
		if err = dropCapabilities(); err == nil {
			err = unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
		}
	}
	if err != nil {
		res.Err = fmt.Sprintf("setting up tree %s: %v", v.Tree, err)
		return report(StatusFailed)
	}
	// The namespaces given to launches: this thread's (the view is its
	// own mount namespace, which assemble made), through the host's /proc
	// that every view shows.
	user, err1 := unix.Open("/proc/thread-self/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	mnt, err2 := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err := errors.Join(err1, err2); err != nil {
		res.Private = true
		res.Notes = []spec.Note{spec.Notef("not keeping the view of tree %s: opening its namespaces: %v", v.Tree, err)}
		return report(0)
	}
	if err := unix.Listen(lis, 128); err != nil {
		res.Private = true
		res.Notes = []spec.Note{spec.Notef("not keeping the view of tree %s: %v", v.Tree, err)}
		return report(0)
	}
	report(0)
	w := &wireWriter{}
	w.notes(notes)
	serveKept(lis, user, mnt, w.b)
	return 0
}

// serveKept hands the namespaces to each connection of this user's until
// KeeperIdle after the last one closed, then returns.
func serveKept(lis, user, mnt int, answer []byte) {
	var mu sync.Mutex
	open := 0
	done := make(chan struct{})
	idle := time.AfterFunc(KeeperIdle, func() {
		mu.Lock()
		defer mu.Unlock()
		if open == 0 {
			// (Connections not yet accepted end with the socket: their
			// launches build their own view.)
			unix.Shutdown(lis, unix.SHUT_RDWR)
			close(done)
		}
	})
	uid := os.Getuid()
	// Accepted through the runtime's poller: no thread waits for them.
	var listener syscall.RawConn
	if unix.SetNonblock(lis, true) == nil {
		listener, _ = os.NewFile(uintptr(lis), "keeper").SyscallConn()
	}
	accept := func() (int, error) {
		if listener == nil {
			conn, _, err := unix.Accept4(lis, unix.SOCK_CLOEXEC)
			return conn, err
		}
		conn, aerr := -1, error(nil)
		err := listener.Read(func(fd uintptr) bool {
			conn, _, aerr = unix.Accept4(int(fd), unix.SOCK_CLOEXEC)
			return !errors.Is(aerr, unix.EAGAIN)
		})
		if err != nil {
			return -1, err
		}
		return conn, aerr
	}
	go func() {
		for {
			conn, err := accept()
			if err != nil {
				if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ECONNABORTED) {
					continue
				}
				return // (shut down)
			}
			cred, err := unix.GetsockoptUcred(conn, unix.SOL_SOCKET, unix.SO_PEERCRED)
			if err != nil || int(cred.Uid) != uid {
				unix.Close(conn)
				continue
			}
			mu.Lock()
			open++
			idle.Stop()
			mu.Unlock()
			go func() {
				if err := unix.Sendmsg(conn, answer, unix.UnixRights(user, mnt), nil, unix.MSG_NOSIGNAL); err == nil {
					// Held until the launch's command ends (read through
					// the runtime's poller: no thread waits for it).
					if unix.SetNonblock(conn, true) == nil {
						f := os.NewFile(uintptr(conn), "launch")
						f.Read(make([]byte, 1))
						f.Close()
						conn = -1
					}
				}
				if conn >= 0 {
					unix.Close(conn)
				}
				mu.Lock()
				if open--; open == 0 {
					idle.Reset(KeeperIdle)
				}
				mu.Unlock()
			}()
		}
	}()
	<-done
}
