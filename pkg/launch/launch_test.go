package launch

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/plan"
	"github.com/chos-hpc/chos/pkg/spec"
)

// Every decision of the policy, table by table, each with the cases that
// show it can go the other way.

// prepare is Prepare for req by inv, with its error.
func prepare(t *testing.T, inv Invocation, req Request) (*Launch, error) {
	t.Helper()
	l, err := inv.Prepare(req)
	if err == nil && (l.Plan == nil || l.Plan.Tree == "") {
		t.Fatalf("Prepare(%+v) planned nothing", req)
	}
	return l, err
}

func TestSelectionOrderIsArgumentEnvDotfileDefaultHost(t *testing.T) {
	const noDefault = "%SHELLS\nel7:/os/el7\ndeb:/os/deb\nlocal:/\n"
	for _, c := range []struct {
		name     string
		conf     string
		tree     string // the argument
		env      string // $CHOS
		dotfile  string // ~/.chos ("" none)
		want     string
		selected string // as the audit line says it
		err      string
	}{
		{"argument first", site, "deb", "suid", "el7\n", "deb", "argument", ""},
		{"$CHOS over ~/.chos", site, "", "deb", "suid\n", "deb", "env", ""},
		{"~/.chos over the default", site, "", "", "deb\n", "deb", "dotfile", ""},
		{"~/.chos: its first line, trimmed", site, "", "", "  deb \nsuid\n", "deb", "dotfile", ""},
		{"the tree aliased default", site, "", "", "", "el7", "default", ""},
		{"the host without a default", noDefault, "", "", "", "local", "none", ""},
		{"an alias is its tree", site, "centos7", "", "", "el7", "argument", ""},
		{"a path's second name is its tree", noDefault + "rhel7:/os/el7\n", "rhel7", "", "", "el7", "argument", ""},
		{"root is the host", site, "root", "", "", "local", "argument", ""},
		{"an unknown name is refused, never skipped", site, "", "nosuch", "deb\n", "", "env", `unknown OS tree "nosuch" (from $CHOS)`},
		{"an unknown ~/.chos is refused", site, "", "", "nosuch\n", "", "dotfile", `unknown OS tree "nosuch" (from ~/.chos)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t, c.conf)
			if c.dotfile != "" {
				h.dotfile("alice", c.dotfile)
			}
			var env []string
			if c.env != "" {
				env = append(env, "CHOS="+c.env)
			}
			l, err := prepare(t, h.inv(uidAlice, setuid, env...), Request{Tree: c.tree, Argv: []string{"true"}})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want an error %q", err, c.err)
				}
			} else if err != nil || l.Plan.Tree != c.want {
				t.Fatalf("selected %+v (%v), want %s", l.Plan, err, c.want)
			}
			if l.Record.Event.Selected != c.selected {
				t.Errorf("the audit line says selected=%s, want %s", l.Record.Event.Selected, c.selected)
			}
		})
	}
}

// ~/.chos is read with the caller's own rights, and only when nothing
// before it selects.
func TestDotfileIsReadAsTheCallerOnlyWhenNeeded(t *testing.T) {
	for _, c := range []struct {
		name string
		req  Request
		env  string
		read bool
	}{
		{"nothing named", Request{Argv: []string{"true"}}, "", true},
		{"a tree named", Request{Tree: "deb", Argv: []string{"true"}}, "", false},
		{"$CHOS set", Request{Argv: []string{"true"}}, "CHOS=deb", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t, site)
			h.dotfile("alice", "suid\n")
			// (the other trees' read check is made as alice too: only
			// ~/.chos decides here)
			l, err := prepare(t, h.inv(uidAlice, setuid, c.env), c.req)
			if err != nil {
				t.Fatal(err)
			}
			if read := l.Plan.Tree == "suid"; read != c.read {
				t.Errorf("~/.chos read: %v, want %v (tree %s)", read, c.read, l.Plan.Tree)
			}
			if !slices.Contains(h.m.asUser, uidAlice) || slices.ContainsFunc(h.m.asUser, func(u int) bool { return u != uidAlice }) {
				t.Errorf("what is alice's was read as %v, want as alice", h.m.asUser)
			}
		})
	}
}

// A link to chos named after a tree (vsys form) runs in that tree; the
// name is an argument like any other.
func TestLinkNamesSelectTheirTree(t *testing.T) {
	h := newHost(t, site)
	l, err := prepare(t, h.inv(uidAlice, setuid, "CHOS=deb"), Request{Tree: "centos7", Argv: []string{"ls"}, Via: "vsys"})
	if err != nil || l.Plan.Tree != "el7" || l.Record.Event.Via != "vsys" {
		t.Fatalf("rh73-style link: %+v, %v", l.Record.Event, err)
	}
	if _, err := prepare(t, h.inv(uidAlice, setuid), Request{Tree: "chosen", Argv: []string{"ls"}, Via: "vsys"}); err == nil {
		t.Error("a link named after no tree ran somewhere")
	}
}

func TestUsersAndGroupsDecideWhoMayUseATree(t *testing.T) {
	for _, c := range []struct {
		name string
		uid  int
		conf string // appended to the site's
		ok   bool
		err  string // a refusal that is not "not for you"
	}{
		{"a user listed by name", uidAlice, "", true, ""},
		{"a user listed by uid", uidCarol, "", true, ""},
		{"a user in a group listed by gid", 4242, "", true, ""},
		{"a directory user in a group listed by name", uidDave, "", true, ""},
		{"a user neither listed nor in a group", uidGina, "", false, ""},
		{"bob, in wheel, once wheel is no longer listed", uidBob, "groups = staffers\n", false, ""},
		{"root, always", 0, "", true, ""},
		{"a group the name service cannot look up", uidGina, "groups = broken\n", false, "checking who may use tree only"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conf := site
			if c.conf != "" {
				conf = strings.Replace(site, "groups = wheel 4242\n", c.conf, 1)
			}
			h := newHost(t, conf)
			h.names.fails = "broken"
			h.addUser(identityUser("erin", 4242, 4242, h.home("dave")))
			l, err := prepare(t, h.inv(c.uid, setuid), Request{Tree: "only", Argv: []string{"id"}})
			switch {
			case c.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case c.ok:
				if l.Plan.Tree != "only" {
					t.Fatalf("tree %s", l.Plan.Tree)
				}
			case c.err != "":
				if err == nil || !strings.Contains(err.Error(), c.err) || errorAs[*ForbiddenError](err) {
					t.Fatalf("got %v, want %q", err, c.err)
				}
			default:
				if !errorAs[*ForbiddenError](err) || !strings.Contains(err.Error(), "restricted to users alice, 1003 and groups") {
					t.Fatalf("got %v, want not for you", err)
				}
				if l.Record.Event.Refused == "" || l.Record.Event.Tree != "only" {
					t.Errorf("the refusal's audit line: %+v", l.Record.Event)
				}
			}
			// The same answer for list, check and select.
			cat, _, _ := h.inv(c.uid, setuid).Catalog()
			only, _ := cat.Lookup("only")
			if err := h.inv(c.uid, setuid).MayUse(only); (err == nil) != c.ok {
				t.Errorf("MayUse = %v, the launch decided %v", err, c.ok)
			}
		})
	}
}

// The root helper decides for the user it is given: the uid, name and
// groups all from them, never its own.
func TestHelperDecidesAccessForTheUserNamed(t *testing.T) {
	h := newHost(t, site)
	root := h.inv(0, rootself)
	for _, c := range []struct {
		user, uid string
		ok        bool
	}{
		{"alice", "1000", true},
		{"bob", "1001", false},
		{"carol", "1003", true},
	} {
		_, _, err := root.planHelper(HelperRequest{Service: "slurm", Tree: "only", User: c.user, UID: c.uid, GID: "100"})
		if (err == nil) != c.ok {
			t.Errorf("%s: %v, want allowed %v", c.user, err, c.ok)
		}
	}
}

func TestTreesTheCallerCannotReadAreRefused(t *testing.T) {
	for _, c := range []struct {
		name       string
		uid        int
		p          Privilege
		unreadable string
		refused    bool
		asCaller   bool // the check made with the caller's ids
	}{
		{"readable", uidAlice, setuid, "", false, true},
		{"unreadable, setuid", uidAlice, setuid, "/os/el7", true, true},
		{"an unreadable directory above it", uidAlice, setuid, "/os", true, true},
		{"unreadable, user namespaces", uidAlice, userns, "/os/el7", true, false},
		{"root reads everything", 0, rootself, "/os/el7", false, false},
		{"another tree unreadable", uidAlice, setuid, "/os/deb", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t, site)
			if c.unreadable != "" {
				h.m.unreadable = []string{filepath.Join(h.root, c.unreadable)}
			}
			_, err := prepare(t, h.inv(c.uid, c.p), Request{Tree: "el7", Argv: []string{"true"}})
			if refused := errorAs[*UnreadableError](err); refused != c.refused || (!c.refused && err != nil) {
				t.Fatalf("refused %v (%v), want %v", refused, err, c.refused)
			}
			if asCaller := slices.Contains(h.m.asUser, c.uid); asCaller != c.asCaller {
				t.Errorf("checked with the caller's ids: %v, want %v", asCaller, c.asCaller)
			}
		})
	}
}

// A tree someone other than root could have changed is refused by every
// privileged launch, one that would enter a cached view included (its key
// does not see owners and modes); in user-namespace mode the caller's own
// rights are all that is used, and nothing is asked.
func TestTreesOnlyRootVouchesForAreRefusedEvenWhenCached(t *testing.T) {
	for _, c := range []struct {
		name      string
		uid       int
		p         Privilege
		unvouched string
		fresh     bool
		refused   bool
	}{
		{"root's tree", uidAlice, setuid, "", false, false},
		{"a group-writable tree, cached", uidAlice, setuid, "/os/el7", false, true},
		{"a group-writable directory above it, cached", uidAlice, setuid, "/os", false, true},
		{"a group-writable tree, fresh", uidAlice, setuid, "/os/el7", true, true},
		{"root's own launch", 0, rootself, "/os/el7", false, true},
		{"user namespaces", uidAlice, userns, "/os/el7", false, false},
		{"another tree group-writable", uidAlice, setuid, "/os/deb", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t, site)
			if c.unvouched != "" {
				h.m.unvouched = []string{filepath.Join(h.root, c.unvouched)}
			}
			_, err := prepare(t, h.inv(c.uid, c.p), Request{Tree: "el7", Argv: []string{"true"}, Fresh: c.fresh})
			refused := err != nil && strings.Contains(err.Error(), "the setuid chos refuses it")
			if refused != c.refused || (!c.refused && err != nil) {
				t.Fatalf("refused %v (%v), want %v", refused, err, c.refused)
			}
		})
	}
}

func TestSetuidAllowKeepsSetuidProgramsWorking(t *testing.T) {
	h := newHost(t, site)
	for _, c := range []struct {
		tree   string
		allow  bool
		nosuid bool
	}{
		{"suid", true, false},
		{"el7", false, true},
	} {
		l, err := prepare(t, h.inv(uidAlice, setuid), Request{Tree: c.tree, Argv: []string{"sudo"}})
		if err != nil {
			t.Fatal(err)
		}
		cr := l.Plan.Creds
		if cr.NoNewPrivs == c.allow || cr.KeepBounding != c.allow || cr.KeepCaps {
			t.Errorf("%s: credentials %+v", c.tree, cr)
		}
		for _, m := range l.Plan.Mounts {
			if m.Origin == spec.OriginTree && m.Op == spec.OpBind && m.NoSuid != c.nosuid {
				t.Errorf("%s: %s nosuid=%v", c.tree, m.Target, m.NoSuid)
			}
		}
		// A job in the tree: no_new_privs unless setuid = allow.
		hp, _, err := h.inv(0, rootself).planHelper(HelperRequest{Service: "slurm", Tree: c.tree, User: "alice", UID: "1000", GID: "100"})
		if err != nil || hp.reply.NNP == nil || *hp.reply.NNP == c.allow {
			t.Errorf("%s: job reply %+v, %v", c.tree, hp.reply, err)
		}
	}
}

func TestPersonalTreesOnlyInUserNamespaces(t *testing.T) {
	for _, c := range []struct {
		name string
		p    Privilege
		err  string
	}{
		{"user namespaces", userns, ""},
		{"setuid", setuid, `tree "mine" is a personal tree (`},
		{"setuid, root given up", Privilege{Setuid: true}, `tree "mine" is a personal tree (`},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t, site)
			h.write("/home/alice/.config/chos/chos.conf", "%SHELLS\nmine:/os/deb\n")
			inv := h.inv(uidAlice, c.p)
			_, err := prepare(t, inv, Request{Tree: "mine", Argv: []string{"true"}})
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("got %v, want %q", err, c.err)
			}
			// The system configuration is root's to vouch for whenever
			// chos was installed setuid.
			if want := c.p.Setuid; h.m.requireRoot[0] != want {
				t.Errorf("configuration required to be root's: %v, want %v", h.m.requireRoot[0], want)
			}
		})
	}
}

// Only the names the view's own files lack get a layer of the user's own:
// a directory user's entry, and groups the files do not name.
func TestIdentityLayerAddsOnlyWhatTheViewLacks(t *testing.T) {
	for _, c := range []struct {
		name     string
		uid      int
		identity string // the tree's identity = line, "" for the default
		passwd   []string
		group    []string
	}{
		{"a user of the host's files", uidAlice, "", nil, nil},
		{"a directory user", uidDave, "", []string{"dave:x:5000:4000::"}, []string{"wheel:x:4000:"}},
		{"a host user in a directory group", uidBob, "", nil, []string{"wheel:x:4000:bob"}},
		{"the tree's own passwd, which lacks the user", uidAlice, "/etc/hosts", []string{"alice:x:1000:100::"}, []string{"staff:x:100:"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			conf := site
			if c.identity != "" {
				conf += "%TREE el7\nidentity = " + c.identity + "\n"
			}
			h := newHost(t, conf)
			l, err := prepare(t, h.inv(c.uid, setuid), Request{Tree: "el7", Argv: []string{"id"}})
			if err != nil {
				t.Fatal(err)
			}
			id := l.Plan.Layer
			if c.passwd == nil && c.group == nil {
				if id != nil {
					t.Fatalf("a layer for a user the view names: %+v", id)
				}
				return
			}
			if id == nil || id.UID != c.uid || id.Key == "" {
				t.Fatalf("layer %+v", id)
			}
			if !prefixes(id.Passwd, c.passwd) || !prefixes(id.Group, c.group) {
				t.Errorf("layer passwd %q group %q, want %q %q", id.Passwd, id.Group, c.passwd, c.group)
			}
		})
	}
}

// prefixes says whether each line starts with the one wanted.
func prefixes(lines, want []string) bool {
	if len(lines) != len(want) {
		return false
	}
	for i := range lines {
		if !strings.HasPrefix(lines[i], want[i]) {
			return false
		}
	}
	return true
}

func TestCacheNameIsTheViewsAndOnlyWhereRootBuildsIt(t *testing.T) {
	for _, c := range []struct {
		name   string
		p      Privilege
		tree   string
		prefix string
		fresh  bool
		cached bool
	}{
		{"setuid", setuid, "el7", "", false, true},
		{"root", rootself, "el7", "", false, true},
		{"user namespaces (a kept view: see TestKeptViewIsTheUsersOwn)", userns, "el7", "", false, true},
		{"user namespaces --fresh", userns, "el7", "", true, false},
		{"user namespaces, the host", userns, "local", "", false, false},
		{"user namespaces, cache = no", userns, "nocache", "", false, false},
		{"user namespaces, from inside a view", userns, "el7", plan.HostDir, false, false},
		{"the host", setuid, "local", "", false, false},
		{"cache = no", setuid, "nocache", "", false, false},
		{"--fresh", setuid, "el7", "", true, false},
		{"from inside a view", setuid, "el7", plan.HostDir, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t, site)
			inv := h.inv(uidAlice, c.p)
			if c.prefix != "" {
				inv.HostPrefix = c.prefix
				must(t, os.MkdirAll(filepath.Join(h.root, c.prefix), 0o755))
				must(t, os.Symlink(filepath.Join(h.root, "os"), filepath.Join(h.root, c.prefix, "os")))
				must(t, os.Symlink(filepath.Join(h.root, "etc"), filepath.Join(h.root, c.prefix, "etc")))
			}
			l, err := prepare(t, inv, Request{Tree: c.tree, Argv: []string{"true"}, Fresh: c.fresh})
			if err != nil {
				t.Fatal(err)
			}
			if cached := l.Plan.Cache != nil; cached != c.cached {
				t.Fatalf("cached %v, want %v", cached, c.cached)
			}
			dir := h.m.cacheDir
			if c.p.UserNS {
				dir = "" // (kept by a process of the caller's)
			}
			if c.cached && (l.Plan.Cache.Tree != c.tree || l.Plan.Cache.Dir != dir || len(l.Plan.Cache.Key) != 16) {
				t.Errorf("cache %+v", l.Plan.Cache)
			}
		})
	}
}

// The key depends on the view alone: the same for every user, another one
// when what the view shows by reference is replaced.
func TestCacheKeyStampsWhatTheViewShows(t *testing.T) {
	h := newHost(t, site)
	key := func(uid int) string {
		t.Helper()
		l, err := prepare(t, h.inv(uid, setuid), Request{Tree: "el7", Argv: []string{"true"}})
		if err != nil {
			t.Fatal(err)
		}
		return l.Plan.Cache.Key
	}
	alice := key(uidAlice)
	if key(uidBob) != alice || key(uidDave) != alice || key(uidAlice) != alice {
		t.Fatal("the key depends on who launches")
	}
	for _, c := range []struct {
		name    string
		replace string // a file or directory replaced by another of the same name
	}{
		{"a top-level directory of the tree", "/os/el7/usr"},
		{"an identity file", "/etc/passwd"},
		{"chos itself", "/usr/bin/chos"},
	} {
		p := filepath.Join(h.root, c.replace)
		fi, err := os.Stat(p)
		must(t, err)
		must(t, os.Rename(p, p+".old"))
		if fi.IsDir() {
			must(t, os.Mkdir(p, 0o755))
		} else {
			data, _ := os.ReadFile(p + ".old")
			must(t, os.WriteFile(p, data, 0o644))
		}
		if now := key(uidAlice); now == alice {
			t.Errorf("%s replaced: the key stays %s", c.name, now)
		} else {
			alice = now
		}
	}
	// Control: a file the view does not show by reference.
	h.write("/os/el7/usr/new", "")
	if key(uidAlice) != alice {
		t.Error("a file inside a bound directory changed the key")
	}
}

// The key of a view kept for a user's user-namespace launches is their own:
// the same for the same view, user and namespaces, another one when any
// changes, as it does when what the view shows by reference is replaced.
func TestKeptViewIsTheUsersOwn(t *testing.T) {
	h := newHost(t, site)
	key := func(inv Invocation) string {
		t.Helper()
		l, err := prepare(t, inv, Request{Tree: "el7", Argv: []string{"true"}})
		if err != nil {
			t.Fatal(err)
		}
		return l.Plan.Cache.Key
	}
	alice := key(h.inv(uidAlice, userns))
	if key(h.inv(uidAlice, userns)) != alice {
		t.Fatal("control: the same launch gave another key")
	}
	otherGID := h.inv(uidAlice, userns)
	otherGID.Caller.GID = gidWheel
	for _, c := range []struct {
		name  string
		other func() string
	}{
		{"another user", func() string { return key(h.inv(uidBob, userns)) }},
		{"another gid", func() string { return key(otherGID) }},
		{"a directory user (an identity layer)", func() string { return key(h.inv(uidDave, userns)) }},
		{"another mount namespace", func() string {
			h.m.mntNS = "4026532999"
			defer func() { h.m.mntNS = "" }()
			return key(h.inv(uidAlice, userns))
		}},
		{"the setuid view's", func() string { return key(h.inv(uidAlice, setuid)) }},
		{"a top-level directory replaced", func() string {
			p := filepath.Join(h.root, "/os/el7/usr")
			must(t, os.Rename(p, p+".old"))
			must(t, os.Mkdir(p, 0o755))
			defer func() { os.Remove(p); must(t, os.Rename(p+".old", p)) }()
			return key(h.inv(uidAlice, userns))
		}},
	} {
		if other := c.other(); other == alice {
			t.Errorf("%s: the same key %s", c.name, other)
		}
	}
	if key(h.inv(uidAlice, userns)) != alice {
		t.Error("control: the key changed after everything was put back")
	}
}

// What each entry path believes of what it is given.
func TestEachEntryPathBelievesOnlyItsOwn(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(h *host)
		run   func(h *host) (tree string, err error)
		want  string // the tree, or the error's text
	}{
		{"command line: the argument", nil, func(h *host) (string, error) {
			l, err := h.inv(uidAlice, setuid).Prepare(Request{Tree: "deb", Argv: []string{"true"}})
			return planned(l), err
		}, "deb"},
		{"command line: no argument, $CHOS", nil, func(h *host) (string, error) {
			l, err := h.inv(uidAlice, setuid, "CHOS=deb").Prepare(Request{Argv: []string{"true"}})
			return planned(l), err
		}, "deb"},
		{"chos login: $CHOS, and ~/.chos", func(h *host) { h.dotfile("alice", "suid\n") }, func(h *host) (string, error) {
			l, err := h.inv(uidAlice, setuid, "SSH_ORIGINAL_COMMAND=ls -l").PrepareLogin()
			if err == nil && !slices.Equal(l.Plan.Argv, []string{"bash", "-c", "ls -l"}) {
				return "argv " + strings.Join(l.Plan.Argv, " "), nil
			}
			return planned(l), err
		}, "suid"},
		{"chos login: the forced command is not the command's", nil, func(h *host) (string, error) {
			l, err := h.inv(uidAlice, setuid, "SSH_ORIGINAL_COMMAND=id").PrepareLogin()
			if err == nil && slices.ContainsFunc(l.Plan.Env, func(kv string) bool { return strings.HasPrefix(kv, "SSH_ORIGINAL_COMMAND=") }) {
				return "SSH_ORIGINAL_COMMAND kept", nil
			}
			return planned(l), err
		}, "el7"},
		{"PAM: the ids root passes, ~/.chos read as that user", func(h *host) { h.dotfile("bob", "deb\n") }, func(h *host) (string, error) {
			hp, _, err := h.inv(0, rootself).planHelper(HelperRequest{Service: "pam", User: "bob", UID: "1001", GID: "100", Tree: "suid"})
			if err == nil && !slices.Equal(h.m.asUser, []int{uidBob, uidBob, uidBob}) {
				return "", errors.New("bob's files not read as bob")
			}
			return hp.reply.Tree, err
		}, "deb"},
		{"PAM: $CHOS of the session", nil, func(h *host) (string, error) {
			hp, _, err := h.inv(0, rootself).planHelper(HelperRequest{Service: "pam", User: "bob", UID: "1001", GID: "100", EnvChos: "deb"})
			return hp.reply.Tree, err
		}, "deb"},
		{"PAM: root is never moved", nil, func(h *host) (string, error) {
			hp, rec, err := h.inv(0, rootself).planHelper(HelperRequest{Service: "pam", User: "root", UID: "0", GID: "0", EnvChos: "deb"})
			if hp.view != nil || rec != nil {
				return "moved", err
			}
			return hp.reply.Tree, err
		}, "local"},
		{"PAM: members of the exempt group are never moved", nil, func(h *host) (string, error) {
			hp, _, err := h.inv(0, rootself).planHelper(HelperRequest{Service: "pam", User: "bob", UID: "1001", GID: "100", Groups: "4000", EnvChos: "deb", ExemptGroup: "wheel"})
			return hp.reply.Tree, err
		}, "local"},
		{"PAM: a login shell the tree lacks", nil, func(h *host) (string, error) {
			hp, _, err := h.inv(0, rootself).planHelper(HelperRequest{Service: "pam", User: "carol", UID: "1003", GID: "100", EnvChos: "deb"})
			return hp.reply.Tree, err
		}, "your login shell /bin/zsh is not in tree deb"},
		{"PAM: never run by a user", nil, func(h *host) (string, error) {
			hp, _, err := h.inv(uidAlice, setuid).planHelper(HelperRequest{Service: "pam", User: "root", UID: "0", GID: "0"})
			return hp.reply.Tree, err
		}, "chos prepare is run as root by pam_chos and chos_spank, not by users"},
		{"Slurm: the option over $CHOS, never ~/.chos", func(h *host) { h.dotfile("bob", "deb\n") }, func(h *host) (string, error) {
			hp, _, err := h.inv(0, rootself).planHelper(HelperRequest{Service: "slurm", User: "bob", UID: "1001", GID: "100", Tree: "suid", EnvChos: "el7"})
			return hp.reply.Tree, err
		}, "suid"},
		{"Slurm: the plugin's default, never the site's", func(h *host) { h.dotfile("bob", "deb\n") }, func(h *host) (string, error) {
			hp, _, err := h.inv(0, rootself).planHelper(HelperRequest{Service: "slurm", User: "bob", UID: "1001", GID: "100", Default: "deb"})
			if err == nil && (hp.reply.Argv0 != "" || hp.cwd != "") {
				return "argv0 or cwd without a script or a directory", nil
			}
			return hp.reply.Tree, err
		}, "deb"},
		{"Slurm: nothing selected is the host", func(h *host) { h.dotfile("bob", "deb\n") }, func(h *host) (string, error) {
			hp, _, err := h.inv(0, rootself).planHelper(HelperRequest{Service: "slurm", User: "bob", UID: "1001", GID: "100"})
			return hp.reply.Tree, err
		}, "local"},
		{"Slurm: the batch script, its directory and PATH", nil, func(h *host) (string, error) {
			hp, _, err := h.inv(0, rootself).planHelper(HelperRequest{Service: "slurm", User: "bob", UID: "1001", GID: "100", Tree: "deb",
				BatchScript: "/var/spool/slurmd/job1/slurm_script", Cwd: "/home/bob/run", EnvPath: "/usr/bin", Given: map[string]bool{"env-path": true}})
			if err == nil && (hp.reply.Argv0 != plan.HostDir+"/var/spool/slurmd/job1/slurm_script" || hp.cwd != "/home/bob/run" ||
				!slices.Equal(hp.reply.Setenv, []string{"CHOS=deb", "PATH=/usr/bin:" + plan.SelfDir})) {
				return "", errors.New("reply " + strings.Join(append(hp.reply.Setenv, hp.reply.Argv0, hp.cwd), " "))
			}
			return hp.reply.Tree, err
		}, "deb"},
		{"Slurm: a uid that is not a number", nil, func(h *host) (string, error) {
			hp, _, err := h.inv(0, rootself).planHelper(HelperRequest{Service: "slurm", User: "bob", UID: "-1", GID: "100", Tree: "deb"})
			return hp.reply.Tree, err
		}, `prepare: --uid "-1" is not a number`},
		{"the submit-time check: the caller's own identity", func(h *host) { h.dotfile("bob", "deb\n") }, func(h *host) (string, error) {
			rep, _, err := h.inv(uidGina, setuid).PrepareForHelper(HelperRequest{Service: "slurm", Check: true, Tree: "only"})
			if !slices.Equal(h.m.dropped, []int{uidGina}) {
				return "root kept", err
			}
			return rep.Tree, err
		}, "you may not use tree only"},
		{"the submit-time check takes no identity", nil, func(h *host) (string, error) {
			rep, _, err := h.inv(uidAlice, setuid).PrepareForHelper(HelperRequest{Service: "slurm", Check: true, Tree: "only",
				UID: "1000", Given: map[string]bool{"uid": true}})
			return rep.Tree, err
		}, "prepare: --check takes no --uid: it checks for whoever runs it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t, site)
			if c.setup != nil {
				c.setup(h)
			}
			tree, err := c.run(h)
			got := tree
			if err != nil {
				got = err.Error()
			}
			if !strings.Contains(got, c.want) || (err == nil && got != c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func planned(l *Launch) string {
	if l == nil || l.Plan == nil {
		return ""
	}
	return l.Plan.Tree
}

func TestOnlyRootChoosesTheConfiguration(t *testing.T) {
	h := newHost(t, site)
	h.write("/other/chos", "%SHELLS\nother:/os/deb\nlocal:/\n")
	for _, c := range []struct {
		uid int
		p   Privilege
		ok  bool
	}{{0, rootself, true}, {uidAlice, setuid, false}, {uidAlice, userns, false}} {
		inv := h.inv(c.uid, c.p)
		inv.Config = filepath.Join(h.root, "other/chos")
		l, err := inv.Prepare(Request{Tree: "other", Argv: []string{"true"}})
		if (err == nil) != c.ok {
			t.Errorf("uid %d: %v, want allowed %v", c.uid, err, c.ok)
		}
		if !c.ok && !strings.Contains(l.Record.Event.Refused, "honoured only for root") {
			t.Errorf("uid %d: refusal %q", c.uid, l.Record.Event.Refused)
		}
	}
}

func TestPrivilegeOnlyEverGoesDown(t *testing.T) {
	for _, c := range []struct {
		name    string
		p       Privilege
		mode    string
		want    Privilege
		dropped bool
		err     string
	}{
		{"auto keeps setuid", setuid, "auto", setuid, false, ""},
		{"userns from setuid gives root up", setuid, "userns", Privilege{Setuid: true, UserNS: true}, true, ""},
		{"userns for root", rootself, "userns", Privilege{UserNS: true}, false, ""},
		{"setuid where there is none", userns, "setuid", userns, false, "not running setuid root"},
		{"an unknown mode", setuid, "fast", setuid, false, `unknown mode "fast"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t, site)
			inv, err := h.inv(uidAlice, c.p).WithMode(c.mode)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || inv.Privilege != c.want || (len(h.m.dropped) > 0) != c.dropped {
				t.Errorf("privilege %+v (%v), dropped %v; want %+v, %v", inv.Privilege, err, h.m.dropped, c.want, c.dropped)
			}
			if inv.Privilege.Root && inv.Privilege.Mode() != 1 || !inv.Privilege.Root && inv.Privilege.Mode() != 0 {
				t.Errorf("mode %v for %+v", inv.Privilege.Mode(), inv.Privilege)
			}
			// The name service runs programs as root only while root is held.
			if n := len(h.m.namesAsRoot); c.want != c.p && (n == 0 || h.m.namesAsRoot[n-1]) {
				t.Errorf("the name service after giving root up is root's: %v", h.m.namesAsRoot)
			}
		})
	}
}

