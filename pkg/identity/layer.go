package identity

import (
	"slices"
	"strings"
)

// Lack is what a view's passwd and group files lack of one user: their uid,
// and those of their gids no group line names.
type Lack struct {
	UID  bool
	Gids []int

	names, groupNames map[string]bool
}

// Lacking compares a user's uid and gids (from the kernel) with a view's
// passwd and group files (basePasswd, baseGroup).
func Lacking(basePasswd, baseGroup []byte, uid int, gids []int) Lack {
	l := Lack{UID: true, names: map[string]bool{}, groupNames: map[string]bool{}}
	for _, line := range strings.Split(string(basePasswd), "\n") {
		if e, ok := parsePasswd(line); ok {
			l.names[e.Name] = true
			if e.UID == uid {
				l.UID = false
			}
		}
	}
	have := map[int]bool{}
	for _, line := range strings.Split(string(baseGroup), "\n") {
		if g, ok := parseGroup(line); ok {
			have[g.GID], l.groupNames[g.Name] = true, true
		}
	}
	for _, gid := range gids {
		if !have[gid] && !slices.Contains(l.Gids, gid) {
			l.Gids = append(l.Gids, gid)
		}
	}
	return l
}

// Empty says the files already name the user and all their groups.
func (l Lack) Empty() bool { return !l.UID && len(l.Gids) == 0 }

// Lines are what to add to the files so that user u and their groups
// (looked up in the directory) resolve by the files inside a tree that has
// no directory client of its own, as Apptainer synthesizes its container's
// files. Only this user is added, and only as a member of their own
// groups: nothing of other users leaks. A name the files give to another
// uid or gid is left as it is.
func (l Lack) Lines(u User, groups []Group) (passwd, group []string) {
	if l.UID && u.Name != "" && !l.names[u.Name] {
		passwd = append(passwd, u.Line())
	}
	for _, g := range groups {
		if !slices.Contains(l.Gids, g.GID) || l.groupNames[g.Name] {
			continue
		}
		var members []string
		if g.GID != u.GID {
			// What initgroups(3) inside the tree reads (sshd, su).
			members = []string{u.Name}
		}
		group = append(group, Group{Name: g.Name, GID: g.GID, Members: members}.Line())
	}
	return passwd, group
}
