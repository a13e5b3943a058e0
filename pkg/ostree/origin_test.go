package ostree

import (
	"reflect"
	"testing"

	"github.com/chos-hpc/chos/pkg/config"
)

func TestSettingsNameTheLinesTheyComeFrom(t *testing.T) {
	c := catalog(t, site,
		"%TREE el7\ndescription = first\nsetuid = deny\nusers = alice\n",
		"%TREE default\ndescription = second\nsetuid = allow\ngroups = climate\nusers = bob\ndevices = nvidia.com/gpu=all\n")
	el7, _ := c.Lookup("el7")
	at := func(file string, line int) config.Position {
		return config.Position{File: "/etc/chos.d/" + file, Line: line}
	}
	want := []Setting{
		{"description", "second", []config.Position{at("c", 2)}},
		{"identity", "/etc/passwd /etc/group /etc/hosts /etc/resolv.conf /etc/localtime", nil}, // the default
		{"setuid", "allow", []config.Position{at("c", 3)}},
		{"cache", "yes", nil},
		{"users", "alice bob", []config.Position{at("b", 4), at("c", 5)}},
		{"groups", "climate", []config.Position{at("c", 4)}},
		{"devices", "nvidia.com/gpu=all", []config.Position{at("c", 6)}},
	}
	if got := el7.Settings(); !reflect.DeepEqual(got, want) {
		t.Errorf("settings:\n got %+v\nwant %+v", got, want)
	}
	wantRules := []config.Position{at("b", 4), at("c", 5), at("c", 4)}
	if got := el7.AccessRules(); !reflect.DeepEqual(got, wantRules) {
		t.Errorf("access rules = %v, want %v", got, wantRules)
	}
	rh, _ := c.Lookup("rh73")
	if rh.AccessRules() != nil || rh.Settings()[2].At != nil {
		t.Errorf("a tree without %%TREE has origins: %v %v", rh.AccessRules(), rh.Settings())
	}
}
