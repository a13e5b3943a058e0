package main

import (
	"github.com/chos-hpc/chos/pkg/nsroot"
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
	privileged := st.mode == nsroot.Privileged
	req.ListEntries = func() ([]ostree.Entry, error) {
		// With root's rights, the image is parsed only if the kernel may
		// mount it: what root reads, only root may have written.
		if privileged {
			if err := nsroot.CheckImageTrust(root); err != nil {
				return nil, err
			}
		}
		return ostree.ImageEntries(root)
	}
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
