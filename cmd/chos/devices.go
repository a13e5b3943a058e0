package main

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/chos-hpc/chos/pkg/build"
	"github.com/chos-hpc/chos/pkg/config"
	"github.com/chos-hpc/chos/pkg/devices"
	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/plan"
	"github.com/chos-hpc/chos/pkg/trust"
)

// deviceNames are the CDI devices this launch asks for: the --device
// options, else $CHOS_DEVICES.
func (st *state) deviceNames() ([]string, error) {
	if st.deviceFlags != nil {
		return devices.ParseRequest(st.deviceFlags...)
	}
	return devices.ParseRequest(os.Getenv(devices.EnvVar))
}

// specDirs are the CDI spec directories, as this process reaches them.
func (st *state) specDirs(cat *ostree.Catalog) []string {
	dirs := make([]string, len(cat.CDI.SpecDirs))
	for i, d := range cat.CDI.SpecDirs {
		dirs[i] = st.hostPath(d)
	}
	return dirs
}

// cdiHelper runs the spec reader: with root's ids only when chos runs
// setuid (what it reads becomes what root binds for every user of a
// view), on spec files only root can change whenever chos is installed
// setuid.
func (st *state) cdiHelper() devices.Helper {
	return devices.Helper{Path: st.hostPath(build.CDIHelper), AsRoot: st.setuid(), Trusted: st.rootVouched()}
}

// rootVouched says whether what chos reads must be root's (the trust
// rule): whenever it is installed setuid, even once it has given root up,
// so that `chos plan` and `chos check` refuse what a launch would.
func (st *state) rootVouched() bool { return st.setuid() || st.dropped }

// deviceRequest is what a launch in tree t asks of devices (nil for none):
// each name allowed by the tree's rules, the spec files listed and checked
// (their stamps key the cached view), and what reads them, run only by a
// launch that builds the view (or at once with now, for `chos plan`).
func (st *state) deviceRequest(cat *ostree.Catalog, t *ostree.Tree, names []string, now bool) (*plan.DeviceRequest, error) {
	if len(names) == 0 || t.Host {
		return nil, nil // (the host shows its devices as they are)
	}
	if err := devices.Check(names, t.Name, t.Devices, cat.CDI.Devices); err != nil {
		return nil, err
	}
	dirs := st.specDirs(cat)
	specs, err := devices.Specs(dirs, st.rootVouched())
	if err != nil {
		return nil, err
	}
	dr := &plan.DeviceRequest{Names: names}
	for _, s := range specs {
		dr.Stamps = append(dr.Stamps, s.Stamp)
	}
	helper := st.cdiHelper()
	dr.Resolve = func() (*devices.Edits, error) {
		found, err := helper.Resolve(dirs, names)
		if err != nil {
			return nil, err
		}
		edits, err := devices.Interpret(found)
		if err != nil {
			return nil, err
		}
		return edits, devices.CheckNodes(edits.Nodes, st.hostPrefix)
	}
	if now {
		if dr.Edits, err = dr.Resolve(); err != nil {
			return nil, err
		}
	}
	return dr, nil
}

// deviceEnv sets, for a shim, the variables of the devices of the view
// this thread has entered.
func deviceEnv(r *reply) error {
	env, err := nsroot.ViewEnv()
	if err != nil {
		return err
	}
	for _, kv := range env {
		r.set("setenv", kv)
	}
	return nil
}

// checkDevices reports, for `chos check`, the CDI spec files (the trust
// rule, what the library finds wrong in them) and, for each tree, the
// devices its rules let users ask for and the spec files behind them.
func (st *state) checkDevices(k *checker, cat *ostree.Catalog, trees []*ostree.Tree) {
	allowing := false
	for _, t := range trees {
		allowing = allowing || (!t.Host && len(t.Devices)+len(cat.CDI.Devices) > 0)
	}
	dirs := st.specDirs(cat)
	specs, err := devices.Specs(dirs, st.rootVouched())
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
	h := st.cdiHelper()
	h.AsRoot = false // (chos check has given root up: it reads as you)
	if st.rootVouched() {
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
	for _, f := range sortedKeys(a.Errors) {
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

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
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
