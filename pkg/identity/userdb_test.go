package identity

import (
	"bytes"
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// varlinkServer answers each connection on a fresh socket with reply
// (after the request's NUL), or, with reply "", never answers.
func varlinkServer(t *testing.T, reply string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "userdb")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var req []byte
				b := make([]byte, 512)
				for !bytes.Contains(req, []byte{0}) {
					n, err := c.Read(b)
					if err != nil {
						return
					}
					req = append(req, b[:n]...)
				}
				if reply == "" {
					time.Sleep(10 * time.Second)
					return
				}
				c.Write(append([]byte(reply), 0))
			}()
		}
	}()
	return path
}

func TestVarlinkCallAnswersRefusesAndTimesOut(t *testing.T) {
	cases := []struct {
		name, reply string
		socket      string // instead of a server
		want        func(raw []byte, err error) bool
	}{
		{name: "record", reply: `{"parameters":{"record":{"userName":"ldapuser","uid":5001}}}`,
			want: func(raw []byte, err error) bool {
				return err == nil && bytes.Contains(raw, []byte(`"ldapuser"`))
			}},
		{name: "not found", reply: `{"error":"io.systemd.UserDatabase.NoRecordFound"}`,
			want: func(_ []byte, err error) bool { return errors.Is(err, ErrNotFound) }},
		{name: "other error", reply: `{"error":"io.systemd.UserDatabase.BadService"}`,
			want: func(_ []byte, err error) bool { return errors.Is(err, errUnavailable) }},
		{name: "stalled", reply: "",
			want: func(_ []byte, err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
		{name: "no socket", socket: "/nonexistent/userdb",
			want: func(_ []byte, err error) bool { return errors.Is(err, errUnavailable) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			socket := c.socket
			if socket == "" {
				socket = varlinkServer(t, c.reply)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			raw, err := varlinkCall(ctx, socket, "io.systemd.UserDatabase.GetUserRecord", map[string]any{"uid": 5001})
			if !c.want(raw, err) {
				t.Errorf("got %s, %v", raw, err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the call took %v: the deadline did not bound it", d)
			}
		})
	}
}

// A userdb record whose fields would add lines or fields to the passwd or
// group file chos writes is refused; the control is the same record clean.
func TestUserdbRecordsThatWouldNotFitAreRefused(t *testing.T) {
	ctx := context.Background()
	clean := varlinkServer(t, `{"parameters":{"record":{"userName":"ldapuser","uid":5001,"realName":"L. User","homeDirectory":"/home/ldapuser","shell":"/bin/bash"}}}`)
	if u, err := userdbUser(ctx, clean, map[string]any{"uid": 5001}); err != nil || u.Line() != "ldapuser:x:5001:5001:L. User:/home/ldapuser:/bin/bash" {
		t.Fatalf("control: %+v, %v", u, err)
	}
	for _, rec := range []string{
		`{"parameters":{"record":{"userName":"ldapuser","uid":5001,"realName":"x\nroot2::0:0::/root:/bin/sh"}}}`,
		`{"parameters":{"record":{"userName":"ldapuser","uid":5001,"shell":"/bin/sh:extra"}}}`,
		`{"parameters":{"record":{"userName":"ldap:user","uid":5001}}}`,
	} {
		if u, err := userdbUser(ctx, varlinkServer(t, rec), map[string]any{"uid": 5001}); err == nil {
			t.Errorf("%s: accepted as %q", rec, u.Line())
		}
	}
	if _, err := userdbGroup(ctx, varlinkServer(t, `{"parameters":{"record":{"groupName":"g","gid":7,"members":["a","b\nroot"]}}}`), map[string]any{"gid": 7}); err == nil {
		t.Error("a group member with a newline is accepted")
	}
	if g, err := userdbGroup(ctx, varlinkServer(t, `{"parameters":{"record":{"groupName":"g","gid":7,"members":["a","b"]}}}`), map[string]any{"gid": 7}); err != nil || g.Line() != "g:x:7:a,b" {
		t.Errorf("control: %+v, %v", g, err)
	}
}
