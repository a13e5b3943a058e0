package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParseSlurmConfReadsParametersCaseInsensitively(t *testing.T) {
	s := parseSlurmConf([]byte("# comment\nPlugStackConfig=/etc/slurm/ps.conf # trailing\npluginDIR=/a:/b\n" +
		"NodeName=n1 CPUs=2\nJobContainerType=job_container/tmpfs\nPluginDir=/later\n"))
	want := slurmSettings{"plugstackconfig": "/etc/slurm/ps.conf", "plugindir": "/a:/b", "nodename": "n1",
		"jobcontainertype": "job_container/tmpfs"}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got %v, want %v", s, want)
	}
}

func TestReadPlugstackFollowsIncludesRelativeToTheIncludingFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("plugstack.conf", "optional /x/other.so a=b\ninclude plugstack.conf.d/*.conf\n# required /commented.so\n")
	write("plugstack.conf.d/chos.conf", "required chos_spank.so chos=/usr/bin/chos default=el7 # site\n")
	write("plugstack.conf.d/skip.txt", "required /not-included.so\n")
	same := func(p string) string { return p }
	lines, err := readPlugstack(filepath.Join(dir, "plugstack.conf"), same, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []spankLine{
		{at: filepath.Join(dir, "plugstack.conf") + ":1", required: false, path: "/x/other.so", args: []string{"a=b"}},
		{at: filepath.Join(dir, "plugstack.conf.d/chos.conf") + ":1", required: true, path: "chos_spank.so", args: []string{"chos=/usr/bin/chos", "default=el7"}},
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("got %+v\nwant %+v", lines, want)
	}
	// Seen from inside a tree: host paths below a prefix, reported as the host's.
	under := func(p string) string { return filepath.Join(dir, p) }
	lines, err = readPlugstack("/plugstack.conf", under, 0)
	if err != nil || len(lines) != 2 || lines[1].at != "/plugstack.conf.d/chos.conf:1" {
		t.Errorf("below a prefix: %+v, %v", lines, err)
	}
	// A missing plugstack.conf is an empty one, as for Slurm.
	if lines, err := readPlugstack(filepath.Join(dir, "none.conf"), same, 0); err != nil || lines != nil {
		t.Errorf("missing plugstack.conf: %v, %v", lines, err)
	}
	write("loop.conf", "include loop.conf\n")
	if _, err := readPlugstack(filepath.Join(dir, "loop.conf"), same, 0); err == nil {
		t.Error("an include loop was not refused")
	}
}
