package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/chos-hpc/chos/pkg/audit"
	"github.com/chos-hpc/chos/pkg/trust"
)

// Paths says where the system configuration lives.
type Paths struct {
	Main      string // /etc/chos
	DropIns   string // /etc/chos.d, files *.conf read in name order
	Sysconfig string // /etc/sysconfig/chos (legacy BINDMOUNT list)
	// Explicit is set when Main was given on the command line; the legacy
	// CHOS= setting of the sysconfig file then does not move it.
	Explicit bool
}

// DefaultPaths returns the paths below a configuration directory (/etc).
func DefaultPaths(sysconfdir string) Paths {
	return Paths{
		Main:      filepath.Join(sysconfdir, "chos"),
		DropIns:   filepath.Join(sysconfdir, "chos.d"),
		Sysconfig: filepath.Join(sysconfdir, "sysconfig", "chos"),
	}
}

// Set is every system configuration file chos read, main file first.
type Set struct {
	Files     []*File
	Sysconfig *Sysconfig // nil when the host has none
	// Personal is the user's own file of personal trees, used only when
	// chos runs without privilege; nil when there is none.
	Personal *File
	// Digest fingerprints every system file read (names and contents):
	// a cached view is never used once it changes. (FNV-1a, 64 bits: the
	// files are root's; see plan.CacheKey.)
	Digest string
}

// Load reads the system configuration. With requireRoot (always so when chos
// runs setuid) every file and every directory above it must be owned by root
// and not writable by group or others: chos acts as root on what they say.
// It stops at the first error.
func Load(p Paths, requireRoot bool) (*Set, error) {
	set, errs := load(p, requireRoot, false)
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return set, nil
}

// LoadAll reads the system configuration as far as it can and returns
// every error: a file that cannot be read is skipped, and each file's
// errors are all reported (ParseAll). Ownership is not checked (`chos
// check` does that itself). For `chos check` and `chos config`.
func LoadAll(p Paths) (*Set, []error) {
	return load(p, false, true)
}

// readError is a configuration file that could not be read: a type, not
// fmt.Errorf, as the optional sysconfig file is missing on most hosts and
// fmt's first use would cost every launch dearly.
type readError struct{ err error }

func (e *readError) Error() string { return "reading configuration: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

func load(p Paths, requireRoot, all bool) (*Set, []error) {
	set := &Set{}
	var errs []error
	digest := fnv.New64a()
	read := func(path string) ([]byte, error) {
		if requireRoot {
			if err := CheckRootOwned(path); err != nil {
				return nil, err
			}
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, &readError{err}
		}
		// (no fmt on the launch path: its first use costs a launch dearly)
		digest.Write([]byte(path + "\x00" + strconv.Itoa(len(data)) + "\x00"))
		digest.Write(data)
		return data, nil
	}
	// parse reads one file of chos syntax into the set; it says whether
	// loading goes on.
	parse := func(path string, data []byte) bool {
		f, ferrs := parse(path, data, all)
		for _, e := range ferrs {
			errs = append(errs, e)
		}
		if f != nil {
			set.Files = append(set.Files, f)
		}
		return all || len(ferrs) == 0
	}

	if data, err := read(p.Sysconfig); err == nil {
		if set.Sysconfig, err = ParseSysconfig(p.Sysconfig, data); err != nil {
			if errs = append(errs, err); !all {
				return nil, errs
			}
		} else if set.Sysconfig.ConfigPath != "" && !p.Explicit {
			p.Main = set.Sysconfig.ConfigPath
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		if errs = append(errs, err); !all {
			return nil, errs
		}
	}

	if data, err := read(p.Main); err != nil {
		if errs = append(errs, err); !all {
			return nil, errs
		}
	} else if !parse(p.Main, data) {
		return nil, errs
	}

	entries, err := os.ReadDir(p.DropIns)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		if errs = append(errs, fmt.Errorf("reading configuration directory: %w", err)); !all {
			return nil, errs
		}
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".conf") && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		path := filepath.Join(p.DropIns, n)
		data, err := read(path)
		if err != nil {
			if errs = append(errs, err); !all {
				return nil, errs
			}
			continue
		}
		if !parse(path, data) {
			return nil, errs
		}
	}
	set.Digest = hex.EncodeToString(digest.Sum(nil))
	return set, errs
}

