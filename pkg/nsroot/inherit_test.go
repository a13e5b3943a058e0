package nsroot

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/chos-hpc/chos/pkg/spec"
)

// startProbeEnv makes the test binary print what RecordStart recorded and
// exit (see TestMain).
const startProbeEnv = "CHOS_NSROOT_START_PROBE"

func TestMain(m *testing.M) {
	if dir := os.Getenv(holderEnv); dir != "" {
		runHolder(dir)
	}
	if os.Getenv(startProbeEnv) != "" {
		RecordStart()
		s := StartState()
		fmt.Printf("%d %d %d\n", s.Ignored, s.Blocked, s.StackLimit)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// What the caller ignored is what chos records as ignored: all of it when
// built as make builds it (tag chos_linkname), at least the signals the
// runtime leaves alone otherwise; and nothing else.
func TestStartSignalsAreTheCallers(t *testing.T) {
	// A child inherits what this process ignores through os/signal.
	signal.Ignore(syscall.SIGUSR2, syscall.SIGTSTP)
	defer signal.Reset(syscall.SIGUSR2, syscall.SIGTSTP)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), startProbeEnv+"=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var ignored SignalSet
	if _, err := fmt.Sscan(string(out), &ignored); err != nil {
		t.Fatalf("cannot parse %q", out)
	}
	if !ignored.Has(int(syscall.SIGTSTP)) {
		t.Errorf("SIGTSTP (which the runtime leaves alone) is not recorded as ignored: %x", ignored)
	}
	if ignored.Has(int(syscall.SIGUSR2)) != StartSignalsKnown {
		t.Errorf("SIGUSR2 recorded as ignored: %v, want %v (StartSignalsKnown): %x", ignored.Has(int(syscall.SIGUSR2)), StartSignalsKnown, ignored)
	}
	// control: what was not ignored is not recorded
	if ignored.Has(int(syscall.SIGUSR1)) || ignored.Has(int(syscall.SIGTERM)) {
		t.Errorf("signals the caller did not ignore are recorded as ignored: %x", ignored)
	}
}

func TestSignalSetIsTheKernelsLayout(t *testing.T) {
	s := SignalSet(0).With(1).With(64).With(0).With(65)
	if s != 1|1<<63 || !s.Has(1) || !s.Has(64) || s.Has(2) || s.Has(0) {
		t.Errorf("set = %x", uint64(s))
	}
}

// The plan reaches the user-namespace child byte for byte; JSON, which it
// crossed as before, turns bytes that are not UTF-8 into U+FFFD.
func TestPlanCrossesToTheChildByteForByte(t *testing.T) {
	p := childRequest{Plan: spec.Plan{View: spec.View{Tree: "el7", Mounts: []spec.Mount{{Op: spec.OpBind, Source: "/srv/\xff", Target: "/x\xfe"}}},
		Process: spec.Process{Dir: "/home/a/\xff\x01dir", DirID: &spec.FileID{Dev: 1, Ino: 2},
			Path: "printf", Argv: []string{"printf", "%s", "\xff", ""}, Env: []string{"A=\xff\xfe", "", "NOEQUALS", "A=2"}}},
		Inherit: Inherited{Recorded: true, Ignored: SignalSet(0).With(13), Blocked: SignalSet(0).With(10), StackLimit: unix.RLIM_INFINITY}}
	var got childRequest
	if err := got.decode(p.encode()); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		t.Errorf("the encoding changed the plan:\n got %+v\nwant %+v", got, p)
	}
	// control: the comparison sees what JSON does to it
	data, _ := json.Marshal(&p)
	var viaJSON childRequest
	json.Unmarshal(data, &viaJSON)
	if reflect.DeepEqual(viaJSON, p) {
		t.Error("JSON kept the bytes too: the test proves nothing")
	}
}

