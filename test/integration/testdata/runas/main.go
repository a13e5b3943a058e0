// Command runas runs a command with numeric ids: runas UID GID GIDS -- CMD
// ARGS (GIDS comma-separated). Unlike setpriv it looks no name up, so it
// works while the name service it would ask is made to hang on purpose.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	if len(os.Args) < 6 || os.Args[4] != "--" {
		fmt.Fprintln(os.Stderr, "usage: runas UID GID GIDS -- CMD [ARGS...]")
		os.Exit(2)
	}
	num := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, "runas:", err)
			os.Exit(2)
		}
		return n
	}
	var gids []int
	for _, g := range strings.Split(os.Args[3], ",") {
		if g != "" {
			gids = append(gids, num(g))
		}
	}
	must := func(err error) {
		if err != nil {
			fmt.Fprintln(os.Stderr, "runas:", err)
			os.Exit(126)
		}
	}
	must(syscall.Setgroups(gids))
	must(syscall.Setgid(num(os.Args[2])))
	must(syscall.Setuid(num(os.Args[1])))
	prog, err := exec.LookPath(os.Args[5])
	must(err)
	must(syscall.Exec(prog, os.Args[5:], os.Environ()))
}
