package main

import (
	"os"
	"testing"
)

func TestProfileHookBinFindsTheChosTheHookRuns(t *testing.T) {
	for _, f := range []string{"../../etc/profile.d/chos.sh", "../../etc/profile.d/chos.csh"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := profileHookBin(data); got != "/usr/local/bin/chos" {
			t.Errorf("%s: %q, want /usr/local/bin/chos", f, got)
		}
	}
	cases := map[string]string{
		"_chos_bin=/opt/chos/bin/chos\n":           "/opt/chos/bin/chos",
		"  set   _chos_bin   =   /x/chos # note\n": "/x/chos",
		"\tset\t_chos_bin=/y\n":                    "/y",
		"# _chos_bin=/commented\n":                 "",
		"_chos_binary=/other\n":                    "",
		"setx _chos_bin=/z\n":                      "",
		"_chos_bin=\n":                             "",
		"echo hi\n":                                "",
		"a=1\n_chos_bin=/second/line\n":            "/second/line",
	}
	for in, want := range cases {
		if got := profileHookBin([]byte(in)); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}
