package config

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParseReadsLegacySystemFileUnchanged(t *testing.T) {
	data, err := os.ReadFile("testdata/legacy/etc-chos")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse("/etc/chos", data)
	if err != nil {
		t.Fatalf("legacy /etc/chos refused: %v", err)
	}
	want := []Alias{{Name: "local", Path: "/", At: Position{"/etc/chos", 13}}}
	if !reflect.DeepEqual(f.Shells, want) {
		t.Errorf("shells = %+v, want %+v", f.Shells, want)
	}
	if len(f.Env) != 0 {
		t.Errorf("empty %%ENV gave %v", f.Env)
	}
}

func TestParseReadsLegacyTreeFileUnchanged(t *testing.T) {
	data, err := os.ReadFile("testdata/legacy/tree-etc-chos.conf")
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse("tree/etc/chos.conf", data)
	if err != nil {
		t.Fatalf("legacy tree chos.conf refused: %v", err)
	}
	if len(f.Env) != 22 || f.Env[0] != "CHOS" || f.Env[21] != "REMOTEHOST" {
		t.Errorf("env = %v", f.Env)
	}
	if !reflect.DeepEqual(f.Beh, []string{"BASHLOGIN"}) {
		t.Errorf("beh = %v", f.Beh)
	}
}

func TestParseSysconfigReadsLegacyFileUnchanged(t *testing.T) {
	data, err := os.ReadFile("testdata/legacy/sysconfig-chos")
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSysconfig("/etc/sysconfig/chos", data)
	if err != nil {
		t.Fatal(err)
	}
	if s.ConfigPath != "/etc/chos" {
		t.Errorf("config path = %q", s.ConfigPath)
	}
	var got []string
	for _, b := range s.BindMounts {
		if !b.Optional || b.Source != b.Dest {
			t.Errorf("legacy bind %+v should be optional and in place", b)
		}
		got = append(got, b.Source)
	}
	want := []string{"/dev", "/dev/shm", "/dev/pts", "/sys", "/proc", "/var", "/var/log", "/root", "/boot", "/selinux"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("bind mounts = %v, want %v (duplicates dropped)", got, want)
	}
}

func TestParseAliasesAndNewSections(t *testing.T) {
	src := `# site config
%SHELLS
rh73:/auto/redhat73
/auto/redhat73:/auto/redhat73
el7 : /os/el7/
%ENV
SLURM_JOB_ID OMP_NUM_THREADS
%BIND
/global/scratch
/project /proj ro optional   # comment
%HOSTCMD
/usr/bin/srun /usr/bin//sbatch   # Slurm's client
%TREE el7
description = CentOS 7 for the climate codes
bind = /opt/el7 /opt/modules ro
identity = /etc/passwd /etc/group
setuid = allow
users = alice bob
groups = climate
`
	f, err := Parse("chos", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Shells[1]; got.Name != "/auto/redhat73" || got.Path != "/auto/redhat73" {
		t.Errorf("full-path alias = %+v", got)
	}
	if got := f.Shells[2]; got.Name != "el7" || got.Path != "/os/el7" {
		t.Errorf("spaced alias = %+v (path must be cleaned)", got)
	}
	if !reflect.DeepEqual(f.Env, []string{"SLURM_JOB_ID", "OMP_NUM_THREADS"}) {
		t.Errorf("env = %v", f.Env)
	}
	wantBinds := []Bind{
		{Source: "/global/scratch", Dest: "/global/scratch", At: Position{"chos", 9}},
		{Source: "/project", Dest: "/proj", ReadOnly: true, Optional: true, At: Position{"chos", 10}},
	}
	if !reflect.DeepEqual(f.Binds, wantBinds) {
		t.Errorf("binds = %+v", f.Binds)
	}
	wantHost := []HostCommand{{Path: "/usr/bin/srun", At: Position{"chos", 12}}, {Path: "/usr/bin/sbatch", At: Position{"chos", 12}}}
	if !reflect.DeepEqual(f.HostCommands, wantHost) {
		t.Errorf("host commands = %+v, want %+v", f.HostCommands, wantHost)
	}
	tr := f.Trees[0]
	if tr.Name != "el7" || tr.Description != "CentOS 7 for the climate codes" || !tr.AllowSetuid ||
		!tr.IdentitySet || len(tr.Identity) != 2 || !reflect.DeepEqual(tr.Users, []string{"alice", "bob"}) ||
		!reflect.DeepEqual(tr.Groups, []string{"climate"}) || len(tr.Binds) != 1 || tr.Binds[0].Dest != "/opt/modules" {
		t.Errorf("tree settings = %+v", tr)
	}
}

func TestParseErrorsNameFileAndLine(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"line outside section", "rh73:/x\n", "f:1: line outside any section"},
		{"unknown section", "%SHELLS\n%FOO\n", "f:2: unknown section %FOO"},
		{"alias without colon", "%SHELLS\nrh73 /x\n", "f:2: expected alias:path"},
		{"relative path", "%SHELLS\nrh73:auto/x\n", `f:2: path "auto/x" is not absolute`},
		{"empty alias", "%SHELLS\n:/x\n", "f:2: empty alias"},
		{"bad env name", "%ENV\nFOO-BAR\n", `f:2: "FOO-BAR" is not a valid`},
		{"bad bind option", "%BIND\n/x rx\n", `f:2: unknown bind option "rx"`},
		{"bind over root", "%BIND\n/x /\n", "f:2: bind destination cannot be /"},
		{"relative host command", "%HOSTCMD\nsrun\n", `f:2: host command: path "srun" is not absolute`},
		{"host command with an argument", "%HOSTCMD /usr/bin/srun\n", "f:1: %HOSTCMD takes no argument"},
		{"tree without name", "%TREE\n", "f:1: %TREE needs exactly one tree name"},
		{"unknown tree key", "%TREE a\ncolour = blue\n", `f:2: unknown key "colour"`},
		{"bad setuid", "%TREE a\nsetuid = yes\n", "f:2: setuid must be allow or deny"},
		{"tree key without =", "%TREE a\ndescription\n", "f:2: expected key = value"},
		{"NUL byte", "%ENV\nA\x00B\n", "f:2: NUL byte"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("f", []byte(c.src))
			var ce *Error
			if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error = %v, want prefix %q", err, c.want)
			}
		})
	}
}

