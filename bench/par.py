#!/usr/bin/env python3
"""par.py N P CMD...: N launches of CMD, P at a time; prints wall, user and
system seconds.

Runs `xargs -P P -n 1 CMD...` with the numbers 1 to N on its input (so each
launch gets one more argument, which /bin/true ignores), and prints on one
line the wall time from the start of xargs to its end, and the user and
system CPU time of xargs and everything it ran (wait4's rusage: the whole
tree of processes, each reaped by its parent). Exits 1 if a launch failed.
bench/run runs it as the benchmark user, so Python's own start is outside
the measurement.
"""
import os
import subprocess
import sys
import time


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: par.py N P CMD...")
    n, p, cmd = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    data = "".join("%d\n" % i for i in range(1, n + 1)).encode()
    r, w = os.pipe()
    os.write(w, data)  # (a few KiB: fits in the pipe)
    os.close(w)
    t0 = time.monotonic()
    child = subprocess.Popen(["xargs", "-P", str(p), "-n", "1"] + cmd, stdin=r, stdout=subprocess.DEVNULL)
    _, status, ru = os.wait4(child.pid, 0)
    wall = time.monotonic() - t0
    os.close(r)
    child.returncode = os.waitstatus_to_exitcode(status)
    print("%.4f %.4f %.4f" % (wall, ru.ru_utime, ru.ru_stime))
    sys.exit(0 if child.returncode == 0 else 1)


if __name__ == "__main__":
    main()
