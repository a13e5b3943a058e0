package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/chos-hpc/chos/pkg/ostree"
)

// The SPANK plugin as `chos check` sees it (chos_spank(8)). Slurm's own
// rules are followed: slurm.conf is $SLURM_CONF, else /etc/slurm/slurm.conf;
// plugstack.conf is its PlugStackConfig, else plugstack.conf next to it;
// `include GLOB` lines load more files, relative to the including file's
// directory; a relative plugin path is looked up in PluginDir
// (src/common/plugstack.c).

// spankWhat is the what(1) string chos_spank.so carries: the chos it runs
// when plugstack.conf gives no chos=.
const spankWhat = "@(#)chos_spank chos="

// slurmSettings are the slurm.conf parameters chos check reads, by
// lower-case name.
type slurmSettings map[string]string

// parseSlurmConf reads the "Name=Value" parameters of a slurm.conf (names
// are case-insensitive; the first word of a line only: NodeName lines and
// the like carry more, which chos does not need).
func parseSlurmConf(data []byte) slurmSettings {
	s := slurmSettings{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if k, v, ok := strings.Cut(fields[0], "="); ok {
			if _, seen := s[strings.ToLower(k)]; !seen {
				s[strings.ToLower(k)] = strings.Trim(v, `"`)
			}
		}
	}
	return s
}

// spankLine is one plugin line of a plugstack.conf.
type spankLine struct {
	at       string // file:line
	required bool
	path     string
	args     []string
}

// readPlugstack lists the plugin lines of file and of the files it
// includes, in Slurm's order. host maps a host path to where this process
// sees it. A missing plugstack.conf is an empty one, as for Slurm.
func readPlugstack(file string, host func(string) string, depth int) ([]spankLine, error) {
	if depth > 10 {
		return nil, fmt.Errorf("%s: includes nested more than 10 deep", file)
	}
	data, err := os.ReadFile(host(file))
	if errors.Is(err, fs.ErrNotExist) && depth == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []spankLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(text)
		if len(f) < 2 {
			continue
		}
		at := fmt.Sprintf("%s:%d", file, n)
		switch f[0] {
		case "include":
			pattern := f[1]
			if !filepath.IsAbs(pattern) {
				pattern = filepath.Join(filepath.Dir(file), pattern)
			}
			matches, err := filepath.Glob(host(pattern))
			if err != nil {
				return nil, fmt.Errorf("%s: include %s: %w", at, f[1], err)
			}
			prefix := strings.TrimSuffix(host("/"), "/")
			for _, m := range matches {
				lines, err := readPlugstack(strings.TrimPrefix(m, prefix), host, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, lines...)
			}
		case "required", "optional":
			out = append(out, spankLine{at: at, required: f[0] == "required", path: f[1], args: f[2:]})
		}
	}
	return out, sc.Err()
}

// checkSlurm reports whether chos_spank.so is configured here, and
// configured safely: required, its chos this chos, its default a tree.
func (cl *cmdline) checkSlurm(k *checker, cat *ostree.Catalog) {
	const what = "slurm"
	conf := os.Getenv("SLURM_CONF")
	if conf == "" {
		conf = "/etc/slurm/slurm.conf"
	}
	data, err := os.ReadFile(cl.inv.HostPath(conf))
	if errors.Is(err, fs.ErrNotExist) {
		k.ok(what, "no Slurm configuration (%s): the SPANK plugin is not checked", conf)
		return
	}
	if err != nil {
		k.warn(what, "%v: the SPANK plugin is not checked", err)
		return
	}
	set := parseSlurmConf(data)
	if jc := set["jobcontainertype"]; strings.Contains(jc, "tmpfs") {
		k.warn(what, "%s: JobContainerType=%s: a job in a tree gets the tree's view, with the host's /tmp and /dev/shm, not the job's private ones (chos_spank(8))", conf, jc)
	}
	plugstack := set["plugstackconfig"]
	if plugstack == "" {
		plugstack = filepath.Join(filepath.Dir(conf), "plugstack.conf")
	}
	lines, err := readPlugstack(plugstack, cl.inv.HostPath, 0)
	if err != nil {
		k.fail(what, "%v", err)
		return
	}
	found := false
	for _, l := range lines {
		if filepath.Base(l.path) == "chos_spank.so" {
			found = true
			cl.checkSpankLine(k, cat, l, set["plugindir"])
		}
	}
	if !found {
		k.warn(what, "%s does not load chos_spank.so: jobs cannot ask for a tree (--chos); `chos exec` in a job works without it", plugstack)
	}
}

func (cl *cmdline) checkSpankLine(k *checker, cat *ostree.Catalog, l spankLine, pluginDir string) {
	const what = "slurm"
	so := l.path
	if !filepath.IsAbs(so) {
		so = ""
		for _, dir := range filepath.SplitList(pluginDir) {
			if p := filepath.Join(dir, l.path); fileExists(cl.inv.HostPath(p)) {
				so = p
				break
			}
		}
		if so == "" {
			k.fail(what, "%s: %s is not in PluginDir %q: every job on this node fails", l.at, l.path, pluginDir)
			return
		}
	}
	data, err := os.ReadFile(cl.inv.HostPath(so))
	if err != nil {
		k.fail(what, "%s: %v: every job on this node fails", l.at, err)
		return
	}
	chosPath := ""
	if i := bytes.Index(data, []byte(spankWhat)); i >= 0 {
		rest := data[i+len(spankWhat):]
		if end := bytes.IndexByte(rest, 0); end >= 0 {
			chosPath = string(rest[:end])
		}
	} else {
		k.warn(what, "%s: %s is not chos's SPANK plugin (no %q in it)", l.at, so, spankWhat)
		return
	}
	var def string
	for _, a := range l.args {
		key, val, _ := strings.Cut(a, "=")
		switch key {
		case "chos":
			chosPath = val
		case "default":
			def = val
		case "timeout":
		default:
			k.fail(what, "%s: unknown option %q (chos=, default=, timeout=): the plugin fails every job", l.at, a)
			return
		}
	}
	warned := !l.required
	if warned {
		k.warn(what, "%s: chos_spank.so is optional: Slurm then ignores its errors, and a job whose tree chos refuses runs on the host; make it required", l.at)
	}
	self, err := os.Executable()
	if err != nil {
		k.warn(what, "cannot find this chos binary: %v", err)
		return
	}
	this, err := os.Stat(self)
	if err != nil {
		k.warn(what, "%v", err)
		return
	}
	fi, err := os.Stat(cl.inv.HostPath(chosPath))
	switch {
	case err != nil:
		k.fail(what, "%s: the plugin runs %s: %v: every job that asks for a tree fails", l.at, chosPath, err)
		return
	case !os.SameFile(fi, this):
		warned = true
		k.warn(what, "%s: the plugin runs %s, not this chos (%s)", l.at, chosPath, self)
	}
	if def != "" && cat != nil {
		if _, ok := cat.Lookup(def); !ok {
			k.fail(what, "%s: default=%s names no tree: every job that selects none fails", l.at, def)
			return
		}
	}
	if warned {
		return
	}
	defaults := ""
	if def != "" {
		defaults = ", default=" + def
	}
	k.ok(what, "%s: required %s runs %s%s", l.at, so, chosPath, defaults)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
