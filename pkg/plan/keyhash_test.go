package plan

import (
	"hash/fnv"
	"testing"
)

// keyHash is 64-bit FNV-1a over each string and its NUL: hash/fnv's own,
// written out so that a cached launch allocates nothing for its key.
func TestKeyHashIsFNV1a(t *testing.T) {
	for _, c := range [][]string{{}, {""}, {"abc", "de"}, {"v2", "cfg", "/os/el7", "\xff\x00é"}} {
		h := keyHash(fnvOffset)
		h.add(c...)
		want := fnv.New64a()
		for _, s := range c {
			want.Write([]byte(s + "\x00"))
		}
		if uint64(h) != want.Sum64() {
			t.Errorf("%q: %x, hash/fnv %x", c, uint64(h), want.Sum64())
		}
	}
	// Control: the strings' boundaries count.
	a, b := keyHash(fnvOffset), keyHash(fnvOffset)
	a.add("ab", "c")
	b.add("a", "bc")
	if a == b {
		t.Error("control: two splits of the same bytes hash alike")
	}
}
