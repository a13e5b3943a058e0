// Command sigcount prints "ready", then the name of each SIGTERM and
// SIGUSR1 it is sent, one a line, for the time given (a Go duration), and
// exits: what a test counts to tell one delivery from two.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: sigcount DURATION")
		os.Exit(2)
	}
	d, err := time.ParseDuration(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "sigcount:", err)
		os.Exit(2)
	}
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGUSR1)
	fmt.Println("ready")
	end := time.After(d)
	for {
		select {
		case s := <-sigs:
			name := "USR1"
			if s == syscall.SIGTERM {
				name = "TERM"
			}
			fmt.Println(name)
		case <-end:
			return
		}
	}
}
