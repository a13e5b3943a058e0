package integration

import (
	"strconv"
	"strings"
	"testing"
)

// A directory user's job (libnss-extrausers standing in for LDAP or sssd)
// runs in the tree with the same ids as without chos, and is named there:
// slurmd resolves the user through the host's NSS, chos names them inside.
func TestSlurmJobOfADirectoryUserIsNamedInTheTree(t *testing.T) {
	a := directoryUser(t)
	c := chosJobs(t)
	script := `echo id=$(id -u):$(id -g):$(id -G | tr ' ' ,); echo whoami=$(whoami); echo groups=$(id -Gn); cat /etc/os-release`
	job := func(opts ...string) result {
		cl := c.user(append(append([]string{"srun"}, opts...), "sh", "-c", script)...)
		cl.User = &a.testUser
		cl.Dir = a.home
		return run(t, cl)
	}
	// Control: without chos, the job has the directory ids (from slurmd's
	// NSS), on the host.
	plain := job()
	wantOSID(t, plain, h.hostOSRelease["ID"])
	in := job("--chos=one")
	wantOSID(t, in, h.osIDs["one"])
	want := map[string]string{"id": keyValues(plain.stdout)["id"], "whoami": a.name}
	got := keyValues(in.stdout)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s in the tree = %q, want %q:\n%s", k, got[k], v, in)
		}
	}
	if !strings.HasPrefix(want["id"], strconv.Itoa(a.uid)+":"+strconv.Itoa(a.gid)+":") {
		t.Errorf("control: the job without chos has ids %q, want the directory user's:\n%s", want["id"], plain)
	}
	for _, g := range a.groups {
		if !strings.Contains(" "+got["groups"]+" ", " "+g.name+" ") {
			t.Errorf("id -Gn in the tree %q lacks the directory group %s:\n%s", got["groups"], g.name, in)
		}
	}
}
