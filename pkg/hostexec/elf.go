package hostexec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
)

// The two things this package needs from an executable, read from its
// program headers as the dynamic loader reads them (System V ABI, "Program
// Loading and Dynamic Linking"; elf(5)). Package debug/elf would read them
// too, but links compression and DWARF packages whose initialisation every
// launch of chos would pay for.

const (
	ptLoad    = 1
	ptDynamic = 2
	ptInterp  = 3

	dtNull    = 0
	dtStrtab  = 5
	dtStrsz   = 10
	dtSoname  = 14
	dtRpath   = 15
	dtRunpath = 29

	maxSegment = 1 << 20 // bytes of PT_INTERP or PT_DYNAMIC read at most
)

var errNotELF = errors.New("not an ELF file")

// elfInfo is what an executable asks of the loader: its PT_INTERP ("" for
// a static program) and its DT_RUNPATH, else DT_RPATH, entries; and what
// the loader's cache records of a library: its DT_SONAME, machine, class
// and flags (the ELF header's e_machine, EI_CLASS, e_flags).
type elfInfo struct {
	interp   string
	runPaths []string
	soname   string
	machine  uint16
	is64     bool
	flags    uint32
}

// Library is what the dynamic loader's cache records of a shared library
// (ldconfig(8) reads the same): its soname ("" when it has none), and the
// ELF machine, class and e_flags that give the cache entry's flags.
type Library struct {
	Soname  string
	Machine uint16
	Is64    bool
	Flags   uint32
}

// ReadLibrary reads what the loader's cache records of the ELF file name.
func ReadLibrary(name string) (Library, error) {
	info, err := readELF(name)
	if err != nil {
		return Library{}, err
	}
	return Library{Soname: info.soname, Machine: info.machine, Is64: info.is64, Flags: info.flags}, nil
}

type progHeader struct {
	typ                   uint32
	offset, vaddr, filesz uint64
}

// readELF reads the program headers of the ELF file at name. Malformed
// input is an error, never a panic: the file may be anyone's.
func readELF(name string) (*elfInfo, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ident [16]byte
	if _, err := io.ReadFull(f, ident[:]); err != nil || !bytes.HasPrefix(ident[:], []byte("\x7fELF")) {
		return nil, errNotELF
	}
	is64 := ident[4] == 2
	var bo binary.ByteOrder
	switch {
	case ident[4] != 1 && ident[4] != 2:
		return nil, fmt.Errorf("ELF class %d", ident[4])
	case ident[5] == 1:
		bo = binary.LittleEndian
	case ident[5] == 2:
		bo = binary.BigEndian
	default:
		return nil, fmt.Errorf("ELF data encoding %d", ident[5])
	}
	// The header (elf(5)): e_phoff, e_phentsize and e_phnum where each
	// class has them.
	hdr := make([]byte, 64)
	if !is64 {
		hdr = hdr[:52]
	}
	if _, err := f.ReadAt(hdr, 0); err != nil {
		return nil, fmt.Errorf("ELF header: %w", err)
	}
	var phoff uint64
	var phentsize, phnum uint16
	info := &elfInfo{is64: is64, machine: bo.Uint16(hdr[18:])}
	if is64 {
		phoff, phentsize, phnum = bo.Uint64(hdr[32:]), bo.Uint16(hdr[54:]), bo.Uint16(hdr[56:])
		info.flags = bo.Uint32(hdr[48:])
	} else {
		phoff, phentsize, phnum = uint64(bo.Uint32(hdr[28:])), bo.Uint16(hdr[42:]), bo.Uint16(hdr[44:])
		info.flags = bo.Uint32(hdr[36:])
	}
	want := uint16(56)
	if !is64 {
		want = 32
	}
	if phnum > 0 && phentsize != want {
		return nil, fmt.Errorf("program header size %d", phentsize)
	}
	if int64(phoff) < 0 {
		return nil, fmt.Errorf("program headers at %d", phoff)
	}
	table := make([]byte, int(phentsize)*int(phnum))
	if _, err := f.ReadAt(table, int64(phoff)); err != nil {
		return nil, fmt.Errorf("program headers: %w", err)
	}
	progs := make([]progHeader, phnum)
	for i := range progs {
		b := table[i*int(phentsize):]
		if is64 {
			progs[i] = progHeader{typ: bo.Uint32(b), offset: bo.Uint64(b[8:]), vaddr: bo.Uint64(b[16:]), filesz: bo.Uint64(b[32:])}
		} else {
			progs[i] = progHeader{typ: bo.Uint32(b), offset: uint64(bo.Uint32(b[4:])), vaddr: uint64(bo.Uint32(b[8:])), filesz: uint64(bo.Uint32(b[16:]))}
		}
	}
	segment := func(p progHeader) ([]byte, error) {
		if p.filesz > maxSegment || int64(p.offset) < 0 {
			return nil, fmt.Errorf("segment of %d bytes at %d", p.filesz, p.offset)
		}
		data := make([]byte, p.filesz)
		if _, err := f.ReadAt(data, int64(p.offset)); err != nil {
			return nil, err
		}
		return data, nil
	}

	for _, p := range progs {
		switch p.typ {
		case ptInterp:
			data, err := segment(p)
			if err != nil {
				return nil, fmt.Errorf("PT_INTERP: %w", err)
			}
			info.interp = string(bytes.TrimRight(data, "\x00"))
			if !path.IsAbs(info.interp) {
				return nil, fmt.Errorf("PT_INTERP %q is not an absolute path", info.interp)
			}
		case ptDynamic:
			data, err := segment(p)
			if err != nil {
				return nil, fmt.Errorf("PT_DYNAMIC: %w", err)
			}
			if info.runPaths, info.soname, err = dynStrings(f, bo, is64, data, progs); err != nil {
				return nil, fmt.Errorf("PT_DYNAMIC: %w", err)
			}
		}
	}
	return info, nil
}

