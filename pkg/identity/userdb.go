package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
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

func varlinkCall(ctx context.Context, socket, method string, params map[string]any) (json.RawMessage, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %v", errUnavailable, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	p := map[string]any{"service": "io.systemd.Multiplexer"}
	for k, v := range params {
		p[k] = v
	}
	req, _ := json.Marshal(map[string]any{"method": method, "parameters": p})
	if _, err := conn.Write(append(req, 0)); err != nil {
		return nil, timeoutOr(ctx, err)
	}
	var buf bytes.Buffer
	chunk := make([]byte, 4096)
	for {
		n, err := conn.Read(chunk)
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
		if err != nil {
			return nil, timeoutOr(ctx, err)
		}
		if buf.Len() > 1<<20 {
			return nil, fmt.Errorf("userdb reply larger than 1 MiB")
		}
	}
}

func timeoutOr(ctx context.Context, err error) error {
	var ne net.Error
	if ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()) {
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
	return User{Name: rec.UserName, UID: *rec.UID, GID: gid, Gecos: rec.RealName, Home: rec.HomeDirectory, Shell: rec.Shell}, nil
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
	return Group{Name: rec.GroupName, GID: *rec.GID, Members: rec.Members}, nil
}
