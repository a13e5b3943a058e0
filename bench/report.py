#!/usr/bin/env python3
"""report.py: write docs/PERFORMANCE.md from the results of bench/run.

Reads, in the directory given with --dir (bench/run's work directory, kept
as $BENCH_DIR/last-run): results.tsv (one measurement a line: section, param,
launcher, ident, status, value, rss_kib, note), meta.tsv (key, value),
launchers.tsv (lid, ident, status, label, command, note), and in out/ the
hyperfine JSON files results.tsv names and gobench.txt.

Only the part of the output file between the two markers is regenerated: the
hand-written preamble above it and the Analysis section below it are kept.
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
written by `make bench` (bench/run); the text above them and the Analysis
section below them are kept when it is rerun.

**What is measured.** Each launcher starts `/bin/true` inside the same Debian 11
(bullseye) minbase tree, built with `debootstrap --variant=minbase` from the
machine's Debian mirror and kept under `/var/lib/chos-bench` for later runs.
[hyperfine](https://github.com/sharkdp/hyperfine) (without an intermediate
shell, `-N`) gives the median wall time of a launch, as root and as an
unprivileged user; GNU time's `%M` the peak resident set size. The peers are
`unshare -m chroot` (as the user: `unshare -rm chroot`, in a user namespace),
bubblewrap, charliecloud's `ch-run` and schroot (a `type=directory` entry,
default profile). chos is measured three ways: its default launch, which
enters the tree's cached mount namespace; `chos exec --fresh`, which builds
the view in a private namespace every time; and the same binary without the
setuid bit, in user-namespace mode. chos is the one of this checkout,
installed by `make install` under the benchmark directory with its own
configuration (legacy format: `%SHELLS` / `bench:TREE` / `local:/`).

Then: launch time with 0 to 5,000 extra host mounts (tmpfs mounts made in a
private mount namespace created for the measurement, never on the host's own
table); 200 launches 16 at a time (wall time, launches per second); and chos's
launch time against the number of `%BIND` entries and of trees in its
configuration. Last, Slurm job steps (`srun -n2 true`) on a private one-node
cluster, without chos, through the SPANK plugin and with the `chos exec`
prefix.

**Reproduce:** as root on Debian 12 (or Ubuntu), `make bench`. It installs
what it needs from Debian's packages (bubblewrap, charliecloud-runtime,
schroot, hyperfine, time, debootstrap; slurmctld, slurmd, slurm-client, munge
and libslurm-dev for the Slurm table), creates the user `chosbench` if
missing, and takes a few minutes plus about one for the first debootstrap.
Nothing it mounts outlives it and the schroot entry it adds is removed.
`BENCH_ONLY=slurm make bench` measures the Slurm table alone and replaces only
that section.
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
    """median, mean, stddev (s) and number of runs over the hyperfine JSON
    files of one measurement (one per round)"""
    times = []
    for path in paths:
        try:
            with open(path) as f:
                times += json.load(f)["results"][0]["times"]
        except (OSError, ValueError, KeyError, IndexError):
            return None
    if not times:
        return None
    return {"median": statistics.median(times), "mean": statistics.mean(times),
            "stddev": statistics.stdev(times) if len(times) > 1 else 0.0,
            "runs": len(times)}


def ms(s):
    return "%.2f ms" % (s * 1000) if s is not None else "—"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return "%.2f×" % (a / b)


def mib(kib):
    try:
        return "%.1f MiB" % (int(kib) / 1024)
    except ValueError:
        return "—"


def md_escape(s):
    return s.replace("|", "\\|")


class Results:
    def __init__(self, args):
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
        # (section, param, lid, ident) -> dict
        self.rows = {}
        for sec, param, lid, ident, status, value, rss, note in load_tsv(os.path.join(args.dir, "results.tsv"), 8):
            row = {"status": status, "note": note, "rss": rss, "value": value}
            if status == "ok":
                if sec == "t3":
                    walls = [float(x) for x in value.split(",") if x]
                    row["wall"] = statistics.median(walls) if walls else None
                    row["walls"] = walls
                else:
                    row["hf"] = hf([os.path.join(args.dir, "out", v) for v in value.split(",") if v])
                    if row["hf"] is None:
                        row["status"] = "failed"
                        row["note"] = "no hyperfine result"
            self.rows[(sec, param, lid, ident)] = row
        self.gobench = None
        gobench = os.path.join(args.dir, "out", "gobench.txt")
        if os.path.exists(gobench):
            with open(gobench) as f:
                self.gobench = f.read().strip()

    def median(self, sec, param, lid, ident):
        row = self.rows.get((sec, param, lid, ident))
        if row and row["status"] == "ok" and row.get("hf"):
            return row["hf"]["median"]
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


def generate(r):
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
    w("| tree | %s%s |" % (m.get("tree", "?"),
                           ("; built " + m["tree_built"]) if m.get("tree_built") else ""))
    w("| peers | %s; %s; %s; %s |" % (m.get("v_unshare", "?"), m.get("v_bwrap", "?"),
                                       m.get("v_chrun", "?"), m.get("v_schroot", "?")))
    w("| method | %s; %s |" % (m.get("v_hyperfine", "?"), m.get("settings", "?")))
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
    w("| target | measured | verdict |")
    w("|---|---|---|")
    c_user = r.median("t1", "-", "chos", "user")
    for peer, name in (("unshare", "`unshare -rm chroot`"), ("bwrap", "bwrap")):
        p = r.median("t1", "-", peer, "user")
        ok = None if c_user is None or p is None else c_user <= 0.8 * p
        meas = "chos %s vs %s %s = %s" % (ms(c_user), name, ms(p), ratio(c_user, p)) if ok is not None else "not measured"
        w("| chos cached launch as a user (setuid binary): median ≤ 0.8 × %s | %s | %s |" % (name, meas, verdict(ok)))
    steps = sorted({int(k[1]) for k in r.rows if k[0] == "t2"})
    c0 = r.median("t2", "0", "chos", "user")
    c5 = r.median("t2", "5000", "chos", "user")
    ok = None if c0 is None or c5 is None else c5 <= 1.3 * c0
    if ok is not None:
        meas = "%s with 5,000 vs %s with none = %s" % (ms(c5), ms(c0), ratio(c5, c0))
    else:
        meas = "not measured" + (" (steps run: %s)" % ", ".join(map(str, steps)) if steps else "")
    w("| with 5,000 extra host mounts, chos cached ≤ 1.3 × its own time with none | %s | %s |" % (meas, verdict(ok)))
    pc = r.rows.get(("t3", "-", "chos", "user"), {})
    pb = r.rows.get(("t3", "-", "bwrap", "user"), {})
    if pc.get("wall") and pb.get("wall"):
        lc, lb = 200 / pc["wall"], 200 / pb["wall"]
        ok = lc >= 1.5 * lb
        meas = "chos %.0f/s vs bwrap %.0f/s = %.2f×" % (lc, lb, lc / lb)
    else:
        ok, meas = None, "not measured"
    w("| 200 launches 16 at a time: chos cached ≥ 1.5 × bwrap's launches per second | %s | %s |" % (meas, verdict(ok)))
    worst = None
    for (sec, _, lid, ident), row in r.rows.items():
        if sec == "t1" and lid.startswith("chos") and row["status"] == "ok":
            try:
                v = int(row["rss"])
            except ValueError:
                continue
            if worst is None or v > worst[0]:
                worst = (v, "%s as %s" % (r.label(lid, ident), ident))
    if worst:
        ok = worst[0] <= 8 * 1024
        meas = "largest of the chos rows of table 1: %s (%s)" % (mib(worst[0]), worst[1])
    else:
        ok, meas = None, "not measured"
    w("| peak RSS of chos ≤ 8 MiB | %s | %s |" % (meas, verdict(ok)))
    w("")
    if m.get("have_cache") != "yes":
        w("This chos has no namespace cache: \"chos cached\" above is its default launch.")
        w("")

    # ---- table 1
    w("### 1. Launch time of `/bin/true` in the tree")
    w("")
    w("Median wall time per launch, with its ratio to `unshare` + `chroot` and to")
    w("bwrap run by the same user; peak RSS is the largest `%M` of GNU time over a")
    w("few launches (the launcher and what it forks, up to the exec of `/bin/true`).")
    w("")
    for ident, title in (("root", "As root"), ("user", "As the unprivileged user")):
        w("#### %s" % title)
        w("")
        w("| launcher | median | mean ± σ | runs | × unshare+chroot | × bwrap | peak RSS |")
        w("|---|--:|--:|--:|--:|--:|--:|")
        base_u = r.median("t1", "-", "unshare", ident)
        base_b = r.median("t1", "-", "bwrap", ident)
        for lid in r.order:
            row = r.rows.get(("t1", "-", lid, ident))
            if row is None:
                continue
            label = md_escape(r.label(lid, ident))
            if row["status"] != "ok":
                w("| %s | %s | | | | | |" % (label, row["status"] + (": " + md_escape(row["note"]) if row["note"] else "")))
                continue
            h = row["hf"]
            w("| %s | %s | %.2f ± %.2f ms | %d | %s | %s | %s |" % (
                label, ms(h["median"]), h["mean"] * 1000, h["stddev"] * 1000, h["runs"],
                ratio(h["median"], base_u), ratio(h["median"], base_b), mib(row["rss"])))
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

    # ---- table 2
    w("### 2. Launch time against the number of host mounts")
    w("")
    w("As the user. N small tmpfs mounts are added in a private mount namespace")
    w("made for the purpose (`unshare -m --propagation private`, torn down afterwards),")
    w("in which the launchers then run; the chos cache is dropped at each step, so the")
    w("cached view is built from that mount table. In brackets: the ratio to the same")
    w("launcher with no extra mounts.")
    w("")
    t2l = ["chos", "chosfresh", "unshare", "bwrap"]
    w("| extra host mounts | mounts in the table | %s |" % " | ".join(md_escape(r.label(l)) for l in t2l))
    w("|--:|--:|" + "--:|" * len(t2l))
    for n in steps:
        tot = "—"
        for l in t2l:
            row = r.rows.get(("t2", str(n), l, "user"))
            if row and row["status"] == "ok":
                tot = "{:,}".format(int(row["note"].split()[0]))
                break
        cells = []
        for l in t2l:
            cells.append(r.cell("t2", str(n), l, "user", base=r.median("t2", "0", l, "user")))
        w("| %s | %s | %s |" % ("{:,}".format(n), tot, " | ".join(cells)))
    if not steps:
        w("| (not measured) | | | | | |")
    w("")

    # ---- table 3
    w("### 3. 200 launches, 16 at a time")
    w("")
    w("As the user: `seq 200 | xargs -P16 -n1 LAUNCHER... /bin/true`, after one")
    w("warm-up round; the median wall time of %s rounds." % ("the" if quick else "3"))
    w("")
    w("| launcher | wall time | launches per second | × bwrap |")
    w("|---|--:|--:|--:|")
    bw = r.rows.get(("t3", "-", "bwrap", "user"), {}).get("wall")
    for lid in ["host", "chos", "chosfresh", "bwrap", "unshare"]:
        row = r.rows.get(("t3", "-", lid, "user"))
        if row is None:
            continue
        if row["status"] != "ok" or not row.get("wall"):
            w("| %s | %s | | |" % (md_escape(r.label(lid)), row["status"] + (": " + md_escape(row["note"]) if row["note"] else "")))
            continue
        lps = 200 / row["wall"]
        w("| %s | %.3f s | %.0f | %s |" % (md_escape(r.label(lid)), row["wall"], lps,
                                        ("%.2f×" % (bw / row["wall"])) if bw else "—"))
    w("")

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
            w("| %s | %s |" % ("{:,}".format(n), " | ".join(cells)))
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
    out.extend(slurm_section(r, alone=False))

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


SLURM_ROWS = (
    ("srun", "srun -n2 true, no plugin"),
    ("srunplugin", "srun -n2 true, plugin loaded, no tree"),
    ("sruntree", "srun -n2 --chos=bench true (the plugin)"),
    ("srunprefix", "srun -n2 chos exec bench /bin/true (the prefix)"),
)
SLURM_HEAD = "### 6. Slurm job steps"


def slurm_section(r, alone):
    """table 6 (bench/slurm); alone: measured by BENCH_ONLY=slurm, apart from
    the tables above, so it says when and with what"""
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
    w("The plugin asks chos once per step, in slurmstepd (and srun asks it once at")
    w("submit time), and each task enters the cached view; the prefix runs the")
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
        doc = replace_slurm_section(old, slurm_section(r, alone=True))
        with open(args.output + ".tmp", "w") as f:
            f.write(doc)
        os.replace(args.output + ".tmp", args.output)
        print("wrote table 6 into %s" % args.output)
        return
    body = generate(r)

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
