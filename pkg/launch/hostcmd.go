package launch

import (
	"github.com/chos-hpc/chos/pkg/ostree"
)

// PrepareHostCommand plans the run of a host command (%HOSTCMD) that chos
// was called as from inside a view, through the link /.chos/bin/NAME
// (argv[0]'s base name is name): the host's program, on the host, as `chos
// exec local` would run it, with argv's arguments and the caller's
// directory and environment unchanged, $CHOS included, so that the job
// steps a host srun starts from a tree run in that tree. ok is false when
// no host command has that name; the Launch returned with an error holds
// the record of the refusal.
func (inv Invocation) PrepareHostCommand(name string, argv []string) (l *Launch, ok bool, err error) {
	l = &Launch{Record: inv.record("hostcmd", false)}
	cat, set, err := inv.Catalog()
	l.Record.Config, l.catalog = set.Audit(), cat
	if err != nil {
		l.Record.refused(err, ostree.Local, argv)
		return l, true, err
	}
	hc, ok := cat.HostCommand(name)
	if !ok {
		return nil, false, nil
	}
	cmd := append([]string{hc.Path}, argv[1:]...)
	refuse := func(err error) (*Launch, bool, error) {
		l.Record.refused(err, ostree.Local, cmd)
		return l, true, err
	}
	who, err := inv.who()
	if err != nil {
		return refuse(err)
	}
	l.Record.Event.User = who.Name
	host, _ := cat.Lookup(ostree.Local)
	l.Record.selected(ostree.Selection{Tree: host, Name: ostree.Local, Source: ostree.FromArgument})
	if l.Plan, l.Notes, err = inv.planFor(cat, who, host, nil, cmd, false, false); err != nil {
		return refuse(err)
	}
	l.Plan.Argv[0], l.Plan.Env = argv[0], who.Env
	return l, true, nil
}
