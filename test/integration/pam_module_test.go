package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The PAM module (pam/pam_chos.c), loaded by pamtester: its side of the
// root-helper protocol, against a scripted peer (testdata/prepare-peer)
// that can also send what the real chos never sends. Its client of the
// protocol is the SPANK plugin's (prepare/prepare_client.c): the same
// checks and the same messages (slurm_spank_test.go).

// pamModule is the module make install built and installed.
func pamModule(t testing.TB) string {
	t.Helper()
	so := filepath.Join(h.prefix, "lib", "security", "pam_chos.so")
	if _, err := os.Stat(so); err != nil {
		t.Fatalf("make install did not install the PAM module (are the PAM headers, libpam0g-dev, installed?): %v", err)
	}
	return so
}

// peerBinary is testdata/prepare-peer, built once.
var peerBinary = buildOnce(func() (string, error) {
	path := filepath.Join(h.base, "prepare-peer")
	cmd := exec.Command("go", "build", "-o", path, "./test/integration/testdata/prepare-peer")
	cmd.Dir, cmd.Env = h.repo, append(os.Environ(), "CGO_ENABLED=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if r, err := runWithTimeout(cmd, 2*time.Minute, nil); err != nil || r.status != 0 {
		return "", fmt.Errorf("building testdata/prepare-peer: %v\n%s", err, r)
	}
	return path, nil
})

// newPeer is a root-owned directory with the peer installed as DIR/chos,
// following scenario, and DIR/show, which prints $CHOS and DIR/mnt/hello.
func newPeer(t testing.TB, scenario string) string {
	t.Helper()
	peer := peerBinary.get(t)
	dir, err := os.MkdirTemp(h.base, "peer-")
	must(t, err)
	t.Cleanup(func() { removeUnmounted(dir) })
	must(t, os.Chmod(dir, 0o755))
	must(t, os.Mkdir(filepath.Join(dir, "mnt"), 0o755))
	must(t, os.Link(peer, filepath.Join(dir, "chos")))
	must(t, writeRootFile(filepath.Join(dir, "scenario"), scenario, 0o644))
	must(t, writeRootFile(filepath.Join(dir, "show"),
		"#!/bin/sh\nprintf 'CHOS=%s\\n' \"$CHOS\"\ncat "+filepath.Join(dir, "mnt", "hello")+" 2>&1\n", 0o755))
	return dir
}

// peerRecord is what the peer recorded of how the module started it.
func peerRecord(t testing.TB, dir string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "record"))
	if err != nil {
		t.Fatalf("the module did not run the helper: %v", err)
	}
	rec := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		rec[k] = v
	}
	return rec
}

const helloText = "in the prepared namespace"

func TestPamModuleEntersPreparedNamespace(t *testing.T) {
	peer := newPeer(t, "mode=mntns\n---\ntree=peer\nenter=1\nsetenv=CHOS=peer\nwarning=a word from chos\nend\n")
	svc := pamService(t,
		"session required "+pamModule(t)+" chos="+filepath.Join(peer, "chos"),
		"session optional pam_exec.so stdout "+filepath.Join(peer, "show"))
	r := pamtester(t, svc)
	if !wantStatus(t, r, 0) {
		return
	}
	for _, want := range []string{"CHOS=peer\n", helloText, "chos: warning: a word from chos"} {
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Errorf("no %q in the session:\n%s", want, r)
		}
	}
	// control: the host does not see the namespace's file
	if _, err := os.Stat(filepath.Join(peer, "mnt", "hello")); !os.IsNotExist(err) {
		t.Errorf("the prepared namespace's file is visible on the host: %v", err)
	}

	// how the helper was run: identity as arguments, nothing inherited
	rec := peerRecord(t, peer)
	groups := run(t, call{Args: []string{"id", "-G"}})
	wantArgv := fmt.Sprintf("%q", []string{"chos", "prepare", "--service", "pam", "--user", h.user,
		"--uid", strconv.Itoa(h.uid), "--gid", strconv.Itoa(h.gid),
		"--groups", strings.ReplaceAll(strings.TrimSpace(groups.stdout), " ", ","), "--pam-service", svc})
	for k, want := range map[string]string{"argv": wantArgv, "env": "[]", "fd0": "/dev/null", "fd1": "/dev/null",
		"fd2": "pipe", "fd3": "socket", "uids": "0,0,0", "gids": "0,0,0", "groups": "[]"} {
		if rec[k] != want {
			t.Errorf("helper's %s = %s, want %s", k, rec[k], want)
		}
	}
	if len(rec) != 9 {
		t.Errorf("the helper got more than fds 0-3, or the record is incomplete: %q", rec)
	}
}

