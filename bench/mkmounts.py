#!/usr/bin/env python3
"""mkmounts.py DIR FROM TO: mount small tmpfs file systems on DIR/m00000 ...

Creates mounts number FROM up to (not including) TO, each a 4 KiB tmpfs on
a directory of its own under DIR. bench/mounts runs it as root inside a
private mount namespace made for the purpose, never on the host's table.
mount(8) would take minutes for thousands of mounts (it re-reads the mount
table each time); this calls mount(2) directly.
"""
import ctypes
import ctypes.util
import os
import sys

MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: mkmounts.py DIR FROM TO")
    top, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
    for i in range(lo, hi):
        path = os.path.join(top, "m%05d" % i)
        os.makedirs(path, mode=0o755, exist_ok=True)
        if libc.mount(b"chos-bench", path.encode(), b"tmpfs",
                      MS_NOSUID | MS_NODEV | MS_NOEXEC, b"size=4k,mode=0755") != 0:
            err = ctypes.get_errno()
            sys.exit("mkmounts.py: mount %s: %s" % (path, os.strerror(err)))


if __name__ == "__main__":
    main()
