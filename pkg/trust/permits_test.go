package trust

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestPermitsJudgesTheBitsOnTheWayForTheUser(t *testing.T) {
	base := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Chmod(base, 0o755)) // (TempDir makes them 0700)
	must(os.Chmod(filepath.Dir(base), 0o755))
	open := filepath.Join(base, "open")
	closed := filepath.Join(base, "closed")
	group := filepath.Join(base, "group")
	must(os.Mkdir(open, 0o755))
	must(os.Mkdir(closed, 0o700))
	must(os.Mkdir(group, 0o750))
	must(os.Mkdir(filepath.Join(closed, "inner"), 0o755))
	must(os.Chown(group, 0, 4242))
	must(os.Symlink(closed, filepath.Join(base, "link")))
	rx := uint32(4 | 1)
	owner, _ := func() (int, error) { fi, err := os.Stat(base); return int(fi.Sys().(*syscall.Stat_t).Uid), err }()
	const other = 54321 // a uid that owns nothing here
	cases := []struct {
		name string
		path string
		uid  int
		gids []int
		ok   bool
	}{
		{"open to others", open, other, nil, true},
		{"closed to others", closed, other, nil, false},
		{"closed, below it", filepath.Join(closed, "inner"), other, nil, false},
		{"closed, through a link", filepath.Join(base, "link"), other, nil, false},
		{"closed, to its owner", closed, owner, nil, true},
		{"group, a member", group, other, []int{4242}, true},
		{"group, not a member", group, other, []int{4243}, false},
	}
	for _, c := range cases {
		err := Permits(c.path, rx, c.uid, c.gids)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v, want allowed %v", c.name, err, c.ok)
		}
		if err != nil && !errors.Is(err, syscall.EACCES) {
			t.Errorf("%s: %v does not wrap EACCES", c.name, err)
		}
	}
}
