package devices

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/chos-hpc/chos/pkg/trust"
)

// Answer is what the helper program (cmd/chos-cdi) prints on its standard
// output, as JSON: the devices asked for (every device of every spec when
// none was), the names no spec defines, and each spec file's problems as
// the CDI library reported them (a file that does not parse, two specs of
// one priority defining a device).
type Answer struct {
	Devices    []Resolved          `json:"devices"`
	Unresolved []string            `json:"unresolved,omitempty"`
	Errors     map[string][]string `json:"errors,omitempty"`
}

// TrustedFlag tells the helper that it runs with root's rights: it then
// reads only spec files that pass the trust rule (Specs).
const TrustedFlag = "--trusted"

// Helper runs the helper program, which parses and validates the spec
// files with the CDI library and prints an Answer.
type Helper struct {
	Path string // as this process reaches it
	// AsRoot runs it with every uid and gid 0 (setuid chos building a
	// view every user will enter): the caller could otherwise stop or
	// trace it and forge what root binds. It must then be a program only
	// root can change.
	AsRoot bool
	// Trusted has it read only spec files that pass the trust rule
	// (whenever chos is installed setuid, as for the configuration).
	Trusted bool
}

// helperTimeout bounds the helper: spec files are local and small.
const helperTimeout = 30 * time.Second

// Run runs the helper on the spec directories for names (every device
// when names is empty).
func (h Helper) Run(dirs, names []string) (*Answer, error) {
	if h.AsRoot {
		if err := trust.CheckPath(h.Path); err != nil {
			return nil, fmt.Errorf("refusing to run the CDI helper: %w", err)
		}
	}
	args := []string{}
	if h.Trusted {
		args = append(args, TrustedFlag)
	}
	for _, d := range dirs {
		args = append(args, "--spec-dir="+d)
	}
	args = append(args, "--")
	args = append(args, names...)
	ctx, cancel := context.WithTimeout(context.Background(), helperTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.Path, args...)
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if h.AsRoot {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &limited{w: &stdout, n: 64 << 20}
	cmd.Stderr = &limited{w: &stderr, n: 4096}
	err := cmd.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("the CDI helper %s did not answer within %v", h.Path, helperTimeout)
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		if msg == "" {
			msg = err.Error()
		}
		var ee *exec.Error
		if errors.As(err, &ee) {
			msg = "cannot run the CDI helper " + h.Path + ": " + ee.Err.Error()
		}
		return nil, errors.New(strings.TrimPrefix(msg, "chos-cdi: "))
	}
	var a Answer
	if err := json.Unmarshal(stdout.Bytes(), &a); err != nil {
		return nil, fmt.Errorf("the CDI helper %s: unreadable answer: %w", h.Path, err)
	}
	return &a, nil
}

// Resolve finds the devices names in the specs of dirs, or says why not:
// a name no spec defines is refused with the spec directories and every
// problem the library found in their files.
func (h Helper) Resolve(dirs, names []string) ([]Resolved, error) {
	a, err := h.Run(dirs, names)
	if err != nil {
		return nil, err
	}
	if len(a.Unresolved) > 0 {
		return nil, &UnknownError{Device: a.Unresolved[0], Dirs: dirs, Problems: a.Errors}
	}
	return a.Devices, nil
}

// UnknownError is a device no spec file defines.
type UnknownError struct {
	Device   string
	Dirs     []string
	Problems map[string][]string // spec file -> what is wrong with it
}

func (e *UnknownError) Error() string {
	msg := "unknown device " + e.Device + ": no CDI spec in " + strings.Join(e.Dirs, ", ") + " defines it"
	for _, f := range slices.Sorted(maps.Keys(e.Problems)) {
		msg += "; " + f + ": " + strings.Join(e.Problems[f], "; ")
	}
	return msg
}

// limited writes at most n bytes to w, and drops the rest.
type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > l.n {
		p = p[:l.n]
	}
	l.n -= len(p)
	l.w.Write(p)
	return n, nil
}
