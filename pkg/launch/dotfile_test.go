package launch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Only a missing ~/.chos means no selection; one that is there but cannot
// be read is refused, never taken as none (which would run the command on
// the host, or in the default tree, where the user did not choose).
func TestDotfileOnlyMissingMeansNoSelection(t *testing.T) {
	inv := Invocation{Privilege: Privilege{UserNS: true}} // (read with this process's own rights)
	for _, tc := range []struct {
		name    string
		make    func(t *testing.T, home string) // makes home/.chos
		content string
		refused bool
	}{
		{"missing", func(*testing.T, string) {}, "", false},
		{"home missing", func(t *testing.T, home string) { must(t, os.Remove(home)) }, "", false},
		{"home a file", func(t *testing.T, home string) {
			must(t, os.Remove(home))
			must(t, os.WriteFile(home, nil, 0o644))
		}, "", false},
		{"a tree's name", func(t *testing.T, home string) {
			must(t, os.WriteFile(filepath.Join(home, ".chos"), []byte("el7\n"), 0o644))
		}, "el7\n", false},
		{"empty", func(t *testing.T, home string) { must(t, os.WriteFile(filepath.Join(home, ".chos"), nil, 0o644)) }, "", false},
		{"a directory", func(t *testing.T, home string) { must(t, os.Mkdir(filepath.Join(home, ".chos"), 0o755)) }, "", true},
		{"a link to nothing", func(t *testing.T, home string) {
			must(t, os.Symlink(filepath.Join(home, "gone"), filepath.Join(home, ".chos")))
		}, "", true},
		{"a link loop", func(t *testing.T, home string) {
			must(t, os.Symlink(".chos", filepath.Join(home, ".chos")))
		}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "home")
			must(t, os.Mkdir(home, 0o755))
			tc.make(t, home)
			content, err := inv.readDotfile(home)
			if refused := err != nil; refused != tc.refused || content != tc.content {
				t.Fatalf("readDotfile = %q, %v; want %q, refused %v", content, err, tc.content, tc.refused)
			}
			if err != nil && (!strings.Contains(err.Error(), filepath.Join(home, ".chos")) || strings.Contains(err.Error(), "\n")) {
				t.Errorf("the refusal is not one line naming the file: %v", err)
			}
		})
	}
}