// The audit record of a launch says how it was asked for and how the tree
// is entered.
func TestAuditRecordOfALaunch(t *testing.T) {
	h := newHost(t, site)
	l, err := prepare(t, h.inv(uidAlice, setuid, "CHOS=deb"), Request{Argv: []string{"make", "all"}, Via: "legacy"})
	if err != nil {
		t.Fatal(err)
	}
	l.Record.launched(l.Plan, nsroot.UsedBuilt)
	e := l.Record.Event
	if e.Via != "legacy" || e.User != "alice" || e.UID != uidAlice || e.Selected != "env" || e.Mode != "setuid" ||
		e.Tree != "deb" || e.View != "built" || e.Argv0 != "make" || e.Argc != 2 || e.Refused != "" {
		t.Errorf("record %+v", e)
	}
	// view= is how the launch came into its view, which a launch into a
	// cached view knows only once it has (Entered logs it then).
	inv := h.inv(uidAlice, setuid)
	for _, c := range []struct {
		use  nsroot.ViewUse
		want string
	}{
		{nsroot.UsedBuilt, "built"}, {nsroot.UsedCached, "cached"},
		{nsroot.UsedFresh, "fresh"}, // (the cache could not be used)
		{"", ""},                    // (failed before entering)
	} {
		l.Record.launched(l.Plan, c.use)
		if l.Plan.Cache == nil || !inv.logsOnEntry(l.Plan) || l.Record.Event.View != c.want {
			t.Errorf("use %q: view %q, logged on entry %v; want %q, true", c.use, l.Record.Event.View, inv.logsOnEntry(l.Plan), c.want)
		}
	}
	l, _ = prepare(t, h.inv(uidAlice, userns), Request{Tree: "deb", Login: true})
	l.Record.launched(l.Plan, "")
	if e := l.Record.Event; e.Via != "shell" || e.Mode != "userns" || e.View != "kept" || h.inv(uidAlice, userns).logsOnEntry(l.Plan) {
		t.Errorf("record %+v", e)
	}
	l, _ = prepare(t, h.inv(uidAlice, userns), Request{Tree: "deb", Login: true, Fresh: true})
	l.Record.launched(l.Plan, "")
	if e := l.Record.Event; e.Mode != "userns" || e.View != "fresh" {
		t.Errorf("record %+v", e)
	}
	if l.Record.Config.Socket == "" {
		t.Error("no audit socket")
	}
	_ = ostree.Local
}

