// Package config parses the CHOS configuration files: the system file
// /etc/chos (legacy %SHELLS and %ENV, plus chos's own %BIND, %HOSTCMD, %TREE
// and %AUDIT sections), drop-ins in /etc/chos.d, a tree's own /etc/chos.conf (%ENV,
// %BEH) and the legacy /etc/sysconfig/chos. Parsing is pure; Load adds the
// file reading and the ownership rules a setuid program needs.
package config

import (
	"bytes"
	"fmt"
	"path"
	"strings"
	"unicode"

	"tags.cncf.io/container-device-interface/pkg/parser"

	"github.com/chos-hpc/chos/pkg/audit"
)

// Position names a line of a configuration file, for error messages.
type Position struct {
	File string
	Line int
}

func (p Position) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Error is a configuration error at a known place.
type Error struct {
	At  Position
	Msg string
}

func (e *Error) Error() string { return e.At.String() + ": " + e.Msg }

// Alias is one `name:path` line of %SHELLS.
type Alias struct {
	Name string
	Path string
	At   Position
}

// Bind is a host path bound into a tree. Dest is the path inside the tree.
type Bind struct {
	Source   string
	Dest     string
	ReadOnly bool
	// Optional binds whose source is missing on the host are skipped with a
	// note instead of failing the launch.
	Optional bool
	At       Position
}

// HostCommand is a host program that every tree runs on the host, from
// inside the tree by its base name (a %HOSTCMD line).
type HostCommand struct {
	Path string
	At   Position
}

// TreeSettings is one %TREE section: chos's per-tree additions.
type TreeSettings struct {
	Name        string // any alias of the tree
	Description string
	Binds       []Bind
	// Identity replaces the default list of host identity files when
	// IdentitySet is true (an empty list then means "none").
	Identity    []string
	IdentitySet bool
	// AllowSetuid opts the tree out of no_new_privs and nosuid, so that
	// admin-approved setuid tools (sudo) inside it work.
	AllowSetuid bool
	// SetuidSet and CacheSet say the section sets them: a later file's
	// `setuid = deny` or `cache = yes` then overrides an earlier one.
	SetuidSet, CacheSet bool
	Users               []string
	Groups              []string
	// NoCache launches this tree in a private namespace every time.
	NoCache bool
	// Devices are the CDI devices users may ask for in this tree, in
	// addition to those %CDI allows in every tree.
	Devices []DeviceRule
	At      Position
	// Lines are the lines that set each key in this section, in order
	// (`chos config` shows them; a refusal names the users/groups lines).
	Lines map[string][]Position
}

// Audit is an %AUDIT section: where chos writes its audit lines (package
// audit). Empty values are not set in this file.
type Audit struct {
	Facility string   // a syslog facility name, or "off"
	Socket   string   // the syslog daemon's datagram socket
	At       Position // the file's first %AUDIT line
	Lines    map[string][]Position
}

// DeviceRule is one word of a `devices =` line: the CDI devices a user may
// ask for. Pattern is a qualified device name, VENDOR/CLASS=NAME, or
// VENDOR/CLASS=* for every device of that kind (the names follow the
// Container Device Interface, checked with its parser package).
type DeviceRule struct {
	Pattern string
	At      Position
}

// CDI is a %CDI section: where the Container Device Interface specs are
// read, and the devices every tree allows.
type CDI struct {
	// SpecDirs replaces the default directories when SpecDirsSet, lowest
	// priority first (a later directory's device wins, as in CDI).
	SpecDirs    []string
	SpecDirsSet bool
	Devices     []DeviceRule
	At          Position // the file's first %CDI line
	Lines       map[string][]Position
}

// File is the parsed content of one configuration file.
type File struct {
	Name   string
	Shells []Alias
	Env    []string
	EnvAt  []Position // the line of each Env entry
	Beh    []string
	Binds  []Bind
	// HostCommands are the %HOSTCMD lines, in file order.
	HostCommands []HostCommand
	Trees        []TreeSettings
	Audit        *Audit // nil without an %AUDIT section
	CDI          *CDI   // nil without a %CDI section
}

