package config

import (
	"bytes"
	"fmt"
	"strings"
)

// Sysconfig is the legacy host file /etc/sysconfig/chos: shell assignments of
// which chos uses CHOS (the configuration path) and BINDMOUNT (host paths
// bound into every tree). Other keys (MAKELINKS) are accepted and ignored.
type Sysconfig struct {
	ConfigPath string
	BindMounts []Bind
}

// ParseSysconfig reads KEY=value and KEY="value" lines. It does not run a
// shell: expansions and command substitutions are refused, not evaluated.
func ParseSysconfig(name string, data []byte) (*Sysconfig, error) {
	s := &Sysconfig{}
	for i, raw := range bytes.Split(data, []byte("\n")) {
		at := Position{File: name, Line: i + 1}
		line := strings.TrimSpace(string(raw))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		key, value, ok := strings.Cut(line, "=")
		if !ok || !validEnvName(key) {
			return nil, &Error{at, fmt.Sprintf("expected KEY=value, got %q", line)}
		}
		value, err := unquote(value)
		if err != nil {
			return nil, &Error{at, err.Error()}
		}
		switch key {
		case "CHOS":
			p, err := absPath(value)
			if err != nil {
				return nil, &Error{at, "CHOS: " + err.Error()}
			}
			s.ConfigPath = p
		case "BINDMOUNT":
			seen := map[string]bool{}
			for _, f := range strings.Fields(value) {
				p, err := absPath(f)
				if err != nil {
					return nil, &Error{at, "BINDMOUNT: " + err.Error()}
				}
				if seen[p] {
					continue // the original list names /sys and /proc twice
				}
				seen[p] = true
				// The original skipped entries missing on the host (/selinux).
				s.BindMounts = append(s.BindMounts, Bind{Source: p, Dest: p, Optional: true, At: at})
			}
		}
	}
	return s, nil
}

func unquote(v string) (string, error) {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') {
		if v[len(v)-1] != v[0] {
			return "", fmt.Errorf("unterminated quote in %q", v)
		}
		v = v[1 : len(v)-1]
	}
	if strings.ContainsAny(v, "$`\\\"'") {
		return "", fmt.Errorf("shell expansion or quoting in %q is not supported; write the value literally", v)
	}
	return v, nil
}
