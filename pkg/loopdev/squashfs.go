package loopdev

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// squashfs superblock (Linux fs/squashfs/squashfs_fs.h, struct
// squashfs_super_block): all fields little-endian.
const (
	squashfsMagic       = 0x73717368 // "hsqs" on disk
	squashfsMajorOffset = 28         // __le16 s_major
	squashfsHeaderSize  = 30
	squashfsMajor       = 4 // the only version Linux mounts (since 2.6.29)
)

// CheckSquashfs tells whether f starts with a squashfs 4.x superblock: the
// magic "hsqs" at offset 0 and major version 4, what the kernel checks
// before anything else (fs/squashfs/super.c squashfs_fill_super). It reads
// 30 bytes at offset 0 (ReadAt: f's offset does not move). Errors wrap
// ErrNotSquashfs for any other content (also a file shorter than the
// superblock), or the read error.
func CheckSquashfs(f *os.File) error {
	var hdr [squashfsHeaderSize]byte
	n, err := f.ReadAt(hdr[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading %s: %w", f.Name(), err)
	}
	if n < len(hdr) {
		return fmt.Errorf("%w: %s: %d bytes, shorter than a squashfs superblock", ErrNotSquashfs, f.Name(), n)
	}
	if magic := binary.LittleEndian.Uint32(hdr[0:4]); magic != squashfsMagic {
		return fmt.Errorf("%w: %s starts with %q, not the squashfs magic \"hsqs\"", ErrNotSquashfs, f.Name(), hdr[0:4])
	}
	if major := binary.LittleEndian.Uint16(hdr[squashfsMajorOffset:]); major != squashfsMajor {
		return fmt.Errorf("%w: %s is squashfs version %d, Linux mounts version 4 only", ErrNotSquashfs, f.Name(), major)
	}
	return nil
}

// CheckKernelSquashfs tells whether the running kernel can mount squashfs:
// it is in /proc/filesystems, or a module for it is known to modprobe
// (alias fs-squashfs in /lib/modules/RELEASE/modules.alias), which mount(2)
// loads on demand (fs/filesystems.c get_fs_type). Errors wrap ErrNoSquashfs
// (naming the files read), or the error reading /proc/filesystems.
func CheckKernelSquashfs() error {
	found, err := hasFilesystem("/proc/filesystems", "squashfs")
	if err != nil {
		return fmt.Errorf("checking for squashfs support: %w", err)
	}
	if found {
		return nil
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return fmt.Errorf("checking for squashfs support: uname: %w", err)
	}
	aliases := filepath.Join("/lib/modules", unix.ByteSliceToString(uts.Release[:]), "modules.alias")
	if data, err := os.ReadFile(aliases); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "alias" && f[1] == "fs-squashfs" {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: squashfs is not in /proc/filesystems and %s has no module for it (alias fs-squashfs)", ErrNoSquashfs, aliases)
}

// hasFilesystem tells whether the /proc/filesystems format file lists fs
// ("nodev\tname" or "\tname" lines).
func hasFilesystem(path, fs string) (bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] == fs {
			return true, nil
		}
	}
	return false, nil
}

// CheckLoopSupport tells whether loop devices can be had: /dev/loop-control
// opens (which also loads the loop module where it is one). Errors wrap
// ErrNoLoopSupport, or the error opening it.
func CheckLoopSupport() error {
	ctl, err := openControl()
	if err != nil {
		return err
	}
	return ctl.Close()
}
