//go:build amd64

package nsroot

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The witness shares this process's memory (CLONE_VM, as a thread does,
// but a process of its own: its own descriptors, signal handlers, pending
// signals and thread group), on a stack of its own. A fork copied this
// process's page tables, then every page either process wrote while the
// command ran, each write-protection flushing the TLB of every processor
// running one of this process's threads: measured, that was about 0.85 ms
// of CPU time of a joined launch's 6.7 (2-core VM, interleaved). The
// witness's stack and its witnessMem are one mapping of their own, which
// neither the collector nor anything else of this process touches, unmapped
// by stop once the witness is collected; the witness, started with every
// signal blocked, runs nothing but witnessLoop, which makes system calls
// and touches nothing but that mapping.

// witnessStack is the size of the witness's mapping: its witnessMem at the
// bottom, its stack above (witnessLoop is nosplit: well under a page).
const witnessStack = 64 << 10

// cloneWitness is clone(flags, stack, ...) whose child runs witnessLoop(m)
// on stack and never returns (witnessclone_amd64.s).
func cloneWitness(flags, stack uintptr, m *witnessMem) (pid uintptr, errno syscall.Errno)

// forkWitness starts the witness in this process's memory and returns its
// pid and the mapping it runs on.
func forkWitness(m *witnessMem) (int, []byte, syscall.Errno) {
	mem, err := unix.Mmap(-1, 0, witnessStack, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_STACK)
	if err != nil {
		return 0, nil, err.(syscall.Errno)
	}
	wm := (*witnessMem)(unsafe.Pointer(&mem[0]))
	*wm = *m
	// (the top of the mapping, 16-byte aligned as it is page-aligned)
	top := uintptr(unsafe.Pointer(&mem[0])) + witnessStack
	pid, errno := cloneWitness(unix.CLONE_VM|uintptr(syscall.SIGCHLD), top, wm)
	if errno != 0 {
		unix.Munmap(mem)
		return 0, nil, errno
	}
	return int(pid), mem, 0
}
