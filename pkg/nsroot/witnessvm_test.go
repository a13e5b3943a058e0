//go:build amd64

package nsroot

import (
	"os"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// On amd64 the witness shares this process's memory (nothing copied at
// the fork), and not its descriptors; stop unmaps its stack.
func TestWitnessSharesMemoryNotDescriptors(t *testing.T) {
	w, err := startWitness()
	if err != nil {
		t.Fatal(err)
	}
	defer w.stop()
	const kcmpVM, kcmpFiles = 1, 2
	kcmp := func(kind int) (uintptr, syscall.Errno) {
		r, _, errno := syscall.Syscall6(unix.SYS_KCMP, uintptr(os.Getpid()), uintptr(w.pid), uintptr(kind), 0, 0, 0)
		return r, errno
	}
	if r, errno := kcmp(kcmpVM); errno == syscall.EPERM || errno == syscall.ENOSYS {
		t.Skipf("kcmp: %v", errno)
	} else if errno != 0 || r != 0 {
		t.Errorf("kcmp(KCMP_VM) = %d, %v: the witness does not share this process's memory", r, errno)
	}
	if r, errno := kcmp(kcmpFiles); errno != 0 || r == 0 {
		t.Errorf("kcmp(KCMP_FILES) = %d, %v: the witness shares this process's descriptor table", r, errno)
	}
	if w.mem == nil {
		t.Fatal("no mapping kept for the witness's stack")
	}
	w.stop()
	if w.mem != nil {
		t.Error("stop kept the witness's mapping")
	}
}
