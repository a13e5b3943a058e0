package nsroot

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// holderEnv makes the test binary a holder of namespaces (see TestMain):
// in the user and mount namespace it was started in, it mounts a tmpfs on
// the directory the variable names, writes holderMark there, says "ready"
// and waits.
const holderEnv = "CHOS_NSROOT_NS_HOLDER"

const holderMark = "only in the joined view\n"

func runHolder(dir string) {
	if err := unix.Mount("holder", dir, "tmpfs", 0, "mode=0755"); err != nil {
		os.Stdout.WriteString("mount: " + err.Error() + "\n")
		os.Exit(1)
	}
	if err := os.WriteFile(filepath.Join(dir, "mark"), []byte(holderMark), 0o644); err != nil {
		os.Stdout.WriteString("write: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("ready\n")
	time.Sleep(time.Hour)
}

// holdNamespaces starts a holder in a user and mount namespace of its own
// (mapping this process's ids to themselves, as a keeper's) and returns
// descriptors of its namespaces and the directory only they show marked.
func holdNamespaces(t *testing.T) (user, mnt int, dir string) {
	t.Helper()
	dir = t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holderEnv+"="+dir)
	cmd.SysProcAttr = ownNamespaces()
	cmd.SysProcAttr.Pdeathsig = 0
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting a namespace holder (user namespaces allowed?): %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("the namespace holder said %q", line)
	}
	for _, ns := range []struct {
		fd   *int
		name string
	}{{&user, "user"}, {&mnt, "mnt"}} {
		fd, err := unix.Open("/proc/"+strconv.Itoa(cmd.Process.Pid)+"/ns/"+ns.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		*ns.fd = fd
	}
	return user, mnt, dir
}
