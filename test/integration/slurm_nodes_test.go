package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A cluster of three nodes on this machine (scripts/cluster): one slurmd per
// node, each in network, UTS and mount namespaces of its own (hostname n1,
// n2, n3, an address on links between them, a /run, /tmp and /dev/shm of
// its own, and its own chos cache: h.cacheDir is a tmpfs of the node's),
// slurmctld in a fourth ("head"). The trees, /home and /etc are shared, as
// a cluster shares them over NFS. Slurm's commands run here, as on a login
// node.

var slurmNodes, slurmNodesContained lazyCluster

// slurmMultiNode is the package's cluster of three nodes, started by the
// first test that asks and stopped by the package cleanups.
func slurmMultiNode(t testing.TB) *slurmCluster {
	t.Helper()
	return slurmNodes.get(t, slurmCluster{nodes: []string{"n1", "n2", "n3"}})
}

// chosNodesContained is a second cluster of three nodes, each job in a
// mount namespace of its own on every node (Slurm's job_container/tmpfs,
// with PrologFlags=Contain), with the plugin loaded.
func chosNodesContained(t testing.TB) *slurmCluster {
	t.Helper()
	c := slurmNodesContained.get(t, slurmCluster{nodes: []string{"n1", "n2", "n3"}, jobContainer: true})
	c.setPlugstack(t, "required "+spankPlugin(t)+"\n")
	return c
}

// chosNodes is the cluster of three nodes with the plugin loaded, as a
// site loads it.
func chosNodes(t testing.TB) *slurmCluster {
	t.Helper()
	c := slurmMultiNode(t)
	c.setPlugstack(t, "required "+spankPlugin(t)+"\n")
	return c
}

// startNodes runs scripts/cluster under the reaper, in c.dir (empty), and
// waits until every node is idle.
func (c *slurmCluster) startNodes() error {
	c.node = ""
	c.conf = filepath.Join(c.dir, "slurm.conf")
	c.plugstack = filepath.Join(c.dir, "plugstack.conf")
	c.mungeSocket = filepath.Join(c.dir, "munge", "munge.socket")
	// (a directory the nodes each cover with a tmpfs of their own)
	if err := os.MkdirAll(h.cacheDir, 0o755); err != nil {
		return err
	}
	args := []string{"bash", filepath.Join(h.repo, "scripts", "cluster"), "run", "--dir", c.dir,
		"--nodes", strconv.Itoa(len(c.nodes)), "--private", h.cacheDir}
	if c.jobContainer {
		args = append(args, "--job-container")
	}
	for _, l := range strings.Split(c.extra, "\n") {
		if l != "" {
			args = append(args, "--conf", l)
		}
	}
	if err := c.startDaemon("scripts/cluster", c.dir+".log", args...); err != nil {
		return err
	}
	d := c.daemons[0]
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(filepath.Join(c.dir, "run", "ready")); err == nil {
			break
		}
		select {
		case <-d.done:
			return fmt.Errorf("scripts/cluster exited (%v) while the cluster started%s", d.cmd.ProcessState, c.logs())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster is not ready after 90 s%s", c.logs())
		}
	}
	link, err := os.ReadFile(filepath.Join(c.dir, "run", "hostlink"))
	if err != nil {
		return err
	}
	c.hostLink = strings.TrimSpace(string(link))
	c.up = true
	return nil
}

// nodePID is a process holding node's namespaces.
func (c *slurmCluster) nodePID(t testing.TB, node string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.dir, "run", node+".ns"))
	if err != nil {
		t.Fatalf("no node %s: %v", node, err)
	}
	return strings.TrimSpace(string(data))
}

// onNode is cl run on node: in its network, UTS and mount namespaces, as
// cl's user (or root), in cl's directory.
func (c *slurmCluster) onNode(t testing.TB, node string, cl call) call {
	t.Helper()
	env, dir := cl.account().env(), cl.account().home
	if cl.Root {
		env, dir = rootEnv(), "/"
	}
	if cl.Dir != "" {
		dir = cl.Dir
	}
	return call{Args: append([]string{"nsenter", "-t", c.nodePID(t, node), "-n", "-u", "-m", "--wd=" + dir, "--"}, cl.argv()...),
		Root: true, Env: mergeEnv(env, cl.Env), Stdin: cl.Stdin, Timeout: cl.Timeout}
}

