#!/usr/bin/env python3
"""bwrapargs.py PLAN NOTES: the bwrap options that build chos's view.

Reads PLAN, the output of `chos plan TREE -- /bin/true` (one step a line, as
pkg/nsroot's Plan.String writes it), and prints on one line the bwrap
options that make the same mounts in the same order, for the benchmark's
"bwrap doing chos's binds" peer. Each step is translated as closely as
bwrap allows; what bwrap cannot do the same way is written to NOTES, one
line each, for the report. bwrap's own behaviour (bubblewrap(1), and
bind-mount.c of bubblewrap 0.8): every bind is recursive and nosuid, and
nodev unless it is a --dev-bind; --ro-bind makes every submount read-only;
the new root is a tmpfs; pivot_root and the old root's detachment are
always done.

Exits 2, naming the line, on a step it does not know: the peer must follow
chos's plan, never silently drift from it.
"""
import os
import sys


def flags(s):
    """the [a,b,c] flags of a step, as a set"""
    if "[" not in s:
        return set()
    return set(s[s.index("[") + 1: s.index("]")].split(","))


def resolve_in_tree(tree, path):
    """path (absolute, inside the view) with the tree's symbolic links
    followed as they resolve inside the tree, as chos resolves a mount point
    (openat2 RESOLVE_IN_ROOT); bwrap would follow an absolute link out of
    the new root and fail (chos's own view may mount over the link itself:
    the comparison of the mount tables shows it)"""
    parts = [p for p in path.split("/") if p]
    done = []
    hops = 0
    while parts:
        p = parts.pop(0)
        if p == "..":
            if done:
                done.pop()
            continue
        if p == ".":
            continue
        host = os.path.join(tree, *done, p)
        if os.path.islink(host):
            hops += 1
            if hops > 40:
                sys.exit("bwrapargs.py: too many symbolic links below %s" % path)
            target = os.readlink(host)
            if target.startswith("/"):
                done = []
            parts = [x for x in target.split("/") if x] + parts
            continue
        done.append(p)
    return "/" + "/".join(done)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: bwrapargs.py PLAN NOTES")
    lines = open(sys.argv[1]).read().splitlines()
    args, notes = [], []
    files, overlay = [], None
    # mount points where bwrap's flags differ from chos's, by difference
    adds = {"nodev": [], "nosuid": [], "rec": []}
    tree, from_tree = None, set()  # the tree's path; top-level names bound from it

    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        kind = line.split()[0]
        rest = line[len(kind):].strip()
        if line.startswith("            mount point "):
            continue  # an overlay's provision: the tree has these files (checked by the caller's mount comparison)
        if kind == "tree":
            # tree      NAME (PATH), assembled at ROOT
            tree = rest[rest.index("(") + 1: rest.index("), assembled at ")]
            continue
        if kind in ("cache", "keep", "unshare", "pivot", "identity", "cwd", "exec", "names"):
            # bwrap does its own (a namespace, pivot_root, the caller's ids,
            # the cwd kept); cache and keep name where chos keeps the view
            # the steps below build
            continue
        if kind == "tmpfs":
            continue  # bwrap's new root is a tmpfs too
        if kind == "bind":
            src, _, tail = rest.partition(" -> ")
            dst = tail.split()[0]
            f = flags(tail)
            if "from the view" in f:
                sys.exit("bwrapargs.py: line %d: a bind from inside the view (an image tree): %s" % (n, line))
            if dst == "/":
                sys.exit("bwrapargs.py: line %d: a bound root (the host view): %s" % (n, line))
            opt = "optional" in f
            if tree and src == os.path.join(tree, dst.lstrip("/")) and dst.count("/") == 1:
                from_tree.add(dst)
            elif tree and "/" + dst.split("/")[1] in from_tree:
                real = resolve_in_tree(tree, dst)
                if real != dst:
                    notes.append("%s is a symbolic link in the tree: bwrap would follow it out of the new root, "
                                 "so it is given where the link leads inside the tree, %s" % (dst, real))
                    dst = real
            if "ro" in f:
                op = "--ro-bind-try" if opt else "--ro-bind"
                if "nodev" not in f:
                    adds["nodev"].append(dst)
            elif dst == "/dev":
                op = "--dev-bind-try" if opt else "--dev-bind"
            else:
                op = "--bind-try" if opt else "--bind"
                if "nodev" not in f:
                    adds["nodev"].append(dst)
            if "nosuid" not in f:
                adds["nosuid"].append(dst)
            if "rec" not in f:
                adds["rec"].append(dst)
            args += [op, src, dst]
        elif kind == "symlink":
            dst, _, src = rest.partition(" -> ")
            args += ["--symlink", src.split()[0], dst.strip()]
        elif kind == "mkdir":
            args += ["--dir", rest.split()[0]]
        elif kind == "file":
            files.append(rest.split()[0])
        elif kind == "overlay":
            # overlay   ADDED + SOURCE -> TARGET  [flags]  (why)
            added, _, tail = rest.partition(" + ")
            src, _, tail = tail.partition(" -> ")
            dst = tail.split()[0]
            overlay = (added.strip(), src.strip(), dst)
            from_tree.add(dst)
            # bubblewrap 0.8 (Debian 12) has no overlay (--overlay-src came
            # with 0.9): the tree's directory alone, read-only
            args += ["--ro-bind", src.strip(), dst]
        elif kind == "image":
            sys.exit("bwrapargs.py: line %d: an image tree (bwrap cannot mount one): %s" % (n, line))
        elif kind == "remount":
            if rest.split()[0] != "/":
                sys.exit("bwrapargs.py: line %d: unknown remount: %s" % (n, line))
            args += ["--remount-ro", "/"]
        else:
            sys.exit("bwrapargs.py: line %d: unknown step %r: %s" % (n, kind, line))
    if adds["nodev"]:
        notes.append("bwrap binds these nodev, chos does not: %s" % ", ".join(adds["nodev"]))
    if adds["nosuid"]:
        notes.append("bwrap binds these nosuid, chos does not: %s" % ", ".join(adds["nosuid"]))
    if adds["rec"]:
        notes.append("bwrap binds these recursively, chos binds the one mount "
                     "(the same unless something is mounted below them): %s" % ", ".join(adds["rec"]))
    if overlay:
        added, src, dst = overlay
        made = [f for f in files if f.startswith(added + "/")]
        notes.append("%s: the tree's %s bound read-only, not an overlay with chos's %s on top "
             "(bubblewrap 0.8 has no overlay mounts): the %d file(s) chos adds there (%s) are missing" % (
                 dst, src, added, len(made), ", ".join(dst + f[len(added):] for f in made) or "none"))
        files = [f for f in files if f not in made]
    if files:
        notes.append("files chos writes on its tmpfs are not made (bwrap --file needs a descriptor): %s" % ", ".join(files))
    if not args:
        sys.exit("bwrapargs.py: no mounts in the plan")
    print(" ".join(args))
    with open(sys.argv[2], "w") as f:
        for s in notes:
            f.write(s + "\n")


if __name__ == "__main__":
    main()
