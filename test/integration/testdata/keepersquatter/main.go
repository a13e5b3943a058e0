// Command keepersquatter takes a keeper's abstract socket name first, as
// another user could (abstract names are first come, first served, and
// /proc/net/unix lists every one), and answers as a stalling keeper would:
// it listens with no room in its queue, fills that queue with a connection
// of its own, and never accepts. It prints "ready" once the name is its,
// then waits to be killed.
//
//	keepersquatter @chos-userns/UID/TREE.KEY
package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: keepersquatter ADDRESS")
		os.Exit(2)
	}
	addr := &unix.SockaddrUnix{Name: os.Args[1]}
	lis, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0)
	if err == nil {
		err = unix.Bind(lis, addr)
	}
	if err == nil {
		err = unix.Listen(lis, 0) // (a queue of one: full after one connection)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "keepersquatter:", err)
		os.Exit(1)
	}
	own, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_NONBLOCK, 0)
	if err == nil {
		err = unix.Connect(own, addr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "keepersquatter: filling the queue:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	for {
		unix.Pause()
	}
}
