package nsroot

import (
	"slices"
	"testing"
)

func TestMergeEnvReplacesInPlace(t *testing.T) {
	got := MergeEnv([]string{"PATH=/bin", "A=1", "B=2", "A=3"}, []string{"A=x", "C=y", "C=z"})
	if want := []string{"PATH=/bin", "A=x", "B=2", "C=z"}; !slices.Equal(got, want) {
		t.Errorf("MergeEnv = %v, want %v", got, want)
	}
}
