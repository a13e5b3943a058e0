package hostexec

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// debugELF is what package debug/elf says of the same file: the oracle.
func debugELF(t *testing.T, name string) (*elfInfo, bool) {
	t.Helper()
	f, err := elf.Open(name)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	info := &elfInfo{machine: uint16(f.Machine), is64: f.Class == elf.ELFCLASS64}
	// (debug/elf does not keep e_flags: read from the header, elf(5))
	if r, err := os.Open(name); err == nil {
		hdr := make([]byte, 64)
		if n, _ := r.ReadAt(hdr, 0); info.is64 && n >= 52 {
			info.flags = f.ByteOrder.Uint32(hdr[48:])
		} else if n >= 40 {
			info.flags = f.ByteOrder.Uint32(hdr[36:])
		}
		r.Close()
	}
	if sonames, _ := f.DynString(elf.DT_SONAME); len(sonames) > 0 {
		info.soname = sonames[0]
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			data := make([]byte, p.Filesz)
			p.ReadAt(data, 0)
			info.interp = string(bytes.TrimRight(data, "\x00"))
		}
	}
	info.runPaths, _ = f.DynString(elf.DT_RUNPATH)
	if len(info.runPaths) == 0 {
		info.runPaths, _ = f.DynString(elf.DT_RPATH)
	}
	if len(info.runPaths) == 0 {
		info.runPaths = nil
	}
	return info, true
}

// The loader and run paths of this machine's programs and libraries are
// those debug/elf reads, static and dynamic, with and without run paths.
func TestReadELFAgreesWithDebugELF(t *testing.T) {
	var files []string
	for _, dir := range []string{"/usr/bin", "/usr/sbin", "/usr/lib/openssh", "/usr/lib/x86_64-linux-gnu"} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.Type().IsRegular() {
				files = append(files, filepath.Join(dir, e.Name()))
			}
		}
	}
	// a program with a run path of its own, both kinds, when a C compiler is here
	src := filepath.Join(t.TempDir(), "p.c")
	os.WriteFile(src, []byte("int main(void){return 0;}\n"), 0o644)
	for name, flags := range map[string][]string{
		"runpath": {"-Wl,-rpath,/opt/x/lib:$ORIGIN/../lib", "-Wl,--enable-new-dtags"},
		"rpath":   {"-Wl,-rpath,/opt/old", "-Wl,--disable-new-dtags"},
		"static":  {"-static"},
	} {
		out := filepath.Join(path.Dir(src), name)
		if err := exec.Command("cc", append([]string{"-o", out, src}, flags...)...).Run(); err == nil {
			files = append(files, out)
		}
	}
	var dynamic, static, withRunPath, withSoname int
	for _, name := range files {
		want, ok := debugELF(t, name)
		got, err := readELF(name)
		if !ok {
			if err == nil {
				t.Errorf("%s: debug/elf refuses it, readELF reads %+v", name, got)
			}
			continue
		}
		if err != nil {
			if want.interp != "" && path.IsAbs(want.interp) {
				t.Errorf("%s: %v; debug/elf reads %+v", name, err, want)
			}
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: readELF %+v, debug/elf %+v", name, got, want)
		}
		switch {
		case got.interp == "":
			static++
		default:
			dynamic++
		}
		if len(got.runPaths) > 0 {
			withRunPath++
		}
		if got.soname != "" {
			withSoname++
		}
	}
	// the control: the comparison covered each kind
	if dynamic == 0 || static == 0 || withSoname == 0 {
		t.Errorf("compared %d dynamic, %d static ELF files, %d with a soname: the test proves little", dynamic, static, withSoname)
	}
	t.Logf("%d files: %d dynamic, %d static or libraries, %d with run paths, %d with a soname", len(files), dynamic, static, withRunPath, withSoname)
}

// Truncated or corrupted files are errors, never panics.
func TestReadELFRefusesMalformedFiles(t *testing.T) {
	exe, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(exe)
	good, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	try := func(data []byte) {
		p := filepath.Join(dir, "f")
		os.WriteFile(p, data, 0o644)
		readELF(p) // must return, whatever it says
	}
	for _, n := range []int{0, 4, 16, 20, 52, 63, 64, 100, 1000, 4096} {
		if n <= len(good) {
			try(good[:n])
		}
	}
	// every byte of the header and program headers set to extremes in turn
	head := min(len(good), 64+56*16)
	for i := 0; i < head; i++ {
		for _, v := range []byte{0x00, 0xff, 0x7f, 0x80} {
			bad := slices.Clone(good[:min(len(good), 1<<16)])
			bad[i] = v
			try(bad)
		}
	}
	if _, err := readELF(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file reads")
	}
	os.WriteFile(filepath.Join(dir, "script"), []byte("#!/bin/sh\n"), 0o755)
	if _, err := readELF(filepath.Join(dir, "script")); err == nil {
		t.Error("a script reads as ELF")
	}
}