func TestParseSysconfigRefusesShellExpansion(t *testing.T) {
	for _, src := range []string{`BINDMOUNT="$HOME"`, "BINDMOUNT=`id`", `CHOS=relative`, `BINDMOUNT="/a`} {
		if _, err := ParseSysconfig("s", []byte(src)); err == nil || !strings.HasPrefix(err.Error(), "s:1:") {
			t.Errorf("%s: error = %v, want one naming s:1", src, err)
		}
	}
}

func TestFormatRoundTrips(t *testing.T) {
	data, _ := os.ReadFile("testdata/legacy/tree-etc-chos.conf")
	f1, err := Parse("a", data)
	if err != nil {
		t.Fatal(err)
	}
	f2, err := Parse("a", []byte(f1.Format()))
	if err != nil {
		t.Fatalf("formatted config does not parse: %v\n%s", err, f1.Format())
	}
	if !sameSettings(f1, f2) {
		t.Errorf("round trip changed settings:\n%+v\n%+v", f1, f2)
	}
}

func TestParseAuditSection(t *testing.T) {
	f, err := Parse("a", []byte("%AUDIT\nfacility = local3   # the site's audit log\nsocket = /run/log.sock\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Audit{Facility: "local3", Socket: "/run/log.sock", At: Position{"a", 1},
		Lines: map[string][]Position{"facility": {{"a", 2}}, "socket": {{"a", 3}}}}
	if !reflect.DeepEqual(f.Audit, want) {
		t.Errorf("audit = %+v, want %+v", f.Audit, want)
	}
	for src, msg := range map[string]string{
		"%AUDIT\nfacility = mail\n":        `a:2: facility must be authpriv`,
		"%AUDIT\nsocket = dev/log\n":       `a:2: socket: path "dev/log" is not absolute`,
		"%AUDIT\nlevel = debug\n":          `a:2: unknown key "level" in %AUDIT`,
		"%AUDIT off\n":                     `a:1: %AUDIT takes no argument`,
		"%SHELLS\nx:/\n%AUDIT\nfacility\n": `a:4: expected key = value`,
	} {
		if _, err := Parse("a", []byte(src)); err == nil || !strings.HasPrefix(err.Error(), msg) {
			t.Errorf("%q: error %v, want %q", src, err, msg)
		}
	}
}

func TestSetAuditTakesEachKeyFromTheLastFileThatSetsIt(t *testing.T) {
	parse := func(name, src string) *File {
		f, err := Parse(name, []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	set := &Set{Files: []*File{
		parse("/etc/chos", "%AUDIT\nfacility = local1\nsocket = /a\n"),
		parse("/etc/chos.d/b.conf", "%AUDIT\nfacility = off\n"),
	}}
	got := set.Audit()
	want := AuditConfig{Facility: "off", FacilityAt: Position{"/etc/chos.d/b.conf", 2}, Socket: "/a", SocketAt: Position{"/etc/chos", 3}}
	if got != want {
		t.Errorf("audit = %+v, want %+v", got, want)
	}
	if got := (&Set{}).Audit(); got.Facility != "authpriv" || got.Socket != "/dev/log" || got.FacilityAt.File != "" {
		t.Errorf("defaults = %+v", got)
	}
}

func TestParseAllReportsEveryErrorAndKeepsTheRest(t *testing.T) {
	src := `%SHELLS
el7:/os/el7
%TREE el7
user = alice
description = kept
%COLOURS
red
%ENV
A
B-C
`
	f, errs := ParseAll("d.conf", []byte(src))
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{
		`d.conf:4: unknown key "user" in %TREE el7 (known: description, bind, identity, setuid, cache, users, groups, devices)`,
		`d.conf:6: unknown section %COLOURS (known: %SHELLS, %ENV, %BEH, %BIND, %HOSTCMD, %TREE, %AUDIT, %CDI)`,
		`d.conf:10: "B-C" is not a valid environment variable name`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if f == nil || f.Trees[0].Description != "kept" || !reflect.DeepEqual(f.Env, []string{"A"}) || !reflect.DeepEqual(f.EnvAt, []Position{{"d.conf", 9}}) {
		t.Errorf("what parsed was not kept: %+v", f)
	}
	if _, err := Parse("d.conf", []byte(src)); err == nil || err.Error() != want[0] {
		t.Errorf("Parse stops at %v, want the first error", err)
	}
}

func TestTreeSettingsRecordTheLinesOfEachKey(t *testing.T) {
	f, err := Parse("c", []byte("%TREE a\nusers = alice\ngroups = g\nusers = bob\ncache = no\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]Position{"users": {{"c", 2}, {"c", 4}}, "groups": {{"c", 3}}, "cache": {{"c", 5}}}
	if !reflect.DeepEqual(f.Trees[0].Lines, want) {
		t.Errorf("lines = %v, want %v", f.Trees[0].Lines, want)
	}
}

func TestParseCDISectionAndTreeDevices(t *testing.T) {
	src := `%CDI
spec-dirs = /etc/cdi /var/run/cdi/   # lowest priority first
devices = nvidia.com/gpu=*
devices = example.com/dev=0 example.com/dev=all
%SHELLS
el7:/os/el7
%TREE el7
devices = amd.com/gpu=all
`
	f, err := Parse("c", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := &CDI{SpecDirs: []string{"/etc/cdi", "/var/run/cdi"}, SpecDirsSet: true,
		Devices: []DeviceRule{{"nvidia.com/gpu=*", Position{"c", 3}}, {"example.com/dev=0", Position{"c", 4}}, {"example.com/dev=all", Position{"c", 4}}},
		At:      Position{"c", 1},
		Lines:   map[string][]Position{"spec-dirs": {{"c", 2}}, "devices": {{"c", 3}, {"c", 4}}}}
	if !reflect.DeepEqual(f.CDI, want) {
		t.Errorf("cdi = %+v\nwant  %+v", f.CDI, want)
	}
	if got := f.Trees[0].Devices; !reflect.DeepEqual(got, []DeviceRule{{"amd.com/gpu=all", Position{"c", 8}}}) {
		t.Errorf("tree devices = %+v", got)
	}
	again, err := Parse("c", []byte(f.Format()))
	if err != nil || !sameSettings(f, again) {
		t.Errorf("round trip: %v\n%s", err, f.Format())
	}
}

func TestParseRefusesBadDeviceRules(t *testing.T) {
	for src, msg := range map[string]string{
		"%TREE a\ndevices = nvidia.com/gpu\n":      `c:2: unqualified device "nvidia.com/gpu", missing vendor (want VENDOR/CLASS=NAME or VENDOR/CLASS=*)`,
		"%TREE a\ndevices = gpu=0\n":               `c:2: unqualified device "gpu=0", missing vendor`,
		"%TREE a\ndevices = nvidia.com/gpu=a/b\n":  `c:2: invalid device "nvidia.com/gpu=a/b"`,
		"%TREE a\ndevices = *\n":                   `c:2: unqualified device "*"`,
		"%TREE a\ndevices = nvi$dia.com/gpu=*\n":   `c:2: device "nvi$dia.com/gpu=*": invalid vendor. invalid character '$'`,
		"%TREE a\ndevices =\n":                     `c:2: devices: no device named`,
		"%CDI\nspec-dirs = etc/cdi\n":              `c:2: spec-dirs: path "etc/cdi" is not absolute`,
		"%CDI\nhooks = none\n":                     `c:2: unknown key "hooks" in %CDI (known: spec-dirs, devices)`,
		"%CDI all\n":                               `c:1: %CDI takes no argument`,
		"%CDI\ndevices = nvidia.com/gpu=0 gpu=1\n": `c:2: unqualified device "gpu=1"`,
	} {
		if _, err := Parse("c", []byte(src)); err == nil || !strings.HasPrefix(err.Error(), msg) {
			t.Errorf("%q: error %v, want prefix %q", src, err, msg)
		}
	}
}
