// Package ldcache reads and writes the dynamic loader's cache,
// /etc/ld.so.cache, as glibc's ldconfig writes it and its ld.so reads it
// (glibc elf/cache.c, elf/dl-cache.c, sysdeps/generic/dl-cache.h). chos
// makes one for a view that shows a device's libraries: the tree's own
// cache with the injected libraries added, in the format the tree's
// glibc wrote, so that the tree's loader finds them as it finds its own
// without anything run from the tree or written into it. Input is parsed
// with every offset checked: a malformed cache is an error, never a panic.
package ldcache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Format is the layout of a cache file.
type Format int

const (
	// FormatNew is the "glibc-ld.so.cache1.1" format alone: what ldconfig
	// writes by default since glibc 2.32, and what every glibc since 2.3
	// reads.
	FormatNew Format = iota
	// FormatCompat is the libc5 format followed by the new one (glibc
	// before 2.32), each loader reading the part it knows.
	FormatCompat
	// FormatOld is the libc5 format alone ("ld.so-1.7.0").
	FormatOld
)

const (
	magicOld   = "ld.so-1.7.0"
	magicNew   = "glibc-ld.so.cache1.1"
	headerOld  = 16 // magic, padding, nlibs
	entryOld   = 12 // flags, key, value
	headerNew  = 48 // magic and version, nlibs, len_strings, flags, padding, extension_offset, unused
	entryNew   = 24 // flags, key, value, osversion, hwcap
	alignNew   = 8  // __alignof__ (struct cache_file_new)
	extMagic   = 0xeaa42174
	extSection = 16 // tag, flags, offset, size
	// extension sections (enum cache_extension_tag)
	tagGenerator   = 0
	tagGlibcHWCaps = 1
)

// Entry is one library the loader can find: Name is the soname it is
// looked up by, Path the file it loads.
type Entry struct {
	Flags     int32 // FLAG_ELF_LIBC6 and the architecture's flag (Flags)
	Name      string
	Path      string
	OSVersion uint32
	// HWCap: hardware capabilities, or for glibc 2.33's glibc-hwcaps
	// subdirectories bit 62 and the index of one of Cache.HWCapsDirs.
	HWCap uint64
}

// Cache is a parsed cache file.
type Cache struct {
	Format Format
	// Endian is the new header's flags byte (0 unset, 2 little, 3 big).
	Endian uint8
	// Entries are in file order: the order the loader's binary search
	// expects (names descending as Compare orders them).
	Entries []Entry
	// Generator and HWCapsDirs are the extension glibc 2.33 added (the
	// ldconfig that wrote the file, the glibc-hwcaps subdirectories).
	Generator  string
	HWCapsDirs []string
}

// (binary.NativeEndian throughout: the loader reads the cache in its own
// byte order. Not kept in a variable of this package, which every launch
// of chos would initialise.)

// Empty is a cache with no library, in the new format of this machine's
// byte order: for a tree that has none.
func Empty() *Cache {
	c := &Cache{Format: FormatNew, Endian: 2} // cache_file_new_flags_endian_little
	if binary.NativeEndian.Uint16([]byte{0, 1}) == 1 {
		c.Endian = 3 // big
	}
	return c
}

// Parse reads a cache file.
func Parse(data []byte) (*Cache, error) {
	switch {
	case bytes.HasPrefix(data, []byte(magicNew)):
		c := &Cache{Format: FormatNew}
		return c, c.parseNew(data, 0)
	case bytes.HasPrefix(data, []byte(magicOld)):
		if len(data) < headerOld {
			return nil, errors.New("truncated header")
		}
		n := uint64(binary.NativeEndian.Uint32(data[12:]))
		if n > uint64(len(data)-headerOld)/entryOld {
			return nil, fmt.Errorf("%d entries do not fit in %d bytes", n, len(data))
		}
		end := headerOld + int(n)*entryOld
		next := align(end, alignNew)
		if next+headerNew <= len(data) && bytes.HasPrefix(data[next:], []byte(magicNew)) {
			c := &Cache{Format: FormatCompat}
			return c, c.parseNew(data, next)
		}
		c := &Cache{Format: FormatOld}
		for i := 0; i < int(n); i++ {
			e := data[headerOld+i*entryOld:]
			name, err := cstring(data, end, binary.NativeEndian.Uint32(e[4:]))
			if err != nil {
				return nil, err
			}
			p, err := cstring(data, end, binary.NativeEndian.Uint32(e[8:]))
			if err != nil {
				return nil, err
			}
			c.Entries = append(c.Entries, Entry{Flags: int32(binary.NativeEndian.Uint32(e)), Name: name, Path: p})
		}
		return c, nil
	}
	return nil, errors.New("not a loader cache (no ld.so-1.7.0 or glibc-ld.so.cache1.1 header)")
}

