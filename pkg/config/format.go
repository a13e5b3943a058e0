package config

import (
	"fmt"
	"strings"
)

// Format writes f back in configuration syntax. Parse(Format(f)) yields the
// same settings, which the fuzz test checks: that every parsed setting can be
// written down again is what keeps the syntax free of ambiguities.
func (f *File) Format() string {
	var b strings.Builder
	if len(f.Shells) > 0 {
		b.WriteString("%SHELLS\n")
		for _, a := range f.Shells {
			fmt.Fprintf(&b, "%s:%s\n", a.Name, a.Path)
		}
	}
	section := func(name string, words []string) {
		if len(words) > 0 {
			fmt.Fprintf(&b, "%%%s\n%s\n", name, strings.Join(words, "\n"))
		}
	}
	section(sectionEnv, f.Env)
	section(sectionBeh, f.Beh)
	if len(f.Binds) > 0 {
		b.WriteString("%BIND\n")
		for _, bd := range f.Binds {
			b.WriteString(bd.spec() + "\n")
		}
	}
	if len(f.HostCommands) > 0 {
		b.WriteString("%HOSTCMD\n")
		for _, hc := range f.HostCommands {
			b.WriteString(hc.Path + "\n")
		}
	}
	if a := f.Audit; a != nil {
		b.WriteString("%AUDIT\n")
		if a.Facility != "" {
			fmt.Fprintf(&b, "facility = %s\n", a.Facility)
		}
		if a.Socket != "" {
			fmt.Fprintf(&b, "socket = %s\n", a.Socket)
		}
	}
	if c := f.CDI; c != nil {
		b.WriteString("%CDI\n")
		if c.SpecDirsSet {
			fmt.Fprintf(&b, "spec-dirs = %s\n", strings.Join(c.SpecDirs, " "))
		}
		if len(c.Devices) > 0 {
			fmt.Fprintf(&b, "devices = %s\n", DevicePatterns(c.Devices))
		}
	}
	for _, t := range f.Trees {
		fmt.Fprintf(&b, "%%TREE %s\n", t.Name)
		if t.Description != "" {
			fmt.Fprintf(&b, "description = %s\n", t.Description)
		}
		for _, bd := range t.Binds {
			fmt.Fprintf(&b, "bind = %s\n", bd.spec())
		}
		if t.IdentitySet {
			fmt.Fprintf(&b, "identity = %s\n", strings.Join(t.Identity, " "))
		}
		if t.SetuidSet {
			fmt.Fprintf(&b, "setuid = %s\n", map[bool]string{true: "allow", false: "deny"}[t.AllowSetuid])
		}
		if t.CacheSet {
			fmt.Fprintf(&b, "cache = %s\n", map[bool]string{true: "no", false: "yes"}[t.NoCache])
		}
		if len(t.Users) > 0 {
			fmt.Fprintf(&b, "users = %s\n", strings.Join(t.Users, " "))
		}
		if len(t.Groups) > 0 {
			fmt.Fprintf(&b, "groups = %s\n", strings.Join(t.Groups, " "))
		}
		if len(t.Devices) > 0 {
			fmt.Fprintf(&b, "devices = %s\n", DevicePatterns(t.Devices))
		}
	}
	return b.String()
}

// DevicePatterns are rules' patterns as a `devices =` line has them:
// separated by spaces.
func DevicePatterns(rules []DeviceRule) string {
	words := make([]string, len(rules))
	for i, r := range rules {
		words[i] = r.Pattern
	}
	return strings.Join(words, " ")
}

func (bd Bind) spec() string {
	s := bd.Source
	if bd.Dest != bd.Source {
		s += " " + bd.Dest
	}
	if bd.ReadOnly {
		s += " ro"
	}
	if bd.Optional {
		s += " optional"
	}
	return s
}

// String shows a bind as it would be written in %BIND.
func (bd Bind) String() string { return bd.spec() }
