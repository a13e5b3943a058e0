package launch

import (
	"path"

	"github.com/chos-hpc/chos/pkg/build"
	"github.com/chos-hpc/chos/pkg/devices"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/spec"
)

// deviceNames are the CDI devices a launch asks for: those of lists (each
// --device option), or, when none was given (nil), $CHOS_DEVICES, which
// asks where no option can (login shells, `chos login`).
func (inv Invocation) deviceNames(lists []string) ([]string, error) {
	if lists == nil {
		lists = []string{inv.Getenv(devices.EnvVar)}
	}
	return devices.ParseRequest(lists...)
}

// devicesFor is what a view of tree t shows of the devices names (nil for
// none, and on the host, which shows its devices as they are): each one
// allowed by the tree's rules, the spec files found, as the configuration
// is read (root's to vouch for, installed setuid: SpecFiles), and how the
// launch that builds the view reads them. Their stamps key the view.
func (inv Invocation) devicesFor(cat *ostree.Catalog, t *ostree.Tree, names []string) (*spec.Devices, error) {
	if len(names) == 0 || t.Host {
		return nil, nil
	}
	if err := devices.Check(names, t.Name, t.Devices, cat.CDI.Devices); err != nil {
		return nil, err
	}
	d := &spec.Devices{Names: names, Reader: inv.planPath(build.CDIHelper), Trusted: inv.Privilege.Setuid}
	for _, dir := range cat.CDI.SpecDirs {
		dir = inv.planPath(dir)
		files, err := inv.Machine.SpecFiles(inv.path(dir), d.Trusted)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			d.Specs = append(d.Specs, path.Join(dir, path.Base(f)))
		}
		d.SpecDirs = append(d.SpecDirs, dir)
	}
	return d, nil
}

// checkDevices is the submit-time check of the devices of list: the
// tree's rules only, since a submit host often has no such device, nor
// its spec. It returns the names asked for.
func (inv Invocation) checkDevices(cat *ostree.Catalog, t *ostree.Tree, list string) ([]string, error) {
	names, err := devices.ParseRequest(list)
	if err != nil || t.Host {
		return names, err
	}
	return names, devices.Check(names, t.Name, t.Devices, cat.CDI.Devices)
}

// planPath is a host path as a plan names it: below HostPrefix.
func (inv Invocation) planPath(p string) string { return path.Join("/", inv.HostPrefix, p) }
