package nsroot

import (
	"fmt"

	"github.com/chos-hpc/chos/pkg/devices"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/spec"
)

// completeView makes v's steps what the launch that builds it carries
// out: an image's entries listed (expandEntries), then the devices' specs
// read and their steps made (devices.Complete: with root's rights, by a
// reader with root's ids only, as the image's). Its notes say what of the
// devices' edits was left out.
func completeView(v *spec.View, mode Mode) ([]spec.Note, error) {
	if err := expandEntries(v, mode); err != nil {
		return nil, err
	}
	return devices.Complete(v, mode == Privileged)
}

// expandEntries replaces each spec.OpEntries step of v by the steps for the
// entries of the image its OpImage step mounts on the step's Source
// (spec.ExpandEntries). Listing reads the image, which only a launch that
// builds the view does. With root's rights the image is parsed only if
// the kernel may mount it (what root reads, only root may have written),
// and by an unsquashfs with root's ids only, which no user can stop or
// take over; without, with the caller's own ids.
func expandEntries(v *spec.View, mode Mode) error {
	var done []spec.Mount
	for i, m := range v.Mounts {
		if m.Op != spec.OpEntries {
			if done != nil {
				done = append(done, m)
			}
			continue
		}
		if done == nil {
			done = append([]spec.Mount{}, v.Mounts[:i]...)
		}
		image := ""
		for _, im := range v.Mounts[:i] {
			if im.Op == spec.OpImage && im.Target == m.Source {
				image = im.Source
			}
		}
		if image == "" {
			return fmt.Errorf("no image is mounted on %s to bind the entries of", m.Source)
		}
		entries, err := listImage(image, mode)
		if err != nil {
			return err
		}
		done = append(done, spec.ExpandEntries(m, entries)...)
	}
	if done != nil {
		v.Mounts = done
	}
	return nil
}

func listImage(image string, mode Mode) ([]spec.Entry, error) {
	if mode != Privileged {
		return ostree.ImageEntries(image)
	}
	if err := CheckImageTrust(image); err != nil {
		return nil, err
	}
	return ostree.ImageEntriesAsRoot(image)
}

// CompleteView lists what v's image trees hold and reads its devices'
// specs, with the caller's own ids, so that v shows every step (for `chos
// plan`).
func CompleteView(v *spec.View) ([]spec.Note, error) { return completeView(v, Unprivileged) }
