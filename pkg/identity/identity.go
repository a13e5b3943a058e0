// Package identity answers who a uid is and what a group is called through
// the host's name service (NSS), as a static, setuid Go program can reach
// it without loading NSS modules itself: the files, systemd's user database
// over varlink, and getent(1) run with an empty environment (as root when
// chos is privileged, so that the caller can neither trace nor signal it).
// This is the chain snapd (osutil/user/getent.go) and the research behind
// chos (shared/research/integration-design.md §3) recommend.
//
// Who the caller is (uid, gid, supplementary groups) always comes from the
// kernel; this package only names them. Every lookup is bounded in time: a
// directory server that never answers gives an error, never a hang.
package identity

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// User is a passwd entry.
type User struct {
	Name  string
	UID   int
	GID   int
	Gecos string
	Home  string
	Shell string
}

// Line is u as a line of /etc/passwd.
func (u User) Line() string {
	return fmt.Sprintf("%s:x:%d:%d:%s:%s:%s", u.Name, u.UID, u.GID, u.Gecos, u.Home, u.Shell)
}

// Group is a group entry.
type Group struct {
	Name    string
	GID     int
	Members []string
}

// Line is g as a line of /etc/group.
func (g Group) Line() string {
	return fmt.Sprintf("%s:x:%d:%s", g.Name, g.GID, strings.Join(g.Members, ","))
}

// Source says which part of the chain answered.
type Source string

const (
	FromFiles  Source = "files"
	FromUserdb Source = "systemd userdb"
	FromGetent Source = "getent (NSS)"
)

// ErrNotFound is returned when no source knows the user or group.
var ErrNotFound = errors.New("not found in the name service")

// TimeoutError is a name service that did not answer in time.
type TimeoutError struct {
	Query string // "passwd 5001"
	After time.Duration
	By    Source
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("the name service did not answer %s within %v (%s); is the directory server (sssd, LDAP) reachable?", e.Query, e.After, e.By)
}

// DefaultTimeout bounds one lookup through the whole chain.
const DefaultTimeout = 3 * time.Second

// Resolver looks users and groups up through the chain. Results are
// remembered for the life of the Resolver (one chos run).
type Resolver struct {
	// Passwd and Group are the host's files (/etc/passwd, /etc/group).
	Passwd, Group string
	// Extra files searched after Passwd and Group, in order: the files of
	// the view a nested chos runs in, which carry the caller's entries.
	ExtraPasswd, ExtraGroup []string
	// NSSwitch is the host's nsswitch.conf: the files are read first only
	// where it lists them first (they nearly always are).
	NSSwitch string
	// Userdb is systemd's multiplexer socket; skipped when missing.
	Userdb string
	// Getent is the getent program; "" disables it.
	Getent string
	// AsRoot runs getent with every id 0 (privileged chos): a helper
	// running with the caller's ids could be traced and its answer forged.
	AsRoot bool
	// Trusted, when set, must accept the userdb socket and getent before
	// they are used (root-owned paths, for privileged chos).
	Trusted func(path string) error
	Timeout time.Duration

	users  map[string]userResult
	groups map[string]groupResult
}

type userResult struct {
	u   User
	src Source
	err error
}

type groupResult struct {
	g   Group
	src Source
	err error
}

// Host is the resolver of the host's name service, with its files below
// root ("/" on the host, the host's root as seen from inside a view).
func Host(root string, asRoot bool, trusted func(string) error) *Resolver {
	p := func(s string) string { return strings.TrimSuffix(root, "/") + s }
	r := &Resolver{
		Passwd: p("/etc/passwd"), Group: p("/etc/group"), NSSwitch: p("/etc/nsswitch.conf"),
		Userdb: "/run/systemd/userdb/io.systemd.Multiplexer",
		Getent: "/usr/bin/getent",
		AsRoot: asRoot, Trusted: trusted, Timeout: DefaultTimeout,
	}
	if root != "/" && root != "" {
		// Inside a view the host's getent would load the tree's libc:
		// the view's own files (with the caller's entries) stand in.
		r.Getent = ""
		r.ExtraPasswd, r.ExtraGroup = []string{"/etc/passwd"}, []string{"/etc/group"}
	}
	return r
}