// Refusals are logged where the configuration says, a user running the
// root helper's too (refused before anything is read for it).
func TestRefusalsAreRecordedWhereTheConfigurationSays(t *testing.T) {
	h := newHost(t, site+"%AUDIT\nsocket = /run/chos-audit.sock\n")
	for _, c := range []struct {
		name   string
		run    func() (*Record, error)
		socket string
	}{
		{"a launch", func() (*Record, error) {
			l, err := h.inv(uidGina, setuid).Prepare(Request{Tree: "only", Argv: []string{"true"}})
			return &l.Record, err
		}, "/run/chos-audit.sock"},
		{"the submit-time check", func() (*Record, error) {
			_, rec, err := h.inv(uidGina, setuid).PrepareForHelper(HelperRequest{Service: "slurm", Check: true, Tree: "only"})
			return rec, err
		}, "/run/chos-audit.sock"},
		{"a job", func() (*Record, error) {
			_, rec, err := h.inv(0, rootself).PrepareForHelper(HelperRequest{Service: "slurm", Tree: "only", User: "gina", UID: "1005", GID: "100", Job: "7", Step: "0"})
			return rec, err
		}, "/run/chos-audit.sock"},
		{"a user running the root helper", func() (*Record, error) {
			_, rec, err := h.inv(uidGina, setuid).PrepareForHelper(HelperRequest{Service: "slurm", Tree: "only", UID: "0"})
			return rec, err
		}, "/run/chos-audit.sock"},
		{"control: a configuration that cannot be read", func() (*Record, error) {
			h := newHost(t, site+"%AUDIT\nsocket = /run/chos-audit.sock\n%TREE el7\ncolour = red\n")
			_, rec, err := h.inv(uidGina, setuid).PrepareForHelper(HelperRequest{Service: "slurm", Tree: "only", UID: "0"})
			return rec, err
		}, "/dev/log"},
	} {
		rec, err := c.run()
		if err == nil || rec == nil || rec.Event.Refused != err.Error() || rec.Config.Socket != c.socket {
			t.Errorf("%s: %v, record %+v, want a refusal to %s", c.name, err, rec, c.socket)
		}
	}
}

