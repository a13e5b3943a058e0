package nsroot

import (
	"fmt"

	"github.com/moby/sys/mountinfo"

	"github.com/chos-hpc/chos/pkg/spec"
)

// CurrentTree names the tree this process runs in, from its own mount
// namespace: the root of a chos view is a tmpfs whose source names the tree.
// A process whose root is anything else is on the host ("", false).
func CurrentTree() (string, bool, error) {
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return m.Mountpoint != "/", false
	})
	if err != nil {
		return "", false, fmt.Errorf("reading /proc/self/mountinfo: %w", err)
	}
	if len(mounts) == 0 {
		return "", false, nil
	}
	top := mounts[len(mounts)-1] // the last mount on / is the one seen
	if top.FSType != "tmpfs" {
		return "", false, nil
	}
	name, ok := spec.TreeFromMountSource(top.Source)
	return name, ok, nil
}
