package launch

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/config"
	"github.com/chos-hpc/chos/pkg/identity"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/plan"
	"github.com/chos-hpc/chos/pkg/trust"
)

// allows applies a tree's users = and groups = lists to who. Names are
// looked up by the name service as root sees it (never by anything the
// caller runs), groups by their gids against the caller's kernel groups.
func (inv Invocation) allows(t *ostree.Tree, who plan.Caller) (bool, error) {
	var lookupErr error
	gidOf := func(group string) (int, bool) {
		g, _, err := inv.Names.GroupByName(group)
		if err != nil && !errors.Is(err, identity.ErrNotFound) && lookupErr == nil {
			lookupErr = err
		}
		return g.GID, err == nil
	}
	ok := t.Allows(who.UID, who.Name, append([]int{who.GID}, who.Groups...), gidOf)
	if !ok && lookupErr != nil {
		return false, lookupErr
	}
	return ok, nil
}

// access is the access check of a launch: users = and groups =, then the
// read check.
func (inv Invocation) access(t *ostree.Tree, who plan.Caller) error {
	ok, err := inv.allows(t, who)
	if err != nil {
		return fmt.Errorf("checking who may use tree %s: %w", t.Name, err)
	}
	if !ok {
		return &ForbiddenError{t}
	}
	return inv.mayRead(t)
}

// MayUse says whether the caller may use tree t, as a launch decides it:
// nil, a *ForbiddenError, an *UnreadableError, or the error of a lookup
// that could not decide.
func (inv Invocation) MayUse(t *ostree.Tree) error {
	if len(t.Users) == 0 && len(t.Groups) == 0 {
		return inv.mayRead(t)
	}
	u, err := inv.account()
	if err != nil {
		return err
	}
	who := inv.Caller
	who.Name, who.Groups = u.Name, inv.gids()[1:]
	return inv.access(t, who)
}

// mayRead says whether the caller may read tree t's root (a directory, or
// an image file) with their own ids: access(2) with the effective ids,
// switched to the caller's (ACLs and every directory on the way count).
// chos lists and binds it as root, so without this a tree only some users
// can read would be open to every user of chos; CHOS reached trees
// through the caller's own path lookups.
func (inv Invocation) mayRead(t *ostree.Tree) error {
	if t.Host || inv.Caller.UID == 0 {
		return nil
	}
	p := inv.HostPath(t.Path)
	mode := uint32(unix.R_OK | unix.X_OK)
	if ostree.IsImage(p) {
		mode = unix.R_OK
	}
	err := inv.asCaller(func() error { return inv.Machine.Access(p, mode) })
	if errors.Is(err, unix.EACCES) {
		return &UnreadableError{t, err}
	}
	return nil // (a missing tree is reported where the view is made, with its line)
}

// UnreadableError is a tree the caller cannot read with their own ids.
type UnreadableError struct {
	Tree *ostree.Tree
	Err  error
}

func (e *UnreadableError) Error() string {
	return "you may not read tree " + e.Tree.Name + " (" + e.Tree.Path + ": " + e.Err.Error() + ")"
}

// ForbiddenError is a tree's users = and groups = refusing the caller.
type ForbiddenError struct{ Tree *ostree.Tree }

func (e *ForbiddenError) Error() string {
	return "you may not use tree " + e.Tree.Name + " (" + Restriction(e.Tree) + ")"
}

// Restriction says whom a tree is for and where the configuration says so.
func Restriction(t *ostree.Tree) string {
	var who []string
	if len(t.Users) > 0 {
		who = append(who, "users "+strings.Join(t.Users, ", "))
	}
	if len(t.Groups) > 0 {
		who = append(who, "groups "+strings.Join(t.Groups, ", "))
	}
	return "restricted to " + strings.Join(who, " and ") + " by " + positions(t.AccessRules())
}

// positions names configuration lines: "FILE:LINE, FILE:LINE".
func positions(at []config.Position) string {
	s := make([]string, len(at))
	for i, p := range at {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// TreeProblem says why tree t cannot be used here, or nil: ostree.Problem,
// and for the setuid chos a path someone other than root could redirect,
// which every launch would refuse.
func (inv Invocation) TreeProblem(t *ostree.Tree) error {
	if err := ostree.Problem(t, inv.HostPath("/")); err != nil || t.Host || inv.Privilege.UserNS {
		return err
	}
	if err := inv.Machine.Vouched(inv.HostPath(t.Path)); trust.IsUntrusted(err) {
		return fmt.Errorf("%w: the setuid chos refuses it", err)
	}
	return nil
}
