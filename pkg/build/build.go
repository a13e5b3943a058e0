// Package build holds the values fixed when chos is built (set by the Makefile
// through -ldflags -X), so that a test install can point at its own
// configuration without any run-time override a user could use.
package build

// Version is the chos release, from git describe.
var Version = "0.1.0-dev"

// SysconfDir holds the configuration: SysconfDir/chos, SysconfDir/chos.d/*.conf
// and SysconfDir/sysconfig/chos.
var SysconfDir = "/etc"

// ChosRoot is the host directory on which a view is assembled before the root
// switch; it must exist (make install creates it).
var ChosRoot = "/chos"

// CacheDir keeps the cached mount namespaces of trees (CacheDir/ns), bound
// there by the setuid launcher; a tmpfs such as /run, so that none survives
// a reboot.
var CacheDir = "/run/chos"

// CDIHelper is the program that reads Container Device Interface specs for
// launches that ask for devices (cmd/chos-cdi, package devices): installed
// under LIBEXECDIR, outside PATH.
var CDIHelper = "/usr/local/libexec/chos/chos-cdi"
