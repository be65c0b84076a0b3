#!/usr/bin/env python3
"""The report of bench/scale.sh and bench/submit.sh (issue #15's targets): Markdown on stdout and in
REPORT, ready to paste into bench/RESULTS.md.   OUT=/work/bench-cache/scale.tsv bench/scale_report.py

Every figure is the median of the runs unless it says min; a target passes on the median.
"""
import csv
import datetime
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import SCALE_BEGIN, SCALE_END, machine, with_scale_section  # noqa: E402

OUT = os.environ.get("OUT", "/work/bench-cache/scale.tsv")
RESULTS = os.environ.get("RESULTS", "")  # set: the report also replaces its part of this file
REPORT = os.environ.get("REPORT", "/work/bench-cache/scale.md")
MB = 1000 * 1000  # the targets say MB / GB: decimal
KIB = 1024


class Cell:
    """The successful runs of one (metric, N, tool)."""

    def __init__(self, rows):
        ok = [r for r in rows if r["rc"] == "0" and r["note"] in ("-", "")]  # a no-op that did work is out
        self.bad = [r for r in rows if r["rc"] != "0" or r["note"] not in ("-", "")]
        self.n = len(ok)
        self.walls = [float(r["wall_s"]) for r in ok]
        cpu = [float(r["user_s"]) + float(r["sys_s"]) for r in ok if r["user_s"] != "-"]
        rss = [int(r["rss_kib"]) for r in ok if r["rss_kib"] != "-"]
        self.wall = statistics.median(self.walls) if ok else None
        self.min = min(self.walls) if ok else None
        self.cpu = statistics.median(cpu) if cpu else None
        self.rss = statistics.median(rss) if rss else None  # KiB


def num(x, digits=3):
    return "-" if x is None else f"{x:.{digits}f}"