// AuditConfig is the effective %AUDIT configuration: each key as the last
// file read set it, else its default (At is then the zero Position).
type AuditConfig struct {
	Facility   string
	FacilityAt Position
	Socket     string
	SocketAt   Position
}

// Audit merges the %AUDIT sections of the system files.
func (s *Set) Audit() AuditConfig {
	c := AuditConfig{Facility: audit.DefaultFacility, Socket: audit.DefaultSocket}
	if s == nil {
		return c
	}
	for _, f := range s.Files {
		a := f.Audit
		if a == nil {
			continue
		}
		if a.Facility != "" {
			at := a.Lines["facility"]
			c.Facility, c.FacilityAt = a.Facility, at[len(at)-1]
		}
		if a.Socket != "" {
			at := a.Lines["socket"]
			c.Socket, c.SocketAt = a.Socket, at[len(at)-1]
		}
	}
	return c
}

// DefaultSpecDirs are where Container Device Interface specs are read when
// no %CDI section sets spec-dirs: the CDI's own defaults, lowest priority
// first (tags.cncf.io/container-device-interface/pkg/cdi.DefaultSpecDirs).
var DefaultSpecDirs = []string{"/etc/cdi", "/var/run/cdi"}

// CDIConfig is the effective %CDI configuration.
type CDIConfig struct {
	SpecDirs   []string
	SpecDirsAt Position // zero for the default
	// Devices are the rules of every %CDI section, in reading order: what
	// every tree allows.
	Devices []DeviceRule
}

// CDI merges the %CDI sections of the system files: spec-dirs as the last
// file that sets it says, devices from all.
func (s *Set) CDI() CDIConfig {
	c := CDIConfig{SpecDirs: DefaultSpecDirs}
	if s == nil {
		return c
	}
	for _, f := range s.Files {
		if f.CDI == nil {
			continue
		}
		if f.CDI.SpecDirsSet {
			at := f.CDI.Lines["spec-dirs"]
			c.SpecDirs, c.SpecDirsAt = f.CDI.SpecDirs, at[len(at)-1]
		}
		c.Devices = append(c.Devices, f.CDI.Devices...)
	}
	return c
}

// CheckRootOwned refuses a configuration file unless it, every directory
// above it, and (if it is reached through symbolic links) every component
// of its target are owned by root and not writable by group or others.
func CheckRootOwned(path string) error {
	if err := trust.CheckPath(path); err != nil {
		return fmt.Errorf("refusing configuration: %w", err)
	}
	return nil
}

// PersonalPath is the file in which a user declares personal trees.
func PersonalPath(home, xdgConfigHome string) string {
	if xdgConfigHome != "" && filepath.IsAbs(xdgConfigHome) {
		return filepath.Join(xdgConfigHome, "chos", "chos.conf")
	}
	return filepath.Join(home, ".config", "chos", "chos.conf")
}

// LoadPersonal reads a user's personal trees; a missing file is none. It
// must be called with the user's own rights: nothing in it is trusted.
func LoadPersonal(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading personal trees: %w", err)
	}
	f, err := Parse(path, data)
	if err == nil && f.Audit != nil {
		return nil, &Error{f.Audit.At, "%AUDIT is for the system configuration: a user's own file cannot change where chos logs"}
	}
	if err == nil && f.CDI != nil {
		return nil, &Error{f.CDI.At, "%CDI is for the system configuration; allow devices in a personal tree with `devices =` in its %TREE section"}
	}
	return f, err
}