func TestPamModulePassesChosAndExemptGroup(t *testing.T) {
	for _, c := range []struct {
		name, opts string
		pamtester  []string // before the service
		env        []string
		want       []string // in the helper's argv
	}{
		{"pam environment", "", []string{"-ECHOS=two"}, nil, []string{`"--env-chos" "two"`}},
		{"application environment (su)", "", nil, []string{"CHOS=three"}, []string{`"--env-chos" "three"`}},
		{"pam environment first", "", []string{"-ECHOS=two"}, []string{"CHOS=three"}, []string{`"--env-chos" "two"`}},
		{"exempt group", "exempt_group=wheel", nil, nil, []string{`"--exempt-group" "wheel"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			peer := newPeer(t, "---\ntree=local\nenter=0\nend\n")
			svc := pamService(t, "session required "+pamModule(t)+" chos="+filepath.Join(peer, "chos")+" "+c.opts)
			args := append(append([]string{"pamtester"}, c.pamtester...), svc, h.user, "open_session")
			wantStatus(t, run(t, call{Root: true, Args: args, Env: c.env}), 0)
			argv := peerRecord(t, peer)["argv"]
			for _, w := range c.want {
				if !strings.Contains(argv, w) {
					t.Errorf("helper's argv %s lacks %s", argv, w)
				}
			}
			if !strings.Contains(c.name, "exempt") && strings.Contains(argv, "--exempt-group") {
				t.Errorf("helper's argv %s has --exempt-group without the option", argv)
			}
		})
	}
}

// What the module does with each kind of reply: stay on the host, refuse
// what is not certainly a mount namespace, and fail or go on per onerr.
func TestPamModuleHandlesReplies(t *testing.T) {
	const fail, succeed = "onerr=fail", "onerr=succeed"
	for _, c := range []struct {
		name, scenario, opts string
		status               int    // of pamtester
		message              string // shown to the user
		entered              bool
	}{
		{"stays on the host", "---\ntree=local\nenter=0\nsetenv=CHOS=local\nend\n", "", 0, "", false},
		{"refusal fails the session", "status=125\n---\nerror=you may not use tree two\nend\n", "", 1, "chos: you may not use tree two", false},
		{"refusal with onerr=fail", "status=125\n---\nerror=you may not use tree two\nend\n", fail, 1, "chos: you may not use tree two\n", false},
		{"refusal with onerr=succeed", "status=125\n---\nerror=you may not use tree two\nend\n", succeed, 0, "chos: you may not use tree two; staying on the host", false},
		{"a net namespace is not entered", "mode=netns\n---\ntree=peer\nenter=1\nend\n", fail, 1, "not a mount namespace", false},
		{"a file is not entered", "mode=file\n---\ntree=peer\nenter=1\nend\n", succeed, 0, "not a mount namespace; staying on the host", false},
		{"enter without a descriptor", "---\ntree=peer\nenter=1\nend\n", fail, 1, "enter= and the descriptor sent do not agree", false},
		{"a descriptor without enter", "mode=mntns\n---\ntree=peer\nenter=0\nend\n", fail, 1, "enter= and the descriptor sent do not agree", false},
		{"no end", "mode=mntns\n---\ntree=peer\nenter=1\n", fail, 1, `the reply does not end with "end"`, false},
		{"text after end", "mode=mntns\n---\ntree=peer\nenter=1\nend\nenter=0\n", fail, 1, `text after "end"`, false},
		{"unknown key", "mode=mntns\n---\ntree=peer\nenter=1\nhome=/x\nend\n", fail, 1, "an unknown key in the reply", false},
		{"failure without a reply", "status=3\nstderr=chos: cannot read /etc/chos\n---\n", fail, 1, "exit status 3: cannot read /etc/chos\n", false},
		{"no answer in time", "sleep=20\n---\ntree=local\nenter=0\nend\n", fail + " timeout=1", 1, "no answer within 1 s", false},
		{"a good reply", "mode=mntns\n---\ntree=peer\nenter=1\nend\n", fail, 0, "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			peer := newPeer(t, c.scenario)
			svc := pamService(t,
				"session required "+pamModule(t)+" chos="+filepath.Join(peer, "chos")+" "+c.opts,
				"session optional pam_exec.so stdout "+filepath.Join(peer, "show"))
			start := time.Now()
			r := pamtester(t, svc)
			if time.Since(start) > 10*time.Second {
				t.Errorf("the session took %v", time.Since(start))
			}
			wantStatus(t, r, c.status)
			if c.message != "" && !strings.Contains(r.stderr, c.message) {
				t.Errorf("the user was not shown %q:\n%s", c.message, r)
			}
			if entered := strings.Contains(r.stdout, helloText); entered != c.entered {
				t.Errorf("entered the namespace: %v, want %v:\n%s", entered, c.entered, r)
			}
		})
	}
}

// A chos that cannot be run: the session fails clearly (onerr=fail, the
// default), or goes on on the host with a warning (onerr=succeed).
func TestPamModuleWithoutChos(t *testing.T) {
	missing := filepath.Join(h.base, "nonexistent", "chos")
	for _, c := range []struct {
		opts    string
		status  int
		message string
	}{
		{"", 1, "chos: cannot run " + missing + ": No such file or directory\n"},
		{"onerr=fail", 1, "chos: cannot run " + missing + ": No such file or directory\n"},
		{"onerr=succeed", 0, "chos: cannot run " + missing + ": No such file or directory; staying on the host\n"},
	} {
		svc := pamService(t, "session required "+pamModule(t)+" chos="+missing+" "+c.opts,
			"session optional pam_exec.so stdout /bin/echo session-went-on")
		r := pamtester(t, svc)
		wantStatus(t, r, c.status)
		if !strings.Contains(r.stderr, c.message) {
			t.Errorf("%s: the user was not shown %q:\n%s", c.opts, c.message, r)
		}
	}
	// a misspelt option fails the session whatever onerr says
	r := pamtester(t, pamService(t, "session required "+pamModule(t)+" onerr=succeed chos=relative/chos"))
	if r.status == 0 {
		t.Errorf("a session with a bad module option was opened:\n%s", r)
	}
}
