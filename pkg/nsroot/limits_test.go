package nsroot

import (
	"testing"

	"golang.org/x/sys/unix"
)

// Privileged work gets chos's limits, and the caller's come back. (Soft
// limits: raising a hard one takes CAP_SYS_RESOURCE, which this test may
// not have; chosValue's table says what happens to hard ones.)
func TestChosLimitsReplaceTheCallersAndGiveThemBack(t *testing.T) {
	needRoot(t)
	var orig unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &orig); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_FSIZE, &orig)
	callers := unix.Rlimit{Cur: 512, Max: orig.Max}
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &callers); err != nil {
		t.Fatal(err)
	}
	saved, err := useChosLimits()
	if err != nil {
		t.Fatal(err)
	}
	var during unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_FSIZE, &during)
	if during.Cur != orig.Max {
		t.Errorf("RLIMIT_FSIZE during privileged work: %+v, want the soft limit raised to %d", during, orig.Max)
	}
	var core unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_CORE, &core)
	if core.Cur != 0 {
		t.Errorf("RLIMIT_CORE during privileged work: %+v, want a soft limit of 0", core)
	}
	if err := restoreLimits(saved); err != nil {
		t.Fatal(err)
	}
	var after unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_FSIZE, &after)
	if after != callers {
		t.Errorf("RLIMIT_FSIZE after: %+v, want the caller's %+v", after, callers)
	}
}

func TestChosValueOnlyRaisesButForTheSoftCoreLimit(t *testing.T) {
	inf := uint64(unix.RLIM_INFINITY)
	fsize := chosLimits[1]
	nofile := chosLimits[5]
	core := chosLimits[6]
	if fsize.resource != unix.RLIMIT_FSIZE || nofile.resource != unix.RLIMIT_NOFILE || core.resource != unix.RLIMIT_CORE {
		t.Fatal("the table changed: fix the test")
	}
	cases := []struct {
		name      string
		l         chosLimit
		old, want unix.Rlimit
	}{
		{"tiny file size", fsize, unix.Rlimit{Cur: 1, Max: 1}, unix.Rlimit{Cur: inf, Max: inf}},
		{"tiny soft file size", fsize, unix.Rlimit{Cur: 1, Max: inf}, unix.Rlimit{Cur: inf, Max: inf}},
		{"few descriptors", nofile, unix.Rlimit{Cur: 8, Max: 8}, unix.Rlimit{Cur: 4096, Max: 4096}},
		{"many descriptors stay", nofile, unix.Rlimit{Cur: 1 << 20, Max: 1 << 20}, unix.Rlimit{Cur: 1 << 20, Max: 1 << 20}},
		{"core dumps off", core, unix.Rlimit{Cur: inf, Max: inf}, unix.Rlimit{Cur: 0, Max: inf}},
		{"core dumps already off", core, unix.Rlimit{Cur: 0, Max: 0}, unix.Rlimit{Cur: 0, Max: 0}},
	}
	for _, c := range cases {
		if got := chosValue(c.l, c.old); got != c.want {
			t.Errorf("%s: %+v over %+v, want %+v", c.name, got, c.old, c.want)
		}
	}
}