// Section names. The first three are the original CHOS ones.
const (
	sectionNone   = ""
	sectionShells = "SHELLS"
	sectionEnv    = "ENV"
	sectionBeh    = "BEH"
	sectionBind   = "BIND"
	sectionHost   = "HOSTCMD"
	sectionTree   = "TREE"
	sectionAudit  = "AUDIT"
	sectionCDI    = "CDI"
	// sectionSkip follows a section line in error: its lines are not
	// reported again (ParseAll).
	sectionSkip = "%skip"
)

const knownSections = "%SHELLS, %ENV, %BEH, %BIND, %HOSTCMD, %TREE, %AUDIT, %CDI"

// Parse reads one configuration file, and stops at the first error. name
// is used in error messages only.
func Parse(name string, data []byte) (*File, error) {
	f, errs := parse(name, data, false)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return f, nil
}

// ParseAll reads a whole configuration file and returns every error in it
// (each naming its line) with what did parse: for `chos check` and `chos
// config`, which report all problems at once. Launches use Parse: any error
// refuses them.
func ParseAll(name string, data []byte) (*File, []*Error) {
	return parse(name, data, true)
}

func parse(name string, data []byte, all bool) (*File, []*Error) {
	f := &File{Name: name}
	section := sectionNone
	var tree *TreeSettings
	var errs []*Error
	for i, raw := range bytes.Split(data, []byte("\n")) {
		at := Position{File: name, Line: i + 1}
		line := strings.TrimSpace(string(raw))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var err error
		if strings.ContainsRune(line, 0) {
			err = fmt.Errorf("NUL byte in line")
		} else if strings.HasPrefix(line, "%") {
			section, tree, err = f.startSection(line, at)
		} else {
			err = f.parseLine(section, tree, line, at)
		}
		if err != nil {
			errs = append(errs, &Error{at, err.Error()})
			if !all {
				return nil, errs
			}
		}
	}
	return f, errs
}

// startSection reads a % line. A section line in error skips its section.
func (f *File) startSection(line string, at Position) (string, *TreeSettings, error) {
	fields := strings.Fields(line[1:])
	if len(fields) == 0 {
		return sectionSkip, nil, fmt.Errorf("empty section name after %%")
	}
	section := fields[0]
	switch section {
	case sectionShells, sectionEnv, sectionBeh, sectionBind, sectionHost, sectionAudit, sectionCDI:
		if len(fields) != 1 {
			return sectionSkip, nil, fmt.Errorf("%%%s takes no argument", section)
		}
		if section == sectionAudit && f.Audit == nil {
			f.Audit = &Audit{At: at}
		}
		if section == sectionCDI && f.CDI == nil {
			f.CDI = &CDI{At: at}
		}
	case sectionTree:
		if len(fields) != 2 {
			return sectionSkip, nil, fmt.Errorf("%%TREE needs exactly one tree name, as in `%%TREE el7`")
		}
		f.Trees = append(f.Trees, TreeSettings{Name: fields[1], At: at})
		return section, &f.Trees[len(f.Trees)-1], nil
	default:
		return sectionSkip, nil, fmt.Errorf("unknown section %%%s (known: %s)", section, knownSections)
	}
	return section, nil, nil
}

// parseLine reads a line inside a section.
func (f *File) parseLine(section string, tree *TreeSettings, line string, at Position) error {
	switch section {
	case sectionNone:
		return fmt.Errorf("line outside any section (start one with %%SHELLS, %%ENV, %%BIND or %%TREE NAME)")
	case sectionSkip:
		return nil
	case sectionShells:
		a, err := parseAlias(line)
		if err != nil {
			return err
		}
		a.At = at
		f.Shells = append(f.Shells, a)
	case sectionEnv:
		for _, v := range strings.Fields(line) {
			if !validEnvName(v) {
				return fmt.Errorf("%q is not a valid environment variable name", v)
			}
			f.Env = append(f.Env, v)
			f.EnvAt = append(f.EnvAt, at)
		}
	case sectionBeh:
		for _, w := range strings.Fields(stripComment(line)) {
			if !validEnvName(w) {
				return fmt.Errorf("%q is not a valid %%BEH switch (letters, digits and _)", w)
			}
			f.Beh = append(f.Beh, w)
		}
	case sectionBind:
		b, err := parseBind(stripComment(line))
		if err != nil {
			return err
		}
		b.At = at
		f.Binds = append(f.Binds, b)
	case sectionHost:
		for _, p := range strings.Fields(stripComment(line)) {
			clean, err := absPath(p)
			if err != nil {
				return fmt.Errorf("host command: %w", err)
			}
			f.HostCommands = append(f.HostCommands, HostCommand{Path: clean, At: at})
		}
	case sectionTree:
		return parseTreeKey(tree, line, at)
	case sectionAudit:
		return parseAuditKey(f.Audit, line, at)
	case sectionCDI:
		return parseCDIKey(f.CDI, line, at)
	}
	return nil
}

