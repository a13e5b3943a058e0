// Command euid prints its effective uid. The integration tests install it
// setuid root, on the host and inside a tree, to see whether the setuid bit
// gives root.
package main

import (
	"fmt"
	"syscall"
)

func main() {
	fmt.Println(syscall.Geteuid())
}
