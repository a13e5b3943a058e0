// Command capprobe prints its effective uid and its effective capability
// and no_new_privs state, one "key=value" a line. The integration tests
// install it setuid root inside trees to see what the setuid bit gives.
package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

func main() {
	fmt.Printf("euid=%d\n", syscall.Geteuid())
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "CapEff", "CapBnd", "NoNewPrivs":
			fmt.Printf("%s=%s\n", k, strings.TrimSpace(v))
		}
	}
}
