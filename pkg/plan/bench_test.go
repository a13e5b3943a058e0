package plan

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chos-hpc/chos/pkg/config"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/spec"
)

// BenchmarkPlanLaunch measures the pure part of a launch for configurations
// of growing size: parsing, resolving names, selecting, planning and
// keying the view.
func BenchmarkPlanLaunch(b *testing.B) {
	for _, trees := range []int{1, 10, 1000} {
		for _, binds := range []int{0, 100} {
			var src strings.Builder
			src.WriteString("%SHELLS\nbench:/os/bench\nlocal:/\n")
			for i := 0; i < trees; i++ {
				fmt.Fprintf(&src, "t%d:/os/t%d\n", i, i)
			}
			src.WriteString("%BIND\n")
			for i := 0; i < binds; i++ {
				fmt.Fprintf(&src, "/global/b%d optional\n", i)
			}
			data := []byte(src.String())
			entries := []spec.Entry{{Name: "usr", Kind: spec.DirEntry}, {Name: "etc", Kind: spec.DirEntry}, {Name: "bin", Kind: spec.LinkEntry, Target: "usr/bin"}}
			b.Run(fmt.Sprintf("trees=%d/binds=%d", trees, binds), func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					f, err := config.Parse("/etc/chos", data)
					if err != nil {
						b.Fatal(err)
					}
					c, err := ostree.NewCatalog(&config.Set{Files: []*config.File{f}, Digest: "d"})
					if err != nil {
						b.Fatal(err)
					}
					sel, err := c.Select(ostree.Inputs{Argument: "bench"})
					if err != nil {
						b.Fatal(err)
					}
					p, _, err := Build(Request{ViewRequest: ViewRequest{Catalog: c, Tree: sel.Tree, Entries: entries, Root: "/chos", Self: "/usr/bin/chos"},
						Caller: Caller{UID: 1000, GID: 1000, Cwd: "/home/u", Env: []string{"PATH=/usr/bin:/bin"}}, Argv: []string{"true"}})
					if err != nil {
						b.Fatal(err)
					}
					_ = CacheKey(c.Digest, &p.View, nil)
				}
			})
		}
	}
}
