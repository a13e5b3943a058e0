package spec

import "strings"

// OpDevices stands for the steps that show the CDI devices of the view's
// Devices in the tree whose root is Source (InView: an image's, mounted
// by the view): the launch that builds the view reads their specs and
// expands it (package devices) into overlays of the tree's top-level
// directories (their top layers below Added, /etc's being its own), the
// loader cache, binds, links and the environment file. A launch that
// enters a cached view reads no spec: the key covers the spec files'
// stamps instead. HostRoot is where the host's root is seen, NoSuid the
// tree's entries' flag.
const OpDevices Op = "devices"

// Devices are the CDI devices a view shows, and where their specs are
// read. Paths are as the launching process reaches them.
type Devices struct {
	Names []string // qualified (VENDOR/CLASS=NAME), sorted, without duplicates
	// SpecDirs are the spec directories, lowest priority first; Specs the
	// spec files found there when the launch was planned, which the cache
	// key stamps.
	SpecDirs []string
	Specs    []string
	// Reader is the program that parses the specs (cmd/chos-cdi).
	Reader string
	// Trusted: only spec files that pass the trust rule are read, as the
	// configuration (chos is installed setuid).
	Trusted bool
}

// DeviceEnvFile holds, in a view with devices, the variables their specs
// set, each KEY=VALUE ended by a NUL: written when the view is built, so
// that a launch entering a cached view needs no spec.
const DeviceEnvFile = "/.chos/devices.env"

// DeviceEnvContent is what DeviceEnvFile holds for env: each KEY=VALUE
// ended by a NUL (a value may hold a newline).
func DeviceEnvContent(env []string) string {
	var b strings.Builder
	for _, kv := range env {
		b.WriteString(kv)
		b.WriteByte(0)
	}
	return b.String()
}

// ParseDeviceEnv reads what DeviceEnvContent wrote.
func ParseDeviceEnv(data []byte) []string {
	var env []string
	for _, kv := range strings.Split(string(data), "\x00") {
		if kv != "" {
			env = append(env, kv)
		}
	}
	return env
}
