package spec

import (
	"slices"
	"testing"
)

// What the view's file holds, read back as it was written.
func TestDeviceEnvReadsBackAsWritten(t *testing.T) {
	env := []string{"A=1", "B=two\nlines", "C="}
	if got := ParseDeviceEnv([]byte(DeviceEnvContent(env))); !slices.Equal(got, env) {
		t.Errorf("env file read back as %q, want %q", got, env)
	}
}
