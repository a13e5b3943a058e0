package identity

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
)

// getent runs `getent DB KEY...` and returns the lines it printed. Exit
// status 2 (some key not found) is not an error: the keys found are
// printed. The environment is empty, so nothing of the caller's (LD_*,
// NSS_*, locale) reaches it.
func getent(ctx context.Context, prog string, asRoot bool, db string, keys ...string) ([]string, error) {
	cmd := exec.CommandContext(ctx, prog, append([]string{db}, keys...)...)
	cmd.Env = []string{}
	cmd.Dir = "/"
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if asRoot {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{}}
	}
	err := cmd.Run()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.ExitCode() == 2:
	default:
		return nil, fmt.Errorf("%s %s: %w %s", prog, db, err, strings.TrimSpace(errOut.String()))
	}
	var lines []string
	for _, l := range strings.Split(out.String(), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines, nil
}
