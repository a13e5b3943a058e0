package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/chos-hpc/chos/pkg/config"
)

// legacyEtc is a configuration directory with the original CHOS files,
// unchanged, and drop-ins.
func legacyEtc(t *testing.T, dropIns map[string]string) config.Paths {
	t.Helper()
	dir := t.TempDir()
	copyTo := func(src, dst string) {
		data, err := os.ReadFile(filepath.Join("../../pkg/config/testdata/legacy", src))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(dst), 0o755)
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := config.DefaultPaths(dir)
	// CHOS=/etc/chos in the sysconfig file would move the main file
	// to the host's: keep it here, as --config does.
	p.Explicit = true
	copyTo("sysconfig-chos", p.Sysconfig)
	copyTo("etc-chos", p.Main)
	os.MkdirAll(p.DropIns, 0o755)
	for name, text := range dropIns {
		if err := os.WriteFile(filepath.Join(p.DropIns, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

const siteDropIn = `# the site's additions
%SHELLS
el7:/os/el7
centos7:/os/el7
default:/os/el7
%TREE centos7
description = CentOS 7
users = alice
%BIND
/global/scratch /scratch ro optional
%ENV
SLURM_JOB_ID
%AUDIT
facility = local3
%HOSTCMD
/usr/bin/srun
`

// find returns the entries of ec with this key.
func find(ec *effectiveConfig, key string) []entry {
	var out []entry
	for _, list := range [][]entry{ec.Binds, ec.HostCmds, ec.Env, ec.Audit} {
		for _, e := range list {
			if e.Key == key {
				out = append(out, e)
			}
		}
	}
	for _, tc := range ec.Trees {
		for _, e := range tc.Entries {
			if e.Key == key {
				out = append(out, e)
			}
		}
	}
	return out
}

func TestConfigShowsOriginsOfLegacyFilesAndDropIns(t *testing.T) {
	p := legacyEtc(t, map[string]string{"10-site.conf": siteDropIn})
	ec, err := (&cmdline{}).effectiveConfig(p, "")
	if err != nil {
		t.Fatal(err)
	}
	site := filepath.Join(p.DropIns, "10-site.conf")
	if want := []string{p.Sysconfig, p.Main, site}; !reflect.DeepEqual(ec.Files, want) {
		t.Errorf("files = %v, want %v", ec.Files, want)
	}
	at := func(file string, line int) []string {
		return []string{config.Position{File: file, Line: line}.String()}
	}
	for _, c := range []struct {
		key  string
		want entry
	}{
		{"tree.el7.path", entry{Value: "/os/el7", Origin: at(site, 3)}},
		{"tree.el7.description", entry{Value: "CentOS 7", Origin: at(site, 7)}},
		{"tree.el7.users", entry{Value: "alice", Origin: at(site, 8)}},
		{"tree.el7.setuid", entry{Value: "deny", Origin: []string{}, Default: true}},
		{"tree.el7.identity", entry{Value: "/etc/passwd /etc/group /etc/hosts /etc/resolv.conf /etc/localtime", Origin: []string{}, Default: true}},
		{"tree.local.path", entry{Value: "/", Origin: []string{}, BuiltIn: true}},
		{"env", entry{Value: "SLURM_JOB_ID", Origin: at(site, 12)}},
		{"audit.facility", entry{Value: "local3", Origin: at(site, 14)}},
		{"audit.socket", entry{Value: "/dev/log", Origin: []string{}, Default: true}},
		{"hostcmd", entry{Value: "/usr/bin/srun", Origin: at(site, 16)}},
	} {
		got := find(ec, c.key)
		c.want.Key = c.key
		if len(got) != 1 || !reflect.DeepEqual(got[0], c.want) {
			t.Errorf("%s = %+v, want %+v", c.key, got, c.want)
		}
	}
	aliases := find(ec, "tree.el7.alias")
	if len(aliases) != 2 || aliases[0].Value != "centos7" || !reflect.DeepEqual(aliases[1].Origin, at(site, 5)) {
		t.Errorf("el7's aliases = %+v", aliases)
	}
	// site binds: the defaults, the legacy BINDMOUNT list (line 2 of the
	// sysconfig file), %BIND
	binds := map[string][]string{}
	for _, e := range find(ec, "bind") {
		binds[e.Value] = e.Origin
	}
	for v, want := range map[string][]string{
		"/proc rw":                             {},
		"/selinux rw optional":                 at(p.Sysconfig, 2),
		"/global/scratch /scratch ro optional": at(site, 10),
	} {
		if got, ok := binds[v]; !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("site bind %q: origin %v (listed: %v), want %v", v, got, ok, want)
		}
	}
	// the tree's effective binds carry the site's, with their origins
	if got := find(ec, "tree.el7.bind"); len(got) < 10 {
		t.Errorf("tree el7 has %d binds: %+v", len(got), got)
	}
	if len(ec.Problems) != 0 {
		t.Errorf("problems: %+v", ec.Problems)
	}
}

func TestConfigListsEveryErrorOfTheDropIns(t *testing.T) {
	p := legacyEtc(t, map[string]string{
		"10-site.conf": siteDropIn,
		"20-typo.conf": "%TREE el7\nuser = bob\n%FOO\nx = y\n%ENV\nOK\n",
	})
	ec, err := (&cmdline{}).effectiveConfig(p, "el7")
	if err != nil {
		t.Fatal(err)
	}
	typo := filepath.Join(p.DropIns, "20-typo.conf")
	want := []problem{
		{typo + ":2", `unknown key "user" in %TREE el7 (known: description, bind, identity, setuid, cache, users, groups, devices)`},
		{typo + ":3", "unknown section %FOO (known: %SHELLS, %ENV, %BEH, %BIND, %HOSTCMD, %TREE, %AUDIT, %CDI)"},
	}
	if !reflect.DeepEqual(ec.Problems, want) {
		t.Errorf("problems:\n%+v\nwant\n%+v", ec.Problems, want)
	}
	// what parsed is still shown, for this tree only
	if len(ec.Trees) != 1 || ec.Trees[0].Name != "el7" || ec.Binds != nil {
		t.Errorf("chos config el7 shows %+v", ec)
	}
	if got := find(ec, "tree.el7.users"); len(got) != 1 || got[0].Value != "alice" {
		t.Errorf("users = %+v", got)
	}
	if _, err := (&cmdline{}).effectiveConfig(p, "el9"); err == nil || !strings.Contains(err.Error(), `unknown OS tree "el9"`) {
		t.Errorf("chos config el9: %v", err)
	}
}
