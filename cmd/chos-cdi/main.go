// chos-cdi reads Container Device Interface specs for chos, with the CNCF
// library (tags.cncf.io/container-device-interface): chos runs it only for
// launches that ask for devices and build their view, and for `chos check`
// and `chos plan`, so that the library's YAML decoder and validation are
// never started by the launches that do not (package devices says why).
//
//	chos-cdi [--trusted] --spec-dir=DIR... -- [DEVICE...]
//
// It prints a devices.Answer as JSON: each device asked for with its spec
// file and container edits (every device of every spec when none is
// asked), the devices no spec defines, and the problems of each spec file.
// Directories come lowest priority first: a device a later one defines
// wins, as the library's cache decides. With --trusted (chos runs it as
// root) every spec file must first pass chos's trust rule. It exits 0 with
// an answer, 125 with one line on stderr otherwise.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"tags.cncf.io/container-device-interface/pkg/cdi"

	"github.com/chos-hpc/chos/pkg/devices"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "chos-cdi: "+err.Error())
		os.Exit(125)
	}
}

func run(args []string) error {
	var dirs, names []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, names = args[:i], args[i+1:]
	}
	trusted := false
	for _, a := range args {
		switch {
		case a == devices.TrustedFlag:
			trusted = true
		case strings.HasPrefix(a, "--spec-dir="):
			dirs = append(dirs, strings.TrimPrefix(a, "--spec-dir="))
		default:
			return fmt.Errorf("unknown argument %q (usage: chos-cdi [--trusted] --spec-dir=DIR... -- [DEVICE...])", a)
		}
	}
	if len(dirs) == 0 {
		return errors.New("no --spec-dir")
	}
	// Root reads only what root alone could have written: the library
	// reads every file of the directories, so all must pass.
	if _, err := devices.Specs(dirs, trusted); err != nil {
		return err
	}
	cache, err := cdi.NewCache(cdi.WithSpecDirs(dirs...), cdi.WithAutoRefresh(false))
	if cache == nil {
		return fmt.Errorf("reading CDI specs: %w", err)
	}
	// (err lists the spec files' problems, which Errors reports per file)
	a := devices.Answer{Devices: []devices.Resolved{}}
	for path, errs := range cache.GetErrors() {
		if a.Errors == nil {
			a.Errors = map[string][]string{}
		}
		for _, e := range errs {
			a.Errors[path] = append(a.Errors[path], e.Error())
		}
	}
	if len(names) == 0 {
		names = cache.ListDevices()
		sort.Strings(names)
	}
	for _, n := range names {
		d := cache.GetDevice(n)
		if d == nil {
			a.Unresolved = append(a.Unresolved, n)
			continue
		}
		spec := d.GetSpec()
		a.Devices = append(a.Devices, devices.Resolved{
			Name: d.GetQualifiedName(), Spec: spec.GetPath(),
			SpecEdits: spec.ContainerEdits, Edits: d.ContainerEdits,
		})
	}
	return json.NewEncoder(os.Stdout).Encode(&a)
}