// taskLine is what a probe task of the tests prints, as key=value words.
type taskLine map[string]string

// taskLines parses one line per task of key=value words.
func taskLines(out string) []taskLine {
	var lines []taskLine
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		tl := taskLine{}
		for _, w := range strings.Fields(l) {
			k, v, _ := strings.Cut(w, "=")
			tl[k] = v
		}
		lines = append(lines, tl)
	}
	return lines
}

// probe prints, for one task: its node, rank, OS, mount and network
// namespaces, ids, groups, working directory and $MARK.
const probe = `. /etc/os-release; echo node=$(hostname) rank=$SLURM_PROCID os=$ID mnt=$(readlink /proc/self/ns/mnt) ` +
	`net=$(readlink /proc/self/ns/net) uid=$(id -u) groups=$(id -G | tr ' ' ,) cwd=$(pwd) mark=$MARK`

// The cluster is three machines: every node its own hostname, network,
// /run, /tmp and chos cache, and none of them the host's.
func TestSlurmNodesAreSeparateMachines(t *testing.T) {
	c := slurmMultiNode(t)
	r := run(t, c.user("srun", "-N3", "-n3", "sh", "-c",
		`echo node=$(hostname) net=$(readlink /proc/self/ns/net) run=$(stat -c %d:%i /run) tmp=$(stat -c %d:%i /tmp) cache=$(stat -c %d:%i `+h.cacheDir+`)`))
	if !wantStatus(t, r, 0) {
		return
	}
	host := map[string]string{"node": "", "net": "", "run": "", "tmp": "", "cache": ""}
	host["node"], _ = os.Hostname()
	hr := run(t, call{Root: true, Args: []string{"sh", "-c", `echo net=$(readlink /proc/self/ns/net) run=$(stat -c %d:%i /run) tmp=$(stat -c %d:%i /tmp) cache=$(stat -c %d:%i ` + h.cacheDir + `)`}})
	for k, v := range taskLines(hr.stdout)[0] {
		host[k] = v
	}
	lines := taskLines(r.stdout)
	seen := map[string]map[string]bool{}
	for _, l := range lines {
		for k, v := range l {
			if seen[k] == nil {
				seen[k] = map[string]bool{}
			}
			seen[k][v] = true
			if v == host[k] {
				t.Errorf("a node has the host's %s %s:\n%s", k, v, r)
			}
		}
	}
	for _, k := range []string{"node", "net", "run", "tmp", "cache"} {
		if len(seen[k]) != 3 {
			t.Errorf("want 3 different %s, one per node: %v\n%s", k, seen[k], r)
		}
	}
	if !seen["node"]["n1"] || !seen["node"]["n2"] || !seen["node"]["n3"] {
		t.Errorf("want nodes n1, n2, n3:\n%s", r)
	}
	c.wantNodeIdle(t)
}

// srun across three nodes from here (a login node), with --chos and with
// chos exec as the prefix of every task: every task in the tree on its
// node, with the job's ids, groups, directory and environment, for a local
// and a directory user.
func TestSlurmStepAcrossNodesRunsInTheTree(t *testing.T) {
	c := chosNodes(t)
	for _, u := range jobUsers(t) {
		t.Run(u.name, func(t *testing.T) {
			dir := u.workDir(t)
			mark := "m" + randHex(3)
			want := map[string]string{"uid": strconv.Itoa(u.uid()), "cwd": dir, "mark": mark}
			for _, tc := range []struct {
				name string
				args []string
				os   string
			}{
				{"no tree (control)", []string{"sh", "-c", probe}, h.hostOSRelease["ID"]},
				{"--chos=one", []string{"--chos=one", "sh", "-c", probe}, h.osIDs["one"]},
				{"chos exec one in every task", []string{h.chos, "exec", "one", "sh", "-c", probe}, h.osIDs["one"]},
			} {
				t.Run(tc.name, func(t *testing.T) {
					r := run(t, call{Args: append([]string{"srun", "-N3", "-n6"}, tc.args...), Dir: dir,
						Env: append(c.user().Env, "PWD="+dir, "MARK="+mark), User: u.user})
					if wantStatus(t, r, 0) {
						// (chos exec in a task builds or enters the node's view too)
						wantTasksOnEveryNode(t, r, 6, tc.os, want, u.groups, tc.os != h.hostOSRelease["ID"])
					}
				})
			}
		})
	}
	c.wantNodeIdle(t)
}

