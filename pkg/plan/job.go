package plan

import "github.com/chos-hpc/chos/pkg/ostree"

// JobPath is the PATH a batch job's tasks get in tree t, given the job's
// own: as `chos exec` sets it, with SelfDir appended in a tree (so that
// chos is reachable from inside the job) and removed on the host. An
// empty PATH gets SelfDir alone: ":/.chos/bin" would put the working
// directory on it. A PATH too long for SelfDir to fit in one variable
// (MaxArgStrlen) is kept as it is.
func JobPath(jobPath string, t *ostree.Tree) string {
	if jobPath == "" && !t.Host {
		return SelfDir
	}
	p, _ := pathWithSelf(jobPath, t)
	return p
}
