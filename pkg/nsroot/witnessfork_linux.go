//go:build !amd64

package nsroot

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// forkWitness forks; the child becomes the witness and never returns. (On
// amd64 the witness shares this process's memory: witnessvm_linux.go.)
//
//go:nosplit
//go:norace
func forkWitness(m *witnessMem) (int, []byte, syscall.Errno) {
	pid, _, errno := syscall.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if errno != 0 || pid != 0 {
		return int(pid), nil, errno
	}
	witnessLoop(m)
	return 0, nil, 0
}
