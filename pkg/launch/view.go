package launch

import (
	"fmt"
	"strconv"

	"github.com/chos-hpc/chos/pkg/devices"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/plan"
	"github.com/chos-hpc/chos/pkg/spec"
	"github.com/chos-hpc/chos/pkg/trust"
)

// viewRequest is what a plan needs to know of a tree's view: the same for
// every caller, so `chos cache` computes keys from it too.
func (inv Invocation) viewRequest(cat *ostree.Catalog, t *ostree.Tree) (plan.ViewRequest, error) {
	req := plan.ViewRequest{Catalog: cat, Tree: t, Root: inv.ViewRoot(), HostPrefix: inv.HostPrefix, FromView: inv.FromView}
	if t.Host {
		return req, nil
	}
	root := inv.HostPath(t.Path)
	if !inv.Privilege.UserNS {
		// Every launch, a cached one too: a tree someone else could have
		// changed since its view was built is refused, as a build would.
		if err := inv.Machine.Vouched(root); trust.IsUntrusted(err) {
			return req, fmt.Errorf("tree %s (%s): %w: the setuid chos refuses it", t.Name, t.At, err)
		}
	}
	var err error
	if ostree.IsImage(root) {
		// A launch that enters a cached view never reads the image: the
		// identity in the key stands for its content.
		var id ostree.ImageID
		if id, err = ostree.StatImage(root); err == nil {
			req.Image = &id
		}
	} else {
		req.Entries, err = ostree.Entries(root)
	}
	if err != nil {
		return req, fmt.Errorf("tree %s (%s): %w", t.Name, t.At, err)
	}
	// Bound by path (the executable's own mount is the host namespace's);
	// the executor checks it is still this binary.
	if req.Self, err = inv.Machine.Executable(); err != nil {
		return req, err
	}
	return req, nil
}

// View is tree t's view with its cache name, as a launch would enter it
// now (for `chos cache` and `chos check`).
func (inv Invocation) View(cat *ostree.Catalog, t *ostree.Tree) (spec.View, error) {
	req, err := inv.viewRequest(cat, t)
	if err != nil {
		return spec.View{}, err
	}
	v := plan.View(req)
	v.Cache = inv.cacheFor(cat, t, &v)
	return v, nil
}

// keepsView says whether launches of tree t enter a view kept for them
// (cached with root, kept by a keeper of the caller's without): not for
// the host, trees with `cache = no`, nor from inside a view (at its
// host's root or not).
func (inv Invocation) keepsView(t *ostree.Tree) bool {
	return !t.Host && !t.NoCache && inv.HostPrefix == "" && !inv.FromView
}

// cacheFor names the cached namespace of view v of tree t, or nil where
// none is kept: without root, and where no view is kept (keepsView). The
// key depends on the view only, never on the caller.
func (inv Invocation) cacheFor(cat *ostree.Catalog, t *ostree.Tree, v *spec.View) *spec.Cache {
	if inv.Privilege.UserNS || !inv.keepsView(t) {
		return nil
	}
	dir, err := inv.Machine.CacheDir()
	if err != nil {
		return nil
	}
	variant, ok := plan.DeviceVariant(v.Devices)
	if !ok {
		return nil // (too many devices to name a file: a private view)
	}
	return &spec.Cache{Dir: dir, Tree: t.Name, Key: plan.CacheKey(cat.Digest, v, inv.stamps(t, v)), Variant: variant}
}

// keptView names the view that a keeper of the caller's keeps for their
// user-namespace launches (nsroot.RunInUserNS), or nil where none is kept
// (keepsView). Its key
// covers what a setuid view's does and, the view being the caller's own,
// their ids, their identity layer (nil for none), and the user and mount
// namespaces the view is made from (the keeper pins the mount namespace,
// so that its inode number is not reused while the view is kept).
func (inv Invocation) keptView(cat *ostree.Catalog, t *ostree.Tree, v *spec.View, layer *spec.Layer) *spec.Cache {
	if !inv.Privilege.UserNS || !inv.keepsView(t) {
		return nil
	}
	mnt, user, err := inv.Machine.Namespaces()
	if err != nil {
		return nil
	}
	stamps := append(inv.stamps(t, v), "uid "+strconv.Itoa(inv.Caller.UID), "gid "+strconv.Itoa(inv.Caller.GID), mnt, user)
	if layer != nil {
		stamps = append(stamps, "layer "+layer.Key)
	}
	return &spec.Cache{Tree: t.Name, Key: plan.CacheKey(cat.Digest, v, stamps)}
}

// stamps are the device and inode of what view v of tree t shows by
// reference (plan.Stamped): a replaced tree, top-level directory, identity
// file, image or binary changes the key; and of the spec files its devices
// come from (plan.StampedSpecs), which a regenerated spec changes.
func (inv Invocation) stamps(t *ostree.Tree, v *spec.View) []string {
	stamps := ostree.TreeStamps(inv.HostPath(t.Path))
	for _, m := range v.Mounts {
		if plan.Stamped(m) {
			stamps = append(stamps, ostree.Stamp(inv.path(m.Source)))
		}
		for _, f := range plan.StampedSpecs(v, m) {
			stamps = append(stamps, devices.Stamp(inv.path(f)))
		}
	}
	return stamps
}
