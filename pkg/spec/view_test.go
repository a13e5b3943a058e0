package spec

import "testing"

func TestMountSourceNamesTree(t *testing.T) {
	name, ok := TreeFromMountSource(MountSource("el7"))
	if !ok || name != "el7" {
		t.Errorf("round trip = %q, %v", name, ok)
	}
	if _, ok := TreeFromMountSource("tmpfs"); ok {
		t.Error("a plain tmpfs is not a chos view")
	}
}
