package config

import (
	"reflect"
	"testing"
)

// sameSettings compares two parses ignoring positions (which Format moves).
func sameSettings(a, b *File) bool {
	strip := func(f *File) File {
		c := *f
		c.Name = ""
		c.Shells = append([]Alias(nil), f.Shells...)
		for i := range c.Shells {
			c.Shells[i].At = Position{}
		}
		c.Binds = stripBinds(f.Binds)
		c.HostCommands = append([]HostCommand(nil), f.HostCommands...)
		for i := range c.HostCommands {
			c.HostCommands[i].At = Position{}
		}
		c.EnvAt = nil
		if f.CDI != nil {
			cdi := *f.CDI
			cdi.Lines, cdi.At = nil, Position{}
			cdi.Devices = stripRules(cdi.Devices)
			if len(cdi.SpecDirs) == 0 {
				cdi.SpecDirs = nil
			}
			c.CDI = &cdi
		}
		if f.Audit != nil {
			a := *f.Audit
			a.Lines, a.At = nil, Position{}
			c.Audit = &a
		}
		c.Trees = append([]TreeSettings(nil), f.Trees...)
		for i := range c.Trees {
			c.Trees[i].At = Position{}
			c.Trees[i].Lines = nil
			c.Trees[i].Binds = stripBinds(c.Trees[i].Binds)
			if len(c.Trees[i].Identity) == 0 {
				c.Trees[i].Identity = nil
			}
			c.Trees[i].Devices = stripRules(c.Trees[i].Devices)
		}
		return c
	}
	return reflect.DeepEqual(strip(a), strip(b))
}

func stripRules(rs []DeviceRule) []DeviceRule {
	var out []DeviceRule
	for _, r := range rs {
		out = append(out, DeviceRule{Pattern: r.Pattern})
	}
	return out
}

func stripBinds(bs []Bind) []Bind {
	out := append([]Bind(nil), bs...)
	for i := range out {
		out[i].At = Position{}
	}
	return out
}

// FuzzParse checks that no input makes the parser panic, that every error
// names the file and line, and that what parses formats back to the same
// settings.
func FuzzParse(f *testing.F) {
	f.Add([]byte("%SHELLS\nlocal:/\n\n%ENV\n"))
	f.Add([]byte("%HOSTCMD\n/usr/bin/srun /usr/bin/sbatch # Slurm\n"))
	f.Add([]byte("%SHELLS\nrh73:/auto/redhat73\n/auto/redhat73:/auto/redhat73\n"))
	f.Add([]byte("%ENV\nCHOS\nUSER\n%BEH\nBASHLOGIN\n"))
	f.Add([]byte("%BIND\n/global/scratch\n/project /proj ro optional\n"))
	f.Add([]byte("%TREE el7\ndescription = x\nbind = /a /b ro\nidentity = /etc/passwd\nsetuid = allow\nusers = a\ngroups = b\n"))
	f.Add([]byte("%AUDIT\nfacility = local3\nsocket = /run/log\n%FOO\nx\n%TREE a\ncolour = red\n"))
	f.Add([]byte("%CDI\nspec-dirs = /etc/cdi /var/run/cdi\ndevices = nvidia.com/gpu=* amd.com/gpu=all\nspec-dirs =\n"))
	f.Add([]byte("%TREE el7\ndevices = nvidia.com/gpu=0 example.com/net=eth0:1 # two\ndevices = x.y/z=*\n%CDI\ndevices = a/b=c\n"))
	f.Add([]byte("%TREE a\ndevices = nvidia.com/gpu\n%CDI x\n%CDI\nspec-dirs = rel\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parsed, err := Parse("fuzz", data)
		// ParseAll stops at nothing, but agrees with Parse.
		all, errs := ParseAll("fuzz", data)
		for _, e := range errs {
			if e.At.File != "fuzz" || e.At.Line < 1 {
				t.Fatalf("ParseAll: error without file and line: %v", e)
			}
		}
		switch {
		case (err == nil) != (len(errs) == 0):
			t.Fatalf("Parse: %v; ParseAll: %v", err, errs)
		case err != nil && err.Error() != errs[0].Error():
			t.Fatalf("Parse: %v; ParseAll's first: %v", err, errs[0])
		case err == nil && !reflect.DeepEqual(parsed, all):
			t.Fatalf("Parse and ParseAll differ:\n%#v\n%#v", parsed, all)
		}
		if err != nil {
			ce, ok := err.(*Error)
			if !ok || ce.At.File != "fuzz" || ce.At.Line < 1 {
				t.Fatalf("error without file and line: %v", err)
			}
			return
		}
		again, err := Parse("fuzz", []byte(parsed.Format()))
		if err != nil {
			t.Fatalf("formatted output does not parse: %v\n%s", err, parsed.Format())
		}
		if !sameSettings(parsed, again) {
			t.Fatalf("round trip changed settings:\n%#v\n%#v", parsed, again)
		}
	})
}
