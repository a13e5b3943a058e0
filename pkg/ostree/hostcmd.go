package ostree

import (
	"fmt"
	"path"
	"strings"

	"github.com/chos-hpc/chos/pkg/config"
)

// addHostCommands takes the %HOSTCMD lines of the system configuration. A
// command is called by its base name inside a tree: two paths with one
// base name would be ambiguous, and chos's own names start chos itself.
func (c *Catalog) addHostCommands(cmds []config.HostCommand) error {
	for _, hc := range cmds {
		name := path.Base(hc.Path)
		if IsChosName(name) {
			return &config.Error{At: hc.At, Msg: fmt.Sprintf("host command %s: %q is a name of chos itself", hc.Path, name)}
		}
		if prev, ok := c.hostByName[name]; ok && prev.Path != hc.Path {
			return &config.Error{At: hc.At, Msg: fmt.Sprintf("host command %s: the name %s is taken by %s at %s", hc.Path, name, prev.Path, prev.At)}
		} else if ok {
			continue
		}
		c.hostByName[name] = hc
		c.HostCommands = append(c.HostCommands, hc)
	}
	return nil
}

// HostCommand finds the host command called name (its base name).
func (c *Catalog) HostCommand(name string) (config.HostCommand, bool) {
	hc, ok := c.hostByName[name]
	return hc, ok
}

// IsChosName says whether a program name is chos's own rather than a
// tree's (vsys form) or a host command's: "chos", or "chos" followed by
// '-', '.' or '_' and anything (chos-1.2, chos.static, chos_debug). Every
// other name, "chosen" included, is not.
func IsChosName(prog string) bool {
	rest, ok := strings.CutPrefix(prog, "chos")
	return ok && (rest == "" || strings.ContainsRune("-._", rune(rest[0])))
}
