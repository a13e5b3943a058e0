package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

// A usage error of any command is one line naming the command, with
// status 2, and no help text on either stream.
func TestUsageErrorsAreOneLineWithoutHelp(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"chos", "--bogus"}, "flag provided but not defined: -bogus (see `chos --help`)"},
		{[]string{"chos", "shell", "tiny", "-c", "id"}, "shell: flag provided but not defined: -c (see `chos shell --help`)"},
		{[]string{"chos", "cache", "list", "--x"}, "cache list: flag provided but not defined: -x (see `chos cache list --help`)"},
		{[]string{"chos", "cache", "frob"}, `unknown cache command "frob" (known: list, drop)`},
		{[]string{"chos", "current", "x"}, "current takes no arguments"},
	}
	for _, c := range cases {
		st := &cmdline{}
		app := st.app()
		var out, errOut bytes.Buffer
		app.Writer, app.ErrWriter = &out, &errOut
		err := app.Run(context.Background(), c.args)
		var ee *exitError
		if !errors.As(err, &ee) || ee.status != statusUsage || ee.Error() != c.want || strings.Contains(ee.Error(), "\n") {
			t.Errorf("%q: %v, want status %d and %q", c.args, err, statusUsage, c.want)
		}
		if out.Len() > 0 || errOut.Len() > 0 {
			t.Errorf("%q printed more:\n%s%s", c.args, out.String(), errOut.String())
		}
	}
	// the control: --help does print the help
	st := &cmdline{}
	app := st.app()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	app.Run(context.Background(), []string{"chos", "shell", "--help"})
	if !strings.Contains(out.String(), "chos shell") {
		t.Errorf("chos shell --help printed %q", out.String())
	}
}