// wantTasksOnEveryNode checks the probe's lines of n tasks spread over
// n1..n3: each in OS os, with want's values and the groups; inTree, those
// on one node in one mount namespace and each node's its own.
func wantTasksOnEveryNode(t testing.TB, r result, n int, os string, want map[string]string, groups []string, inTree bool) {
	t.Helper()
	lines := taskLines(r.stdout)
	if len(lines) != n {
		t.Fatalf("want %d tasks:\n%s", n, r)
	}
	nodeNS := map[string]string{}
	nsNode := map[string]string{}
	for _, l := range lines {
		if l["os"] != os {
			t.Errorf("task %s on %s ran in %q, want %q:\n%s", l["rank"], l["node"], l["os"], os, r)
		}
		for k, v := range want {
			if l[k] != v {
				t.Errorf("task %s on %s: %s=%q, want %q:\n%s", l["rank"], l["node"], k, l[k], v, r)
			}
		}
		if !sameSet(strings.Split(l["groups"], ","), groups) {
			t.Errorf("task %s on %s: groups %s, want %v", l["rank"], l["node"], l["groups"], groups)
		}
		if prev, ok := nodeNS[l["node"]]; ok && prev != l["mnt"] {
			t.Errorf("tasks on %s in mount namespaces %s and %s, want one", l["node"], prev, l["mnt"])
		}
		nodeNS[l["node"]] = l["mnt"]
		if other, ok := nsNode[l["mnt"]]; inTree && ok && other != l["node"] {
			t.Errorf("nodes %s and %s share the mount namespace %s", other, l["node"], l["mnt"])
		}
		nsNode[l["mnt"]] = l["node"]
	}
	if len(nodeNS) != 3 {
		t.Errorf("want tasks on 3 nodes, got %v:\n%s", nodeNS, r)
	}
}

// jobUser is who submits a job in a test that runs for both kinds of user.
type jobUser struct {
	name   string
	user   *testUser // nil: the test user
	groups []string  // gid, then the supplementary gids, as id -G prints them
}

// jobUsers are the test user and a directory user (libnss-extrausers, as
// LDAP or sssd users are on clusters).
func jobUsers(t *testing.T) []jobUser {
	t.Helper()
	local := jobUser{name: "local user", groups: []string{strconv.Itoa(h.gid)}}
	for _, g := range h.extraGIDs {
		local.groups = append(local.groups, strconv.Itoa(g))
	}
	a := directoryUser(t)
	dir := jobUser{name: "directory user", user: &a.testUser, groups: []string{strconv.Itoa(a.gid)}}
	for _, g := range a.groups {
		dir.groups = append(dir.groups, strconv.Itoa(g.gid))
	}
	return []jobUser{local, dir}
}

