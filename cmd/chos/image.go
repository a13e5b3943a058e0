package main

import (
	"path"
	"path/filepath"

	"github.com/chos-hpc/chos/pkg/hostexec"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/plan"
)

// imageView fills in what a view needs of an image tree whose image is at
// root (as this process reaches it): its identity now, and how to list its
// entries when the view is built. A launch that enters a cached view never
// reads the image: the identity in the key stands for its content.
func (st *state) imageView(req *plan.ViewRequest, root string) error {
	id, err := ostree.StatImage(root)
	if err != nil {
		return err
	}
	req.Image = &id
	return nil
}

// imageStamps identify t's image, if t is an image tree, for the cache key.
func (st *state) imageStamps(t *ostree.Tree) []string {
	id, err := ostree.StatImage(st.hostPath(t.Path))
	if err != nil {
		return nil
	}
	return []string{id.Stamp()}
}

// treeExecutable says whether p inside the tree at root (a directory or an
// image) is a program: for an image, a regular file with an execute bit,
// read from the image without mounting it.
func treeExecutable(root, p string) bool {
	if !ostree.IsImage(root) {
		return hostexec.IsExecutable(root, p)
	}
	fi, err := ostree.StatInTree(root, p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// treeLookPath finds name on pathList inside the tree at root, as
// hostexec.LookPath does in a directory.
func treeLookPath(root, pathList, name string) string {
	if !ostree.IsImage(root) {
		return hostexec.LookPath(root, pathList, name)
	}
	for _, dir := range filepath.SplitList(pathList) {
		if p := path.Join(dir, name); path.IsAbs(dir) && treeExecutable(root, p) {
			return p
		}
	}
	return ""
}
