package main

import (
	"reflect"
	"testing"
)

func TestParseExecArgsNeverTakesCommandOptions(t *testing.T) {
	cases := []struct {
		args  []string
		name  string
		argv  []string
		err   bool
		fresh bool
	}{
		{[]string{"el7", "ls", "-l"}, "el7", []string{"ls", "-l"}, false, false},
		{[]string{"el7", "--", "ls", "--help"}, "el7", []string{"ls", "--help"}, false, false},
		{[]string{"--", "ls", "-l"}, "", []string{"ls", "-l"}, false, false},
		{[]string{"--", "grep", "--", "-v", "f"}, "", []string{"grep", "--", "-v", "f"}, false, false},
		{[]string{"el7", "--", "--"}, "el7", []string{"--"}, false, false},
		{[]string{"el7"}, "", nil, true, false},
		{[]string{"--"}, "", nil, true, false},
		{[]string{}, "", nil, true, false},
		{[]string{"--fresh", "el7", "ls"}, "el7", []string{"ls"}, false, true},
		{[]string{"--fresh", "--", "ls"}, "", []string{"ls"}, false, true},
		{[]string{"el7", "--fresh"}, "el7", []string{"--fresh"}, false, false},
		{[]string{"--bogus", "el7", "ls"}, "", nil, true, false},
	}
	for _, c := range cases {
		name, argv, fresh, err := parseExecArgs(c.args)
		if (err != nil) != c.err || name != c.name || !reflect.DeepEqual(argv, c.argv) || fresh != c.fresh {
			t.Errorf("parseExecArgs(%q) = %q, %q, %v", c.args, name, argv, err)
		}
	}
}
