// Package devices gives OS trees the host's devices the way container
// runtimes do, through the Container Device Interface (CDI,
// tags.cncf.io/container-device-interface): what a user may ask for (the
// admin's `devices =` rules), which spec files describe the devices (read
// only where root alone could have written them), and what chos makes of a
// device's container edits: binds, links, the loader's cache, environment.
// Parsing and validating the specs is the CDI library's, in a helper
// program (cmd/chos-cdi) that only launches asking for a device run: its
// YAML decoder would cost every launch its start-up.
package devices

import (
	"sort"
	"strconv"
	"strings"

	"tags.cncf.io/container-device-interface/pkg/parser"

	"github.com/chos-hpc/chos/pkg/config"
)

// EnvVar is the variable that asks for devices where no option can: login
// shells, pam_chos sessions, `chos login`. A list like --device's.
const EnvVar = "CHOS_DEVICES"

// ParseRequest reads what a user asks for: qualified CDI device names
// (VENDOR/CLASS=NAME), from lists separated by commas or white space (each
// --device option, or $CHOS_DEVICES). The result is sorted, without
// duplicates: the same request always names the same view.
func ParseRequest(lists ...string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, l := range lists {
		for _, name := range strings.FieldsFunc(l, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
			if _, _, _, err := parser.ParseQualifiedName(name); err != nil {
				return nil, &RequestError{Name: name, Err: err}
			}
			if !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// RequestError is a device name that is not one.
type RequestError struct {
	Name string
	Err  error
}

func (e *RequestError) Error() string {
	return "device " + strconv.Quote(e.Name) + ": " + e.Err.Error() + " (want VENDOR/CLASS=NAME, as nvidia.com/gpu=0)"
}
func (e *RequestError) Unwrap() error { return e.Err }

// Allow returns the rule that lets a user ask for device name: the first
// of rules (a tree's own `devices =`, then %CDI's) whose pattern is name
// itself, or VENDOR/CLASS=* of name's kind. The rule is the whole of it:
// "nvidia.com/gpu=all" allows the device named all, not gpu=0; a site that
// lets users pick GPUs one by one writes nvidia.com/gpu=*.
func Allow(name string, rules ...[]config.DeviceRule) (config.DeviceRule, bool) {
	kind, _, _ := strings.Cut(name, "=")
	for _, list := range rules {
		for _, r := range list {
			if r.Pattern == name || r.Pattern == kind+"=*" {
				return r, true
			}
		}
	}
	return config.DeviceRule{}, false
}

// NotAllowedError is a device the tree's rules do not allow.
type NotAllowedError struct {
	Device string
	Tree   string
	Rules  []config.DeviceRule // every rule that applies to the tree
}

func (e *NotAllowedError) Error() string {
	if len(e.Rules) == 0 {
		return "device " + e.Device + " is not allowed in tree " + e.Tree + ": it allows no device (`devices =` in %TREE " + e.Tree + " or %CDI)"
	}
	var words []string
	for _, r := range e.Rules {
		words = append(words, r.Pattern+" ("+r.At.String()+")")
	}
	return "device " + e.Device + " is not allowed in tree " + e.Tree + "; it allows " + strings.Join(words, ", ")
}

// Check refuses the first name no rule allows.
func Check(names []string, tree string, rules ...[]config.DeviceRule) error {
	for _, n := range names {
		if _, ok := Allow(n, rules...); !ok {
			var all []config.DeviceRule
			for _, l := range rules {
				all = append(all, l...)
			}
			return &NotAllowedError{Device: n, Tree: tree, Rules: all}
		}
	}
	return nil
}
