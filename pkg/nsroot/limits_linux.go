package nsroot

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Privileged work runs with resource limits chos chose, never with the
// caller's: a root process whose RLIMIT_FSIZE, NOFILE, AS or CPU a user set
// could write truncated files into a view every user of the tree enters, or
// fail half-way through building it. The launcher raises its limits to
// chos's when it starts its privileged work and gives the command the
// caller's back just before it switches to the caller's ids; a builder and
// `chos prepare` raise theirs for good. The command keeps the caller's
// limits (README: "What the command keeps").
//
// chos only raises limits: a hard limit it lowered could not be raised
// again without CAP_SYS_RESOURCE, which root lacks in some containers, so
// the caller's could not come back. Raising a hard limit takes that
// capability too: where root lacks it, the soft limit is raised to the
// caller's hard one, and work that then reaches it fails (one line, status
// 125; a view whose build fails is never published) rather than produce
// less than it should: chos checks every write, and the runtime dies,
// taking the unpublished view with it, when memory runs out.

// chosLimit is chos's value of one limit.
type chosLimit struct {
	resource int
	name     string
	min      uint64 // soft and hard raised to at least this
	soft     uint64 // if not ^0: the soft limit set, whatever it was
}

const keepSoft = ^uint64(0)

// chosLimits are the limits privileged work depends on. Others do not
// constrain root (RLIMIT_NPROC, MEMLOCK, NICE, RTPRIO: capabilities) or
// nothing chos does.
var chosLimits = []chosLimit{
	{unix.RLIMIT_CPU, "RLIMIT_CPU", unix.RLIM_INFINITY, keepSoft},
	{unix.RLIMIT_FSIZE, "RLIMIT_FSIZE", unix.RLIM_INFINITY, keepSoft},
	{unix.RLIMIT_DATA, "RLIMIT_DATA", unix.RLIM_INFINITY, keepSoft},
	{unix.RLIMIT_AS, "RLIMIT_AS", unix.RLIM_INFINITY, keepSoft},
	{unix.RLIMIT_STACK, "RLIMIT_STACK", 8 << 20, keepSoft},
	{unix.RLIMIT_NOFILE, "RLIMIT_NOFILE", 4096, keepSoft},
	{unix.RLIMIT_CORE, "RLIMIT_CORE", 0, 0}, // root's memory never goes into a core file
}

// limitSet is the value of each of chosLimits' resources.
type limitSet map[int]unix.Rlimit

// useChosLimits raises the process's limits to chos's (it must hold root)
// and returns the ones it had, for restoreLimits. RLIMIT_NOFILE is left
// as the caller's where chos cannot know the caller's soft limit
// (callerNofile): the builder raises its own.
func useChosLimits() (limitSet, error) { return setChosLimits(true) }

// takeChosLimits raises the process's limits to chos's for good: a
// builder, and `chos prepare`, whose process ends with its privileged
// work.
func takeChosLimits() error {
	_, err := setChosLimits(false)
	return err
}

// setChosLimits raises the limits, saving the old ones if save. A hard
// limit root may not raise here is left as it is, and the soft one raised
// to it.
func setChosLimits(save bool) (limitSet, error) {
	saved := limitSet{}
	for _, l := range chosLimits {
		var old unix.Rlimit
		if err := unix.Getrlimit(l.resource, &old); err != nil {
			return saved, fmt.Errorf("reading %s: %w", l.name, err)
		}
		if l.resource == unix.RLIMIT_NOFILE && save {
			// (the runtime raised the soft limit: the caller's is elsewhere)
			caller, known := callerNofile()
			if !known {
				continue
			}
			saved[l.resource] = caller
		} else if save {
			saved[l.resource] = old
		}
		lim := chosValue(l, old)
		if lim == old {
			continue // (most, with a distribution's default limits)
		}
		err := unix.Prlimit(0, l.resource, &lim, nil)
		if err == unix.EPERM { // (no CAP_SYS_RESOURCE)
			lim.Max = old.Max
			lim.Cur = min(lim.Cur, old.Max)
			err = unix.Prlimit(0, l.resource, &lim, nil)
		}
		if err != nil {
			return saved, fmt.Errorf("raising %s from %s to %s for chos's work as root: %w", l.name, limitText(old), limitText(lim), err)
		}
	}
	return saved, nil
}

// chosValue is limit l as chos sets it over old: raised to its minimum,
// never lowered but for a soft limit chos sets outright.
func chosValue(l chosLimit, old unix.Rlimit) unix.Rlimit {
	lim := unix.Rlimit{Cur: max(old.Cur, l.min), Max: max(old.Max, l.min)}
	if l.soft != keepSoft {
		lim.Cur = min(l.soft, lim.Max)
	}
	return lim
}

// restoreLimits gives the process back the limits useChosLimits saved:
// only lowering, which needs no privilege.
func restoreLimits(saved limitSet) error {
	for _, l := range chosLimits {
		old, ok := saved[l.resource]
		if !ok {
			continue
		}
		if err := unix.Prlimit(0, l.resource, &old, nil); err != nil {
			return fmt.Errorf("restoring %s %s: %w", l.name, limitText(old), err)
		}
	}
	return nil
}

func limitText(l unix.Rlimit) string {
	v := func(x uint64) string {
		if x == unix.RLIM_INFINITY {
			return "unlimited"
		}
		return fmt.Sprint(x)
	}
	return v(l.Cur) + ":" + v(l.Max)
}