// home is a new directory of u's for one test, below their home.
func (u jobUser) workDir(t testing.TB) string {
	t.Helper()
	if u.user == nil {
		dir := filepath.Join(h.home, unique(t))
		userDir(t, dir)
		return dir
	}
	dir := filepath.Join(u.user.home, unique(t))
	must(t, os.Mkdir(dir, 0o755))
	must(t, os.Chown(dir, u.user.uid, u.user.gid))
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (u jobUser) uid() int {
	if u.user == nil {
		return h.uid
	}
	return u.user.uid
}

// slurmCommandsConfig is the test configuration, with more %SHELLS lines
// (name:path), and Slurm's client as host commands: srun, sbatch and
// squeue from inside any tree run the host's (README: Slurm's commands
// inside trees).
func slurmCommandsConfig(trees ...string) string {
	return h.configText + strings.Join(append(trees, ""), "\n") + "%HOSTCMD\n/usr/bin/srun /usr/bin/sbatch /usr/bin/squeue\n"
}

// A batch job across three nodes: its script runs in the tree on the first
// node, and the srun in it (the host's, through chos) runs every task in
// the tree on its node, with the job's ids, groups, directory and
// environment. For a local and a directory user.
func TestSlurmBatchJobAcrossNodesRunsInTheTree(t *testing.T) {
	c := chosNodes(t)
	setConfig(t, slurmCommandsConfig())
	for _, u := range jobUsers(t) {
		t.Run(u.name, func(t *testing.T) {
			dir := u.workDir(t)
			mark := "m" + randHex(3)
			script := filepath.Join(dir, "job.sh")
			must(t, writeRootFile(filepath.Join(dir, "probe.sh"), probe+"\n", 0o644))
			must(t, writeRootFile(script, "#!/bin/sh\necho \"step=batch $(sh ./probe.sh)\"\nsrun -N3 -n6 sh ./probe.sh\n", 0o755))
			for _, tc := range []struct {
				name string
				opts []string
				os   string
			}{
				{"no tree (control)", nil, h.hostOSRelease["ID"]},
				{"--chos=one", []string{"--chos=one"}, h.osIDs["one"]},
			} {
				t.Run(tc.name, func(t *testing.T) {
					out := filepath.Join(dir, unique(t)+".out")
					cl := call{Args: append(append([]string{"sbatch", "--parsable", "-N3", "--output=" + out}, tc.opts...), script),
						Dir: dir, Env: append(c.user().Env, "PWD="+dir, "MARK="+mark), User: u.user}
					r := run(t, cl)
					if !wantStatus(t, r, 0) {
						return
					}
					job := strings.TrimSpace(r.stdout)
					state := c.waitJobEnd(t, job)
					data, _ := os.ReadFile(out)
					res := result{cmd: "job " + job + " (" + state + ")", stdout: string(data)}
					var batch []taskLine
					var tasks []string
					for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
						if strings.HasPrefix(l, "step=batch ") {
							batch = append(batch, taskLines(l)...)
						} else {
							tasks = append(tasks, l)
						}
					}
					if state != "COMPLETED" || len(batch) != 1 {
						t.Fatalf("want the job COMPLETED and one batch line:\n%s", res)
					}
					if b := batch[0]; b["node"] != "n1" || b["os"] != tc.os || b["uid"] != strconv.Itoa(u.uid()) || b["cwd"] != dir || b["mark"] != mark {
						t.Errorf("the batch script: want node n1, os %s, uid %d, cwd %s, mark %s:\n%s", tc.os, u.uid(), dir, mark, res)
					}
					res.stdout = strings.Join(tasks, "\n")
					want := map[string]string{"uid": strconv.Itoa(u.uid()), "cwd": dir, "mark": mark}
					wantTasksOnEveryNode(t, res, 6, tc.os, want, u.groups, tc.opts != nil)
				})
			}
		})
	}
	// Control: without the host commands, the tree has no srun.
	t.Run("no host commands", func(t *testing.T) {
		setConfig(t, h.configText)
		dir := jobUsers(t)[0].workDir(t)
		_, state, r := c.batch(t, dir, nil, "-N3", "--chos=one", "--output=out", "--wrap", "srun -N3 true; echo status=$?")
		out, _ := os.ReadFile(filepath.Join(dir, "out"))
		if state != "COMPLETED" || !strings.Contains(string(out), "srun: not found") || !strings.Contains(string(out), "status=127") {
			t.Errorf("want srun not found in the tree (%s):\n%s\n%s", state, out, r)
		}
	})
	c.wantNodeIdle(t)
}

// nodeAudit starts an rsyslogd on each node, on a socket in the node's own
// /run, and points chos's audit lines there: each node's lines apart.
func (c *slurmCluster) nodeAudit(t *testing.T) map[string]*syslogDaemon {
	t.Helper()
	const sock = "/run/chos-itest-audit.sock"
	ds := map[string]*syslogDaemon{}
	for _, n := range c.nodes {
		ds[n] = startRsyslogAt(t, sock, func(cl call) call { return c.onNode(t, n, cl) }, "/proc/"+c.nodePID(t, n)+"/root"+sock)
	}
	auditConfig(t, "%AUDIT\nfacility = local5\nsocket = "+sock+"\n")
	return ds
}

