package integration

import (
	"testing"
)

// A copy of chos under a name of its own (chos-1.2, chos.static) keeps
// working as chos; any other name is a tree's (README: vsys-style links).
func TestProgramNameIsChosOrATree(t *testing.T) {
	clearDotfile(t)
	setConfig(t, h.configText+"chosen:"+h.trees["three"]+"\n")
	for _, c := range []struct {
		name string
		id   string // where `NAME cat /etc/os-release` runs with CHOS=two
	}{
		{"chos-1.2", "chostwo"}, // chos's legacy form: $CHOS selects
		{"chos.static", "chostwo"},
		{"chos_debug", "chostwo"},
		{"chosen", "chosthree"}, // a tree's name: the link selects
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, call{Args: []string{vsysLink(t, c.name), "cat", "/etc/os-release"}, Env: []string{"CHOS=two"}})
			wantOSID(t, r, c.id)
		})
	}
}
