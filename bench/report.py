#!/usr/bin/env python3
"""report.py: write docs/PERFORMANCE.md from the results of bench/run.

Reads, in the directory given with --dir (bench/run's work directory, kept
as $BENCH_DIR/last-run): results.tsv (one measurement a line: section, param,
launcher, ident, status, value, rss_kib, note), meta.tsv (key, value),
launchers.tsv (lid, ident, status, label, command, note), and in out/ the
hyperfine JSON files results.tsv names, gobench.txt, bwrap-notes.txt and
mountdiff.txt (bwrap given chos's binds), inittrace-N.txt
(GODEBUG=inittrace=1) and strace-LID-N.txt (strace -f -ttt).

Only the part of the output file between the two markers is regenerated: the
hand-written preamble above it and the Analysis section below it are kept.
The plots (perf-mounts.png, perf-load.png, with matplotlib) are drawn next
to the output file, from the same results.
"""
import argparse
import json
import os
import re
import statistics
import sys

BEGIN = "<!-- BEGIN bench/run output: `make bench` regenerates everything down to the END marker -->"
END = "<!-- END bench/run output -->"

PREAMBLE = """\
# chos performance

What a launch costs, and how chos compares with the usual ways of running a
command in another OS tree. Everything between the two markers below is
written by `make bench` (bench/run), plots included; the text above them and
the Analysis section below them are kept when it is rerun.

**What is measured.** Each launcher starts `/bin/true` inside the same Debian 11
(bullseye) minbase tree, built with `debootstrap --variant=minbase` from the
machine's Debian mirror and kept under `/var/lib/chos-bench` for later runs.
[hyperfine](https://github.com/sharkdp/hyperfine) (without an intermediate
shell, `-N`) gives the median wall time of a launch and its CPU time, as root
and as an unprivileged user; GNU time's `%M` the peak resident set size. The
peers are `unshare -m chroot` (as the user: `unshare -rm chroot`, in a user
namespace), bubblewrap (the six binds a user would type: the tree, `/proc`,
`/dev`, `/sys`, `/tmp`, `/home`; and given the same binds as chos's view,
translated from `chos plan` by bench/bwrapargs.py; each with and without
`--unshare-user`), charliecloud's `ch-run` and schroot (a `type=directory`
entry, default profile). chos is measured four ways: its default launch,
which enters the tree's cached mount namespace; `chos exec --fresh`, which
builds the view in a private namespace every time; and the same binary
without the setuid bit, in user-namespace mode, which joins the view a keeper
of the user's keeps, and with `--fresh`. The floor of any Go launcher
is measured too: a static Go program built as chos is (bench/gofloor) that
exits, or that execs `/bin/true` directly. chos is the one of this checkout,
installed by `make install` under the benchmark directory with its own
configuration (legacy format: `%SHELLS` / `bench:TREE` / `local:/`).

Then: launch time with 0 to 5,000 extra host mounts (tmpfs mounts made in a
private mount namespace created for the measurement, never on the host's own
table), and 256 launches 64 at a time with none and with 5,000; 200 launches
16 at a time (launches per second, CPU time per launch); chos's launch time
against the number of `%BIND` entries and of trees in its configuration; the
tree as a squashfs image; Slurm job steps (`srun -n2 true`) on a private
one-node cluster, without chos, through the SPANK plugin and with the `chos
exec` prefix, and on three nodes of `scripts/cluster` (job starts, steps as
the tasks per node grow, also with `job_container/tmpfs`, and MPI start-up,
with cold and warm views); and where the time goes: the Go packages chos
initialises on the exec path (`GODEBUG=inittrace=1`) and the system calls of
one launch of each launcher (strace). The targets table at the top sets each ratio against
its target, from the same run.

**Reproduce:** as root on Debian 12 (or Ubuntu), `make bench`. It installs
what it needs from Debian's packages (bubblewrap, charliecloud-runtime,
schroot, hyperfine, time, debootstrap, strace, python3-matplotlib for the
plots; slurmctld, slurmd, slurm-client, munge and libslurm-dev for the Slurm
table), creates the user `chosbench` if missing, and takes about a quarter of
an hour on 2 cores, plus a few minutes for the first debootstrap;
`BENCH_QUICK=1 make bench` is a quicker smoke test. Nothing it mounts
outlives it and the schroot entry it adds is removed. `BENCH_ONLY=slurm make
bench` measures the Slurm table alone and replaces only that section.
"""

ANALYSIS = """\


## Analysis

_Placeholder: to be written by the engineers (what the numbers say, why each
target is met or not, and what to change)._
"""


def load_tsv(path, ncols):
    rows = []
    if not path or not os.path.exists(path):
        return rows
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            cols = line.split("\t")
            cols += [""] * (ncols - len(cols))
            rows.append(cols[:ncols])
    return rows


def hf(paths):
    """median, mean, stddev (s), number of runs and mean CPU time (user and
    system, s) over the hyperfine JSON files of one measurement (one per
    round)"""
    times, user, system = [], 0.0, 0.0
    for path in paths:
        try:
            with open(path) as f:
                res = json.load(f)["results"][0]
        except (OSError, ValueError, KeyError, IndexError):
            return None
        t = res.get("times") or []
        times += t
        # (hyperfine's user and system are means over the file's runs)
        user += res.get("user", 0.0) * len(t)
        system += res.get("system", 0.0) * len(t)
    if not times:
        return None
    return {"median": statistics.median(times), "mean": statistics.mean(times),
            "stddev": statistics.stdev(times) if len(times) > 1 else 0.0,
            "runs": len(times), "user": user / len(times), "system": system / len(times)}


def ms(s, digits=2):
    return ("%%.%df ms" % digits) % (s * 1000) if s is not None else "—"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return "%.2f×" % (a / b)


def mib(kib):
    try:
        return "%.1f MiB" % (int(kib) / 1024)
    except (TypeError, ValueError):
        return "—"


def md_escape(s):
    return s.replace("|", "\\|")


def num(n):
    return "{:,}".format(int(n))


# ---------------------------------------------------------------------------
# strace -f -ttt output (bench/run step 14): what one launch does

MOUNT_CALLS = {"mount", "umount2", "mount_setattr", "open_tree", "move_mount", "fsopen", "fsconfig",
               "fsmount", "fspick", "pivot_root", "chroot"}
NS_CALLS = {"unshare", "setns"}
FILE_CALLS = {"open", "openat", "openat2", "close", "close_range", "read", "pread64", "write", "newfstatat",
              "fstat", "stat", "lstat", "statx", "readlink", "readlinkat", "getdents64", "fcntl", "access",
              "faccessat", "faccessat2", "mkdirat", "mkdir", "symlinkat", "lseek", "ioctl", "fstatfs", "statfs"}
SIGNAL_CALLS = {"rt_sigaction", "rt_sigprocmask", "sigaltstack", "rt_sigreturn", "tgkill", "kill"}
MEMORY_CALLS = {"mmap", "munmap", "mprotect", "madvise", "brk", "mremap"}
THREAD_CALLS = {"clone", "clone3", "fork", "vfork", "futex", "sched_yield", "nanosleep", "wait4", "waitid",
                "exit", "set_robust_list", "rseq", "gettid", "sched_getaffinity"}
STRACE_LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(.*)$")
CALL = re.compile(r"^([a-z_0-9]+)\(")


def strace_stats(path):
    """counts of one traced launch: calls by kind, processes, execs, the
    traced span and its phases"""
    calls, pids, execs = {}, set(), []
    t_first = t_ns = t_lastmount = t_exec = None
    for line in open(path, errors="replace"):
        m = STRACE_LINE.match(line)
        if not m:
            continue
        pid, t, rest = m.group(1), float(m.group(2)), m.group(3)
        pids.add(pid)
        if t_first is None:
            t_first = t
        c = CALL.match(rest)
        if not c:
            continue  # "<... x resumed>", "+++ exited", "--- SIGCHLD"
        name = c.group(1)
        calls[name] = calls.get(name, 0) + 1
        if name == "execve" and "= -1" not in rest:
            execs.append(rest.split('"')[1] if '"' in rest else "?")
            t_exec = t
        if name in NS_CALLS or (name in ("clone", "clone3") and "CLONE_NEW" in rest):
            if t_ns is None:
                t_ns = t
        if name in MOUNT_CALLS:
            t_lastmount = t
    total = sum(calls.values())

    def kind(names):
        return sum(v for k, v in calls.items() if k in names)
    return {"total": total, "calls": calls, "procs": len(pids), "execs": execs,
            "mount": kind(MOUNT_CALLS), "ns": kind(NS_CALLS),
            "file": kind(FILE_CALLS), "signal": kind(SIGNAL_CALLS), "memory": kind(MEMORY_CALLS),
            "thread": kind(THREAD_CALLS),
            "span": (t_exec - t_first) if t_exec is not None and t_first is not None else None,
            "to_ns": (t_ns - t_first) if t_ns is not None and t_first is not None else None,
            "to_mounted": (t_lastmount - t_first) if t_lastmount is not None and t_first is not None else None}