// UserByID looks a uid up.
func (r *Resolver) UserByID(uid int) (User, Source, error) {
	return r.user(strconv.Itoa(uid), func(u User) bool { return u.UID == uid })
}

// UserByName looks a user name up.
func (r *Resolver) UserByName(name string) (User, Source, error) {
	if !validName(name) {
		return User{}, "", fmt.Errorf("user %q: %w", name, ErrNotFound)
	}
	return r.user(name, func(u User) bool { return u.Name == name })
}

// GroupByID looks a gid up.
func (r *Resolver) GroupByID(gid int) (Group, Source, error) {
	return r.group(strconv.Itoa(gid), func(g Group) bool { return g.GID == gid })
}

// GroupByName looks a group name up.
func (r *Resolver) GroupByName(name string) (Group, Source, error) {
	if !validName(name) {
		return Group{}, "", fmt.Errorf("group %q: %w", name, ErrNotFound)
	}
	return r.group(name, func(g Group) bool { return g.Name == name })
}

// GroupsByID looks several gids up at once (one getent run for all that
// the files and userdb do not know). Unknown gids are left out.
func (r *Resolver) GroupsByID(gids []int) (map[int]Group, error) {
	out := map[int]Group{}
	var rest []int
	for _, gid := range gids {
		key := strconv.Itoa(gid)
		if res, ok := r.groups[key]; ok {
			if res.err == nil {
				out[gid] = res.g
			}
			continue
		}
		if g, ok := r.groupFromLocal(gid); ok {
			out[gid] = g
			continue
		}
		rest = append(rest, gid)
	}
	if len(rest) == 0 {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout())
	defer cancel()
	if r.userdbUsable() {
		var still []int
		for _, gid := range rest {
			g, err := userdbGroup(ctx, r.Userdb, map[string]any{"gid": gid})
			switch {
			case err == nil:
				r.remember(strconv.Itoa(gid), groupResult{g, FromUserdb, nil})
				out[gid] = g
			case errors.Is(err, ErrNotFound) || errors.Is(err, errUnavailable):
				still = append(still, gid)
			default:
				return out, r.timeoutOr(err, "group "+strconv.Itoa(gid), FromUserdb)
			}
		}
		rest = still
	}
	if r.getentUsable() && len(rest) > 0 {
		keys := make([]string, len(rest))
		for i, gid := range rest {
			keys[i] = strconv.Itoa(gid)
		}
		lines, err := getent(ctx, r.Getent, r.AsRoot, "group", keys...)
		if err != nil {
			return out, r.timeoutOr(err, "group "+strings.Join(keys, " "), FromGetent)
		}
		for _, l := range lines {
			if g, ok := parseGroup(l); ok {
				r.remember(strconv.Itoa(g.GID), groupResult{g, FromGetent, nil})
				out[g.GID] = g
			}
		}
	}
	return out, nil
}

func (r *Resolver) timeout() time.Duration {
	if r.Timeout <= 0 {
		return DefaultTimeout
	}
	return r.Timeout
}

func (r *Resolver) user(key string, match func(User) bool) (User, Source, error) {
	if r.users == nil {
		r.users = map[string]userResult{}
	}
	if res, ok := r.users[key]; ok {
		return res.u, res.src, res.err
	}
	u, src, err := r.lookupUser(key, match)
	r.users[key] = userResult{u, src, err}
	return u, src, err
}