// The child gets each inherited descriptor at its own number, the others
// closed, and the plan above them all.
func TestChildFilesKeepsInheritedDescriptors(t *testing.T) {
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// closed below kept: the plan goes just above the highest inherited one
	const closed, kept = 77, 78
	if err := unix.Dup3(int(f.Fd()), kept, 0); err != nil { // not close-on-exec: inherited
		t.Fatal(err)
	}
	defer unix.Close(kept)
	if err := unix.Dup3(int(f.Fd()), closed, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(closed)
	files, planFD, err := childFiles(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if files[kept] != kept || files[closed] != ^uintptr(0) || files[f.Fd()] != ^uintptr(0) {
		t.Errorf("fd %d -> %d, fd %d -> %d, fd %d -> %d; want kept, closed, closed", kept, int(files[kept]), closed, int(files[closed]), f.Fd(), int(files[f.Fd()]))
	}
	if planFD != len(files)-1 || files[planFD] != f.Fd() || planFD <= kept {
		t.Errorf("the plan goes to fd %d (of %d) from %d, want the last, above %d", planFD, len(files), int(files[planFD]), kept)
	}
	for fd := range files[:planFD] {
		if files[fd] != ^uintptr(0) && files[fd] != uintptr(fd) {
			t.Errorf("fd %d -> %d: moved", fd, int(files[fd]))
		}
	}
}

func TestSoftStackLimitReadsProcLimits(t *testing.T) {
	var want unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_STACK, &want); err != nil {
		t.Fatal(err)
	}
	got, ok := softStackLimit("/proc/self/limits")
	if !ok || got != want.Cur {
		t.Errorf("softStackLimit = %d, %v; want %d", got, ok, want.Cur)
	}
	dir := t.TempDir()
	for content, want := range map[string]uint64{
		"Max stack size            unlimited            unlimited            bytes\n": unix.RLIM_INFINITY,
		"Max cpu time 1 1 seconds\nMax stack size 16777216 unlimited bytes\n":         16 << 20,
	} {
		file := dir + "/limits" + strconv.Itoa(len(content))
		os.WriteFile(file, []byte(content), 0o644)
		if got, ok := softStackLimit(file); !ok || got != want {
			t.Errorf("%q: %d, %v; want %d", strings.TrimSpace(content), got, ok, want)
		}
	}
}

// The soft stack limit a setuid exec capped at 8 MiB is the parent's when
// the parent runs as the caller, above the cap and within the hard limit;
// never another user's parent's, which sets its children's limits itself.
func TestCallersStackRule(t *testing.T) {
	const inf = unix.RLIM_INFINITY
	capped := unix.Rlimit{Cur: stackCap, Max: inf}
	for _, tc := range []struct {
		name   string
		own    unix.Rlimit
		parent stackParent
		want   uint64
	}{
		{"the caller's shell has unlimited", capped, stackParent{inf, true}, inf},
		{"the caller's shell has 64 MiB", capped, stackParent{64 << 20, true}, 64 << 20},
		{"not capped: below 8 MiB", unix.Rlimit{Cur: 4 << 20, Max: inf}, stackParent{inf, true}, 0},
		{"the parent's is the cap too", capped, stackParent{stackCap, true}, 0},
		{"the parent's is lower", capped, stackParent{4 << 20, true}, 0},
		{"above the hard limit, which the exec kept", unix.Rlimit{Cur: stackCap, Max: 32 << 20}, stackParent{64 << 20, true}, 0},
		{"root's parent (slurmstepd of slurmd with LimitSTACK=infinity)", capped, stackParent{inf, false}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := callersStack(tc.own, tc.parent); got != tc.want {
				t.Errorf("callersStack = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestRunsAs(t *testing.T) {
	for status, want := range map[string]bool{
		"Name:\tsh\nUid:\t1000\t1000\t1000\t1000\n":      true,
		"Uid:\t1000\t0\t0\t0\n":                          false, // setuid root
		"Uid:\t0\t0\t0\t0\n":                             false,
		"Uid:\t1000\t1000\t0\t1000\n":                    false, // keeps root's saved uid
		"Name:\tx\n":                                     false,
		"Uid:\t10000\t10000\t10000\t10000\nGid:\t1000\n": false,
	} {
		if got := runsAs([]byte(status), 1000); got != want {
			t.Errorf("runsAs(%q, 1000) = %v, want %v", status, got, want)
		}
	}
}
