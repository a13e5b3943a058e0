package launch

import (
	"os"
	"path/filepath"

	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/plan"
)

// choose applies the selection order (reading ~/.chos, with the caller's
// rights, only when nothing before it selects) and checks that who may use
// the tree selected. The selection is returned also with a refusal, for
// the audit line.
func (inv Invocation) choose(cat *ostree.Catalog, in ostree.Inputs, who plan.Caller) (ostree.Selection, error) {
	if in.Argument == "" && in.Env == "" && !in.Batch {
		in.Dotfile = inv.readDotfile(who.Home)
	}
	sel, err := cat.Select(in)
	if err != nil {
		return sel, inv.explainPersonal(err)
	}
	return sel, inv.access(sel.Tree, who)
}

// readDotfile reads ~/.chos with the caller's own rights; a missing or
// unreadable file is no selection.
func (inv Invocation) readDotfile(home string) string {
	if home == "" {
		return ""
	}
	var content string
	inv.asCaller(func() error {
		f, err := os.Open(filepath.Join(home, ".chos"))
		if err != nil {
			return err
		}
		defer f.Close()
		buf := make([]byte, 4096) // the first line is all that counts
		n, _ := f.Read(buf)
		content = string(buf[:n])
		return nil
	})
	return content
}

// Usable are the names and aliases of the trees the caller may use: those
// a launch would not refuse for access (for completion).
func (inv Invocation) Usable() []string {
	cat, _, err := inv.Catalog()
	if err != nil {
		return nil
	}
	who, err := inv.who()
	if err != nil {
		return nil
	}
	var names []string
	for _, n := range cat.NameList() {
		if _, err := inv.choose(cat, ostree.Inputs{Argument: n}, who); err == nil {
			names = append(names, n)
		}
	}
	return names
}