// auditMarks is how many lines each node's audit log has so far.
func auditMarks(t *testing.T, audit map[string]*syslogDaemon) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for n, d := range audit {
		seen[n] = len(d.lines(t))
	}
	return seen
}

// viewsSince is "via:view" of each line node n's log d got since seen[n],
// sorted; seen[n] moves past them.
func viewsSince(t *testing.T, d *syslogDaemon, seen map[string]int, n string) []string {
	t.Helper()
	lines := d.lines(t)
	var got []string
	for _, l := range lines[seen[n]:] {
		got = append(got, l.fields["via"]+":"+l.fields["view"])
	}
	seen[n] = len(lines)
	sort.Strings(got)
	return got
}

// Each node builds the job's view once, whatever the number of tasks on
// it, and every launch's audit line, on its node, says whether it built
// the view: one line per node and step through the plugin, one per task
// with chos exec.
func TestSlurmNodesBuildTheViewOncePerJob(t *testing.T) {
	c := chosNodes(t)
	audit := c.nodeAudit(t)
	seen := auditMarks(t, audit)
	// A configuration never seen: every node builds its views again (kept
	// for the next subtests: restored when the whole test ends).
	cold := func() { setConfig(t, slurmCommandsConfig()+"# "+randHex(6)+"\n") }
	for _, tc := range []struct {
		name   string
		cold   bool
		job    []string
		n1, n2 []string // the new lines' via:view, sorted (n3 as n2)
	}{
		{"srun --chos, cold", true, []string{"srun", "-N3", "-n12", "--chos=one", "true"},
			[]string{"slurm:built"}, []string{"slurm:built"}},
		{"srun --chos, warm", false, []string{"srun", "-N3", "-n12", "--chos=one", "true"},
			[]string{"slurm:cached"}, []string{"slurm:cached"}},
		{"chos exec in every task, cold", true, []string{"srun", "-N3", "-n12", h.chos, "exec", "one", "true"},
			[]string{"exec:built", "exec:cached", "exec:cached", "exec:cached"}, []string{"exec:built", "exec:cached", "exec:cached", "exec:cached"}},
		{"chos exec in every task, warm", false, []string{"srun", "-N3", "-n12", h.chos, "exec", "one", "true"},
			[]string{"exec:cached", "exec:cached", "exec:cached", "exec:cached"}, []string{"exec:cached", "exec:cached", "exec:cached", "exec:cached"}},
		// the batch step builds n1's view, the step in it enters it; the
		// script's srun is the host's (a host command)
		{"batch job, cold", true, []string{"sbatch", "-N3", "--chos=one", "--output=/dev/null", "--wrap", "srun -N3 -n12 true"},
			[]string{"hostcmd:host", "slurm:built", "slurm:cached"}, []string{"slurm:built"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cold {
				cold()
			}
			if tc.job[0] == "sbatch" {
				if _, state, r := c.batch(t, "", nil, tc.job[1:]...); state != "COMPLETED" {
					t.Fatalf("the batch job ended %q:\n%s", state, r)
				}
			} else {
				wantStatus(t, run(t, c.user(tc.job...)), 0)
			}
			for n, d := range audit {
				got := viewsSince(t, d, seen, n)
				want := tc.n2
				if n == "n1" {
					want = tc.n1
				}
				if strings.Join(got, " ") != strings.Join(want, " ") {
					t.Errorf("%s logged %v, want %v", n, got, want)
				}
			}
		})
	}
	c.wantNodeIdle(t)
}

// dropNodeCaches drops every node's cached views (`chos cache drop` as
// root on each node).
func (c *slurmCluster) dropNodeCaches(t testing.TB) {
	t.Helper()
	for _, n := range c.nodes {
		wantStatus(t, run(t, c.onNode(t, n, call{Root: true, Args: []string{h.chos, "cache", "drop"}})), 0)
	}
}

// hideOnNode mounts an empty tmpfs over dir on node only, for the rest of
// the test: what is below dir is missing there, as a file system that a
// node failed to mount.
func (c *slurmCluster) hideOnNode(t testing.TB, node, dir string) {
	t.Helper()
	wantStatus(t, run(t, c.onNode(t, node, call{Root: true, Args: []string{"mount", "-t", "tmpfs", "chos-itest-hidden", dir}})), 0)
	t.Cleanup(func() { run(t, c.onNode(t, node, call{Root: true, Args: []string{"umount", dir}})) })
}

