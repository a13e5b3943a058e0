package launch

import (
	"errors"
	"fmt"

	"github.com/chos-hpc/chos/pkg/build"
	"github.com/chos-hpc/chos/pkg/config"
	"github.com/chos-hpc/chos/pkg/ostree"
)

// ConfigPaths says which configuration to read, refusing an alternative
// one from anyone but root.
func (inv Invocation) ConfigPaths() (config.Paths, error) {
	p := config.DefaultPaths(inv.HostPath(build.SysconfDir))
	if inv.Config == "" {
		return p, nil
	}
	if inv.Caller.UID != 0 {
		return p, fmt.Errorf("--config and CHOS_CONFIG are honoured only for root; remove them to use %s", p.Main)
	}
	return config.Paths{Main: inv.Config, DropIns: inv.Config + ".d", Explicit: true}, nil
}

// Catalog reads the configuration as a launch reads it: installed setuid,
// the system's files are root's to vouch for (even in a command that has
// given root up: `chos list` must not show what `chos exec` would refuse),
// and the caller's personal trees are added in user-namespace mode only,
// where they run with the caller's own rights. The set read is returned
// too (nil when none could be), for its audit settings.
func (inv Invocation) Catalog() (*ostree.Catalog, *config.Set, error) {
	paths, err := inv.ConfigPaths()
	if err != nil {
		return nil, nil, err
	}
	set, err := inv.Machine.LoadConfig(paths, inv.Privilege.Setuid)
	if err != nil {
		return nil, nil, err
	}
	if inv.Privilege.UserNS {
		if set.Personal, err = config.LoadPersonal(inv.PersonalPath()); err != nil {
			return nil, set, err
		}
	}
	cat, err := ostree.NewCatalog(set)
	return cat, set, err
}

// PersonalPath is the caller's file of personal trees.
func (inv Invocation) PersonalPath() string {
	u, _ := inv.account()
	home := u.Home
	if home == "" {
		home = inv.Getenv("HOME") // (personal trees are read with the user's own rights)
	}
	return config.PersonalPath(home, inv.Getenv("XDG_CONFIG_HOME"))
}

// explainPersonal turns "unknown tree" into a clearer refusal when the name
// is one of the caller's personal trees, which setuid chos never uses.
func (inv Invocation) explainPersonal(err error) error {
	var ue *ostree.UnknownTreeError
	if inv.Privilege.UserNS || !errors.As(err, &ue) {
		return err
	}
	var at string
	inv.asCaller(func() error {
		f, perr := config.LoadPersonal(inv.PersonalPath())
		if perr != nil || f == nil {
			return perr
		}
		for _, a := range f.Shells {
			if a.Name == ue.Name {
				at = a.At.String()
			}
		}
		return nil
	})
	if at == "" {
		return err
	}
	return fmt.Errorf("tree %q is a personal tree (%s): the setuid chos never uses personal trees; run it with --mode=userns", ue.Name, at)
}
