// gofloor is the benchmark's floor for a Go launcher (bench/run builds it
// static, as chos is built): with arguments it execs them directly
// (syscall.Exec, no namespace, no tree), without it exits 0. What chos's
// cached launch costs above `gofloor /bin/true` is chos's own work; what
// gofloor costs above /bin/true is the Go runtime's start.
//
// A module of its own, so that chos's `go vet ./...` and `go test ./...`
// leave it out.
package main

import (
	"os"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		return
	}
	err := syscall.Exec(os.Args[1], os.Args[1:], os.Environ())
	os.Stderr.WriteString("gofloor: exec " + os.Args[1] + ": " + err.Error() + "\n")
	os.Exit(127)
}