// parseNew reads the new format at base: its strings are at offsets from
// base, its extension at offsets from the file's start.
func (c *Cache) parseNew(data []byte, base int) error {
	if len(data)-base < headerNew {
		return errors.New("truncated header")
	}
	h := data[base:]
	n := uint64(binary.NativeEndian.Uint32(h[20:]))
	if n > uint64(len(h)-headerNew)/entryNew {
		return fmt.Errorf("%d entries do not fit in %d bytes", n, len(h))
	}
	c.Endian = h[28]
	for i := 0; i < int(n); i++ {
		e := h[headerNew+i*entryNew:]
		name, err := cstring(data, base, binary.NativeEndian.Uint32(e[4:]))
		if err != nil {
			return err
		}
		p, err := cstring(data, base, binary.NativeEndian.Uint32(e[8:]))
		if err != nil {
			return err
		}
		c.Entries = append(c.Entries, Entry{Flags: int32(binary.NativeEndian.Uint32(e)), Name: name, Path: p,
			OSVersion: binary.NativeEndian.Uint32(e[12:]), HWCap: binary.NativeEndian.Uint64(e[16:])})
	}
	off := uint64(binary.NativeEndian.Uint32(h[32:]))
	if off == 0 {
		return nil
	}
	if off%4 != 0 || off+8 > uint64(len(data)) || binary.NativeEndian.Uint32(data[off:]) != extMagic {
		return fmt.Errorf("bad extension at %d", off)
	}
	count := uint64(binary.NativeEndian.Uint32(data[off+4:]))
	if count > (uint64(len(data))-off-8)/extSection {
		return fmt.Errorf("%d extension sections do not fit", count)
	}
	for i := uint64(0); i < count; i++ {
		s := data[off+8+i*extSection:]
		tag, at, size := binary.NativeEndian.Uint32(s), uint64(binary.NativeEndian.Uint32(s[8:])), uint64(binary.NativeEndian.Uint32(s[12:]))
		if at+size > uint64(len(data)) {
			return fmt.Errorf("extension section %d outside the file", tag)
		}
		body := data[at : at+size]
		switch tag {
		case tagGenerator:
			c.Generator = string(body)
		case tagGlibcHWCaps:
			if size%4 != 0 {
				return errors.New("bad glibc-hwcaps extension")
			}
			for j := uint64(0); j < size; j += 4 {
				name, err := cstring(data, base, binary.NativeEndian.Uint32(body[j:]))
				if err != nil {
					return err
				}
				c.HWCapsDirs = append(c.HWCapsDirs, name)
			}
		}
	}
	return nil
}

// cstring is the NUL-terminated string at base+off in data.
func cstring(data []byte, base int, off uint32) (string, error) {
	at := uint64(base) + uint64(off)
	if at >= uint64(len(data)) {
		return "", fmt.Errorf("string at %d outside the file", at)
	}
	s, _, ok := bytes.Cut(data[at:], []byte{0})
	if !ok {
		return "", fmt.Errorf("string at %d not terminated", at)
	}
	return string(s), nil
}

func align(n, a int) int { return (n + a - 1) &^ (a - 1) }

