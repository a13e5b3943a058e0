package integration

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"sync"
	"testing"
	"time"
)

// A second unprivileged user, made on first use and removed at the end: the
// attacker or the bystander of the tests where two users meet.
var (
	otherOnce sync.Once
	other     *testUser
	otherErr  error
)

func otherUser(t testing.TB) *testUser {
	t.Helper()
	otherOnce.Do(func() { other, otherErr = makeUser("chosu" + randHex(3)) })
	if otherErr != nil {
		t.Fatalf("making a second test user: %v", otherErr)
	}
	return other
}

// makeUser creates a local user with a home and a group of its own,
// removed when the package's tests end.
func makeUser(name string) (*testUser, error) {
	if out, err := runSetup(30*time.Second, "/", "useradd", "-m", "-U", "-s", "/bin/sh",
		"-c", "chos integration test", name); err != nil {
		return nil, fmt.Errorf("useradd %s: %w\n%s", name, err, out)
	}
	atExit(func() error {
		var keepers error
		if u, err := user.Lookup(name); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			keepers = endKeepers(uid)
		}
		if out, err := runSetup(30*time.Second, "/", "userdel", "-r", name); err != nil {
			if _, lerr := user.Lookup(name); lerr == nil {
				return errors.Join(keepers, fmt.Errorf("userdel -r %s: %w\n%s", name, err, out))
			}
		}
		return keepers
	})
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return nil, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &testUser{name: name, group: g.Name, home: u.HomeDir, uid: uid, gid: gid}, nil
}
