package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// systemd's user database speaks varlink: JSON objects ended by a NUL byte
// over a stream socket (systemd docs/USER_GROUP_API.md). The multiplexer
// answers from every source, classic NSS included.

// errUnavailable: the service is not there or does not serve this query;
// the next source is tried.
var errUnavailable = errors.New("userdb unavailable")

type varlinkReply struct {
	Parameters struct {
		Record json.RawMessage `json:"record"`
	} `json:"parameters"`
	Error string `json:"error"`
}

// varlinkCall makes one call on the socket, bounded by ctx's deadline. It
// uses the socket system calls directly: package net's initialisation
// would cost every launch, and a lookup through userdb is rare.
func varlinkCall(ctx context.Context, socket, method string, params map[string]any) (json.RawMessage, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnavailable, err)
	}
	defer unix.Close(fd)
	// Each blocking call waits at most what is left of the deadline
	// (SO_SNDTIMEO also bounds connect on a full backlog: unix(7)).
	bound := func() error {
		dl, ok := ctx.Deadline()
		if !ok {
			return nil
		}
		left := time.Until(dl)
		if left <= 0 {
			return context.DeadlineExceeded
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
			return err
		}
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	}
	if err := bound(); err != nil {
		return nil, err
	}
	if err := retryEINTR(func() error { return unix.Connect(fd, &unix.SockaddrUnix{Name: socket}) }); err != nil {
		if timedOut(err) {
			return nil, context.DeadlineExceeded
		}
		return nil, fmt.Errorf("%w: connecting to %s: %v", errUnavailable, socket, err)
	}
	p := map[string]any{"service": "io.systemd.Multiplexer"}
	for k, v := range params {
		p[k] = v
	}
	req, _ := json.Marshal(map[string]any{"method": method, "parameters": p})
	for req = append(req, 0); len(req) > 0; {
		if err := bound(); err != nil {
			return nil, err
		}
		var n int
		err := retryEINTR(func() (err error) { n, err = unix.Write(fd, req); return err })
		if err != nil {
			return nil, timeoutOr(err)
		}
		req = req[n:]
	}
	var buf bytes.Buffer
	chunk := make([]byte, 4096)
	for {
		if err := bound(); err != nil {
			return nil, err
		}
		var n int
		err := retryEINTR(func() (err error) { n, err = unix.Read(fd, chunk); return err })
		if err != nil {
			return nil, timeoutOr(err)
		}
		if n == 0 {
			return nil, fmt.Errorf("userdb reply: %w", io.ErrUnexpectedEOF)
		}
		buf.Write(chunk[:n])
		if i := bytes.IndexByte(buf.Bytes(), 0); i >= 0 {
			var rep varlinkReply
			if err := json.Unmarshal(buf.Bytes()[:i], &rep); err != nil {
				return nil, fmt.Errorf("userdb reply: %w", err)
			}
			switch rep.Error {
			case "":
				return rep.Parameters.Record, nil
			case "io.systemd.UserDatabase.NoRecordFound":
				return nil, ErrNotFound
			default:
				return nil, fmt.Errorf("%w: %s", errUnavailable, rep.Error)
			}
		}
		if buf.Len() > 1<<20 {
			return nil, fmt.Errorf("userdb reply larger than 1 MiB")
		}
	}
}

// retryEINTR repeats a socket call a signal interrupted: with a timeout
// set, the kernel does not restart it (signal(7)).
func retryEINTR(call func() error) error {
	for {
		if err := call(); err != unix.EINTR {
			return err
		}
	}
}

// timedOut: a socket call that ran into SO_SNDTIMEO or SO_RCVTIMEO.
func timedOut(err error) bool {
	return errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINPROGRESS)
}

func timeoutOr(err error) error {
	if timedOut(err) {
		return context.DeadlineExceeded
	}
	return err
}

func userdbUser(ctx context.Context, socket string, query map[string]any) (User, error) {
	raw, err := varlinkCall(ctx, socket, "io.systemd.UserDatabase.GetUserRecord", query)
	if err != nil {
		return User{}, err
	}
	var rec struct {
		UserName      string `json:"userName"`
		UID           *int   `json:"uid"`
		GID           *int   `json:"gid"`
		RealName      string `json:"realName"`
		HomeDirectory string `json:"homeDirectory"`
		Shell         string `json:"shell"`
	}
	if err := json.Unmarshal(raw, &rec); err != nil || rec.UID == nil || rec.UserName == "" {
		return User{}, fmt.Errorf("userdb user record: %v", err)
	}
	gid := *rec.UID // systemd: a user's group defaults to the uid
	if rec.GID != nil {
		gid = *rec.GID
	}
	u := User{Name: rec.UserName, UID: *rec.UID, GID: gid, Gecos: rec.RealName, Home: rec.HomeDirectory, Shell: rec.Shell}
	for _, f := range []string{u.Name, u.Gecos, u.Home, u.Shell} {
		if strings.ContainsAny(f, ":\n\x00") {
			return User{}, fmt.Errorf("userdb user record of uid %d: %q would not fit a passwd line", u.UID, f)
		}
	}
	return u, nil
}

func userdbGroup(ctx context.Context, socket string, query map[string]any) (Group, error) {
	raw, err := varlinkCall(ctx, socket, "io.systemd.UserDatabase.GetGroupRecord", query)
	if err != nil {
		return Group{}, err
	}
	var rec struct {
		GroupName string   `json:"groupName"`
		GID       *int     `json:"gid"`
		Members   []string `json:"members"`
	}
	if err := json.Unmarshal(raw, &rec); err != nil || rec.GID == nil || rec.GroupName == "" {
		return Group{}, fmt.Errorf("userdb group record: %v", err)
	}
	g := Group{Name: rec.GroupName, GID: *rec.GID, Members: rec.Members}
	for _, f := range append([]string{g.Name}, g.Members...) {
		if strings.ContainsAny(f, ":,\n\x00") {
			return Group{}, fmt.Errorf("userdb group record of gid %d: %q would not fit a group line", g.GID, f)
		}
	}
	return g, nil
}
