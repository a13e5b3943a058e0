package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// MPI across the nodes in a tree: Open MPI of a Debian 11 tree (recipe
// bullseye-mpi), which the host (Debian 12, no Open MPI) cannot run. The
// ranks talk over TCP only (no shared memory: btl self,tcp), between the
// nodes' network namespaces.

// mpiEnv makes Open MPI use TCP between all ranks (ob1 with the tcp and
// self transports: no UCX, no shared memory).
var mpiEnv = []string{"OMPI_MCA_pml=ob1", "OMPI_MCA_btl=self,tcp"}

// mpiProgram is testdata/mpi/allreduce.c compiled as the user inside the
// tree mpi with its own mpicc, in a directory of the user's.
func mpiProgram(t *testing.T, u jobUser) (dir, prog string) {
	t.Helper()
	dir = u.workDir(t)
	src, err := os.ReadFile(filepath.Join(h.repo, "test/integration/testdata/mpi/allreduce.c"))
	must(t, err)
	must(t, writeRootFile(filepath.Join(dir, "allreduce.c"), string(src), 0o644))
	prog = filepath.Join(dir, "allreduce")
	r := run(t, call{Args: []string{h.chos, "exec", "mpi", "mpicc", "-O", "-o", prog, "allreduce.c"}, Dir: dir, User: u.user})
	if !wantStatus(t, r, 0) {
		t.FailNow()
	}
	return dir, prog
}

// wantAllreduce checks that n ranks printed the right sum, each in the
// tree's Debian release, spread evenly over n1..n3.
func wantAllreduce(t testing.TB, out string, n int, release string) {
	t.Helper()
	lines := taskLines(out)
	if len(lines) != n {
		t.Fatalf("want %d ranks:\n%s", n, out)
	}
	perNode := map[string]int{}
	ranks := []string{}
	for _, l := range lines {
		if l["size"] != fmt.Sprint(n) || l["sum"] != fmt.Sprint(n*(n+1)/2) || l["debian"] != release {
			t.Errorf("rank %s on %s: size %s, sum %s, Debian %s; want %d, %d, %s", l["rank"], l["node"], l["size"], l["sum"], l["debian"], n, n*(n+1)/2, release)
		}
		perNode[l["node"]]++
		ranks = append(ranks, l["rank"])
	}
	sort.Strings(ranks)
	if want := map[string]int{"n1": n / 3, "n2": n / 3, "n3": n / 3}; fmt.Sprint(perNode) != fmt.Sprint(want) {
		t.Errorf("ranks per node %v, want %v:\n%s", perNode, want, out)
	}
}

// openMPIInitCrash says whether out shows Open MPI 4.1.0 (Debian 11's)
// crashing in MPI_Init, before any rank printed: a rank dies of SIGSEGV
// calling a NULL callback from its TCP transport while the others have
// already left MPI_Init's closing fence (gdb of the core: address 0 called
// from mca_btl_tcp.so, from libevent in opal_progress in ompi_mpi_init).
// About 1 start in 40 on 2 CPUs, with or without shared memory between
// the ranks of a node: Open MPI's race (open-mpi/ompi#11438 is its like on
// a later release), not chos's; such a run is retried.
func openMPIInitCrash(out string) bool {
	return strings.Contains(out, "Signal: Segmentation fault") && !strings.Contains(out, "sum=")
}

// mpiRun runs an MPI job, again (at most twice, saying so) after an
// openMPIInitCrash. run gives its output and whether it ended well.
func mpiRun(t *testing.T, c *slurmCluster, run func() (out string, ok bool)) (string, bool) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		out, ok := run()
		if ok || attempt == 3 || !openMPIInitCrash(out) {
			return out, ok
		}
		t.Logf("Open MPI crashed in MPI_Init (attempt %d; see openMPIInitCrash), again:\n%s", attempt, out)
		c.wantNodeIdle(t)
	}
}

func TestMPIAcrossNodesInATree(t *testing.T) {
	c := chosNodes(t)
	tree := mpiTree(t)
	setConfig(t, slurmCommandsConfig("mpi:"+tree))
	release, err := os.ReadFile(filepath.Join(tree, "etc/debian_version"))
	must(t, err)
	rel := strings.TrimSpace(string(release))
	for _, u := range jobUsers(t) {
		t.Run(u.name, func(t *testing.T) {
			dir, prog := mpiProgram(t, u)
			env := append(append(c.user().Env, "PWD="+dir), mpiEnv...)

			t.Run("srun --mpi=pmix", func(t *testing.T) {
				var r result
				mpiRun(t, c, func() (string, bool) {
					r = run(t, call{Args: []string{"srun", "--mpi=pmix", "-N3", "-n6", "--chos=mpi", prog}, Dir: dir, Env: env, User: u.user})
					return r.stdout + r.stderr, r.status == 0
				})
				if wantStatus(t, r, 0) {
					wantAllreduce(t, r.stdout, 6, rel)
				}
				// Control: the host has no Open MPI.
				r = run(t, call{Args: []string{"srun", "--mpi=pmix", "-N3", "-n6", prog}, Dir: dir, Env: env, User: u.user})
				if r.status == 0 || strings.Contains(r.stdout, "sum=") || !strings.Contains(r.stderr, "libmpi") {
					t.Errorf("control: the program ran on the host:\n%s", r)
				}
			})

			// The tree's mpirun starts its daemons on n2 and n3 with srun,
			// the host's (a host command).
			t.Run("mpirun in sbatch", func(t *testing.T) {
				out := filepath.Join(dir, unique(t)+".out")
				data, ok := mpiRun(t, c, func() (string, bool) {
					r := run(t, call{Args: []string{"sbatch", "--parsable", "-N3", "--chos=mpi", "--output=" + out, "--wrap",
						"mpirun --map-by node -np 6 " + prog}, Dir: dir, Env: env, User: u.user})
					if !wantStatus(t, r, 0) {
						return r.String(), false
					}
					job := strings.TrimSpace(r.stdout)
					state := c.waitJobEnd(t, job)
					data, _ := os.ReadFile(out)
					return "job " + job + " " + state + ":\n" + string(data), state == "COMPLETED"
				})
				if !ok {
					t.Fatalf("the job failed: %s", data)
				}
				_, data, _ = strings.Cut(data, "\n")
				wantAllreduce(t, data, 6, rel)
			})
		})
	}
	c.wantNodeIdle(t)
}