// Bytes writes the cache in its Format, laid out as ldconfig lays it out.
// In FormatCompat and FormatOld, entries with HWCap are in the new part
// only (the libc5 format has no such field).
func (c *Cache) Bytes() []byte {
	// The string table, each string once.
	var strs bytes.Buffer
	at := map[string]uint32{}
	str := func(s string) uint32 {
		if o, ok := at[s]; ok {
			return o
		}
		o := uint32(strs.Len())
		at[s] = o
		strs.WriteString(s)
		strs.WriteByte(0)
		return o
	}
	type offsets struct{ key, value uint32 }
	offs := make([]offsets, len(c.Entries))
	for i, e := range c.Entries {
		offs[i] = offsets{str(e.Name), str(e.Path)}
	}
	hwcaps := make([]uint32, len(c.HWCapsDirs))
	for i, d := range c.HWCapsDirs {
		hwcaps[i] = str(d)
	}

	var old []int // entries in the libc5 part
	if c.Format != FormatNew {
		for i, e := range c.Entries {
			if e.HWCap == 0 {
				old = append(old, i)
			}
		}
	}
	if c.Format == FormatOld {
		out := make([]byte, headerOld+len(old)*entryOld)
		copy(out, magicOld)
		binary.NativeEndian.PutUint32(out[12:], uint32(len(old)))
		for j, i := range old {
			e := out[headerOld+j*entryOld:]
			binary.NativeEndian.PutUint32(e, uint32(c.Entries[i].Flags))
			binary.NativeEndian.PutUint32(e[4:], offs[i].key)
			binary.NativeEndian.PutUint32(e[8:], offs[i].value)
		}
		return append(out, strs.Bytes()...)
	}

	// The new part, at base; in FormatCompat after the libc5 part, whose
	// string offsets then count from the end of its entries, so that its
	// strings are the new part's (glibc's save_cache does the same).
	base, oldEnd := 0, 0
	if c.Format == FormatCompat {
		oldEnd = headerOld + len(old)*entryOld
		base = align(oldEnd, alignNew)
	}
	newSize := headerNew + len(c.Entries)*entryNew // strings follow at base+newSize
	strStart := uint32(newSize)
	out := make([]byte, base+newSize, base+newSize+strs.Len()+64)
	if c.Format == FormatCompat {
		copy(out, magicOld)
		binary.NativeEndian.PutUint32(out[12:], uint32(len(old)))
		shift := uint32(base - oldEnd)
		for j, i := range old {
			e := out[headerOld+j*entryOld:]
			binary.NativeEndian.PutUint32(e, uint32(c.Entries[i].Flags))
			binary.NativeEndian.PutUint32(e[4:], shift+strStart+offs[i].key)
			binary.NativeEndian.PutUint32(e[8:], shift+strStart+offs[i].value)
		}
	}
	h := out[base:]
	copy(h, magicNew)
	binary.NativeEndian.PutUint32(h[20:], uint32(len(c.Entries)))
	binary.NativeEndian.PutUint32(h[24:], uint32(strs.Len()))
	h[28] = c.Endian
	for i, e := range c.Entries {
		b := h[headerNew+i*entryNew:]
		binary.NativeEndian.PutUint32(b, uint32(e.Flags))
		binary.NativeEndian.PutUint32(b[4:], strStart+offs[i].key)
		binary.NativeEndian.PutUint32(b[8:], strStart+offs[i].value)
		binary.NativeEndian.PutUint32(b[12:], e.OSVersion)
		binary.NativeEndian.PutUint64(b[16:], e.HWCap)
	}
	out = append(out, strs.Bytes()...)
	if c.Generator == "" && len(c.HWCapsDirs) == 0 {
		return out
	}
	// The extension, 4-aligned after the strings: its header, the
	// sections, then their data (offsets from the file's start).
	for len(out)%4 != 0 {
		out = append(out, 0)
	}
	ext := len(out)
	binary.NativeEndian.PutUint32(h[32:], uint32(ext))
	type section struct {
		tag  uint32
		data []byte
	}
	var sections []section
	if c.Generator != "" {
		sections = append(sections, section{tagGenerator, []byte(c.Generator)})
	}
	if len(c.HWCapsDirs) > 0 {
		data := make([]byte, 4*len(hwcaps))
		for i, o := range hwcaps {
			binary.NativeEndian.PutUint32(data[4*i:], strStart+o)
		}
		sections = append(sections, section{tagGlibcHWCaps, data})
	}
	out = binary.NativeEndian.AppendUint32(out, extMagic)
	out = binary.NativeEndian.AppendUint32(out, uint32(len(sections)))
	dataAt := ext + 8 + extSection*len(sections)
	for _, s := range sections {
		dataAt = align(dataAt, 4)
		out = binary.NativeEndian.AppendUint32(out, s.tag)
		out = binary.NativeEndian.AppendUint32(out, 0)
		out = binary.NativeEndian.AppendUint32(out, uint32(dataAt))
		out = binary.NativeEndian.AppendUint32(out, uint32(len(s.data)))
		dataAt += len(s.data)
	}
	for _, s := range sections {
		for len(out)%4 != 0 {
			out = append(out, 0)
		}
		out = append(out, s.data...)
	}
	return out
}

