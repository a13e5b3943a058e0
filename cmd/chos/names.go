package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/chos-hpc/chos/pkg/identity"
	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/trust"
)

// names is the host's name service as this process may use it: as root,
// with only root-owned programs and sockets, when chos holds privilege.
func (st *state) names() *identity.Resolver {
	if st.resolver == nil {
		var trusted func(string) error
		if st.mode == nsroot.Privileged {
			trusted = trustedNSS
		}
		st.resolver = identity.Host(st.hostPath("/"), st.mode == nsroot.Privileged, trusted)
	}
	return st.resolver
}

// trustedNSS accepts getent and the userdb socket only where root alone
// could have put them: a privileged lookup must not run what a user made.
func trustedNSS(p string) error {
	if err := trust.CheckParents(p); err != nil {
		return err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	switch {
	case st.Uid != 0:
		return fmt.Errorf("%s is owned by uid %d, not root", p, st.Uid)
	case fi.Mode().IsRegular() && fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s is writable by group or others", p)
	}
	return nil
}

// account is the caller's passwd entry, looked up once: the files, else the
// directory (userdb, getent). A uid the name service does not know gets
// $HOME and $SHELL, the caller's own lookup keys, which never decide access.
func (st *state) account() (identity.User, error) {
	if st.acct == nil {
		u, _, err := st.names().UserByID(st.uid)
		if errors.Is(err, identity.ErrNotFound) {
			u, err = identity.User{UID: st.uid, GID: st.gid, Home: os.Getenv("HOME"), Shell: os.Getenv("SHELL")}, nil
		}
		st.acct, st.acctErr = &u, err
	}
	return *st.acct, st.acctErr
}

// allows applies a tree's users = and groups = lists. Names are looked up
// by the name service as root sees it (never by anything the caller runs),
// groups by their gids against the caller's kernel groups.
func (st *state) allows(t *ostree.Tree, name string, gids []int) (bool, error) {
	var lookupErr error
	gidOf := func(group string) (int, bool) {
		g, _, err := st.names().GroupByName(group)
		if err != nil && !errors.Is(err, identity.ErrNotFound) && lookupErr == nil {
			lookupErr = err
		}
		return g.GID, err == nil
	}
	ok := t.Allows(st.uid, name, gids, gidOf)
	if !ok && lookupErr != nil {
		return false, lookupErr
	}
	return ok, nil
}

// memberOf says whether a user with these gids has the group named g.
func (st *state) memberOf(g string, gids []int) (bool, error) {
	grp, _, err := st.names().GroupByName(g)
	if errors.Is(err, identity.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return slices.Contains(gids, grp.GID), nil
}

// identityLayer is what tree t's view lacks to name the caller and their
// groups (gids): nil for every user the view's passwd and group already
// know, which costs a read of those two files and no lookup.
func (st *state) identityLayer(t *ostree.Tree, u identity.User, gids []int) (*nsroot.Identity, error) {
	if t.Host {
		return nil, nil
	}
	passwd, err := st.viewFile(t, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	group, err := st.viewFile(t, "/etc/group")
	if err != nil {
		return nil, err
	}
	lack := identity.Lacking(passwd, group, u.UID, gids)
	if lack.Empty() {
		return nil, nil
	}
	// Only now, for what the files lack, the directory is asked.
	found, err := st.names().GroupsByID(lack.Gids)
	if err != nil {
		return nil, err
	}
	var groups []identity.Group
	for _, gid := range lack.Gids {
		if g, ok := found[gid]; ok {
			groups = append(groups, g)
		}
	}
	id := &nsroot.Identity{UID: u.UID}
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

// viewFile is what the view of t shows at file (/etc/passwd, /etc/group):
// the host's where the tree's identity list binds it, else the tree's own,
// read with the caller's rights.
func (st *state) viewFile(t *ostree.Tree, file string) ([]byte, error) {
	if slices.Contains(t.Identity, file) {
		data, err := readSmall(st.hostPath(file))
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return data, err
		}
	}
	var data []byte
	err := st.asCaller(func() error {
		var err error
		data, err = ostree.ReadInTree(st.hostPath(t.Path), file)
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

// describeIdentity says, for check and list, who the caller is and which
// source named them.
func (st *state) describeIdentity(gids []int) (string, error) {
	u, src, err := st.names().UserByID(st.uid)
	if err != nil {
		return "", err
	}
	found, err := st.names().GroupsByID(gids)
	if err != nil {
		return "", err
	}
	var gs []string
	for _, gid := range gids {
		name := "(no name)"
		if g, ok := found[gid]; ok {
			name = g.Name
		}
		gs = append(gs, strconv.Itoa(gid)+" "+name)
	}
	return fmt.Sprintf("uid %d is %s (from %s), home %s, shell %s; groups: %s",
		u.UID, u.Name, src, u.Home, u.Shell, strings.Join(gs, ", ")), nil
}

// gidList is the primary group followed by the supplementary ones, each
// once: the kernel's list usually holds the primary group too.
func gidList(primary int, groups []int) []int {
	gids := []int{primary}
	for _, g := range groups {
		if !slices.Contains(gids, g) {
			gids = append(gids, g)
		}
	}
	return gids
}

// mayUse says whether the caller may use tree t, as a launch decides it:
// nil, a *forbiddenError, the refusal of mayRead, or the error of a lookup
// that could not decide.
func (st *state) mayUse(t *ostree.Tree) error {
	if len(t.Users) == 0 && len(t.Groups) == 0 {
		return st.mayRead(t)
	}
	u, err := st.account()
	if err != nil {
		return err
	}
	groups, err := st.userGroups()
	if err != nil {
		return err
	}
	ok, err := st.allows(t, u.Name, gidList(st.gid, groups))
	if err != nil {
		return fmt.Errorf("checking who may use tree %s: %w", t.Name, err)
	}
	if !ok {
		return &forbiddenError{t}
	}
	return st.mayRead(t)
}
