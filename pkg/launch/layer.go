package launch

import (
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"slices"

	"github.com/chos-hpc/chos/pkg/identity"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/spec"
)

// layer is what tree t's view lacks to name user u and their groups
// (gids): nil for every user the view's passwd and group already know,
// which costs a read of those two files and no lookup.
func (inv Invocation) layer(t *ostree.Tree, u identity.User, gids []int) (*spec.Layer, error) {
	if t.Host {
		return nil, nil
	}
	passwd, err := inv.ViewFile(t, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	group, err := inv.ViewFile(t, "/etc/group")
	if err != nil {
		return nil, err
	}
	lack := identity.Lacking(passwd, group, u.UID, gids)
	if lack.Empty() {
		return nil, nil
	}
	// Only now, for what the files lack, the directory is asked.
	found, err := inv.Names.GroupsByID(lack.Gids)
	if err != nil {
		return nil, err
	}
	var groups []identity.Group
	for _, gid := range lack.Gids {
		if g, ok := found[gid]; ok {
			groups = append(groups, g)
		}
	}
	id := &spec.Layer{UID: u.UID}
	id.Passwd, id.Group = lack.Lines(u, groups)
	if len(id.Passwd)+len(id.Group) == 0 {
		return nil, nil
	}
	// (FNV-1a, 64 bits, as plan.CacheKey: a collision would show this user
	// a stale layer of their own, naming them and their groups only.)
	h := fnv.New64a()
	fmt.Fprintf(h, "%d\x00%d\x00%v\x00", u.UID, u.GID, gids)
	for _, l := range append(append([]string{}, id.Passwd...), id.Group...) {
		fmt.Fprintf(h, "%s\x00", l)
	}
	id.Key = hex.EncodeToString(h.Sum(nil))
	return id, nil
}

// CallerLayer is Layer for the caller, with their passwd entry.
func (inv Invocation) CallerLayer(t *ostree.Tree) (*spec.Layer, error) {
	u, err := inv.account()
	if err != nil {
		return nil, err
	}
	return inv.layer(t, u, inv.gids())
}

// ViewFile is what the view of t shows at file (/etc/passwd, /etc/group,
// /etc/nsswitch.conf): the host's where the tree's identity list binds it,
// else the tree's own, read with the caller's rights.
func (inv Invocation) ViewFile(t *ostree.Tree, file string) ([]byte, error) {
	if slices.Contains(t.Identity, file) {
		data, err := readSmall(inv.HostPath(file))
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return data, err
		}
	}
	var data []byte
	err := inv.asCaller(func() error {
		var err error
		data, err = ostree.ReadInTree(inv.HostPath(t.Path), file)
		return err
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

func readSmall(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 64<<20))
}