// Add puts e before every entry of the same name, so that the loader,
// which takes the first entry of a name whose flags it accepts, finds e
// first; an entry equal to e already there is moved there.
func (c *Cache) Add(e Entry) {
	for i := 0; i < len(c.Entries); i++ {
		if c.Entries[i] == e {
			c.Entries = append(c.Entries[:i], c.Entries[i+1:]...)
			break
		}
	}
	i := 0
	for i < len(c.Entries) && Compare(c.Entries[i].Name, e.Name) > 0 {
		i++
	}
	c.Entries = append(c.Entries, Entry{})
	copy(c.Entries[i+1:], c.Entries[i:])
	c.Entries[i] = e
}

// Lookup is the entry the loader would load for name, given the flags it
// accepts: the binary search of glibc's search_cache, which expects the
// names in descending Compare order, then the first entry of that name
// with those flags.
func (c *Cache) Lookup(name string, flags int32) (Entry, bool) {
	left, right := 0, len(c.Entries)-1
	for left <= right {
		middle := (left + right) / 2
		cmp := Compare(name, c.Entries[middle].Name)
		if cmp == 0 {
			for middle > 0 && Compare(name, c.Entries[middle-1].Name) == 0 {
				middle--
			}
			for ; middle < len(c.Entries) && Compare(name, c.Entries[middle].Name) == 0; middle++ {
				if c.Entries[middle].Flags == flags {
					return c.Entries[middle], true
				}
			}
			return Entry{}, false
		}
		if cmp < 0 {
			left = middle + 1
		} else {
			right = middle - 1
		}
	}
	return Entry{}, false
}

// Compare orders library names as glibc's _dl_cache_libcmp: runs of digits
// compare as numbers (libfoo.so.10 after libfoo.so.9), the rest byte by
// byte, a digit after any other byte. The result's sign is what counts.
func Compare(a, b string) int {
	digit := func(s string, i int) bool { return i < len(s) && s[i] >= '0' && s[i] <= '9' }
	at := func(s string, i int) int32 {
		if i < len(s) {
			return int32(s[i])
		}
		return 0
	}
	i, j := 0, 0
	for i < len(a) {
		switch {
		case digit(a, i):
			if !digit(b, j) {
				return 1
			}
			// (int arithmetic as C's: the same wrap on absurd numbers)
			var va, vb int32
			for ; digit(a, i); i++ {
				va = va*10 + int32(a[i]-'0')
			}
			for ; digit(b, j); j++ {
				vb = vb*10 + int32(b[j]-'0')
			}
			if va != vb {
				return int(va - vb)
			}
		case digit(b, j):
			return -1
		case int32(a[i]) != at(b, j):
			return int(int32(a[i]) - at(b, j))
		default:
			i++
			j++
		}
	}
	return int(-at(b, j))
}

// Cache entry flags (glibc sysdeps/generic/ldconfig.h): the library's
// kind, FLAG_ELF_LIBC6, with its architecture's. A loader accepts only
// its own combination.
const (
	flagELFLibc6 = 0x0003

	X8664   int32 = flagELFLibc6 | 0x0300 // FLAG_X8664_LIB64
	I386    int32 = flagELFLibc6
	AArch64 int32 = flagELFLibc6 | 0x0a00 // FLAG_AARCH64_LIB64
	PPC64   int32 = flagELFLibc6 | 0x0500 // FLAG_POWERPC_LIB64
	S390X   int32 = flagELFLibc6 | 0x0400 // FLAG_S390_LIB64
	X32     int32 = flagELFLibc6 | 0x0800 // FLAG_X8664_LIBX32
	RISCV64 int32 = flagELFLibc6 | 0x1000 // FLAG_RISCV_FLOAT_ABI_DOUBLE
)

// ELF machines (elf.h EM_*).
const (
	em386     = 3
	emPPC64   = 21
	emS390    = 22
	emX8664   = 62
	emAArch64 = 183
	emRISCV   = 243
)

// Flags is the flags ldconfig gives a library of ELF machine, class
// (is64) and e_flags, as its readelflib.c decides them for the
// architectures chos knows; false for others (the library is then left
// out of the cache).
func Flags(machine uint16, is64 bool, eflags uint32) (int32, bool) {
	switch {
	case machine == emX8664 && is64:
		return X8664, true
	case machine == emX8664:
		return X32, true
	case machine == em386 && !is64:
		return I386, true
	case machine == emAArch64 && is64:
		return AArch64, true
	case machine == emPPC64 && is64:
		return PPC64, true
	case machine == emS390 && is64:
		return S390X, true
	case machine == emRISCV && is64 && eflags&0x6 == 0x4: // EF_RISCV_FLOAT_ABI_DOUBLE
		return RISCV64, true
	}
	return 0, false
}
