package main

import (
	"strings"

	"github.com/chos-hpc/chos/pkg/config"
)

// positions names configuration lines: "FILE:LINE, FILE:LINE".
func positions(at []config.Position) string {
	s := make([]string, len(at))
	for i, p := range at {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
