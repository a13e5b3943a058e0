package launch

import (
	"os/exec"
	"reflect"
	"testing"
)

func TestFirstWordKeepsTheRestAsTyped(t *testing.T) {
	for _, c := range []struct{ in, word, rest string }{
		{"scp -t -- '/home/a b/'", "scp", " -t -- '/home/a b/'"},
		{"  internal-sftp", "internal-sftp", ""},
		{"rsync\t--server .", "rsync", "\t--server ."},
		{"", "", ""},
	} {
		if w, r := firstWord(c.in); w != c.word || r != c.rest {
			t.Errorf("firstWord(%q) = %q, %q; want %q, %q", c.in, w, r, c.word, c.rest)
		}
	}
}

// The login shell keeps the ssh session's and the locale's variables that
// the tree's list dropped, and nothing else.
func TestKeepSessionEnvAddsSessionAndLocaleOnly(t *testing.T) {
	env := []string{"CHOS=el7", "HOME=/home/a", "PATH=/usr/bin:/bin:/.chos/bin", "TERM=xterm"}
	from := []string{"HOME=/elsewhere", "LANG=de_DE.UTF-8", "LC_TIME=C", "SSH_CONNECTION=1 2 3 4", "TERM=vt100",
		"DISPLAY=localhost:10.0", "LD_PRELOAD=/x.so", "PATH=/host", "MYVAR=1"}
	got := keepSessionEnv(env, from)
	want := []string{"CHOS=el7", "DISPLAY=localhost:10.0", "HOME=/home/a", "LANG=de_DE.UTF-8", "LC_TIME=C",
		"PATH=/usr/bin:/bin:/.chos/bin", "SSH_CONNECTION=1 2 3 4", "TERM=xterm"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("keepSessionEnv = %q, want %q", got, want)
	}
}

// What shellQuoteArgv quotes, sh reads back as the same words.
func TestShellQuoteArgvRoundTrips(t *testing.T) {
	argv := []string{"/.chos/host/lib/ld.so", "--library-path", "/a:/b c", "it's", "$HOME", "`x`", ""}
	out, err := exec.Command("sh", "-c", `for a in `+shellQuoteArgv(argv)+`; do printf '%s|' "$a"; done`).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "/.chos/host/lib/ld.so|--library-path|/a:/b c|it's|$HOME|`x`||"; string(out) != want {
		t.Errorf("sh read %q, want %q", out, want)
	}
}
