package plan

import (
	"testing"

	"github.com/chos-hpc/chos/pkg/ostree"
)

func TestJobPathIsChosExecsPath(t *testing.T) {
	tree, host := &ostree.Tree{Name: "el7", Path: "/os/el7"}, &ostree.Tree{Name: "local", Path: "/", Host: true}
	for _, tc := range []struct {
		name, in string
		t        *ostree.Tree
		want     string
	}{
		{"tree: appended last", "/usr/local/bin:/usr/bin:/bin", tree, "/usr/local/bin:/usr/bin:/bin:/.chos/bin"},
		{"tree: once", "/usr/bin:/.chos/bin:/bin", tree, "/usr/bin:/bin:/.chos/bin"},
		{"tree: empty PATH, no working directory on it", "", tree, "/.chos/bin"},
		{"host: empty PATH", "", host, ""},
		{"host: removed", "/usr/bin:/.chos/bin", host, "/usr/bin"},
		{"host: unchanged", "/usr/bin:/bin", host, "/usr/bin:/bin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := JobPath(tc.in, tc.t); got != tc.want {
				t.Errorf("JobPath(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
