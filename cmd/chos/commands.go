package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"github.com/chos-hpc/chos/pkg/launch"
	"github.com/chos-hpc/chos/pkg/nsroot"
	"github.com/chos-hpc/chos/pkg/ostree"
	"github.com/chos-hpc/chos/pkg/spec"
)

// dotfile is the caller's ~/.chos, in passwd's home directory as the
// original pam_chos used it ($HOME only when passwd does not know the user).
func (cl *cmdline) dotfile() (string, error) {
	home, err := cl.inv.Home()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".chos"), nil
}

func (cl *cmdline) cmdSelect(_ context.Context, c *cli.Command) error {
	if err := cl.drop(); err != nil {
		return err
	}
	if c.NArg() > 1 || (c.Bool("clear") && c.NArg() > 0) {
		return fail(statusUsage, fmt.Errorf("usage: chos select [NAME] | chos select --clear"))
	}
	path, err := cl.dotfile()
	if err != nil {
		return fail(statusFailed, err)
	}
	switch {
	case c.Bool("clear"):
		// Removing a link removes the link, never what it points to.
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fail(statusFailed, fmt.Errorf("removing %s: %w", path, err))
		}
		return nil
	case c.NArg() == 0:
		return cl.printSelection(path)
	}
	cat, _, err := cl.inv.Catalog()
	if err != nil {
		return fail(statusFailed, err)
	}
	name := c.Args().First()
	t, ok := cat.Lookup(name)
	if !ok {
		return fail(statusFailed, &ostree.UnknownTreeError{Name: name, From: "argument", Valid: cat.NameList()})
	}
	// Selecting a tree one may not use would only move the refusal to
	// the next login.
	if err := cl.inv.MayUse(t); err != nil {
		return fail(statusFailed, err)
	}
	if err := writeDotfile(path, name); err != nil {
		return fail(statusFailed, err)
	}
	return nil
}

func (cl *cmdline) printSelection(path string) error {
	data, err := os.ReadFile(path)
	if name := ostree.FirstLine(string(data)); err == nil && name != "" {
		fmt.Println(name)
		// Every plain `chos` would refuse a selection the user may not
		// (or no longer) use: say so here too.
		if cat, _, err := cl.inv.Catalog(); err == nil {
			if t, ok := cat.Lookup(name); !ok {
				fmt.Fprintln(os.Stderr, "chos: note: "+(&ostree.UnknownTreeError{Name: name, From: path, Valid: cat.NameList()}).Error())
			} else if err := cl.inv.MayUse(t); err != nil {
				fmt.Fprintln(os.Stderr, "chos: note: "+err.Error())
			}
		}
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail(statusFailed, fmt.Errorf("reading %s: %w", path, err))
	}
	cat, _, err := cl.inv.Catalog()
	if err != nil {
		return fail(statusFailed, err)
	}
	sel, _ := cat.Select(ostree.Inputs{})
	fmt.Printf("%s (no %s; %s)\n", sel.Tree.Name, path, sel.Source)
	return nil
}

