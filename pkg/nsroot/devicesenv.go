package nsroot

import (
	"fmt"
	"os"
	"strings"

	"github.com/chos-hpc/chos/pkg/spec"
)

// ViewEnv is the environment the devices of the view the calling thread is
// in set (spec.DeviceEnvFile), in order.
func ViewEnv() ([]string, error) {
	data, err := os.ReadFile(spec.DeviceEnvFile)
	if err != nil {
		return nil, fmt.Errorf("reading the devices' environment: %w", err)
	}
	return spec.ParseDeviceEnv(data), nil
}

// MergeEnv is env with each KEY=VALUE of add set: an earlier value of KEY
// is replaced, in place.
func MergeEnv(env, add []string) []string {
	out := append([]string(nil), env...)
	for _, kv := range add {
		key, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, old := range out {
			if k, _, _ := strings.Cut(old, "="); k == key {
				if !replaced {
					out[i], replaced = kv, true
				} else {
					out[i] = "" // (dropped below)
				}
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	kept := out[:0]
	for _, kv := range out {
		if kv != "" {
			kept = append(kept, kv)
		}
	}
	return kept
}