func parseAlias(line string) (Alias, error) {
	name, p, ok := strings.Cut(line, ":")
	name, p = strings.TrimSpace(name), strings.TrimSpace(p)
	switch {
	case !ok:
		return Alias{}, fmt.Errorf("expected alias:path, got %q", line)
	case name == "":
		return Alias{}, fmt.Errorf("empty alias before ':'")
	case strings.IndexFunc(name, blank) >= 0:
		return Alias{}, fmt.Errorf("alias %q contains white space or control characters", name)
	}
	p, err := absPath(p)
	if err != nil {
		return Alias{}, err
	}
	return Alias{Name: name, Path: p}, nil
}

// parseBind reads `SOURCE [DEST] [ro|rw] [optional]`.
func parseBind(spec string) (Bind, error) {
	fields := strings.Fields(spec)
	if len(fields) == 0 {
		return Bind{}, fmt.Errorf("empty bind")
	}
	src, err := absPath(fields[0])
	if err != nil {
		return Bind{}, fmt.Errorf("bind source: %w", err)
	}
	b := Bind{Source: src, Dest: src}
	rest := fields[1:]
	if len(rest) > 0 && strings.HasPrefix(rest[0], "/") {
		if b.Dest, err = absPath(rest[0]); err != nil {
			return Bind{}, fmt.Errorf("bind destination: %w", err)
		}
		rest = rest[1:]
	}
	for _, opt := range rest {
		switch opt {
		case "ro":
			b.ReadOnly = true
		case "rw":
			b.ReadOnly = false
		case "optional":
			b.Optional = true
		default:
			return Bind{}, fmt.Errorf("unknown bind option %q (known: ro, rw, optional)", opt)
		}
	}
	if b.Dest == "/" {
		return Bind{}, fmt.Errorf("bind destination cannot be /")
	}
	return b, nil
}

// choice reads a two-valued key: true for yes, false for no.
func choice(key, value, yes, no string) (bool, error) {
	switch value {
	case yes:
		return true, nil
	case no:
		return false, nil
	}
	return false, fmt.Errorf("%s must be %s or %s, got %q", key, yes, no, value)
}

// keyValue splits a `key = value` line of %TREE or %AUDIT.
func keyValue(line string) (key, value string, err error) {
	key, value, ok := strings.Cut(line, "=")
	if !ok {
		return "", "", fmt.Errorf("expected key = value, got %q", line)
	}
	return strings.TrimSpace(key), stripComment(value), nil
}

func parseTreeKey(t *TreeSettings, line string, at Position) error {
	key, value, err := keyValue(line)
	if err != nil {
		return err
	}
	switch key {
	case "description":
		t.Description = value
	case "bind":
		b, err := parseBind(value)
		if err != nil {
			return err
		}
		b.At = at
		t.Binds = append(t.Binds, b)
	case "identity":
		t.IdentitySet = true
		t.Identity = t.Identity[:0]
		for _, p := range strings.Fields(value) {
			clean, err := absPath(p)
			if err != nil {
				return fmt.Errorf("identity file: %w", err)
			}
			t.Identity = append(t.Identity, clean)
		}
	case "setuid":
		if t.AllowSetuid, err = choice(key, value, "allow", "deny"); err != nil {
			return err
		}
		t.SetuidSet = true
	case "cache":
		noCache, err := choice(key, value, "no", "yes")
		if err != nil {
			return err
		}
		t.NoCache, t.CacheSet = noCache, true
	case "users":
		t.Users = append(t.Users, strings.Fields(value)...)
	case "groups":
		t.Groups = append(t.Groups, strings.Fields(value)...)
	case "devices":
		rules, err := parseDeviceRules(value, at)
		if err != nil {
			return err
		}
		t.Devices = append(t.Devices, rules...)
	default:
		return fmt.Errorf("unknown key %q in %%TREE %s (known: description, bind, identity, setuid, cache, users, groups, devices)", key, t.Name)
	}
	addLine(&t.Lines, key, at)
	return nil
}