// dynStrings reads the DT_RUNPATH (else DT_RPATH) and DT_SONAME strings of
// a dynamic section from the string table DT_STRTAB locates through
// PT_LOAD.
func dynStrings(f io.ReaderAt, bo binary.ByteOrder, is64 bool, dyn []byte, progs []progHeader) (runPaths []string, soname string, err error) {
	size := 16
	if !is64 {
		size = 8
	}
	var strtab, strsz uint64
	var rpath, runpath, sonames []uint64
	for i := 0; i+size <= len(dyn); i += size {
		var tag, val uint64
		if is64 {
			tag, val = bo.Uint64(dyn[i:]), bo.Uint64(dyn[i+8:])
		} else {
			tag, val = uint64(bo.Uint32(dyn[i:])), uint64(bo.Uint32(dyn[i+4:]))
		}
		switch tag {
		case dtNull:
			i = len(dyn)
		case dtStrtab:
			strtab = val
		case dtStrsz:
			strsz = val
		case dtRpath:
			rpath = append(rpath, val)
		case dtRunpath:
			runpath = append(runpath, val)
		case dtSoname:
			sonames = append(sonames, val)
		}
	}
	offsets := runpath
	if len(offsets) == 0 {
		offsets = rpath
	}
	if len(offsets)+len(sonames) == 0 {
		return nil, "", nil
	}
	if strsz > maxSegment {
		return nil, "", fmt.Errorf("string table of %d bytes", strsz)
	}
	// DT_STRTAB is an address: the PT_LOAD segment holding it says where
	// in the file it is.
	for _, p := range progs {
		if p.typ != ptLoad || strtab < p.vaddr || strtab-p.vaddr >= p.filesz || strsz > p.filesz-(strtab-p.vaddr) {
			continue
		}
		table := make([]byte, strsz)
		if _, err := f.ReadAt(table, int64(p.offset+(strtab-p.vaddr))); err != nil {
			return nil, "", fmt.Errorf("string table: %w", err)
		}
		str := func(o uint64) (string, error) {
			if o >= strsz {
				return "", fmt.Errorf("string at %d outside the string table", o)
			}
			s, _, _ := bytes.Cut(table[o:], []byte{0})
			return string(s), nil
		}
		for _, o := range offsets {
			s, err := str(o)
			if err != nil {
				return nil, "", err
			}
			runPaths = append(runPaths, s)
		}
		if len(sonames) > 0 {
			if soname, err = str(sonames[0]); err != nil {
				return nil, "", err
			}
		}
		return runPaths, soname, nil
	}
	return nil, "", errors.New("DT_STRTAB is in no loaded segment")
}
