//go:build !chos_linkname || mips || mipsle || mips64 || mips64le

package nsroot

import (
	"testing"

	"github.com/chos-hpc/chos/pkg/spec"
)

// Built without chos_linkname, chos cannot tell the soft open file limit
// it was started with (callerNofile), which a command it forks itself must
// get back: a launch with a kept view builds a view of its own instead, as
// the fresh path's ForkExec restores the limit.
func TestKeptViewsAreNotJoinedWithoutTheCallersOpenFileLimit(t *testing.T) {
	if _, known := callerNofile(); known {
		t.Fatal("callerNofile knows the limit in a build without chos_linkname: the test proves nothing")
	}
	p := &spec.Plan{View: spec.View{Tree: "t", Cache: &spec.Cache{Tree: "t", Key: "k"}}}
	if _, _, ran, err := runKept(p, false); ran || err != nil {
		t.Errorf("runKept ran the command (%v, %v), want a view of the launch's own", ran, err)
	}
}
