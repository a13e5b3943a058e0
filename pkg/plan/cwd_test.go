package plan

import (
	"testing"

	"github.com/chos-hpc/chos/pkg/spec"
)

func TestDirShowsHostOnlyWhereAHostDirectoryIsBoundAtItsOwnPlace(t *testing.T) {
	tree := "/srv/trees/el7"
	view := func(prefix string) *spec.View {
		host := func(p string) string { return prefix + p }
		return &spec.View{Tree: "el7", Mounts: []spec.Mount{
			{Op: spec.OpBind, Source: host("/"), Target: HostDir},
			{Op: spec.OpBind, Source: host(tree + "/usr"), Target: "/usr"},
			{Op: spec.OpSymlink, Source: "usr/bin", Target: "/bin"},
			{Op: spec.OpBind, Source: host("/home"), Target: "/home"},
			{Op: spec.OpBind, Source: host("/tmp"), Target: "/tmp"},
			{Op: spec.OpBind, Source: host("/opt/el7-local"), Target: "/usr/local"},
			{Op: spec.OpBind, Source: host("/scratch"), Target: "/home/alice/scratch"},
			{Op: spec.OpBind, Source: host("/tmp/t"), Target: "/tmp/t"},
		}}
	}
	cases := []struct {
		dir  string
		want bool
	}{
		{"/home/alice", true},
		{"/home", true},
		{"/home/alice/run", true},
		{"/tmp", true},
		{"/tmp/t/x", true},
		{"/tmpfoo", false},
		{"/usr/share", false},     // the tree's own
		{"/usr/local/src", false}, // another host directory bound there
		{"/home/alice/scratch", false},
		{"/bin", false},
		{"/", false},
		{"/.chos/host/home", false},
		{"/var/lib/x", false},
	}
	for _, prefix := range []string{"", HostDir} {
		v := view(prefix)
		for _, c := range cases {
			if got := DirShowsHost(v, prefix, c.dir); got != c.want {
				t.Errorf("host prefix %q: DirShowsHost(%s) = %v, want %v", prefix, c.dir, got, c.want)
			}
		}
	}
	if !DirShowsHost(&spec.View{Host: true}, "", "/usr") {
		t.Error("on the host, /usr is not the host's")
	}
	if !DirShowsHost(&spec.View{RootSource: HostDir}, HostDir, "/usr") {
		t.Error("back on the host from a view, /usr is not the host's")
	}
}