// parseAuditKey reads a key of %AUDIT.
func parseAuditKey(a *Audit, line string, at Position) error {
	key, value, err := keyValue(line)
	if err != nil {
		return err
	}
	switch key {
	case "facility":
		if !audit.ValidFacility(value) {
			return fmt.Errorf("facility must be %s, got %q", audit.FacilityNames, value)
		}
		a.Facility = value
	case "socket":
		p, err := absPath(value)
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		a.Socket = p
	default:
		return fmt.Errorf("unknown key %q in %%AUDIT (known: facility, socket)", key)
	}
	addLine(&a.Lines, key, at)
	return nil
}

// parseCDIKey reads a key of %CDI.
func parseCDIKey(c *CDI, line string, at Position) error {
	key, value, err := keyValue(line)
	if err != nil {
		return err
	}
	switch key {
	case "spec-dirs":
		c.SpecDirsSet = true
		c.SpecDirs = c.SpecDirs[:0]
		for _, p := range strings.Fields(value) {
			clean, err := absPath(p)
			if err != nil {
				return fmt.Errorf("spec-dirs: %w", err)
			}
			c.SpecDirs = append(c.SpecDirs, clean)
		}
	case "devices":
		rules, err := parseDeviceRules(value, at)
		if err != nil {
			return err
		}
		c.Devices = append(c.Devices, rules...)
	default:
		return fmt.Errorf("unknown key %q in %%CDI (known: spec-dirs, devices)", key)
	}
	addLine(&c.Lines, key, at)
	return nil
}

// parseDeviceRules reads the words of a `devices =` line.
func parseDeviceRules(value string, at Position) ([]DeviceRule, error) {
	words := strings.Fields(value)
	if len(words) == 0 {
		return nil, fmt.Errorf("devices: no device named (VENDOR/CLASS=NAME, or VENDOR/CLASS=* for all of a kind)")
	}
	rules := make([]DeviceRule, 0, len(words))
	for _, w := range words {
		if err := ValidDevicePattern(w); err != nil {
			return nil, err
		}
		rules = append(rules, DeviceRule{Pattern: w, At: at})
	}
	return rules, nil
}

// ValidDevicePattern checks a device rule: a qualified CDI device name, or
// VENDOR/CLASS=* for every device of that kind.
func ValidDevicePattern(p string) error {
	kind, name, ok := strings.Cut(p, "=")
	if ok && name == "*" {
		vendor, class := parser.ParseQualifier(kind)
		if vendor == "" {
			return fmt.Errorf("device %q: want VENDOR/CLASS=NAME or VENDOR/CLASS=*", p)
		}
		if err := parser.ValidateVendorName(vendor); err != nil {
			return fmt.Errorf("device %q: %w", p, err)
		}
		if err := parser.ValidateClassName(class); err != nil {
			return fmt.Errorf("device %q: %w", p, err)
		}
		return nil
	}
	if _, _, _, err := parser.ParseQualifiedName(p); err != nil {
		return fmt.Errorf("%w (want VENDOR/CLASS=NAME or VENDOR/CLASS=*)", err)
	}
	return nil
}

func addLine(m *map[string][]Position, key string, at Position) {
	if *m == nil {
		*m = map[string][]Position{}
	}
	(*m)[key] = append((*m)[key], at)
}

// stripComment removes a trailing comment (a # at the start of a word) from
// values in chos's own sections; the legacy sections are taken verbatim, as
// the original did.
func stripComment(line string) string {
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "#") {
		return ""
	}
	if i := strings.Index(line, " #"); i >= 0 {
		line = line[:i]
	}
	if i := strings.Index(line, "\t#"); i >= 0 {
		line = line[:i]
	}
	return strings.TrimSpace(line)
}

func absPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("path %q is not absolute", p)
	}
	if strings.IndexFunc(p, blank) >= 0 {
		return "", fmt.Errorf("path %q contains white space or control characters", p)
	}
	return path.Clean(p), nil
}

func blank(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
