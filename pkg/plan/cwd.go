package plan

import (
	"path"
	"strings"

	"github.com/chos-hpc/chos/pkg/spec"
)

// DirShowsHost says whether dir, inside view v, is meant to be the host's
// own directory of that path: in the host itself, or below a host
// directory bound at its own place (/home, /tmp, a scratch file system;
// hostPrefix as in ViewRequest). There the command must run in the
// caller's very directory (spec.Process.DirID). Anywhere else the path
// is the tree's (its own /usr) or what the configuration puts there (a
// bind of another host directory), and is meant to differ from the host's.
func DirShowsHost(v *spec.View, hostPrefix, dir string) bool {
	if v.Host || v.RootSource != "" {
		return true
	}
	// The step with the deepest target at or above dir decides (the last
	// of equal ones: it is mounted over the others).
	var deepest *spec.Mount
	for i := range v.Mounts {
		m := &v.Mounts[i]
		if m.Target != dir && !strings.HasPrefix(dir, strings.TrimSuffix(m.Target, "/")+"/") {
			continue
		}
		if deepest == nil || len(m.Target) >= len(deepest.Target) {
			deepest = m
		}
	}
	return deepest != nil && deepest.Op == spec.OpBind && deepest.Source == path.Join("/", hostPrefix, deepest.Target)
}