// A privileged chos started inside a view moves to the host's root before
// its privileged work, and then plans as from the host, but for the host
// being a view to build too: no cache, going back to the host binds its
// root, every build leaves the outer view, chos is bound from its path on
// the host, and the working directory is the one the view showed. Without
// root, or on the host, nothing moves (the controls).
func TestAPrivilegedChosInsideAViewWorksFromTheHostsRoot(t *testing.T) {
	for _, c := range []struct {
		name   string
		p      Privilege
		prefix string
		moves  bool
	}{
		{"setuid inside a view", setuid, plan.HostDir, true},
		{"root inside a view", rootself, plan.HostDir, true},
		{"control: user namespaces inside a view", userns, plan.HostDir, false},
		{"control: setuid on the host", setuid, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHost(t, site)
			uid := uidAlice
			if c.p == rootself {
				uid = 0
			}
			inv := h.inv(uid, c.p)
			inv.HostPrefix = c.prefix
			at, err := inv.AtHost()
			if err != nil {
				t.Fatal(err)
			}
			if moved := len(h.m.enteredHost) > 0; moved != c.moves || at.FromView != c.moves {
				t.Fatalf("moved to the host's root: %v (%v, from a view %v), want %v", moved, h.m.enteredHost, at.FromView, c.moves)
			}
			if !c.moves {
				if at.HostPrefix != c.prefix {
					t.Errorf("host prefix %q, want %q", at.HostPrefix, c.prefix)
				}
				return
			}
			if want := filepath.Join(h.root, plan.HostDir); h.m.enteredHost[0] != want || at.HostPrefix != "" {
				t.Errorf("moved to %v with host prefix %q, want %s and none", h.m.enteredHost, at.HostPrefix, want)
			}
			l, err := prepare(t, at, Request{Tree: "el7", Argv: []string{"true"}})
			if err != nil {
				t.Fatal(err)
			}
			find := func(target string) spec.Mount {
				for _, m := range l.Plan.Mounts {
					if m.Target == target {
						return m
					}
				}
				return spec.Mount{}
			}
			self, usr := find(path.Join(plan.SelfDir, "chos")), find("/usr")
			if l.Plan.Cache != nil || l.Plan.OuterHost != plan.HostDir || self.Source != chosOnHost ||
				usr.Source != "/os/el7/usr" || l.Plan.Dir != h.m.cwd {
				t.Errorf("plan: cache %v, outer host %q, chos from %q, /usr from %q, dir %q", l.Plan.Cache, l.Plan.OuterHost, self.Source, usr.Source, l.Plan.Dir)
			}
			l, err = prepare(t, at, Request{Tree: "local", Argv: []string{"true"}})
			if err != nil {
				t.Fatal(err)
			}
			if l.Plan.Host || l.Plan.RootSource != "/" || l.Plan.OuterHost != plan.HostDir {
				t.Errorf("back to the host: %+v", l.Plan.View)
			}
		})
	}
}
