package nsroot

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLookPathStatuses(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "data"), nil, 0o644)
	empty := t.TempDir()
	cases := []struct {
		file, path string
		want       string
		status     int
	}{
		{"tool", empty + ":" + dir, exe, 0},
		{exe, "", exe, 0},
		{"nosuch", dir, "", StatusNotFound},
		{filepath.Join(dir, "nosuch"), dir, "", StatusNotFound},
		{"data", dir, "", StatusNotExecutable},
		{filepath.Join(dir, "data"), "", "", StatusNotExecutable},
		{dir, "", "", StatusNotExecutable},
	}
	for _, c := range cases {
		got, err := lookPath(c.file, c.path)
		status := 0
		if err != nil {
			status = err.Status
		}
		if status != c.status || (status == 0 && got != c.want) {
			t.Errorf("lookPath(%s, %s) = %q, %v; want %q status %d", c.file, c.path, got, err, c.want, c.status)
		}
	}
}

func TestEnvValueTakesLastAssignment(t *testing.T) {
	if v := envValue([]string{"PATH=/a", "X=1", "PATH=/b"}, "PATH"); v != "/b" {
		t.Errorf("PATH = %q", v)
	}
}
