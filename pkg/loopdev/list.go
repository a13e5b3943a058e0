package loopdev

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Device is a bound loop device as sysfs shows it to anyone.
type Device struct {
	Name string // loopN
	// Backing is the path of the file it reads, as the kernel saw it when
	// the device was set up (links resolved).
	Backing string
	// Replaced: that file has been removed or renamed over since (sysfs
	// appends " (deleted)"); the device still reads the old file.
	Replaced bool
}

// List returns the bound loop devices, by name, from
// /sys/block/loop*/loop/backing_file (no privilege needed). Errors: /sys
// cannot be listed.
func List() ([]Device, error) {
	files, err := filepath.Glob("/sys/block/loop*/loop/backing_file")
	if err != nil {
		return nil, fmt.Errorf("listing loop devices: %w", err)
	}
	var out []Device
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // unbound meanwhile
		}
		backing := strings.TrimSuffix(string(data), "\n")
		d := Device{Name: filepath.Base(filepath.Dir(filepath.Dir(f)))}
		d.Backing, d.Replaced = strings.CutSuffix(backing, " (deleted)")
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