def main():
    cells = {}
    extra = {}  # submit.sh's single figures: metric -> (value, note)
    with open(OUT) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            if r["tool"] == "submit":
                extra[r["metric"]] = r
                continue
            cells.setdefault((r["metric"], int(r["N"]), r["tool"]), []).append(r)
    cells = {k: Cell(v) for k, v in cells.items()}

    def get(metric, n, tool):
        c = cells.get((metric, n, tool))
        return c if c and c.wall is not None else None

    out = []
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out.append(f"## Scale targets (issue #15): `bench/scale.sh`, {now}")
    out.append("")
    out.append(f"- Machine: {machine()}")
    out.append(f"- Load average at start: {os.environ.get('LOAD_START', '?')}, at end: "
               f"{os.environ.get('LOAD_END', '?')}")
    out.append(f"- Versions: {os.environ.get('VERSIONS', '?')}")
    out.append("- Runs alternate between the tools (cpipe, then the peer, then the next round), so load from "
               "other work on the machine falls on both alike.")
    out.append("")
    out.append("| metric | N | tool | runs | median wall s | min wall s | median CPU s | median peak RSS MiB |")
    out.append("|---|---|---|---|---|---|---|---|")
    for (metric, n, tool), c in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] != "cpipe")):
        rss = "-" if c.rss is None else f"{c.rss / KIB:.1f}"
        out.append(f"| {metric} | {n} | {tool} | {c.n} | {num(c.wall)} | {num(c.min)} | {num(c.cpu)} | {rss} |")
    bad = [r for c in cells.values() for r in c.bad]
    if bad:
        out.append("")
        out.append("Runs that failed or did not do what they should (left out of the medians):")
        for r in bad:
            out.append(f"- {r['metric']} N={r['N']} {r['tool']} #{r['rep']}: exit {r['rc']}, {r['note']}")

    lines = []

    def check(name, ok, detail):
        lines.append(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")

    def missing(name):
        lines.append(f"----  {name}: not measured in this run")

    cp, nj, fl = get("noop", 10000, "cpipe"), get("noop", 10000, "ninja"), get("noop", 10000, "floor")
    if cp and nj and fl:
        check("no-op at 10,000 <= 0.5x ninja's no-op", cp.wall <= 0.5 * nj.wall,
              f"cpipe {cp.wall:.3f} s vs ninja {nj.wall:.3f} s (x{cp.wall / nj.wall:.2f}; "
              f"CPU {num(cp.cpu)} s vs {num(nj.cpu)} s)")
        check("no-op at 10,000 <= 1.5x the stat floor", cp.wall <= 1.5 * fl.wall,
              f"cpipe {cp.wall:.3f} s vs one fstatat per file {fl.wall:.3f} s (x{cp.wall / fl.wall:.2f})")
        check("no-op at 10,000: peak memory <= ninja's", cp.rss <= nj.rss,
              f"cpipe {cp.rss / KIB:.1f} MiB vs ninja {nj.rss / KIB:.1f} MiB")
    else:
        missing("no-op at 10,000 against ninja and the stat floor")
    c = get("noop", 100000, "cpipe")
    if c:
        peer = get("noop", 100000, "ninja")
        beside = f"; ninja {peer.wall:.3f} s, {peer.rss * KIB / MB:.0f} MB" if peer else ""
        check("no-op at 100,000 < 1 s and < 250 MB", c.wall < 1 and c.rss * KIB < 250 * MB,
              f"{c.wall:.3f} s, {c.rss * KIB / MB:.0f} MB{beside}")
    else:
        missing("no-op at 100,000 < 1 s and < 250 MB")
    c = get("plan_clean", 1000000, "cpipe")
    if c:
        check("plan on a clean tree at 1,000,000 (3,000,001 jobs) < 20 s and < 2 GB",
              c.wall < 20 and c.rss * KIB < 2000 * MB, f"{c.wall:.2f} s, {c.rss * KIB / MB:.0f} MB")
    else:
        missing("plan on a clean tree at 1,000,000 < 20 s and < 2 GB")
    cp, mk = get("full", 10000, "cpipe"), get("full", 10000, "make")
    if cp and mk:
        check("full -j2 at 10,000 <= 0.8x make -j2", cp.wall <= 0.8 * mk.wall,
              f"cpipe {cp.wall:.2f} s vs make {mk.wall:.2f} s (x{cp.wall / mk.wall:.2f})")
    else:
        missing("full -j2 at 10,000 <= 0.8x make -j2")
    # submit.sh's lines: (metric, name, time limit in s or None); submit.sh decided rc
    for key, name, limit in (
            ("submit_own", "submission of 10,000 subjects (30,001 jobs) to SLURM < 10 s of cpipe's own time", 10),
            ("submit_arrays", "arrays respect MaxArraySize", None),
            ("submit_deps", "per-task dependencies intact", None),
            ("status", "`cpipe status` while it runs: one scheduler query, < 1 s", 1)):
        r = extra.get(key)
        if not r:
            missing(f"{name} (bench/submit.sh)")
        elif limit is None:
            check(name, r["rc"] == "0", r["note"])
        else:
            check(name, r["rc"] == "0" and float(r["wall_s"]) < limit, f"{float(r['wall_s']):.3f} s; {r['note']}")
    out += ["", "```"] + lines + ["```", ""]

    ns = sorted({n for (m, n, t) in cells if t == "cpipe" and m in ("plan_clean", "noop")})
    if ns:
        out.append("Growth with N (cpipe; medians; per subject = the run's CPU time (user + system) or peak RSS / N; "
                   "CPU time is the steadier figure on a shared machine):")
        out.append("")
        out.append("| N | plan clean s | CPU s | CPU µs/subject | MiB | KiB/subject "
                   "| no-op s | CPU s | CPU µs/subject | MiB | KiB/subject |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for n in ns:
            row = [str(n)]
            for metric in ("plan_clean", "noop"):
                c = get(metric, n, "cpipe")
                if c:
                    cpu = "-" if c.cpu is None else f"{c.cpu / n * 1e6:.1f}"
                    row += [num(c.wall), num(c.cpu), cpu, f"{c.rss / KIB:.0f}", f"{c.rss / n:.2f}"]
                else:
                    row += ["-"] * 5
            out.append("| " + " | ".join(row) + " |")
        out.append("")
    text = "\n".join(out)
    print(text)
    with open(REPORT, "w") as f:
        f.write(text + "\n")
    if RESULTS:
        old = open(RESULTS).read() if os.path.exists(RESULTS) else "# cpipe benchmark results\n"
        with open(RESULTS, "w") as f:
            f.write(with_scale_section(old, f"{SCALE_BEGIN}\n{text}\n{SCALE_END}"))
        print(f"(also in {RESULTS}, between the scale.sh markers)")


if __name__ == "__main__":
    main()
