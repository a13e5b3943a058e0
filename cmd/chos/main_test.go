package main

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/chos-hpc/chos/pkg/launch"
)

func TestParseExecArgsNeverTakesCommandOptions(t *testing.T) {
	cases := []struct {
		args    []string
		name    string
		argv    []string
		err     bool
		fresh   bool
		devices []string
	}{
		{[]string{"el7", "ls", "-l"}, "el7", []string{"ls", "-l"}, false, false, nil},
		{[]string{"el7", "--", "ls", "--help"}, "el7", []string{"ls", "--help"}, false, false, nil},
		{[]string{"--", "ls", "-l"}, "", []string{"ls", "-l"}, false, false, nil},
		{[]string{"--", "grep", "--", "-v", "f"}, "", []string{"grep", "--", "-v", "f"}, false, false, nil},
		{[]string{"el7", "--", "--"}, "el7", []string{"--"}, false, false, nil},
		{[]string{"el7"}, "", nil, true, false, nil},
		{[]string{"--"}, "", nil, true, false, nil},
		{[]string{}, "", nil, true, false, nil},
		{[]string{"--fresh", "el7", "ls"}, "el7", []string{"ls"}, false, true, nil},
		{[]string{"--fresh", "--", "ls"}, "", []string{"ls"}, false, true, nil},
		{[]string{"el7", "--fresh"}, "el7", []string{"--fresh"}, false, false, nil},
		{[]string{"--bogus", "el7", "ls"}, "", nil, true, false, nil},
		{[]string{"--device", "nvidia.com/gpu=0", "el7", "ls"}, "el7", []string{"ls"}, false, false, []string{"nvidia.com/gpu=0"}},
		{[]string{"--device=a.com/b=c,a.com/b=d", "--fresh", "--device", "x.io/y=z", "--", "ls"}, "", []string{"ls"}, false, true, []string{"a.com/b=c,a.com/b=d", "x.io/y=z"}},
		{[]string{"el7", "--device", "a.com/b=c", "ls"}, "el7", []string{"--device", "a.com/b=c", "ls"}, false, false, nil},
		{[]string{"--device"}, "", nil, true, false, nil},
	}
	for _, c := range cases {
		name, argv, opts, err := parseExecArgs(c.args)
		if (err != nil) != c.err || name != c.name || !reflect.DeepEqual(argv, c.argv) || opts.fresh != c.fresh || !reflect.DeepEqual(opts.devices, c.devices) {
			t.Errorf("parseExecArgs(%q) = %q, %q, %+v, %v", c.args, name, argv, opts, err)
		}
	}
}

// The legacy form runs CMD unless it is one of chos's own commands: the
// list run() checks before building the command line is that one.
func TestChosCommandsAreTheCommandLines(t *testing.T) {
	want := []string{"help", "h"}
	for _, c := range (&cmdline{}).app().Commands {
		want = append(want, c.Name)
		want = append(want, c.Aliases...)
	}
	slices.Sort(want)
	got := slices.Sorted(slices.Values(chosCommands))
	if !slices.Equal(got, want) {
		t.Errorf("chosCommands = %q, the command line has %q", got, want)
	}
}

// A reply never carries more warning= lines than the shims take.
func TestReplyKeepsWarningsWithinTheProtocol(t *testing.T) {
	for _, n := range []int{0, 1, maxWarnings, maxWarnings + 1, 40} {
		rep := launch.Reply{Tree: "el7"}
		for i := range n {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("w%d", i))
		}
		r := &reply{}
		r.encode(rep)
		var got []string
		for _, l := range r.lines {
			if w, ok := strings.CutPrefix(l, "warning="); ok {
				got = append(got, w)
			}
		}
		want := min(n, maxWarnings)
		if len(got) != want || (n > maxWarnings && got[want-1] != fmt.Sprintf("and %d more warnings", n-maxWarnings+1)) ||
			(n > 0 && got[0] != "w0") {
			t.Errorf("%d warnings sent as %q", n, got)
		}
	}
}