func (r *Resolver) lookupUser(key string, match func(User) bool) (User, Source, error) {
	if r.filesFirst("passwd") {
		for _, f := range append([]string{r.Passwd}, r.ExtraPasswd...) {
			if u, ok := scanPasswd(f, match); ok {
				return u, FromFiles, nil
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout())
	defer cancel()
	query := map[string]any{"userName": key}
	if _, err := strconv.Atoi(key); err == nil {
		n, _ := strconv.Atoi(key)
		query = map[string]any{"uid": n}
	}
	if r.userdbUsable() {
		u, err := userdbUser(ctx, r.Userdb, query)
		switch {
		case err == nil:
			return u, FromUserdb, nil
		case !errors.Is(err, ErrNotFound) && !errors.Is(err, errUnavailable):
			return User{}, FromUserdb, r.timeoutOr(err, "passwd "+key, FromUserdb)
		}
	}
	if r.getentUsable() {
		lines, err := getent(ctx, r.Getent, r.AsRoot, "passwd", key)
		if err != nil {
			return User{}, FromGetent, r.timeoutOr(err, "passwd "+key, FromGetent)
		}
		for _, l := range lines {
			if u, ok := parsePasswd(l); ok && match(u) {
				return u, FromGetent, nil
			}
		}
	}
	if !r.filesFirst("passwd") {
		for _, f := range append([]string{r.Passwd}, r.ExtraPasswd...) {
			if u, ok := scanPasswd(f, match); ok {
				return u, FromFiles, nil
			}
		}
	}
	return User{}, "", fmt.Errorf("user %s: %w", key, ErrNotFound)
}

func (r *Resolver) remember(key string, res groupResult) {
	if r.groups == nil {
		r.groups = map[string]groupResult{}
	}
	r.groups[key] = res
	r.groups[res.g.Name] = res
}

func (r *Resolver) group(key string, match func(Group) bool) (Group, Source, error) {
	if r.groups == nil {
		r.groups = map[string]groupResult{}
	}
	if res, ok := r.groups[key]; ok {
		return res.g, res.src, res.err
	}
	g, src, err := r.lookupGroup(key, match)
	r.groups[key] = groupResult{g, src, err}
	return g, src, err
}

// groupFromLocal finds a gid in the files, when they come first.
func (r *Resolver) groupFromLocal(gid int) (Group, bool) {
	if !r.filesFirst("group") {
		return Group{}, false
	}
	for _, f := range append([]string{r.Group}, r.ExtraGroup...) {
		if g, ok := scanGroup(f, func(g Group) bool { return g.GID == gid }); ok {
			r.remember(strconv.Itoa(gid), groupResult{g, FromFiles, nil})
			return g, true
		}
	}
	return Group{}, false
}

func (r *Resolver) lookupGroup(key string, match func(Group) bool) (Group, Source, error) {
	files := append([]string{r.Group}, r.ExtraGroup...)
	if r.filesFirst("group") {
		for _, f := range files {
			if g, ok := scanGroup(f, match); ok {
				return g, FromFiles, nil
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout())
	defer cancel()
	query := map[string]any{"groupName": key}
	if n, err := strconv.Atoi(key); err == nil {
		query = map[string]any{"gid": n}
	}
	if r.userdbUsable() {
		g, err := userdbGroup(ctx, r.Userdb, query)
		switch {
		case err == nil:
			return g, FromUserdb, nil
		case !errors.Is(err, ErrNotFound) && !errors.Is(err, errUnavailable):
			return Group{}, FromUserdb, r.timeoutOr(err, "group "+key, FromUserdb)
		}
	}
	if r.getentUsable() {
		lines, err := getent(ctx, r.Getent, r.AsRoot, "group", key)
		if err != nil {
			return Group{}, FromGetent, r.timeoutOr(err, "group "+key, FromGetent)
		}
		for _, l := range lines {
			if g, ok := parseGroup(l); ok && match(g) {
				return g, FromGetent, nil
			}
		}
	}
	if !r.filesFirst("group") {
		for _, f := range files {
			if g, ok := scanGroup(f, match); ok {
				return g, FromFiles, nil
			}
		}
	}
	return Group{}, "", fmt.Errorf("group %s: %w", key, ErrNotFound)
}

func (r *Resolver) timeoutOr(err error, query string, by Source) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &TimeoutError{Query: query, After: r.timeout(), By: by}
	}
	return fmt.Errorf("looking up %s through %s: %w", query, by, err)
}

func (r *Resolver) userdbUsable() bool {
	if r.Userdb == "" {
		return false
	}
	if r.Trusted != nil {
		return r.Trusted(r.Userdb) == nil
	}
	return true
}

func (r *Resolver) getentUsable() bool {
	if r.Getent == "" {
		return false
	}
	if r.Trusted != nil {
		return r.Trusted(r.Getent) == nil
	}
	return true
}

// validName refuses what no user or group is called and what getent would
// take for an option.
func validName(s string) bool {
	return s != "" && !strings.HasPrefix(s, "-") && !strings.ContainsAny(s, ":\n\x00 \t")
}
