package ostree

import "strings"

// Source says where a selection came from, in the order they are tried.
type Source string

const (
	FromArgument Source = "argument"
	FromEnv      Source = "$CHOS"
	FromDotfile  Source = "~/.chos"
	FromPlugin   Source = "the integration's default"
	FromDefault  Source = "default tree"
	FromFallback Source = "no selection (host)"
)

// Selection is the tree a process will run in and why.
type Selection struct {
	Tree   *Tree
	Name   string // the name as given, which may be an alias
	Source Source
}

// Inputs are the places a tree name can come from; empty means "not given".
type Inputs struct {
	Argument string // a name on the command line
	Env      string // $CHOS
	Dotfile  string // the content of ~/.chos
	// Plugin is the default an integration was configured with (the
	// SPANK plugin's default=), tried instead of the site's default.
	Plugin string
	// Batch selects for a batch job: neither ~/.chos nor the tree aliased
	// "default" is consulted, only the argument, $CHOS and the plugin's
	// default (the original job starter followed $CHOS alone).
	Batch bool
}

// FirstLine returns the first line of a ~/.chos file, trimmed, as the
// original pam_chos read it.
func FirstLine(content string) string {
	line, _, _ := strings.Cut(content, "\n")
	return strings.TrimSpace(line)
}

// Select applies the selection order: argument, $CHOS, ~/.chos, the tree
// named "default", the host. A name that is given but unknown is an error,
// never skipped: a job must not silently run in another OS than asked.
func (c *Catalog) Select(in Inputs) (Selection, error) {
	for _, cand := range []struct {
		name string
		src  Source
	}{{in.Argument, FromArgument}, {in.Env, FromEnv}, {FirstLine(in.Dotfile), FromDotfile}, {in.Plugin, FromPlugin}} {
		if cand.name == "" {
			continue
		}
		t, ok := c.Lookup(cand.name)
		if !ok {
			return Selection{}, &UnknownTreeError{Name: cand.name, From: string(cand.src), Valid: c.NameList()}
		}
		return Selection{Tree: t, Name: cand.name, Source: cand.src}, nil
	}
	if c.Default != nil && !in.Batch {
		return Selection{Tree: c.Default, Name: defaultName, Source: FromDefault}, nil
	}
	host := c.byName[Local]
	return Selection{Tree: host, Name: Local, Source: FromFallback}, nil
}