// An image tree across the nodes: each node mounts the image once, in the
// one view all its tasks share; a node where the image cannot be mounted
// (here a damaged copy on n2) fails the step with one line naming the
// node, and no node is drained.
func TestSlurmNodesMountAnImageOncePerNode(t *testing.T) {
	needLoopSquashfs(t)
	c := chosNodes(t)
	img, id := imageTree(t)
	withImageTrees(t, "img", img)
	t.Cleanup(func() {
		c.dropNodeCaches(t)
		wantNoLoopDevices(t, img)
	})
	step := `echo node=$(hostname) os=$(. /etc/os-release; echo $ID) mnt=$(readlink /proc/self/ns/mnt) images=$(grep -c ' /.chos/image .* squashfs ' /proc/self/mountinfo)`
	views := map[string]string{}
	for round := 0; round < 2; round++ {
		r := run(t, c.user("srun", "-N3", "-n6", "--chos=img", "sh", "-c", step))
		if !wantStatus(t, r, 0) {
			return
		}
		lines := taskLines(r.stdout)
		if len(lines) != 6 {
			t.Fatalf("want 6 tasks:\n%s", r)
		}
		for _, l := range lines {
			if l["os"] != id || l["images"] != "1" {
				t.Errorf("a task on %s in %q with %s images mounted, want %s with 1:\n%s", l["node"], l["os"], l["images"], id, r)
			}
			// the same view for every task of a node, in both steps
			if v, ok := views[l["node"]]; ok && v != l["mnt"] {
				t.Errorf("%s: tasks in views %s and %s, want one (round %d):\n%s", l["node"], v, l["mnt"], round, r)
			}
			views[l["node"]] = l["mnt"]
		}
	}
	if len(views) != 3 {
		t.Errorf("want views on 3 nodes: %v", views)
	}

	t.Run("damaged on one node", func(t *testing.T) {
		// n2's copy: the image's first 64 KiB, over the image's path there
		data, err := os.ReadFile(img)
		must(t, err)
		bad := filepath.Join(h.base, unique(t)+".sqfs")
		must(t, writeRootFile(bad, string(data[:min(len(data), 64<<10)]), 0o644))
		t.Cleanup(func() { os.Remove(bad) })
		wantStatus(t, run(t, c.onNode(t, "n2", call{Root: true, Args: []string{"mount", "--bind", bad, img}})), 0)
		t.Cleanup(func() {
			run(t, c.onNode(t, "n2", call{Root: true, Args: []string{"umount", img}}))
			wantNoLoopDevices(t, bad)
		})
		r := run(t, c.user("srun", "-N3", "-n6", "--chos=img", "sh", "-c", step))
		if r.status == 0 || strings.Contains(r.stdout, "node=n2") {
			t.Errorf("the step ran on n2:\n%s", r)
		}
		wantOneChosLine(t, r.stderr, "img")
		if !strings.Contains(r.stderr, "slurmstepd-n2: error: chos: ") {
			t.Errorf("the chos line does not name n2:\n%s", r)
		}
		c.wantNodeIdle(t)
	})
}

