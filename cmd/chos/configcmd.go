package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/chos-hpc/chos/pkg/config"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/plan"
)

// `chos config` prints the configuration chos acts on, after every file,
// each value with the lines it comes from (as `git config --show-origin`)
// or marked as a default.

// entry is one value of the effective configuration.
type entry struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	// Origin are the lines that set the value ("FILE:LINE"); empty for a
	// default or a built-in value.
	Origin  []string `json:"origin"`
	Default bool     `json:"default"`
	BuiltIn bool     `json:"builtin,omitempty"`
}

// treeConfig is one tree and its effective settings and binds.
type treeConfig struct {
	Name     string  `json:"name"`
	Personal bool    `json:"personal"`
	Entries  []entry `json:"entries"`
}

// problem is one error of the configuration.
type problem struct {
	Origin  string `json:"origin"`
	Message string `json:"message"`
}

type effectiveConfig struct {
	Files    []string     `json:"files"`
	Trees    []treeConfig `json:"trees"`
	Binds    []entry      `json:"binds,omitempty"`
	HostCmds []entry      `json:"hostcmds,omitempty"`
	Env      []entry      `json:"env,omitempty"`
	Audit    []entry      `json:"audit,omitempty"`
	CDI      []entry      `json:"cdi,omitempty"`
	Problems []problem    `json:"problems"`
}

func configCommand(cl *cmdline) *cli.Command {
	return &cli.Command{
		Name:      "config",
		Usage:     "print the configuration chos acts on, each value with the file and line it comes from",
		ArgsUsage: "[NAME]",
		Description: "Reads every configuration file and drop-in as a launch does, and prints every tree (aliases,\n" +
			"path, settings, binds), the site binds, %ENV, %AUDIT and %CDI: each value with the FILE:LINE that set it,\n" +
			"or `default`. Every error of every file is listed; then the exit status is 125.\n" +
			"With NAME, only that tree.",
		Flags:  []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: cl.cmdConfig,
	}
}

func (cl *cmdline) cmdConfig(_ context.Context, c *cli.Command) error {
	if err := cl.drop(); err != nil {
		return err
	}
	if c.NArg() > 1 {
		return fail(statusUsage, fmt.Errorf("usage: chos config [--json] [NAME]"))
	}
	paths, err := cl.inv.ConfigPaths()
	if err != nil {
		return fail(statusFailed, err)
	}
	ec, err := cl.effectiveConfig(paths, c.Args().First())
	if err != nil {
		return fail(statusFailed, err)
	}
	if c.Bool("json") {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(ec); err != nil {
			return err
		}
	} else {
		ec.print()
	}
	if n := len(ec.Problems); n > 0 {
		return fail(statusFailed, fmt.Errorf("the configuration has %d error(s), listed above: chos refuses every launch until they are fixed", n))
	}
	return nil
}

// effectiveConfig reads the configuration as a launch would (LoadAll: all
// errors, no ownership rule) and describes it; name keeps one tree only.
func (cl *cmdline) effectiveConfig(paths config.Paths, name string) (*effectiveConfig, error) {
	ec := &effectiveConfig{Files: []string{}, Trees: []treeConfig{}, Problems: []problem{}}
	set, errs := config.LoadAll(paths)
	ec.addProblems(errs...)
	if cl.inv.Privilege.UserNS {
		// (with the user's own rights: dropPrivilege came first)
		personal, err := config.LoadPersonal(cl.inv.PersonalPath())
		ec.addProblems(err)
		set.Personal = personal
	}
	if set.Sysconfig != nil {
		ec.Files = append(ec.Files, paths.Sysconfig)
	}
	for _, f := range set.Files {
		ec.Files = append(ec.Files, f.Name)
	}
	if !cl.inv.Privilege.UserNS {
		// The setuid chos refuses a system file root alone does not
		// vouch for: an error of the configuration it acts on.
		for _, f := range ec.Files {
			if err := config.CheckRootOwned(f); err != nil {
				ec.Problems = append(ec.Problems, problem{Origin: f, Message: err.Error() + ": the setuid chos refuses every launch"})
			}
		}
	}
	if set.Personal != nil {
		ec.Files = append(ec.Files, set.Personal.Name)
	}
	cat, err := ostree.NewCatalog(set)
	if err != nil {
		ec.addProblems(err)
		return ec, nil
	}
	trees := cat.Trees
	if name != "" {
		t, ok := cat.Lookup(name)
		if !ok {
			return nil, &ostree.UnknownTreeError{Name: name, From: "argument", Valid: cat.NameList()}
		}
		trees = []*ostree.Tree{t}
	}
	aliasAt := aliasLines(set)
	for _, t := range trees {
		ec.Trees = append(ec.Trees, describeTree(cat, t, aliasAt))
	}
	if name != "" {
		return ec, nil
	}
	for _, b := range plan.DefaultBinds {
		ec.Binds = append(ec.Binds, bindEntry("bind", b))
	}
	for _, b := range cat.Binds {
		ec.Binds = append(ec.Binds, bindEntry("bind", b))
	}
	for _, hc := range cat.HostCommands {
		ec.HostCmds = append(ec.HostCmds, entry{Key: "hostcmd", Value: hc.Path, Origin: []string{hc.At.String()}})
	}
	for _, f := range append(set.Files, set.Personal) {
		if f == nil {
			continue
		}
		for i, v := range f.Env {
			ec.Env = append(ec.Env, entry{Key: "env", Value: v, Origin: []string{f.EnvAt[i].String()}})
		}
	}
	ac := set.Audit()
	ec.Audit = []entry{origined("audit.facility", ac.Facility, ac.FacilityAt), origined("audit.socket", ac.Socket, ac.SocketAt)}
	cc := set.CDI()
	ec.CDI = []entry{origined("cdi.spec-dirs", strings.Join(cc.SpecDirs, " "), cc.SpecDirsAt)}
	for _, r := range cc.Devices {
		ec.CDI = append(ec.CDI, origined("cdi.devices", r.Pattern, r.At))
	}
	return ec, nil
}

