package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Shell completion (etc/completion), installed by make install where each
// shell looks for it, completes commands, options and the trees the user
// may use, in bash, zsh and fish for real.

func TestShellCompletionOffersTheTreesTheUserMayUse(t *testing.T) {
	bashFile := filepath.Join(h.prefix, "share", "bash-completion", "completions", "chos")
	zshDir := filepath.Join(h.prefix, "share", "zsh", "site-functions")
	for _, f := range []string{bashFile, filepath.Join(zshDir, "_chos"), filepath.Join(h.prefix, "share", "fish", "vendor_completions.d", "chos.fish")} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o644 {
			t.Fatalf("make install did not install %s 0644: %v", f, err)
		}
	}
	// the installed chos is `chos` on the user's PATH; fish finds its
	// vendor completions through XDG_DATA_DIRS
	zdump := filepath.Join(h.home, unique(t)+".zcompdump") // the user's to write
	t.Cleanup(func() { os.Remove(zdump) })
	env := []string{"PATH=" + filepath.Join(h.prefix, "bin") + ":/usr/bin:/bin", "XDG_DATA_DIRS=" + filepath.Join(h.prefix, "share")}
	// zsh's driver, where the user can read it (the checkout may be under
	// root's 0700 home)
	zshDriver := filepath.Join(h.tmp, unique(t)+"-zsh-complete.zsh")
	copyFile(t, filepath.Join(h.repo, "test/integration/testdata/zsh-complete.zsh"), zshDriver, 0o644)
	t.Cleanup(func() { os.Remove(zshDriver) })
	shells := []struct {
		name string
		// complete returns what the shell offers for line (ending in a
		// space: the next word)
		complete func(t *testing.T, line string) string
	}{
		{"bash", func(t *testing.T, line string) string {
			script := `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _chos; printf '%s\n' "${COMPREPLY[@]}"`
			words := strings.Split(line, " ") // the last is "": the word completed
			r := run(t, call{Args: append([]string{"bash", "--norc", "-c", script, "bash", bashFile}, words...), Env: env})
			wantStatus(t, r, 0)
			return r.stdout
		}},
		{"zsh", func(t *testing.T, line string) string {
			r := run(t, call{Args: []string{"zsh", "-f", zshDriver, zshDir, zdump, line}, Env: env})
			wantStatus(t, r, 0)
			return r.stdout
		}},
		{"fish", func(t *testing.T, line string) string {
			r := run(t, call{Args: []string{"fish", "-c", "complete -C " + shellQuote(line)}, Env: env})
			wantStatus(t, r, 0)
			return r.stdout
		}},
	}
	restrict := filepath.Join(h.etc, "chos.d", unique(t)+".conf")
	t.Cleanup(func() { os.Remove(restrict) })
	for _, sh := range shells {
		t.Run(sh.name, func(t *testing.T) {
			os.Remove(restrict)
			// the control: every tree is offered
			got := sh.complete(t, "chos exec ")
			for _, name := range []string{"one", "two", "three", "default", "local"} {
				if !completes(got, name) {
					t.Errorf("chos exec <TAB> does not offer %s:\n%s", name, got)
				}
			}
			must(t, writeRootFile(restrict, "%TREE three\nusers = root\n", 0o644))
			got = sh.complete(t, "chos shell ")
			if completes(got, "three") || !completes(got, "two") {
				t.Errorf("chos shell <TAB> with three restricted to root offers:\n%s", got)
			}
			if got := sh.complete(t, "chos "); !completes(got, "exec") || !completes(got, "config") || completes(got, "prepare") {
				t.Errorf("chos <TAB> offers:\n%s", got)
			}
			if sh.name != "zsh" { // (one candidate: zsh completes it in the line)
				if got := sh.complete(t, "chos --mode "); !completes(got, "userns") {
					t.Errorf("chos --mode <TAB> offers:\n%s", got)
				}
			}
		})
	}
}

// completes says whether name is offered in a shell's output: a word of
// its own (a zsh listing, bash's or fish's lines).
func completes(out, name string) bool {
	for _, w := range strings.FieldsFunc(out, func(r rune) bool { return r == ' ' || r == '\n' || r == '\r' || r == '\t' || r == '\x1b' }) {
		if w == name || strings.TrimPrefix(w, "[J") == name {
			return true
		}
	}
	return false
}