// A tree missing on one node only (its file system not mounted there)
// fails the job with one line naming that node, and nothing runs on that
// node's host instead.
func TestSlurmTreeMissingOnOneNodeFailsTheJob(t *testing.T) {
	c := chosNodes(t)
	parent := filepath.Join(h.base, "trees", unique(t))
	tree := filepath.Join(parent, "tree")
	must(t, os.MkdirAll(parent, 0o755))
	t.Cleanup(func() { os.RemoveAll(parent) })
	if out, err := runSetup(2*time.Minute, h.repo, "scripts/mkbusyboxtree", tree, "chospart", "Chos Test Partly"); err != nil {
		t.Fatalf("mkbusyboxtree: %v\n%s", err, out)
	}
	setConfig(t, slurmCommandsConfig("part:"+tree))
	probe := `echo node=$(hostname) os=$(. /etc/os-release; echo $ID)`

	// Control: on every node before it is hidden on n2.
	r := run(t, c.user("srun", "-N3", "-n3", "--chos=part", "sh", "-c", probe))
	if wantStatus(t, r, 0) && strings.Count(r.stdout, "os=chospart") != 3 {
		t.Errorf("control: want the tree on 3 nodes:\n%s", r)
	}
	c.hideOnNode(t, "n2", parent)
	for _, tc := range []struct {
		name string
		run  func() (stdout, stderr string, failed bool)
	}{
		{"srun", func() (string, string, bool) {
			r := run(t, c.user("srun", "-N3", "-n6", "--chos=part", "sh", "-c", probe))
			return r.stdout, r.stderr, r.status != 0
		}},
		{"sbatch", func() (string, string, bool) {
			dir := jobUsers(t)[0].workDir(t)
			_, state, r := c.batch(t, dir, nil, "-N3", "--chos=part", "--output=out", "--wrap", "srun -N3 -n6 sh -c '"+probe+"'")
			out, _ := os.ReadFile(filepath.Join(dir, "out"))
			if state == "" {
				return "", r.String(), false
			}
			return string(out), string(out), state == "FAILED"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, failed := tc.run()
			if !failed || strings.Contains(stdout, "node=n2") || strings.Contains(stdout, "os="+h.hostOSRelease["ID"]) {
				t.Errorf("want the job failed, nothing on n2 nor on a host:\n%s", stdout)
			}
			wantOneChosLine(t, stderr, tree)
			if !strings.Contains(stderr, "slurmstepd-n2: error: chos: ") {
				t.Errorf("the chos line does not name n2:\n%s", stderr)
			}
			c.wantNodeIdle(t)
		})
	}
}

// With each job in a mount namespace of its own on every node
// (job_container/tmpfs), each node still builds the view once: the first
// job's first step builds it, its later steps and the next job enter it.
// (chos prepare runs in slurmstepd, in the node's namespace, before the
// job's is joined: the view is the node's, shared by jobs, as
// chos_spank(8) says of the job's private /tmp.)
func TestSlurmNodesCacheViewsForJobsInNamespacesOfTheirOwn(t *testing.T) {
	c := chosNodesContained(t)
	audit := c.nodeAudit(t)
	setConfig(t, h.configText+"# "+randHex(6)+"\n") // (never seen: cold views)
	seen := auditMarks(t, audit)
	step := `srun -N3 -n6 --chos=one sh -c 'echo node=$(hostname) mnt=$(readlink /proc/self/ns/mnt) os=$(. /etc/os-release; echo $ID)'`
	want := map[int][]string{1: {"slurm:built", "slurm:cached"}, 2: {"slurm:cached", "slurm:cached"}}
	nodeView := map[string]string{}
	for job := 1; job <= 2; job++ {
		cl := c.user("salloc", "-N3", "sh", "-c", step+"; "+step)
		cl.Timeout = 3 * time.Minute // (two steps under job_container/tmpfs on a busy machine)
		r := run(t, cl)
		if !wantStatus(t, r, 0) {
			t.Fatalf("the job failed%s", c.logs())
		}
		views := map[string]map[string]bool{}
		for _, l := range taskLines(r.stdout) {
			if l["os"] != h.osIDs["one"] {
				t.Errorf("job %d: a task on %s in %q:\n%s", job, l["node"], l["os"], r)
			}
			if views[l["node"]] == nil {
				views[l["node"]] = map[string]bool{}
			}
			views[l["node"]][l["mnt"]] = true
		}
		for n, d := range audit {
			got := viewsSince(t, d, seen, n)
			if strings.Join(got, " ") != strings.Join(want[job], " ") {
				t.Errorf("job %d: %s logged %v, want %v", job, n, got, want[job])
			}
			for v := range views[n] {
				if prev, ok := nodeView[n]; len(views[n]) != 1 || (ok && prev != v) {
					t.Errorf("job %d: the tasks on %s were in views %v (before: %q), want the node's one", job, n, views[n], prev)
				}
				nodeView[n] = v
			}
		}
	}
	c.wantNodeIdle(t)
}
