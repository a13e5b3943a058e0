package launch

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/plan"
)

// choose applies the selection order (reading ~/.chos, with the caller's
// rights, only when nothing before it selects) and checks that who may use
// the tree selected. The selection is returned also with a refusal, for
// the audit line.
func (inv Invocation) choose(cat *ostree.Catalog, in ostree.Inputs, who plan.Caller) (ostree.Selection, error) {
	if in.Argument == "" && in.Env == "" && !in.Batch {
		var err error
		if in.Dotfile, err = inv.readDotfile(who.Home); err != nil {
			return ostree.Selection{Source: ostree.FromDotfile}, err
		}
	}
	sel, err := cat.Select(in)
	if err != nil {
		return sel, inv.explainPersonal(err)
	}
	return sel, inv.access(sel.Tree, who)
}

// readDotfile reads ~/.chos with the caller's own rights. Only a missing
// file means no selection: one that is there but cannot be read (mode
// 000, a directory, a link to nothing, an I/O error) is refused, since
// chos never runs a command elsewhere than where the user chose.
func (inv Invocation) readDotfile(home string) (string, error) {
	if home == "" {
		return "", nil
	}
	path := filepath.Join(home, ".chos")
	var content string
	err := inv.asCaller(func() error {
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			if _, lerr := os.Lstat(path); errors.Is(lerr, fs.ErrNotExist) || errors.Is(lerr, unix.ENOTDIR) {
				return nil
			}
		}
		if err != nil {
			return err
		}
		defer f.Close()
		buf := make([]byte, 4096) // the first line is all that counts
		n, err := f.Read(buf)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		content = string(buf[:n])
		return nil
	})
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", fmt.Errorf("cannot read %s, which selects your tree: %w (make it readable, or remove it to select none)", path, err)
	}
	return content, nil
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
