package ostree

import (
	"strings"

	"github.com/chos-hpc/chos/pkg/config"
)

// AccessRules are the lines of the tree's `users =` and `groups =` rules,
// in reading order: what a refusal names.
func (t *Tree) AccessRules() []config.Position {
	var at []config.Position
	for _, s := range t.Sections {
		at = append(at, s.Lines["users"]...)
		at = append(at, s.Lines["groups"]...)
	}
	return at
}

// Setting is one effective setting of a tree, as text, with the lines it
// comes from; none when it is the default.
type Setting struct {
	Key   string
	Value string
	At    []config.Position
}

// Settings are the tree's effective %TREE settings (binds aside) and where
// each comes from, by the rules applySettings merges sections with: the
// the last description, identity, setuid and cache win; users and groups
// add up.
func (t *Tree) Settings() []Setting {
	last := func(key string, set func(config.TreeSettings) bool) []config.Position {
		var at []config.Position
		for _, s := range t.Sections {
			if l := s.Lines[key]; set(s) && len(l) > 0 {
				at = []config.Position{l[len(l)-1]}
			}
		}
		return at
	}
	every := func(key string) []config.Position {
		var at []config.Position
		for _, s := range t.Sections {
			at = append(at, s.Lines[key]...)
		}
		return at
	}
	setuid, cache := "deny", "yes"
	if t.AllowSetuid {
		setuid = "allow"
	}
	if t.NoCache {
		cache = "no"
	}
	return []Setting{
		{"description", t.Description, last("description", func(s config.TreeSettings) bool { return s.Description != "" })},
		{"identity", strings.Join(t.Identity, " "), last("identity", func(s config.TreeSettings) bool { return s.IdentitySet })},
		{"setuid", setuid, last("setuid", func(s config.TreeSettings) bool { return s.SetuidSet })},
		{"cache", cache, last("cache", func(s config.TreeSettings) bool { return s.CacheSet })},
		{"users", strings.Join(t.Users, " "), every("users")},
		{"groups", strings.Join(t.Groups, " "), every("groups")},
		{"devices", config.DevicePatterns(t.Devices), every("devices")},
	}
}