// writeDotfile replaces ~/.chos atomically, with the caller's rights (chos
// has dropped root before this). A ~/.chos that is a symbolic link is
// refused: writing through it could change a file the link points at.
func writeDotfile(path, name string) error {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("not writing %s: it is a symbolic link; remove it first (chos select --clear)", path)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".chos.tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.WriteString(name + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// treeInfo is one line of `chos list`.
type treeInfo struct {
	Name        string   `json:"name"`
	Aliases     []string `json:"aliases"`
	Path        string   `json:"path"`
	OS          string   `json:"os"`
	Usable      bool     `json:"usable"`
	Problem     string   `json:"problem,omitempty"`
	Default     bool     `json:"default"`
	Current     bool     `json:"current"`
	Description string   `json:"description,omitempty"`
	Personal    bool     `json:"personal"`
	// Allowed: the tree's users = and groups = admit the caller;
	// Restriction says otherwise whom it is for and where.
	Allowed     bool   `json:"allowed"`
	Restriction string `json:"restriction,omitempty"`
}

func (cl *cmdline) cmdList(_ context.Context, c *cli.Command) error {
	if err := cl.drop(); err != nil {
		return err
	}
	cat, _, err := cl.inv.Catalog()
	if err != nil {
		return fail(statusFailed, err)
	}
	current, err := currentTree()
	if err != nil {
		return fail(statusFailed, err)
	}
	var def *ostree.Tree
	if path, err := cl.dotfile(); err == nil {
		data, _ := os.ReadFile(path)
		if sel, err := cat.Select(ostree.Inputs{Dotfile: string(data)}); err == nil {
			def = sel.Tree
		}
	}
	infos := make([]treeInfo, 0, len(cat.Trees))
	for _, t := range cat.Trees {
		info := treeInfo{Name: t.Name, Aliases: t.Aliases, Path: t.Path, OS: ostree.OSName(cl.inv.HostPath(t.Path)),
			Usable: true, Default: t == def, Current: t.Name == current, Description: t.Description, Personal: t.Personal}
		if info.Aliases == nil {
			info.Aliases = []string{}
		}
		if err := cl.inv.TreeProblem(t); err != nil {
			info.Usable, info.Problem = false, err.Error()
		}
		info.Allowed = true
		if err := cl.inv.MayUse(t); err != nil {
			info.Allowed, info.Restriction = false, launch.Restriction(t)
			var fe *launch.ForbiddenError
			var ue *launch.UnreadableError
			switch {
			case errors.As(err, &ue):
				info.Restriction = "you cannot read " + t.Path
			case !errors.As(err, &fe):
				info.Restriction = "cannot tell: " + err.Error()
			}
		}
		infos = append(infos, info)
	}
	if c.Bool("json") {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(infos)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  NAME\tALIASES\tPATH\tOS\tSTATUS")
	for _, i := range infos {
		mark := " "
		if i.Current {
			mark = ">"
		}
		status := "ok"
		switch {
		case !i.Usable:
			status = "unusable: " + i.Problem
		case !i.Allowed:
			status = "not for you (" + i.Restriction + ")"
		}
		if i.Default {
			status += " (your default)"
		}
		if i.Personal {
			status += " (personal)"
		}
		fmt.Fprintf(w, "%s %s\t%s\t%s\t%s\t%s\n", mark, i.Name, strings.Join(i.Aliases, ","), i.Path, orDash(i.OS), status)
	}
	fmt.Fprintln(w, "(> marks the tree this shell runs in)")
	if desc, err := cl.inv.DescribeIdentity(); err == nil {
		fmt.Fprintln(w, "("+desc+")")
	}
	return w.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// currentTree names the tree of this process from its mount namespace.
func currentTree() (string, error) {
	name, inTree, err := nsroot.CurrentTree()
	if err != nil || !inTree {
		return ostree.Local, err
	}
	return name, nil
}

func (cl *cmdline) cmdCurrent(_ context.Context, c *cli.Command) error {
	if err := cl.drop(); err != nil {
		return err
	}
	name, err := currentTree()
	if err != nil {
		return fail(statusFailed, err)
	}
	fmt.Println(name)
	return nil
}

func (cl *cmdline) cmdPlan(_ context.Context, c *cli.Command) error {
	if err := cl.drop(); err != nil {
		return err
	}
	args := c.Args().Slice()
	name := ""
	if len(args) > 0 && args[0] != "--" {
		name, args = args[0], args[1:]
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	l, err := cl.inv.Prepare(launch.Request{Tree: name, Argv: args, Login: len(args) == 0, Devices: deviceLists(c)})
	var more []spec.Note
	if err == nil {
		// an image tree's entries and the devices' steps, as the view
		// would show them
		more, err = nsroot.CompleteView(&l.Plan.View)
	}
	if err != nil {
		return fail(statusFailed, err)
	}
	fmt.Print(l.Plan.String())
	for _, n := range append(l.Notes, more...) {
		fmt.Printf("note      %s\n", n.Text)
	}
	return nil
}