def strace_median(paths):
    """the stats of the traced launch of median span"""
    runs = [strace_stats(p) for p in paths]
    runs = [x for x in runs if x["total"]]
    if not runs:
        return None
    runs.sort(key=lambda x: x["span"] if x["span"] is not None else 0)
    return runs[(len(runs) - 1) // 2]


# ---------------------------------------------------------------------------
# GODEBUG=inittrace=1 (bench/run step 14)

INIT_LINE = re.compile(r"^init (\S+) @([\d.]+) ms, ([\d.]+) ms clock, (\d+) bytes, (\d+) allocs")
# packages that only some commands need, and must not be initialised on the
# exec path (issues 13 and 24), by kind: the CLI framework, serialisation, crypto, the ELF reader,
# text formatting, regular expressions, networking, compression. (encoding/json
# is the launch's own: its userdb client asks systemd-userdbd in JSON.)
FLAGGED = (
    ("the CLI framework", re.compile(r"^github\.com/urfave/cli(/|$)")),
    ("encoding/gob", re.compile(r"^encoding/gob$")),
    ("other encodings", re.compile(r"^encoding/(xml|csv)$")),
    ("crypto", re.compile(r"^(vendor/golang\.org/x/)?crypto(/|$)")),
    ("the ELF reader", re.compile(r"^debug/(elf|dwarf|gosym|macho|pe|plan9obj|buildinfo)$")),
    ("text/template", re.compile(r"^(text|html)/template(/|$)")),
    ("regexp", re.compile(r"^regexp(/|$)")),
    ("net", re.compile(r"^(net|vendor/golang\.org/x/net)(/|$)")),
    ("compression", re.compile(r"^(compress/|archive/|internal/zstd$|.*(klauspost/compress|ulikunitz/xz|"
                               r"pierrec/lz4|golang/snappy|DataDog/zstd|dsnet/compress|andybalholm/brotli|"
                               r"/zstd|/lz4|/xz|/lzma|/brotli|/snappy)(/|$))")),
)


def flagged(pkg):
    """the kind of package pkg is, if the exec path must not initialise it"""
    for kind, rx in FLAGGED:
        if rx.match(pkg):
            return kind
    return None


def flagged_summary(pkgs, clock_digits=2, names=True):
    """the flagged packages by kind: "crypto 0.30 ms (crypto/sha256, ...)";
    without names, only how many packages"""
    kinds = {}
    for p in pkgs:
        if p["flagged"]:
            kinds.setdefault(p["flagged"], []).append(p)
    out = []
    for kind, _ in FLAGGED:
        ps = kinds.get(kind)
        if not ps:
            continue
        t = ms(sum(p["clock"] for p in ps) / 1000, clock_digits)
        if len(ps) == 1 and ps[0]["pkg"] == kind:
            out.append("%s %s" % (kind, t))
        elif not names:
            out.append("%s %s (%d package%s)" % (kind, t, len(ps), "" if len(ps) == 1 else "s"))
        else:
            out.append("%s %s (%s)" % (kind, t, ", ".join(p["pkg"] for p in ps)))
    return "; ".join(out)


def inittrace(paths):
    """package -> {clock (median ms), bytes, allocs, at (ms)}, in order of
    initialisation; and the median over runs of the total clock and of the
    start of the last package's init"""
    runs = []
    for p in paths:
        run = []
        for line in open(p, errors="replace"):
            m = INIT_LINE.match(line.strip())
            if m:
                run.append((m.group(1), float(m.group(2)), float(m.group(3)), int(m.group(4)), int(m.group(5))))
        if run:
            runs.append(run)
    if not runs:
        return None
    order, pk = [], {}
    for run in runs:
        for name, at, clock, b, a in run:
            if name not in pk:
                order.append(name)
                pk[name] = {"clock": [], "at": [], "bytes": b, "allocs": a}
            pk[name]["clock"].append(clock)
            pk[name]["at"].append(at)
    out = []
    for name in order:
        x = pk[name]
        out.append({"pkg": name, "clock": statistics.median(x["clock"]), "at": statistics.median(x["at"]),
                    "bytes": x["bytes"], "allocs": x["allocs"], "flagged": flagged(name)})
    total = statistics.median([sum(r[2] for r in run) for run in runs])
    end = statistics.median([run[-1][1] + run[-1][2] for run in runs])
    return {"pkgs": out, "total": total, "end": end, "runs": len(runs)}


class Results:
    def __init__(self, args):
        self.dir = args.dir
        self.meta = {}
        self.warnings = []
        for k, v in load_tsv(os.path.join(args.dir, "meta.tsv"), 2):
            if k == "warning":
                self.warnings.append(v)
            else:
                self.meta[k] = v
        self.launchers = {}
        self.order = []
        for lid, ident, status, label, cmd, note in load_tsv(os.path.join(args.dir, "launchers.tsv"), 6):
            self.launchers[(lid, ident)] = {"status": status, "label": label, "cmd": cmd, "note": note}
            if lid not in self.order:
                self.order.append(lid)
        par = (self.meta.get("par") or "200 16 3").split()
        self.par_n, self.par_p = int(par[0]), int(par[1])
        scale = (self.meta.get("scale") or "256 64 5000").split()
        self.scale_n, self.scale_p, self.scale_top = int(scale[0]), int(scale[1]), int(scale[2])
        # (section, param, lid, ident) -> dict
        self.rows = {}
        for sec, param, lid, ident, status, value, rss, note in load_tsv(os.path.join(args.dir, "results.tsv"), 8):
            row = {"status": status, "note": note, "rss": rss, "value": value}
            if status == "ok" and sec == "cluster_views":
                pass  # (the value is the views per node, not a measurement)
            elif status == "ok":
                if sec in ("t3", "t3s"):
                    n = self.par_n if sec == "t3" else self.scale_n
                    batches = []
                    for x in value.split(","):
                        f = x.split(":")
                        if f[0]:
                            batches.append([float(v) for v in f] + [0.0] * (3 - len(f)))
                    if batches:
                        row["wall"] = statistics.median(b[0] for b in batches)
                        row["rate"] = n / row["wall"]
                        row["cpu"] = statistics.median((b[1] + b[2]) / n for b in batches)
                        row["sys"] = statistics.median(b[2] / n for b in batches)
                        row["batches"] = len(batches)
                    else:
                        row["status"], row["note"] = "failed", "no batch"
                else:
                    row["hf"] = hf([os.path.join(args.dir, "out", v) for v in value.split(",") if v])
                    if row["hf"] is None:
                        row["status"] = "failed"
                        row["note"] = "no hyperfine result"
            self.rows[(sec, param, lid, ident)] = row
        out = os.path.join(args.dir, "out")
        self.gobench = self.text(os.path.join(out, "gobench.txt"))
        self.bwrap_notes = [x for x in (self.text(os.path.join(out, "bwrap-notes.txt")) or "").split("\n") if x]
        self.mountdiff = [x for x in (self.text(os.path.join(out, "mountdiff.txt")) or "").split("\n") if x]
        names = sorted(os.listdir(out)) if os.path.isdir(out) else []
        self.init = inittrace([os.path.join(out, f) for f in names if re.match(r"inittrace-\d+\.txt$", f)])
        self.strace = {}
        for lid in self.order:
            paths = [os.path.join(out, f) for f in names if re.match(r"strace-%s-\d+\.txt$" % re.escape(lid), f)]
            if paths:
                self.strace[lid] = strace_median(paths)

    @staticmethod
    def text(path):
        if os.path.exists(path):
            with open(path) as f:
                return f.read().strip()
        return None

    def row(self, sec, param, lid, ident="user"):
        row = self.rows.get((sec, param, lid, ident))
        return row if row and row["status"] == "ok" else None

    def median(self, sec, param, lid, ident="user"):
        row = self.row(sec, param, lid, ident)
        return row["hf"]["median"] if row and row.get("hf") else None

    def cpu(self, sec, param, lid, ident="user"):
        """CPU time (user + system) per launch: hyperfine's means, or a batch's"""
        row = self.row(sec, param, lid, ident)
        if not row:
            return None
        if row.get("hf"):
            return row["hf"]["user"] + row["hf"]["system"]
        return row.get("cpu")

    def rate(self, sec, param, lid):
        row = self.row(sec, param, lid)
        return row.get("rate") if row else None

    def rss(self, lid, ident="user"):
        row = self.row("t1", "-", lid, ident)
        try:
            return int(row["rss"]) if row else None
        except ValueError:
            return None

    def label(self, lid, ident="user"):
        l = self.launchers.get((lid, ident)) or self.launchers.get((lid, "root")) or {}
        return l.get("label", lid)

    def cell(self, sec, param, lid, ident, base=None):
        """a table cell: the median, with its ratio to base if given, or why not"""
        row = self.rows.get((sec, param, lid, ident))
        if row is None:
            return "—"
        if row["status"] != "ok":
            return row["status"]
        m = row["hf"]["median"]
        if base is not None:
            return "%s (%s)" % (ms(m), ratio(m, base))
        return ms(m)


def verdict(ok):
    if ok is None:
        return "n/a"
    return "**met**" if ok else "**not met**"


def targets(r):
    """rows of the targets table: (target, measured, ok or None, what limits it)"""
    rows = []
    med = lambda l: r.median("t1", "-", l)
    chos, fresh, userns = med("chos"), med("chosfresh"), med("chosuserns")
    bwrap, bwrapu, bwrapb, bwrapb0 = med("bwrap"), med("bwrapu"), med("bwrapbinds"), med("bwrapbinds0")
    unshare, chrun = med("unshare"), med("chrun")
    floor, goexit, host = med("goexec"), med("goexit"), med("host")
    st = r.strace

    def calls(lid):
        x = st.get(lid)
        return x if x else None

    def lim_floor(t):
        if t is None or floor is None:
            return "—"
        return ("the Go floor (a static Go program that execs /bin/true: the Go runtime's start and the exec) "
                "is %s, %.0f%% of it; chos's own work the other %s" % (ms(floor), 100 * floor / t, ms(t - floor)))

    def cpu(lid):
        c = r.cpu("t1", "-", lid)
        return ("CPU per launch %s" % ms(c)) if c is not None else ""

    def join(*parts):
        return "; ".join(p for p in parts if p and p != "—") or "—"

    def cmp(a, b, limit, name_a, name_b):
        if a is None or b is None:
            return "not measured", None
        return "%s %s vs %s %s = %.2f×" % (name_a, ms(a), name_b, ms(b), a / b), a <= limit * b

    def lim_calls(lid, peer, peer_name):
        cu, cb = calls(lid), calls(peer)
        if not (cu and cb):
            return "—"
        nexec = sum(1 for e in cu["execs"] if not e.endswith("/true"))
        return ("%d start(s) of chos; %d tasks; %d mount system calls against %s's %d; %d system calls in all "
                "against %d (strace, table 7)" % (nexec, cu["procs"], cu["mount"], peer_name, cb["mount"],
                                                   cu["total"], cb["total"]))

    # setuid, cached
    meas, ok = cmp(chos, floor, 1.15, "chos", "the Go floor")
    lim = []
    if chos is not None and floor is not None:
        lim.append("chos's own work %s above the floor" % ms(chos - floor))
    if r.init:
        lim.append("package initialisation %s (inittrace, table 7)" % ms(r.init["total"] / 1000))
    cc, cf = calls("chos"), calls("goexec")
    if cc and cf:
        lim.append("%d system calls against the floor's %d (%d file, %d memory, %d signal, %d thread)" % (
            cc["total"], cf["total"], cc["file"], cc["memory"], cc["signal"], cc["thread"]))
    rows.append(("setuid, cached: median ≤ 1.15 × the Go floor (`gofloor /bin/true`)", meas, ok,
                 join(*lim, cpu("chos"))))
    if r.init:
        flagged = [p for p in r.init["pkgs"] if p["flagged"]]
        meas = "%d packages initialised, %s in all; %d flagged" % (
            len(r.init["pkgs"]), ms(r.init["total"] / 1000), len(flagged))
        ok = not flagged
        lim = ("initialised on the exec path: " + flagged_summary(r.init["pkgs"], names=False)) if flagged else "—"
    else:
        meas, ok, lim = "not measured", None, "—"
    rows.append(("setuid, cached: nothing only some commands need is initialised (GODEBUG=inittrace=1: no CLI "
                 "framework, ELF reader, compression, crypto, gob, templates, regexp, net)", meas, ok, lim))
    # user-namespace mode
    for peer, limit, name in (("chrun", 1.5, "`ch-run`"), ("bwrapbinds", 1.0, "`bwrap --unshare-user` doing chos's binds"),
                              ("bwrapu", 2.0, "`bwrap --unshare-user` with the six binds a user would type")):
        meas, ok = cmp(userns, med(peer), limit, "chos", name)
        rows.append(("userns mode (no setuid, kept view): median ≤ %.1f × %s" % (limit, name), meas, ok,
                     join(lim_calls("chosuserns", peer, name), cpu("chosuserns"))))
    rss_u, rss_exit, rss_b = r.rss("chosuserns"), r.rss("goexit"), r.rss("bwrapbinds")
    if rss_u is not None:
        meas, ok = "%s (setuid cached: %s)" % (mib(rss_u), mib(r.rss("chos"))), rss_u <= 8 * 1024
        lim = "a static Go program that only exits peaks at %s; bwrap with chos's binds at %s" % (mib(rss_exit), mib(rss_b))
    else:
        meas, ok, lim = "not measured", None, "—"
    rows.append(("userns mode: peak RSS ≤ 8 MiB", meas, ok, lim))
    # --fresh
    cfr, cbw = calls("chosfresh"), calls("bwrapbinds0")
    lim = ("builds the view: %d mount system calls (bwrap with the same binds: %d); %s" % (
        cfr["mount"], cbw["mount"], lim_floor(fresh)) if cfr and cbw else lim_floor(fresh))
    meas, ok = cmp(fresh, bwrapb0, 0.6, "chos --fresh", "bwrap doing chos's binds")
    rows.append(("setuid `--fresh`: median ≤ 0.6 × bwrap doing chos's binds", meas, ok, join(lim, cpu("chosfresh"))))
    meas, ok = cmp(fresh, bwrap, 1.5, "chos --fresh", "bwrap")
    rows.append(("setuid `--fresh`: median ≤ 1.5 × bwrap with the six binds a user would type", meas, ok,
                 join(lim, cpu("chosfresh"))))
    # scale
    top = r.scale_top
    c0, ct, bt = r.rate("t3s", "0", "chos"), r.rate("t3s", str(top), "chos"), r.rate("t3s", str(top), "bwrap")
    what = "%s launches %s at a time with %s extra host mounts" % (num(r.scale_n), r.scale_p, num(top))
    note = "" if top == 5000 else " (BENCH_QUICK: %s mounts, not 5,000)" % num(top)
    if ct and bt:
        meas, ok = "chos %.0f/s vs bwrap %.0f/s = %.2f×%s" % (ct, bt, ct / bt, note), ct >= 3 * bt
        lim = "CPU per launch: chos %s, bwrap %s; %s cores" % (
            ms(r.cpu("t3s", str(top), "chos")), ms(r.cpu("t3s", str(top), "bwrap")), r.meta.get("cores", "?"))
    else:
        meas, ok, lim = "not measured", None, "—"
    rows.append(("%s: chos cached ≥ 3 × bwrap's launches per second" % what, meas, ok, lim))
    if c0 and ct:
        meas, ok = "%.0f/s with none, %.0f/s with %s = %.2f×%s" % (c0, ct, num(top), c0 / ct, note), c0 <= 1.3 * ct
        lim = "CPU per launch: %s with none, %s with %s" % (
            ms(r.cpu("t3s", "0", "chos")), ms(r.cpu("t3s", str(top), "chos")), num(top))
    else:
        meas, ok, lim = "not measured", None, "—"
    rows.append(("the same, chos cached: its rate with none ≤ 1.3 × its rate with them", meas, ok, lim))
    # load
    lc = r.rate("t3", "-", "chos")
    what = "%d launches %d at a time" % (r.par_n, r.par_p)

    def cpus(*lids):
        seen, out = set(), []
        for l, n in lids:
            if l not in seen and r.cpu("t3", "-", l) is not None:
                seen.add(l)
                out.append("%s %s" % (n, ms(r.cpu("t3", "-", l))))
        return ", ".join(out)
    for peer, name, want in (("bwrap", "bwrap (six binds)", 1.1), ("chrun", "`ch-run`", 1.0),
                             ("unshare", "`unshare -rm chroot`", 0.9), ("goexec", "the Go floor", 0.85)):
        lp = r.rate("t3", "-", peer)
        if lc and lp:
            meas, ok = "chos %.0f/s vs %s %.0f/s = %.2f×" % (lc, name, lp, lc / lp), lc >= want * lp
            lim = "CPU per launch: " + cpus(("chos", "chos"), (peer, name), ("goexec", "the Go floor"),
                                            ("host", "/bin/true alone"))
        else:
            meas, ok, lim = "not measured", None, "—"
        rows.append(("%s: chos cached ≥ %.2f × %s's launches per second" % (what, want, name), meas, ok, lim))
    # Slurm
    base = r.median("slurm", "-", "srun")
    for lid, name, why in (
            ("sruntree", "`--chos` (the SPANK plugin)",
             "one chos run on the step's path: `chos prepare` in slurmstepd (srun makes no submit-time check; sbatch and salloc do)"),
            ("srunprefix", "the `chos exec` prefix", "one chos exec per task (the tasks in parallel)")):
        v = r.median("slurm", "-", lid)
        if base and v:
            meas, ok = "%s vs %s = %.2f×" % (ms(v, 1), ms(base, 1), v / base), v <= 1.1 * base
            lim = "+%s per step: %s" % (ms(v - base, 1), why)
        else:
            meas, ok, lim = "not measured", None, "—"
        rows.append(("Slurm, `srun -n2 true` with %s ≤ 1.1 × without" % name, meas, ok, lim))
    d, i = r.median("t5", "chos, directory tree, cached", "dircached"), None
    for (sec, label, lid, ident), row in r.rows.items():
        if sec == "t5" and lid == "imgcached" and row["status"] == "ok":
            i = row["hf"]["median"]
        if sec == "t5" and lid == "dircached" and row["status"] == "ok":
            d = row["hf"]["median"]
    if d and i:
        meas, ok = "image %s vs directory %s = %.2f×" % (ms(i), ms(d), i / d), i <= 1.1 * d
        lim = "a cached launch only checks the image's identity (stat) and enters the namespace: %+.2f ms" % ((i - d) * 1000)
    else:
        meas, ok, lim = "not measured", None, "—"
    rows.append(("image tree (squashfs), cached launch ≤ 1.1 × the directory tree's", meas, ok, lim))
    return rows


def generate(r, plots):
    m = r.meta
    out = []
    w = out.append
    quick = m.get("quick") == "1"
    w("## Results of %s" % m.get("date", "?"))
    w("")
    if m.get("tree_kind") == "busybox":
        w("> **WARNING: these numbers are NOT for the Debian 11 tree.** The benchmark")
        w("> fell back to a busybox tree (scripts/mkbusyboxtree): see the warnings below.")
        w("")
    if quick:
        w("> **WARNING: BENCH_QUICK=1 run: few runs and no 5,000-mount step; the numbers are a smoke test only.**")
        w("")
    w("| | |")
    w("|---|---|")
    w("| machine | %s, %s cores, %s; kernel %s; %s |" % (
        m.get("cpu", "?"), m.get("cores", "?"), m.get("memory", "?"), m.get("kernel", "?"), m.get("host_os", "?")))
    w("| chos | %s |" % m.get("chos_version", "?"))
    w("| chos features | namespace cache: %s, `exec --fresh`: %s, `cache drop`: %s |" % (
        m.get("have_cache", "?"), m.get("have_fresh", "?"), m.get("have_cache_drop", "?")))
    w("| Go floor | %s |" % m.get("gofloor", "?"))
    w("| tree | %s%s |" % (m.get("tree", "?"),
                           ("; built " + m["tree_built"]) if m.get("tree_built") else ""))
    w("| peers | %s; %s; %s; %s |" % (m.get("v_unshare", "?"), m.get("v_bwrap", "?"),
                                       m.get("v_chrun", "?"), m.get("v_schroot", "?")))
    w("| method | %s; %s |" % (m.get("v_hyperfine", "?"), m.get("settings", "?")))
    w("| tools | %s; %s |" % (m.get("v_strace", "?"), m.get("v_matplotlib", "?")))
    w("| unprivileged user | %s |" % m.get("user", "?"))
    w("| CPU | before the run: %s; during it: %s |" % (m.get("cpu_before", "?"), m.get("cpu_during", "?")))
    w("| load average (1, 5, 15 min) | at start %s, at end %s |" % (m.get("loadavg_start", "?"), m.get("loadavg_end", "?")))
    dur = m.get("duration")
    if dur:
        w("| duration of `make bench` | %d min %02d s (without the Go build cache: longer) |" % (int(dur) // 60, int(dur) % 60))
    w("| cleanup | %s |" % m.get("cleanup", "?"))
    if m.get("raw"):
        w("| raw results | %s |" % m["raw"])
    w("")
    if r.warnings:
        w("**Warnings of this run:**")
        w("")
        for x in r.warnings:
            w("- %s" % md_escape(x))
        w("")

    # ---- targets
    w("### Targets")
    w("")
    w("As the unprivileged user; every ratio between two measurements of this run.")
    w("")
    w("| target | measured | verdict | what limits it |")
    w("|---|---|---|---|")
    for target, meas, ok, lim in targets(r):
        w("| %s | %s | %s | %s |" % (target, md_escape(meas), verdict(ok), md_escape(lim)))
    w("")
    if m.get("have_cache") != "yes":
        w("This chos has no namespace cache: \"chos cached\" above is its default launch.")
        w("")

    # ---- table 1
    w("### 1. Launch time of `/bin/true` in the tree")
    w("")
    w("Median wall time per launch, with its ratio to the Go floor, to `unshare` +")
    w("`chroot`, to bwrap with the six binds a user would type, to bwrap given chos's")
    w("binds and to `ch-run`, run by the same user; CPU: user + system time")
    w("per launch (hyperfine's means); peak RSS is the largest `%M` of GNU time over a")
    w("few launches (the launcher and what it forks, up to the exec of `/bin/true`).")
    w("The Go floor rows run on the host, in no tree: a static Go program built as")
    w("chos is (bench/gofloor) that exits, or that execs `/bin/true` directly.")
    w("")
    for ident, title in (("root", "As root"), ("user", "As the unprivileged user")):
        w("#### %s" % title)
        w("")
        w("| launcher | median | mean ± σ | runs | × Go floor | × unshare+chroot | × bwrap | × bwrap, chos's binds | × ch-run | CPU | peak RSS |")
        w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        base_f = r.median("t1", "-", "goexec", ident)
        base_u = r.median("t1", "-", "unshare", ident)
        base_b = r.median("t1", "-", "bwrap", ident)
        base_bb = r.median("t1", "-", "bwrapbinds", ident)
        base_c = r.median("t1", "-", "chrun", ident)
        for lid in r.order:
            row = r.rows.get(("t1", "-", lid, ident))
            if row is None:
                continue
            label = md_escape(r.label(lid, ident))
            if row["status"] != "ok":
                w("| %s | %s | | | | | | | | | |" % (label, row["status"] + (": " + md_escape(row["note"]) if row["note"] else "")))
                continue
            h = row["hf"]
            w("| %s | %s | %.2f ± %.2f ms | %d | %s | %s | %s | %s | %s | %s | %s |" % (
                label, ms(h["median"]), h["mean"] * 1000, h["stddev"] * 1000, h["runs"],
                ratio(h["median"], base_f), ratio(h["median"], base_u), ratio(h["median"], base_b),
                ratio(h["median"], base_bb), ratio(h["median"], base_c),
                ms(h["user"] + h["system"]), mib(row["rss"])))
        w("")
    w("Commands (as the user; as root, `unshare -m` without `-r`, and the userns chos with `--mode=userns`):")
    w("")
    w("```")
    for lid in r.order:
        l = r.launchers.get((lid, "user"))
        if l:
            w(l["cmd"])
    w("```")
    w("")
    if r.bwrap_notes or r.mountdiff:
        w("**bwrap given chos's binds.** Its options are made by bench/bwrapargs.py from")
        w("`chos plan %s -- /bin/true` (the userns chos's, as the user), step by step in" % (
            m.get("tree_name") or "bench"))
        w("chos's order: the host's root at `/.chos/host`, each top-level entry of the")
        w("tree read-only, symbolic links as in the tree, `/proc`, `/dev`, `/sys`, `/tmp`,")
        w("`/var/tmp`, `/home`, `/run`, the identity files, chos's own directories and")
        w("binary, and the root read-only. What differs, from the plan:")
        w("")
        for x in r.bwrap_notes:
            w("- %s" % md_escape(x))
        if r.mountdiff:
            w("")
            w("And measured: the mount tables read inside each view (`cat /proc/self/mountinfo`")
            w("through chos in userns mode and through this bwrap), compared by mount point:")
            w("")
            for x in r.mountdiff:
                w("- %s" % md_escape(x))
        w("")

    # ---- table 2
    steps = sorted({int(k[1]) for k in r.rows if k[0] == "t2"})
    w("### 2. Launch time against the number of host mounts")
    w("")
    w("As the user. N small tmpfs mounts are added in a private mount namespace")
    w("made for the purpose (`unshare -m --propagation private`, torn down afterwards),")
    w("in which the launchers then run; the chos cache is dropped at each step, so the")
    w("cached view is built from that mount table (3 warm-up runs from 1,000 mounts")
    w("on). In brackets: the ratio to the same launcher with no extra mounts.")
    w("")
    t2l = [l for l in ("chos", "chosfresh", "chosuserns", "unshare", "bwrap", "bwrapbinds")
           if any(k[0] == "t2" and k[2] == l for k in r.rows)]
    w("| extra host mounts | mounts in the table | %s |" % " | ".join(md_escape(r.label(l)) for l in t2l))
    w("|--:|--:|" + "--:|" * len(t2l))
    for n in steps:
        tot = "—"
        for l in t2l:
            row = r.rows.get(("t2", str(n), l, "user"))
            if row and row["status"] == "ok":
                tot = num(row["note"].split()[0])
                break
        cells = []
        for l in t2l:
            cells.append(r.cell("t2", str(n), l, "user", base=r.median("t2", "0", l, "user")))
        w("| %s | %s | %s |" % (num(n), tot, " | ".join(cells)))
    if not steps:
        w("| (not measured) | |" + " |" * len(t2l))
    w("")
    plot_link(w, plots, "mounts")

    # ---- table 3
    w("### 3. Launches under load")
    w("")
    w("As the user: `xargs -P P -n 1 LAUNCHER... /bin/true` fed N numbers (bench/par.py),")
    w("after a warm-up batch of P launches; the median over %s batch(es) of the wall" % ("one" if quick else "up to 3"))
    w("time, and the CPU time (user + system) of the whole batch, xargs and all it ran,")
    w("divided by N: on a node starting many ranks the CPU, not the wall time of one")
    w("launch, sets the pace.")
    w("")
    w("#### %d launches, %d at a time, no extra mounts" % (r.par_n, r.par_p))
    w("")
    w("| launcher | wall time | launches per second | CPU per launch | of it system | × Go floor | × bwrap | × ch-run | × unshare+chroot |")
    w("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    fl, bw, cr, un = (r.rate("t3", "-", l) for l in ("goexec", "bwrap", "chrun", "unshare"))
    for lid in r.order:
        row = r.rows.get(("t3", "-", lid, "user"))
        if row is None:
            continue
        if row["status"] != "ok":
            w("| %s | %s | | | | | | | |" % (md_escape(r.label(lid)), row["status"] + (": " + md_escape(row["note"]) if row["note"] else "")))
            continue
        w("| %s | %.3f s | %.0f | %s | %s | %s | %s | %s | %s |" % (
            md_escape(r.label(lid)), row["wall"], row["rate"], ms(row["cpu"]), ms(row["sys"]),
            ratio(row["rate"], fl), ratio(row["rate"], bw), ratio(row["rate"], cr), ratio(row["rate"], un)))
    w("")
    t3s = sorted({int(k[1]) for k in r.rows if k[0] == "t3s"})
    if t3s:
        w("#### %d launches, %d at a time, with and without extra host mounts" % (r.scale_n, r.scale_p))
        w("")
        w("In the private mount namespace of table 2, with no extra mounts and with its")
        w("largest step; the cached view is built from that namespace's table.")
        w("")
        hdr = " | ".join("launches per second, %s mounts | CPU per launch, %s mounts" % (num(n), num(n)) for n in t3s)
        w("| launcher | %s | × bwrap with %s | with none ÷ with %s |" % (hdr, num(t3s[-1]), num(t3s[-1])))
        w("|---|" + "--:|--:|" * len(t3s) + "--:|--:|")
        btop = r.rate("t3s", str(t3s[-1]), "bwrap")
        for lid in r.order:
            if not any(k[0] == "t3s" and k[2] == lid for k in r.rows):
                continue
            cells = []
            for n in t3s:
                row = r.rows.get(("t3s", str(n), lid, "user"))
                if row and row["status"] == "ok":
                    cells += ["%.0f" % row["rate"], ms(row["cpu"])]
                else:
                    cells += [row["status"] if row else "—", ""]
            a, b = r.rate("t3s", str(t3s[0]), lid), r.rate("t3s", str(t3s[-1]), lid)
            w("| %s | %s | %s | %s |" % (md_escape(r.label(lid)), " | ".join(cells), ratio(b, btop), ratio(a, b)))
        w("")
    plot_link(w, plots, "load")

    # ---- table 4
    w("### 4. chos against the size of its configuration")
    w("")
    w("As the user, through the setuid binary. Extra `%BIND` entries bind existing")
    w("host directories (at `/chosbench-bNNNN` in the view); extra trees are")
    w("`%SHELLS` entries naming distinct empty directories (only `bench` is")
    w("launched). In brackets: the ratio to the same launcher without them.")
    w("")
    for sec, what in (("binds", "extra `%BIND` entries"), ("trees", "extra trees in `%SHELLS`")):
        ns = sorted({int(k[1]) for k in r.rows if k[0] == sec} | ({0} if any(k[0] == "binds" for k in r.rows) else set()))
        if not ns:
            continue
        w("| %s | %s | %s |" % (what, md_escape(r.label("chos")), md_escape(r.label("chosfresh"))))
        w("|--:|--:|--:|")
        for n in ns:
            s2 = "binds" if n == 0 else sec  # the baseline is measured once
            cells = [r.cell(s2, str(n), l, "user", base=r.median("binds", "0", l, "user")) for l in ("chos", "chosfresh")]
            w("| %s | %s |" % (num(n), " | ".join(cells)))
        w("")

    # ---- table 5
    t5 = [(k, v) for k, v in r.rows.items() if k[0] == "t5"]
    if t5:
        w("### 5. Image trees")
        w("")
        w("As the user: the tree above as a squashfs image (%s)," % md_escape(m.get("image", "?")))
        w("launched by chos and by the usual ways of running an image. Every row is")
        w("`setpriv --reuid=USER ... LAUNCHER /bin/true` run by hyperfine as root, so")
        w("that a first launch can drop chos's cache before each run (`--prepare")
        w("'chos cache drop'`); the setpriv row is what that adds to every row. The")
        w("chos rows in pairs: the image tree against the same launch of the directory tree.")
        w("")
        w("| launcher | median | mean ± σ | runs | minus setpriv | × the directory tree |")
        w("|---|--:|--:|--:|--:|--:|")
        sp = None
        for (sec, label, lid, ident), row in t5:
            if lid == "setpriv" and row["status"] == "ok":
                sp = row["hf"]["median"]
        dirs = {}
        for (sec, label, lid, ident), row in t5:
            if lid.startswith("dir") and row["status"] == "ok":
                dirs[lid[3:]] = row["hf"]["median"]
        cmds = []
        for (sec, label, lid, ident), row in t5:
            if row["status"] != "ok":
                w("| %s | %s | | | | |" % (md_escape(label), row["status"] + (": " + md_escape(row["note"]) if row["note"] else "")))
                continue
            h = row["hf"]
            cmds.append(row["note"])
            net = ms(h["median"] - sp) if sp is not None and lid != "setpriv" else ""
            vsdir = ratio(h["median"], dirs.get(lid[3:])) if lid.startswith("img") and dirs.get(lid[3:]) else ""
            w("| %s | %s | %.2f ± %.2f ms | %d | %s | %s |" % (
                md_escape(label), ms(h["median"]), h["mean"] * 1000, h["stddev"] * 1000, h["runs"], net, vsdir))
        w("")
        w("Commands (each after `setpriv --reuid=USER --regid=GROUP --init-groups`):")
        w("")
        w("```")
        for c in cmds:
            w(c)
        w("```")
        w("")
    out.extend(slurm_section(r, alone=False, plots=plots))

    # ---- where the time goes
    w("### 7. Where the time goes")
    w("")
    w("#### Go packages initialised on the exec path")
    w("")
    if r.init:
        flagged = [p for p in r.init["pkgs"] if p["flagged"]]
        w("`GODEBUG=inittrace=1 chos exec %s /bin/true` as the user (setuid binary, cached" % (m.get("tree_name") or "bench"))
        w("view), %d launch(es): every package whose initialisation does work, in the order" % r.init["runs"])
        w("the runtime runs them, with the median clock time. %d packages, %s of clock in all;" % (
            len(r.init["pkgs"]), ms(r.init["total"] / 1000)))
        w("the last one ends %s after the runtime starts. **Flagged** (only some commands" % ms(r.init["end"] / 1000))
        w("need them: the CLI framework, gob, JSON, crypto, templates, regexp, net,")
        w("compression), by kind, with their clock time: %s." % (flagged_summary(r.init["pkgs"], 3) if flagged else "none"))
        w("")
        w("| package | clock | bytes | allocations | flagged |")
        w("|---|--:|--:|--:|---|")
        for p in r.init["pkgs"]:
            w("| %s | %s | %s | %d | %s |" % (p["pkg"], ms(p["clock"] / 1000, 3), num(p["bytes"]), p["allocs"],
                                           "**%s**" % p["flagged"] if p["flagged"] else ""))
        w("")
    else:
        w("Not measured.")
        w("")
    w("#### System calls of one launch")
    w("")
    if r.strace:
        w("As the user, `strace -f -ttt` (run as root with `-u`, so that the setuid chos")
        w("keeps its privilege), each launcher 3 times, the launch of median length shown.")
        w("Counts are exact; the times are stretched by the tracing, compare them with")
        w("each other only. Mount: mount, umount2, mount_setattr, open_tree, move_mount,")
        w("fsopen/fsconfig/fsmount, pivot_root, chroot; file: open, read, stat, close and")
        w("the like; memory: mmap, munmap, mprotect, madvise, brk; threads: clone,")
        w("futex, wait and the like. Phases: from the first traced call to the first")
        w("namespace call (unshare, setns, clone with CLONE_NEW*), to the last mount call,")
        w("and to the exec of `/bin/true`.")
        w("")
        w("| launcher | system calls | tasks (processes and threads) | execs | mount | file | memory | signal | threads | "
          "to the namespace | to the last mount | to the exec |")
        w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
        for lid in r.order:
            x = r.strace.get(lid)
            if not x:
                continue
            w("| %s | %d | %d | %d | %d | %d | %d | %d | %d | %s | %s | %s |" % (
                md_escape(r.label(lid)), x["total"], x["procs"], len(x["execs"]), x["mount"], x["file"],
                x["memory"], x["signal"], x["thread"],
                ms(x["to_ns"]) if x["to_ns"] is not None else "—",
                ms(x["to_mounted"]) if x["to_mounted"] is not None else "—",
                ms(x["span"]) if x["span"] is not None else "—"))
        w("")
        w("The most frequent calls of each chos mode:")
        w("")
        for lid in ("chos", "chosfresh", "chosuserns", "chosusernsfresh"):
            x = r.strace.get(lid)
            if x:
                top = sorted(x["calls"].items(), key=lambda kv: (-kv[1], kv[0]))[:12]
                w("- %s: %s" % (md_escape(r.label(lid)), ", ".join("%s %d" % kv for kv in top)))
        w("")
    else:
        w("Not measured.")
        w("")

    # ---- go
    w("### Go micro-benchmarks")
    w("")
    if r.gobench:
        w("`go test -run '^$' -bench . -benchmem ./pkg/...`:")
        w("")
        w("```")
        w(r.gobench)
        w("```")
    else:
        w("None defined in `./pkg/...` (`go test -bench` ran and found none).")
    w("")
    return "\n".join(out)


# ---------------------------------------------------------------------------
# plots (matplotlib, drawn from the same results)

PLOTS = {
    "mounts": ("perf-mounts.png", "Launch time against the number of extra host mounts, per launcher"),
    "load": ("perf-load.png", "Launches per second and CPU time per launch under load, per launcher"),
    "cluster": ("perf-cluster.png", "Slurm step time on three nodes against the tasks per node, with and without chos"),
}


# one colour per launcher in every plot: chos's in blues and greens, the
# peers' in warm colours, the floors in greys
COLORS = {"chos": "tab:blue", "chosfresh": "tab:cyan", "chosuserns": "tab:green", "chosusernsfresh": "yellowgreen",
          "bwrap": "tab:orange", "bwrapu": "gold", "bwrapbinds0": "salmon", "bwrapbinds": "tab:red",
          "unshare": "tab:purple", "chrun": "tab:brown", "schroot": "tab:pink",
          "host": "dimgray", "goexec": "darkgray", "goexit": "silver"}
# the steps of host mounts, lightest first
STEP_COLORS = ("#9ecae1", "#3182bd", "#08519c")


def plot_link(w, plots, key):
    name, alt = PLOTS[key]
    if key in plots:
        w("![%s](%s)" % (alt, name))
        w("")
    elif plots.get("why"):
        w("_(Plot not drawn: %s.)_" % plots["why"])
        w("")


def draw_plots(r, outdir, only=None):
    """draw the plots next to the report (only: these keys); returns {key:
    path} and, if none could be drawn, {"why": reason}"""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError as e:
        return {"why": "matplotlib is missing (%s)" % e}
    matplotlib.rcParams.update({"font.size": 9, "svg.hashsalt": "chos", "axes.grid": True, "grid.alpha": 0.3})
    meta = {"Software": None}  # no version stamp: a rerun changes only what the numbers change
    done = {}
    when = r.meta.get("date", "?")
    if r.meta.get("quick") == "1":
        when += " (BENCH_QUICK=1: smoke test)"
    if only is not None:
        path = draw_cluster_plot(r, outdir, plt, meta, when) if "cluster" in only else None
        return {"cluster": path} if path else {}

    # launch time against host mounts
    steps = sorted({int(k[1]) for k in r.rows if k[0] == "t2"})
    if steps:
        fig, ax = plt.subplots(figsize=(9.5, 4.2), dpi=110)
        for lid in r.order:
            pts = [(n, r.median("t2", str(n), lid)) for n in steps]
            pts = [(n, v * 1000) for n, v in pts if v is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=r.label(lid),
                        color=COLORS.get(lid), linestyle="--" if lid.startswith("bwrap") or lid == "unshare" else "-")
        ax.set_xscale("symlog", linthresh=100)
        ax.set_yscale("log")
        plain = matplotlib.ticker.FuncFormatter(lambda v, _: "%g" % v)
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
        ax.tick_params(axis="y", which="minor", labelsize=7)
        ax.set_xticks(steps)
        ax.set_xticklabels([num(n) for n in steps])
        ax.set_xlabel("extra host mounts (in a private mount namespace)")
        ax.set_ylabel("median launch time of /bin/true (ms, log)")
        ax.set_title("Launch time against host mounts, as the user — %s" % when, fontsize=9)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
        fig.tight_layout()
        path = os.path.join(outdir, PLOTS["mounts"][0])
        fig.savefig(path, metadata=meta)
        plt.close(fig)
        done["mounts"] = path

    # launches per second under load
    t3 = [(lid, r.row("t3", "-", lid)) for lid in r.order]
    t3 = [(lid, row) for lid, row in t3 if row]
    t3s = sorted({int(k[1]) for k in r.rows if k[0] == "t3s"})
    if t3:
        panels = 2 if t3s else 1
        fig, axes = plt.subplots(1, panels, figsize=(7.5 if panels == 1 else 11, 4.6), dpi=110, squeeze=False)
        ax = axes[0][0]
        labels = [r.label(lid) for lid, _ in t3]
        y = range(len(t3))
        bars = ax.barh(list(y), [row["rate"] for _, row in t3], color=[COLORS.get(lid, "tab:gray") for lid, _ in t3])
        for b, (_, row) in zip(bars, t3):
            ax.text(b.get_width(), b.get_y() + b.get_height() / 2, " %.0f/s, %.1f ms CPU" % (row["rate"], row["cpu"] * 1000),
                    va="center", fontsize=7)
        ax.set_yticks(list(y))
        ax.set_yticklabels(labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, max(row["rate"] for _, row in t3) * 1.45)
        ax.set_xlabel("launches per second (label: and CPU time per launch)")
        ax.set_title("%d launches, %d at a time,\nno extra host mounts" % (r.par_n, r.par_p), fontsize=9)
        if t3s:
            ax = axes[0][1]
            lids = [lid for lid in r.order if any(k[0] == "t3s" and k[2] == lid for k in r.rows)]
            width = 0.8 / len(t3s)
            for j, n in enumerate(t3s):
                vals = [r.rate("t3s", str(n), lid) or 0 for lid in lids]
                pos = [i + (j - (len(t3s) - 1) / 2) * width for i in range(len(lids))]
                bars = ax.barh(pos, vals, height=width, label="%s extra host mounts" % num(n),
                               color=STEP_COLORS[j % len(STEP_COLORS)])
                for b, v in zip(bars, vals):
                    ax.text(b.get_width(), b.get_y() + b.get_height() / 2, " %.0f" % v, va="center", fontsize=7)
            ax.set_yticks(list(range(len(lids))))
            ax.set_yticklabels([r.label(lid) for lid in lids], fontsize=7)
            ax.invert_yaxis()
            ax.set_xlim(0, max([r.rate("t3s", str(n), lid) or 0 for n in t3s for lid in lids] + [1]) * 1.15)
            ax.set_xlabel("launches per second")
            ax.set_title("%d launches, %d at a time,\nwith and without extra host mounts" % (r.scale_n, r.scale_p), fontsize=9)
            ax.legend(fontsize=7, loc="lower right")
        fig.suptitle("Launches under load, as the user — %s" % when, fontsize=9)
        fig.tight_layout()
        path = os.path.join(outdir, PLOTS["load"][0])
        fig.savefig(path, metadata=meta)
        plt.close(fig)
        done["load"] = path
    path = draw_cluster_plot(r, outdir, plt, meta, when)
    if path:
        done["cluster"] = path
    return done


def draw_cluster_plot(r, outdir, plt, meta, when):
    """step time on three nodes against the tasks per node (bench/cluster)"""
    if not any(r.row("cluster", "%sstep-%d" % (p, k), lid) for p in ("", "jc-") for k in CLUSTER_TASKS for lid in ("none", "chos")):
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=110)
    for p, style, where in (("", "-", ""), ("jc-", "--", ", job_container/tmpfs")):
        for lid, label, color in (("none", "no chos", "dimgray"), ("chos", "--chos, warm", "tab:blue"),
                                  ("choscold", "--chos, cold", "tab:cyan")):
            pts = [(k, r.median("cluster", "%sstep-%d" % (p, k), lid)) for k in CLUSTER_TASKS]
            pts = [(k, v * 1000) for k, v in pts if v is not None]
            if pts:
                ax.plot([x[0] for x in pts], [x[1] for x in pts], marker="o", linestyle=style, color=color,
                        label=label + where)
    ax.set_xscale("log", base=2)
    ax.set_xticks(CLUSTER_TASKS)
    ax.set_xticklabels([str(k) for k in CLUSTER_TASKS])
    ax.set_xlabel("tasks per node (3 nodes; srun -O)")
    ax.set_ylabel("median step time (ms)")
    ax.set_ylim(bottom=0)
    ax.set_title("A step of `true` in an allocation of three nodes, as the user — %s" % when, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(outdir, PLOTS["cluster"][0])
    fig.savefig(path, metadata=meta)
    plt.close(fig)
    return path


SLURM_ROWS = (
    ("srun", "srun -n2 true, no plugin"),
    ("srunplugin", "srun -n2 true, plugin loaded, no tree"),
    ("sruntree", "srun -n2 --chos=bench true (the plugin)"),
    ("srunprefix", "srun -n2 chos exec bench /bin/true (the prefix)"),
)
SLURM_HEAD = "### 6. Slurm job steps"


CLUSTER_TASKS = (1, 4, 16, 64)
CLUSTER_STORM = (
    ("none", "no chos"),
    ("chos", "--chos=bench, warm"),
    ("choscold", "--chos=bench, cold"),
    ("prefix", "chos exec bench (the prefix), warm"),
    ("prefixcold", "chos exec bench (the prefix), cold"),
)
CLUSTER_MPI = (
    ("none", "`true`, no chos"),
    ("chos", "`true`, --chos"),
    ("hellochos", "hello, --chos"),
    ("helloprefix", "hello, chos exec (the prefix)"),
    ("allreducechos", "allreduce, --chos"),
    ("allreduceprefix", "allreduce, chos exec (the prefix)"),
)


def cluster_views(r, param, lid):
    """the views per node that one step's tasks were in, as n1:1,n2:1,n3:1"""
    row = r.rows.get(("cluster_views", param, lid, "user"))
    if row is None:
        return ""
    if row["status"] != "ok":
        return row["status"]
    return row["value"].replace(",", ", ")


def one_view_per_node(r, param, lid):
    v = cluster_views(r, param, lid)
    if not v or ":" not in v:
        return None
    return all(x.split(":")[1] == "1" for x in v.split(", "))


def cluster_part(r, plots):
    """the three-node part of table 6 (bench/cluster)"""
    m = r.meta
    out = []
    w = out.append
    w("#### Across three nodes")
    w("")
    if m.get("cluster_skipped") or not any(k[0] == "cluster" for k in r.rows):
        w("Not measured: %s." % md_escape(m.get("cluster_skipped", "bench/cluster did not run")))
        w("")
        return out
    w("The cluster: %s." % md_escape(m.get("cluster_nodes", "three nodes (scripts/cluster)")))
    w("As the user: hyperfine, run as root, runs each command after `setpriv` to the user;")
    w("%s timed runs per row after 2 warm-up runs. **Cold**:" % m.get("cluster_runs", "several"))
    w("a configuration never seen before each run (a new drop-in), so every node builds its")
    w("view again; **warm**: the nodes' views are cached. **Views per node**: the distinct")
    w("mount namespaces of one step's tasks on each node (1: built, or entered, once).")
    w("")
    w("**Job-start storm**: `srun -N3 -n48 true`, 16 tasks per node, a new job each run.")
    w("")
    w("| | median | mean ± σ | runs | × no chos | views per node |")
    w("|---|--:|--:|--:|--:|---|")
    base = r.median("cluster", "storm", "none")
    for lid, label in CLUSTER_STORM:
        row = r.rows.get(("cluster", "storm", lid, "user"))
        if row is None:
            continue
        if row["status"] != "ok":
            w("| %s | %s | | | | |" % (label, row["status"] + (": " + md_escape(row["note"]) if row["note"] else "")))
            continue
        h = row["hf"]
        w("| %s | %s | %.1f ± %.1f ms | %d | %s | %s |" % (label, ms(h["median"], 1), h["mean"] * 1000, h["stddev"] * 1000,
                                                        h["runs"], ratio(h["median"], base), cluster_views(r, "storm", lid)))
    w("")
    for p, title in (("", "**Steps in an allocation**"), ("jc-", "**The same, each job in a mount namespace of its own** (job_container/tmpfs)")):
        if not any(r.rows.get(("cluster", "%sstep-%d" % (p, k), "none", "user")) for k in CLUSTER_TASKS):
            continue
        w("%s: `srun --jobid=JOB -N3 --ntasks-per-node=K -O true` in one allocation of the three nodes." % title)
        w("Targets: warm within 1.05× of no chos at every size, cold within 1.2×, one view per node.")
        w("")
        w("| tasks per node | no chos | --chos, warm | × | --chos, cold | × |")
        w("|--:|--:|--:|--:|--:|--:|")
        for k in CLUSTER_TASKS:
            param = "%sstep-%d" % (p, k)
            none, warm, cold = (r.median("cluster", param, lid) for lid in ("none", "chos", "choscold"))
            if none is None and warm is None and cold is None:
                continue
            w("| %d | %s | %s | %s | %s | %s |" % (k, ms(none, 1), ms(warm, 1), ratio(warm, none), ms(cold, 1), ratio(cold, none)))
        warm_ok = [r.median("cluster", "%sstep-%d" % (p, k), "chos") / r.median("cluster", "%sstep-%d" % (p, k), "none") <= 1.05
                   for k in CLUSTER_TASKS if r.median("cluster", "%sstep-%d" % (p, k), "chos") and r.median("cluster", "%sstep-%d" % (p, k), "none")]
        cold_ok = [r.median("cluster", "%sstep-%d" % (p, k), "choscold") / r.median("cluster", "%sstep-%d" % (p, k), "none") <= 1.2
                   for k in CLUSTER_TASKS if r.median("cluster", "%sstep-%d" % (p, k), "choscold") and r.median("cluster", "%sstep-%d" % (p, k), "none")]
        w("")
        w("Warm ≤ 1.05×: %s; cold ≤ 1.2×: %s; views per node in a step of 16 tasks per node, warm: %s (%s); cold: %s (%s)." % (
            verdict(all(warm_ok) if warm_ok else None), verdict(all(cold_ok) if cold_ok else None),
            cluster_views(r, p + "step-16", "chos") or "—", verdict(one_view_per_node(r, p + "step-16", "chos")),
            cluster_views(r, p + "step-16", "choscold") or "—", verdict(one_view_per_node(r, p + "step-16", "choscold"))))
        w("")
    plot_link(w, plots, "cluster")
    if any(k[0] == "cluster" and k[1] == "mpi" for k in r.rows):
        w("**MPI start-up**: `srun --mpi=pmix -N3 -n6`, a program built with the mpicc of a Debian 11 tree")
        w("(%s): MPI_Init and MPI_Finalize (hello), and one MPI_Allreduce (allreduce)." % md_escape(m.get("cluster_mpi", "?")))
        w("The host has no Open MPI: the rows without chos run `true` in the same step.")
        w("")
        w("| | median | mean ± σ | runs | × `true` without chos |")
        w("|---|--:|--:|--:|--:|")
        base = r.median("cluster", "mpi", "none")
        for lid, label in CLUSTER_MPI:
            row = r.rows.get(("cluster", "mpi", lid, "user"))
            if row is None:
                continue
            if row["status"] != "ok":
                w("| %s | %s | | | |" % (label, row["status"] + (": " + md_escape(row["note"]) if row["note"] else "")))
                continue
            h = row["hf"]
            w("| %s | %s | %.1f ± %.1f ms | %d | %s |" % (label, ms(h["median"], 1), h["mean"] * 1000, h["stddev"] * 1000,
                                                        h["runs"], ratio(h["median"], base)))
        w("")
    cmds = [row["note"] for k, row in sorted(r.rows.items()) if k[0] == "cluster" and row["status"] == "ok" and row["note"]]
    if cmds:
        w("Commands (SLURM_CONF set; the plugin `required` in plugstack.conf; TREE and chos as installed by the benchmark):")
        w("")
        w("```")
        for c in sorted(set(cmds)):
            w(c)
        w("```")
        w("")
    return out


def slurm_section(r, alone, plots=None):
    """table 6 (bench/slurm, bench/cluster); alone: measured by
    BENCH_ONLY=slurm, apart from the tables above, so it says when and with
    what"""
    m = r.meta
    out = []
    w = out.append
    w(SLURM_HEAD)
    w("")
    if m.get("slurm_skipped") or not any(k[0] == "slurm" for k in r.rows):
        w("Not measured: %s." % md_escape(m.get("slurm_skipped", "bench/slurm did not run")))
        w("")
        return out
    w("As the user: a two-task job step, from `srun` to its exit, in the same tree")
    w("as the tables above, on a private cluster (%s)." % md_escape(m.get("slurm_cluster", "?")))
    w("The plugin asks chos once per step, in slurmstepd (srun makes no submit-time")
    w("check), and each task enters the cached view; the prefix runs the")
    w("setuid chos in each task. Hyperfine as for table 1, the rows interleaved;")
    w("last column: the ratio to the step without the plugin.")
    w("")
    if alone:
        w("| | |")
        w("|---|---|")
        w("| measured | %s, alone (`BENCH_ONLY=slurm make bench`) |" % m.get("date", "?"))
        w("| machine | %s, %s cores; kernel %s |" % (m.get("cpu", "?"), m.get("cores", "?"), m.get("kernel", "?")))
        w("| chos | %s |" % m.get("chos_version", "?"))
        w("| tree | %s |" % m.get("tree", "?"))
        w("| method | %s; %s |" % (m.get("v_hyperfine", "?"), m.get("settings", "?")))
        w("| CPU | before the run: %s |" % m.get("cpu_before", "?"))
        w("| load average (1, 5, 15 min) | at start %s |" % m.get("loadavg_start", "?"))
        w("")
        for x in r.warnings:
            w("- %s" % md_escape(x))
        if r.warnings:
            w("")
    w("| %s | median | mean ± σ | runs | × no plugin |" % md_escape(m.get("slurm_version", "slurm")))
    w("|---|--:|--:|--:|--:|")
    base = r.median("slurm", "-", "srun", "user")
    for lid, label in SLURM_ROWS:
        row = r.rows.get(("slurm", "-", lid, "user"))
        if row is None:
            continue
        if row["status"] != "ok":
            w("| %s | %s | | | |" % (label, row["status"] + (": " + md_escape(row["note"]) if row["note"] else "")))
            continue
        h = row["hf"]
        w("| %s | %s | %.2f ± %.2f ms | %d | %s |" % (label, ms(h["median"]), h["mean"] * 1000, h["stddev"] * 1000,
                                                   h["runs"], ratio(h["median"], base)))
    w("")
    w("Commands (SLURM_CONF set; the plugin `required` in plugstack.conf where it is loaded):")
    w("")
    w("```")
    for lid, _ in SLURM_ROWS:
        if m.get("slurm_cmd_" + lid):
            w(m["slurm_cmd_" + lid])
    w("```")
    w("")
    out.extend(cluster_part(r, plots or {}))
    return out


def replace_slurm_section(old, section):
    """old's generated part with table 6 replaced (or added before the Go
    micro-benchmarks, or at the end of the generated part)"""
    lines = old.split("\n")
    end = lines.index(END)
    if SLURM_HEAD in lines[:end]:
        start = lines.index(SLURM_HEAD)
        stop = next((i for i in range(start + 1, end) if lines[i].startswith("### ")), end)
    else:
        start = next((i for i in range(end) if lines[i].startswith("### Go micro-benchmarks")), end)
        stop = start
    return "\n".join(lines[:start] + section + lines[stop:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True, help="bench/run's results (e.g. /var/lib/chos-bench/last-run)")
    ap.add_argument("--output", required=True)
    ap.add_argument("--only", choices=["slurm"], help="replace only this table in --output")
    args = ap.parse_args()

    r = Results(args)
    if args.only:
        old = open(args.output).read()
        if BEGIN not in old or END not in old:
            sys.exit("%s has no generated part to update: run the whole benchmark" % args.output)
        plots = draw_plots(r, os.path.dirname(os.path.abspath(args.output)), only=("cluster",))
        doc = replace_slurm_section(old, slurm_section(r, alone=True, plots=plots))
        with open(args.output + ".tmp", "w") as f:
            f.write(doc)
        os.replace(args.output + ".tmp", args.output)
        print("wrote table 6 into %s" % args.output)
        return
    plots = draw_plots(r, os.path.dirname(os.path.abspath(args.output)))
    for p in sorted(v for k, v in plots.items() if k != "why"):
        print("drew %s" % p)
    body = generate(r, plots)

    # head and tail are kept verbatim, so that a rerun changes nothing else
    head, tail = PREAMBLE + "\n", ANALYSIS
    if os.path.exists(args.output):
        old = open(args.output).read()
        if BEGIN in old and END in old and old.index(BEGIN) < old.index(END):
            head = old[: old.index(BEGIN)]
            tail = old[old.index(END) + len(END):]
            if not re.search(r"(?m)^## Analysis", tail):
                tail = tail.rstrip("\n") + ANALYSIS
    doc = head + BEGIN + "\n\n" + body + "\n" + END + tail
    tmp = args.output + ".tmp"
    with open(tmp, "w") as f:
        f.write(doc)
    os.replace(tmp, args.output)
    print("wrote %s" % args.output)


if __name__ == "__main__":
    main()
