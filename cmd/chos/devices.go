package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/chos-hpc/chos/pkg/build"
	"github.com/chos-hpc/chos/pkg/config"
	"github.com/chos-hpc/chos/pkg/devices"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/trust"
)

// specDirs are the CDI spec directories, as this process reaches them.
func (cl *cmdline) specDirs(cat *ostree.Catalog) []string {
	dirs := make([]string, len(cat.CDI.SpecDirs))
	for i, d := range cat.CDI.SpecDirs {
		dirs[i] = cl.inv.HostPath(d)
	}
	return dirs
}

// checkDevices reports, for `chos check`, the CDI spec files (the trust
// rule, what the library finds wrong in them) and, for each tree, the
// devices its rules let users ask for and the spec files behind them.
func (cl *cmdline) checkDevices(k *checker, cat *ostree.Catalog, trees []*ostree.Tree) {
	allowing := false
	for _, t := range trees {
		allowing = allowing || (!t.Host && len(t.Devices)+len(cat.CDI.Devices) > 0)
	}
	// (as the setuid chos reads them for a launch: root's to vouch for;
	// root's own check holds them to the same rule, as it does the trees)
	trusted := !cl.inv.Privilege.UserNS
	dirs := cl.specDirs(cat)
	specs, err := devices.Specs(dirs, trusted)
	switch {
	case err != nil:
		k.fail("devices", "%v", err)
		return
	case !allowing && len(specs) == 0:
		return // no devices here, none wanted
	case !allowing:
		k.ok("devices", "no tree allows CDI devices (`devices =` in %%TREE or %%CDI); %d spec file(s) in %s", len(specs), strings.Join(cat.CDI.SpecDirs, ", "))
		return
	}
	// (chos check has given root up: the reader reads as you)
	h := devices.Helper{Path: cl.inv.HostPath(build.CDIHelper), Trusted: trusted}
	if trusted {
		if err := trust.CheckPath(h.Path); err != nil {
			k.fail("devices", "the CDI helper: %v", err)
			return
		}
	}
	a, err := h.Run(dirs, nil)
	if err != nil {
		k.fail("devices", "%v", err)
		return
	}
	for _, f := range slices.Sorted(maps.Keys(a.Errors)) {
		k.warn("devices", "%s: %s", f, strings.Join(a.Errors[f], "; "))
	}
	for _, t := range trees {
		if t.Host {
			continue
		}
		lines, problems := treeDevices(cat, t, a.Devices)
		for _, l := range lines {
			k.ok("devices", "%s", l)
		}
		for _, p := range problems {
			k.warn("devices", "%s", p)
		}
	}
}

// treeDevices describes the devices users may ask for in t, rule by rule,
// and the spec files that define them here; and the rules no spec meets.
func treeDevices(cat *ostree.Catalog, t *ostree.Tree, found []devices.Resolved) (lines []string, problems []string) {
	rules := append(append([]config.DeviceRule(nil), t.Devices...), cat.CDI.Devices...)
	for _, r := range rules {
		var names, files []string
		for _, d := range found {
			if _, ok := devices.Allow(d.Name, []config.DeviceRule{r}); ok {
				names = append(names, d.Name)
				if !slices.Contains(files, d.Spec) {
					files = append(files, d.Spec)
				}
			}
		}
		if len(names) == 0 {
			problems = append(problems, fmt.Sprintf("tree %s: %s (%s) allows %s, which no spec defines here", t.Name, r.Pattern, r.At, r.Pattern))
			continue
		}
		lines = append(lines, fmt.Sprintf("tree %s: %s (%s): %s, from %s", t.Name, r.Pattern, r.At, strings.Join(names, " "), strings.Join(files, ", ")))
	}
	return lines, problems
}
