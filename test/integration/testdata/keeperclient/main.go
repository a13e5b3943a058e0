// Command keeperclient connects to a keeper's socket as whoever runs it and
// says what it got: "namespaces N" (the descriptors received), "nothing"
// (the keeper closed the connection), or "refused: ERROR".
//
//	keeperclient @chos-userns/UID/TREE.KEY
package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: keeperclient ADDRESS")
		os.Exit(2)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: os.Args[1]}); err != nil {
		fmt.Println("refused:", err)
		return
	}
	tv := unix.NsecToTimeval(5e9)
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(2*4))
	n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, 0)
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	fds := 0
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			if got, err := unix.ParseUnixRights(&m); err == nil {
				fds += len(got)
			}
		}
	}
	if n == 0 && fds == 0 {
		fmt.Println("nothing")
		return
	}
	fmt.Println("namespaces", fds)
}
