package integration

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Logins of a directory user (known only to NSS, libnss-extrausers here)
// through every entry point: in the tree, with the ids and groups a login
// without chos gives, and named there.

// dirProbe prints the numeric identity, then the names and the tree.
const dirProbe = `id -u; id -g; id -G | tr ' ' '\n' | sort -n | tr '\n' ' '; echo; ` +
	`grep -E '^Cap(Inh|Prm|Eff|Amb)' /proc/self/status; ` +
	`echo "names=$(id -un) $(id -Gn)"; sed -n 's/^ID=/osid:/p' /etc/os-release`

// splitDirProbe splits what dirProbe printed.
func splitDirProbe(t testing.TB, r result) (ids, names, id string) {
	t.Helper()
	m := regexp.MustCompile(`(?s)^(.*)names=([^\n]*)\nosid:(\S+)\n$`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Errorf("unexpected output:\n%s", r)
		return "", "", ""
	}
	return m[1], m[2], m[3]
}

func TestSSHLoginDirectoryUser(t *testing.T) {
	a := directoryUser(t)
	clearDotfile(t)
	group := a.groups[0].name
	base := []string{"AllowGroups " + group, "Subsystem sftp internal-sftp"}
	plain := sshdFor(t, sshdOptions{Config: base})
	forced := sshdFor(t, sshdOptions{Config: append(base, "Match Group "+group, "    ForceCommand "+h.chos+" login")})
	key := sshClientKeyOf(t, a.testUser)
	login := func(s *sshServer) (ids, names, id string) {
		r := run(t, call{User: &a.testUser, Args: s.sshArgsAs(a.name, key, nil, dirProbe), Stdin: []byte{}})
		if !wantStatus(t, r, 0) {
			return "", "", ""
		}
		return splitDirProbe(t, r)
	}
	hostIDs, hostNames, hostID := login(plain) // control: the host
	treeIDs, treeNames, treeID := login(forced)
	if hostID != h.hostOSRelease["ID"] || treeID != h.osIDs["one"] {
		t.Fatalf("the logins ran in %s and %s, want the host and tree one", hostID, treeID)
	}
	if treeIDs != hostIDs {
		t.Errorf("identity through chos login:\n%s\nwithout chos:\n%s", treeIDs, hostIDs)
	}
	for _, g := range a.groups {
		if lines := strings.Split(hostIDs, "\n"); len(lines) < 3 || !slices.Contains(strings.Fields(lines[2]), strconv.Itoa(g.gid)) {
			t.Errorf("the plain login lacks the directory group %d:\n%s", g.gid, hostIDs)
		}
		for _, names := range []string{hostNames, treeNames} {
			if !strings.Contains(" "+names+" ", " "+g.name+" ") {
				t.Errorf("names %q lack the directory group %s", names, g.name)
			}
		}
	}
	if !strings.HasPrefix(treeNames, a.name+" ") {
		t.Errorf("the user is not named in the tree: %q", treeNames)
	}
}

func TestPamSessionPlacesDirectoryUser(t *testing.T) {
	a := directoryUser(t)
	clearDotfile(t)
	// pamtester: the session is in the tree
	r := pamtesterAs(t, pamService(t, pamChos(t), "session optional pam_exec.so stdout "+where(t)), a.name, nil, nil)
	if id, tree := whereShown(r.stdout); !wantStatus(t, r, 0) || id != h.osIDs["one"] || tree != "one" {
		t.Errorf("the directory user's session is in ID=%s, CHOS=%q, want tree one:\n%s", id, tree, r)
	}

	// su -l -c: the same ids as without the module, named in the tree
	suL := [][2]string{pamFileWith(t, "su-l", pamChos(t))}
	hostR := run(t, call{Root: true, Args: []string{"su", "-l", a.name, "-c", dirProbe}}) // control: the host
	treeR := run(t, call{Root: true, Args: withBinds(suL, "su", "-l", a.name, "-c", dirProbe)})
	if !wantStatus(t, hostR, 0) || !wantStatus(t, treeR, 0) {
		return
	}
	hostIDs, _, hostID := splitDirProbe(t, hostR)
	treeIDs, treeNames, treeID := splitDirProbe(t, treeR)
	if hostID != h.hostOSRelease["ID"] || treeID != h.osIDs["one"] {
		t.Fatalf("su -l -c ran in %s and %s, want the host and tree one", hostID, treeID)
	}
	if treeIDs != hostIDs {
		t.Errorf("identity with pam_chos:\n%s\nwithout:\n%s", treeIDs, hostIDs)
	}
	for _, g := range a.groups {
		if !strings.HasPrefix(treeNames, a.name+" ") || !strings.Contains(" "+treeNames+" ", " "+g.name+" ") {
			t.Errorf("names in the tree %q, want the user %s and the group %s", treeNames, a.name, g.name)
		}
	}

	// login -f on a terminal
	login := [][2]string{pamFileWith(t, "login", pamChos(t))}
	s := startPTY(t, call{Root: true, Args: withBinds(login, "login", "-f", a.name)})
	at, ok := s.ready(20 * time.Second)
	if !ok {
		return
	}
	s.send(`echo "got:$(sed -n 's/^ID=//p' /etc/os-release) $(id -un) $(id -G | wc -w)"`)
	s.expect(regexp.MustCompile(`got:`+h.osIDs["one"]+` `+a.name+` `+strconv.Itoa(1+len(a.groups))+`\n`), at, 10*time.Second)
}

// With the module in sshd's own stack, sshd computes the groups after the
// session entered the tree (initgroups inside it): the view must name the
// user's directory groups there, or they are lost.
func TestPamSessionKeepsDirectoryGroupsInSSHD(t *testing.T) {
	a := directoryUser(t)
	clearDotfile(t)
	allow := "AllowGroups " + a.groups[0].name
	key := sshClientKeyOf(t, a.testUser)
	login := func(s *sshServer) (ids, id string) {
		r := run(t, call{User: &a.testUser, Args: s.sshArgsAs(a.name, key, nil, dirProbe), Stdin: []byte{}})
		if !wantStatus(t, r, 0) {
			return "", ""
		}
		ids, _, id = splitDirProbe(t, r)
		return ids, id
	}
	hostIDs, hostID := login(sshdFor(t, sshdOptions{Config: []string{allow}})) // control: the host
	treeIDs, treeID := login(sshdFor(t, sshdOptions{Config: []string{allow}, PAMService: pamService(t, "@include sshd", pamChos(t))}))
	if hostID != h.hostOSRelease["ID"] || treeID != h.osIDs["one"] {
		t.Fatalf("the logins ran in %s and %s, want the host and tree one", hostID, treeID)
	}
	if treeIDs != hostIDs {
		t.Errorf("identity with pam_chos in sshd:\n%s\nwithout:\n%s", treeIDs, hostIDs)
	}
}
