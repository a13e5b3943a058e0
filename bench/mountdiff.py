#!/usr/bin/env python3
"""mountdiff.py A B LABEL_A LABEL_B: how two views' mount tables differ.

A and B are /proc/self/mountinfo as read inside each view (bench/run: chos in
user-namespace mode and the bwrap peer given chos's binds). Prints, one line
each, for the report: how many mounts match, the mount points only one view
has, and the mount flags (ro, nosuid, nodev, noexec) or file system types that
differ at the same mount point. Mounts below /.chos/host (the host's own
table, bound recursively) are counted, and listed only as a count.
"""
import sys

FLAGS = ("ro", "nosuid", "nodev", "noexec")
HOST = "/.chos/host"


def read(path):
    """mount point -> list of (fstype, flags) in table order (a point can be
    mounted over)"""
    mounts = {}
    for line in open(path):
        f = line.split()
        if len(f) < 7 or "-" not in f:
            continue
        sep = f.index("-")
        mp = f[4].replace("\\040", " ")
        opts = set(f[5].split(","))
        mounts.setdefault(mp, []).append((f[sep + 1], frozenset(o for o in FLAGS if o in opts)))
    return mounts


def short(points, limit=12):
    """a list of mount points, those below /.chos/host only counted"""
    top = [p for p in points if not p.startswith(HOST + "/")]
    host = len(points) - len(top)
    s = ", ".join(top[:limit])
    if len(top) > limit:
        s += " and %d more" % (len(top) - limit)
    if host:
        s += ("; " if s else "") + "%d below %s (the host's own mounts)" % (host, HOST)
    return s


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: mountdiff.py A B LABEL_A LABEL_B")
    a, b = read(sys.argv[1]), read(sys.argv[2])
    la, lb = sys.argv[3], sys.argv[4]
    na, nb = sum(map(len, a.values())), sum(map(len, b.values()))
    only_a = sorted(p for p in a if p not in b)
    only_b = sorted(p for p in b if p not in a)
    both = sorted(p for p in a if p in b)
    same = 0
    diffs = {}  # description -> mount points
    for p in both:
        ma, mb = a[p], b[p]
        if len(ma) != len(mb):
            diffs.setdefault("mounted %d times in %s's view, %d times in %s's" % (
                len(ma), la, len(mb), lb), []).append(p)
            continue
        for (ta, fa), (tb, fb) in zip(ma, mb):
            if ta != tb:
                diffs.setdefault("type %s in %s's view, %s in %s's" % (ta, la, tb, lb), []).append(p)
            elif fa != fb:
                plus = ",".join(sorted(fb - fa))
                minus = ",".join(sorted(fa - fb))
                d = []
                if plus:
                    d.append("%s adds %s" % (lb, plus))
                if minus:
                    d.append("%s adds %s" % (la, minus))
                diffs.setdefault("; ".join(d), []).append(p)
            else:
                same += 1
    print("%d mounts in %s's view, %d in %s's; %d at the same mount point with the same type and flags"
          % (na, la, nb, lb, same))
    if only_a:
        print("only in %s's view: %s" % (la, short(only_a)))
    if only_b:
        print("only in %s's view: %s" % (lb, short(only_b)))
    for d, points in sorted(diffs.items(), key=lambda x: -len(x[1])):
        print("%s: %s" % (d, short(points)))


if __name__ == "__main__":
    main()