func (ec *effectiveConfig) addProblems(errs ...error) {
	for _, err := range errs {
		var ce *config.Error
		switch {
		case err == nil:
		case errors.As(err, &ce):
			ec.Problems = append(ec.Problems, problem{Origin: ce.At.String(), Message: ce.Msg})
		default:
			ec.Problems = append(ec.Problems, problem{Message: err.Error()})
		}
	}
}

// aliasLines is where each name of %SHELLS was first given (the line
// NewCatalog takes it from).
func aliasLines(set *config.Set) map[string]config.Position {
	at := map[string]config.Position{}
	for _, f := range append(set.Files, set.Personal) {
		if f == nil {
			continue
		}
		for _, a := range f.Shells {
			if _, ok := at[a.Name]; !ok {
				at[a.Name] = a.At
			}
		}
	}
	return at
}

func describeTree(cat *ostree.Catalog, t *ostree.Tree, aliasAt map[string]config.Position) treeConfig {
	tc := treeConfig{Name: t.Name, Personal: t.Personal}
	pre := "tree." + t.Name + "."
	if t.Host {
		tc.Entries = append(tc.Entries, entry{Key: pre + "path", Value: t.Path, BuiltIn: true, Origin: []string{}})
	} else {
		tc.Entries = append(tc.Entries, entry{Key: pre + "path", Value: t.Path, Origin: []string{t.At.String()}})
	}
	for _, a := range t.Aliases {
		at, ok := aliasAt[a]
		if t.Host && !ok {
			tc.Entries = append(tc.Entries, entry{Key: pre + "alias", Value: a, BuiltIn: true, Origin: []string{}})
			continue
		}
		tc.Entries = append(tc.Entries, entry{Key: pre + "alias", Value: a, Origin: []string{at.String()}})
	}
	if t.Host {
		return tc
	}
	for _, s := range t.Settings() {
		e := entry{Key: pre + s.Key, Value: s.Value, Origin: []string{}, Default: len(s.At) == 0}
		for _, at := range s.At {
			e.Origin = append(e.Origin, at.String())
		}
		tc.Entries = append(tc.Entries, e)
	}
	for _, b := range plan.HostBinds(cat, t) {
		tc.Entries = append(tc.Entries, bindEntry(pre+"bind", b))
	}
	return tc
}

// bindEntry shows a bind as %BIND takes it, ro or rw always said.
func bindEntry(key string, b config.Bind) entry {
	v := b.Source
	if b.Dest != b.Source {
		v += " " + b.Dest
	}
	if b.ReadOnly {
		v += " ro"
	} else {
		v += " rw"
	}
	if b.Optional {
		v += " optional"
	}
	return origined(key, v, b.At)
}

// origined is a value set at one line, or a default where at is zero.
func origined(key, value string, at config.Position) entry {
	if at.File == "" {
		return entry{Key: key, Value: value, Origin: []string{}, Default: true}
	}
	return entry{Key: key, Value: value, Origin: []string{at.String()}}
}

// print writes one line per value: ORIGIN KEY VALUE.
func (ec *effectiveConfig) print() {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "# files: %s\n", strings.Join(ec.Files, ", "))
	line := func(e entry) {
		origin := strings.Join(e.Origin, ",")
		switch {
		case e.BuiltIn:
			origin = "built-in"
		case e.Default:
			origin = "default"
		}
		v := e.Value
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", origin, e.Key, v)
	}
	for _, t := range ec.Trees {
		for _, e := range t.Entries {
			line(e)
		}
	}
	for _, list := range [][]entry{ec.Binds, ec.HostCmds, ec.Env, ec.Audit, ec.CDI} {
		for _, e := range list {
			line(e)
		}
	}
	for _, p := range ec.Problems {
		fmt.Fprintf(w, "%s\terror\t%s\n", orDash(p.Origin), p.Message)
	}
	w.Flush()
}
