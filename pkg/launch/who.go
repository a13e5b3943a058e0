package launch

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/chos-hpc/chos/pkg/identity"
	"github.com/chos-hpc/chos/pkg/plan"
)

// account is the caller's passwd entry: the files, else the directory
// (userdb, getent). A uid the name service does not know gets $HOME and
// $SHELL, the caller's own lookup keys, which never decide access.
func (inv Invocation) account() (identity.User, error) {
	c := inv.Caller
	u, _, err := inv.Names.UserByID(c.UID)
	if errors.Is(err, identity.ErrNotFound) {
		return identity.User{UID: c.UID, GID: c.GID, Home: inv.Getenv("HOME"), Shell: inv.Getenv("SHELL")}, nil
	}
	return u, err
}

// who is the caller as a launch sees them: the ids and environment of the
// Invocation, the working directory, and the name, home and shell from the
// host's passwd.
func (inv Invocation) who() (plan.Caller, error) {
	c := inv.Caller
	var err error
	if c.Cwd, err = inv.Machine.Getwd(inv.lookupCaller()); err != nil {
		return c, err
	}
	u, err := inv.account()
	if err != nil {
		return c, err
	}
	c.Name, c.Home, c.Shell = u.Name, u.Home, u.Shell
	return c, nil
}

// Home is the caller's home directory: passwd's, as the original pam_chos
// used it ($HOME only when passwd does not know the user).
func (inv Invocation) Home() (string, error) {
	u, err := inv.account()
	if err != nil {
		return "", fmt.Errorf("finding your home directory: %w", err)
	}
	if u.Home == "" {
		return "", fmt.Errorf("cannot find your home directory (uid %d is unknown to the name service and $HOME is unset)", inv.Caller.UID)
	}
	return u.Home, nil
}

// gids are the caller's primary group followed by the supplementary ones,
// each once: the kernel's list usually holds the primary group too.
func (inv Invocation) gids() []int {
	gids := []int{inv.Caller.GID}
	for _, g := range inv.Caller.Groups {
		if !slices.Contains(gids, g) {
			gids = append(gids, g)
		}
	}
	return gids
}

// memberOf says whether a user with these gids has the group named g.
func (inv Invocation) memberOf(g string, gids []int) (bool, error) {
	grp, _, err := inv.Names.GroupByName(g)
	if errors.Is(err, identity.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return slices.Contains(gids, grp.GID), nil
}

// DescribeIdentity says, for check and list, who the caller is and which
// source named them.
func (inv Invocation) DescribeIdentity() (string, error) {
	u, src, err := inv.Names.UserByID(inv.Caller.UID)
	if err != nil {
		return "", err
	}
	gids := inv.gids()
	found, err := inv.Names.GroupsByID(gids)
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
