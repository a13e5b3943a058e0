package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestCompleteCommandsOptionsAndTrees(t *testing.T) {
	trees := func() []string { return []string{"el7", "local", "root"} }
	app := (&cmdline{}).app()
	commands := "exec shell select list current check cache plan login config help"
	for _, c := range []struct {
		line string // the words before the one completed, and that one after "|"
		want string
	}{
		{"|", commands},
		{"|--", "--config --verbose -v --mode --help --version"},
		{"--mode|", "auto setuid userns"},
		{"--config|", "@file"},
		{"--config /etc/x -v|", commands},
		{"help|", commands},
		{"exec|", "el7 local root"},
		{"exec --fresh|", "el7 local root"},
		{"exec|-", "--fresh --device --"},
		{"exec --device|", ""},
		{"exec --device nvidia.com/gpu=0|", "el7 local root"},
		{"exec --device=nvidia.com/gpu=0 el7|", "@command 4"},
		{"exec el7|", "@command 3"},
		{"exec el7 make|", "@command 3"},
		{"exec el7 --|", "@command 4"},
		{"exec --fresh --|", "@command 4"},
		{"-v exec el7|", "@command 4"},
		{"make|", "@command 1"}, // the legacy form chos CMD ARGS
		{"shell|", "el7 local root"},
		{"shell|-", "--fresh --device --help"},
		{"shell el7|", ""},
		{"select|", "el7 local root"},
		{"select|--", "--clear --help"},
		{"list|-", "--json --help"},
		{"config|", "el7 local root"},
		{"config --json|", "el7 local root"},
		{"check|", "el7 local root"},
		{"cache|", "list drop"},
		{"cache drop|", "el7 local root"},
		{"plan|", "el7 local root --"},
		{"plan el7|", "--"},
		{"plan el7 --|", "@command 4"},
		{"plan --device a.b/c=d|", "el7 local root --"},
		{"plan --device a.b/c=d el7 --|", "@command 6"},
		{"current|", ""},
	} {
		before, cur, _ := strings.Cut(c.line, "|")
		got := strings.Join(complete(app, strings.Fields(before), cur, trees), " ")
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("chos %s<TAB>: %q, want %q", c.line, got, c.want)
		}
	}
}
