#!/usr/bin/env python3
"""Aggregate bench/run.sh's single runs (runs.tsv) into medians, ratios and target checks; print
them and write RESULTS.md. Called by run.sh with its settings in the environment; can be rerun by
hand:  RUNS=/tmp/cpipe-bench/runs.tsv bench/report.py
"""
import csv
import datetime
import glob
import os
import platform
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = os.environ.get("RUNS", "/tmp/cpipe-bench/runs.tsv")
RESULTS = os.environ.get("RESULTS", os.path.join(HERE, "RESULTS.md"))
TIMEOUT = os.environ.get("TIMEOUT", "600")
BIG_N = int(os.environ.get("BIG_N", "250000"))
PEERS = ["cpipe", "make", "ninja", "snakemake"]
METRICS = [("dry", "dry run s"), ("full_j1", "full -j1 s"), ("full_j2", "full -j2 s"), ("noop", "no-op s"),
           ("dry_uptodate", "dry on up-to-date s"), ("touch1", "touch-1 s (jobs)"),
           ("modify1", "modify-1 s (jobs)")]
MB = 1000 * 1000  # targets say MB / GB: decimal
KIB = 1024


def load():
    rows = []
    with open(RUNS) as f:
        for r in csv.DictReader(f, delimiter="\t"):
            r["N"] = int(r["N"])
            rows.append(r)
    return rows


class Cell:
    """The runs of one (N, peer, metric)."""

    def __init__(self, runs):
        self.runs = runs
        ok = [r for r in runs if r["rc"] == "0" and r["wall_s"] not in ("-", "")]
        self.n = len(ok)
        self.walls = [float(r["wall_s"]) for r in ok]
        self.median = statistics.median(self.walls) if ok else None
        rss = [int(r["rss_kib"]) for r in runs if r["rss_kib"] not in ("-", "")]
        self.rss = statistics.median(rss) if rss else None
        jobs = []
        for r in runs:
            if r["jobs"] not in ("-", "") and r["jobs"] not in jobs:
                jobs.append(r["jobs"])
        self.jobs = "/".join(jobs)
        self.timeout = any(r["note"] == "timeout" for r in runs)
        self.failed = [r for r in runs if r["note"] == "failed"]
        self.skipped = [r["note"] for r in runs if r["note"].startswith("skipped")]
        self.notes = sorted({r["note"] for r in runs if r["note"] not in ("-", "", "timeout", "failed")})

    def text(self, with_jobs=False):
        if self.timeout:
            return f">{TIMEOUT}"
        if self.failed and self.median is None:
            return "FAILED rc=" + self.failed[0]["rc"]
        if self.median is None:
            return "skipped" if self.skipped else "-"
        s = fmt(self.median)
        if self.n == 1:
            s += " (n=1)"
        if with_jobs and self.jobs:
            s += f" ({self.jobs})"
        return s


def fmt(x):
    if x is None:
        return "-"
    if x < 10:
        return f"{x:.3f}"
    if x < 100:
        return f"{x:.2f}"
    return f"{x:.1f}"


# bench/scale_report.py's part of RESULTS.md, between these lines; each report keeps the other's part
SCALE_BEGIN = "<!-- scale.sh: begin -->"
SCALE_END = "<!-- scale.sh: end -->"


def scale_section(text):
    """The scale part of a RESULTS.md text, markers included, or ''."""
    a, b = text.find(SCALE_BEGIN), text.find(SCALE_END)
    return text[a:b + len(SCALE_END)] if a >= 0 and b > a else ""


def with_scale_section(text, section):
    """`text` with its scale part replaced by `section` (placed before the first ## heading if it had none)."""
    old = scale_section(text)
    if old:
        return text.replace(old, section)
    at = text.find("\n## ")
    if at < 0:
        return text.rstrip("\n") + "\n\n" + section + "\n"
    return text[:at + 1] + section + "\n\n" + text[at + 1:]


def mib(kib):
    return "-" if kib is None else f"{kib / KIB:.0f}"


def machine():
    model = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / KIB / KIB:.1f} GiB"
    except OSError:
        pass
    osname = "?"
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                osname = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return (f"nproc {os.cpu_count()}, {mem} RAM, CPU: {model}, kernel {platform.release()}, {osname}")


def main():
    rows = load()
    cells = {}
    for r in rows:
        cells.setdefault((r["N"], r["peer"], r["metric"]), []).append(r)
    # adopt: only the first run adopts; any later one is a no-op
    for k in cells:
        if k[2] == "adopt":
            cells[k] = [r for r in cells[k] if r["rep"] == "1"]
    C = {k: Cell(v) for k, v in cells.items()}
    sizes = sorted({r["N"] for r in rows})
    main_sizes = [n for n in sizes if not (n == BIG_N and all(k[1] == "cpipe" and k[2] == "dry"
                                                              for k in C if k[0] == n))]

    def get(n, peer, metric):
        return C.get((n, peer, metric))

    def med(n, peer, metric):
        c = get(n, peer, metric)
        return c.median if c else None

    out = []
    p = out.append
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    p("# cpipe benchmark results\n")
    p(f"Generated by `bench/run.sh` on {today}, total {os.environ.get('TOTAL', '?')} s.\n")
    p(f"- Machine: {machine()}")
    p(f"- Load average (1/5/15 min) at start: {os.environ.get('LOAD_START', '?')}, at end: "
      f"{os.environ.get('LOAD_END', '?')} (other work on the machine makes the timings noisier)")
    p(f"- Versions: {os.environ.get('VERSIONS', '?')}")
    p(f"- Settings: REPEATS={os.environ.get('REPEATS')} (median; n=1 where the first run took over "
      f"SLOW={os.environ.get('SLOW')} s), TIMEOUT={TIMEOUT} s, FULL_MAX_N={os.environ.get('FULL_MAX_N')}, "
      f"FULL_J1={os.environ.get('FULL_J1')} up to FULL_J1_MAX_N={os.environ.get('FULL_J1_MAX_N')}, "
      f"PEER_INCR_MAX_N={os.environ.get('PEER_INCR_MAX_N')}, SNAKE_MAX_N={os.environ.get('SNAKE_MAX_N')}, "
      f"SNAKE_FULL_MAX_N={os.environ.get('SNAKE_FULL_MAX_N')}")
    p("- Workload: `bench/gen_study.py`: N subjects, 3 chained `cp` steps each and one group step "
      "(`printf '%s\\n' sub-*/T1w_brain.nii.gz > group_brains.txt`), 3N+1 jobs; same pipeline for every tool.\n")
    p("## Medians (wall seconds; jobs = outputs rewritten; RSS = peak of the largest process)\n")
    head = ["N", "peer"] + [m[1] for m in METRICS] + ["RSS MiB dry / full-j1 / no-op"]
    p("| " + " | ".join(head) + " |")
    p("|" + "---|" * len(head))
    for n in main_sizes:
        for peer in PEERS:
            if not any(k[0] == n and k[1] == peer for k in C):
                continue
            cols = [str(n), peer]
            for m, _ in METRICS:
                c = get(n, peer, m)
                cols.append(c.text(with_jobs=m in ("touch1", "modify1")) if c else "-")
            rss = [get(n, peer, m) for m in ("dry", "full_j1", "noop")]
            cols.append(" / ".join(mib(c.rss) if c else "-" for c in rss))
            p("| " + " | ".join(cols) + " |")
    p("")
    p("## cpipe / peer ratios of the medians (below 1: cpipe is faster)\n")
    head = ["N", "peer"] + [m[1].replace(" s (jobs)", "").replace(" s", "") for m in METRICS]
    p("| " + " | ".join(head) + " |")
    p("|" + "---|" * len(head))
    for n in main_sizes:
        for peer in PEERS[1:]:
            cols = [str(n), peer]
            any_ratio = False
            for m, _ in METRICS:
                a, b = med(n, "cpipe", m), med(n, peer, m)
                if a is not None and b:
                    cols.append(f"{a / b:.2f}")
                    any_ratio = True
                else:
                    cols.append("-")
            if any_ratio:
                p("| " + " | ".join(cols) + " |")
    p("")

    p("## cpipe only\n")
    p("| N | adopt (first run over prebuilt outputs) s | own CPU no-op s | own CPU plan up-to-date s | "
      "own CPU full -j2 s (per job ms) | own CPU modify-1 s | 4 modify-1 jobs alone s |")
    p("|---|---|---|---|---|---|---|")
    for n in main_sizes:
        if not any(k[0] == n and k[1] == "cpipe" for k in C):
            continue
        jobs = 3 * n + 1
        ofj = med(n, "cpipe", "own_full_j2")
        cols = [str(n), get(n, "cpipe", "adopt").text() if get(n, "cpipe", "adopt") else "-",
                fmt(med(n, "cpipe", "own_noop")), fmt(med(n, "cpipe", "own_dry_uptodate")),
                f"{fmt(ofj)} ({ofj / jobs * 1000:.3f})" if ofj is not None else "-",
                fmt(med(n, "cpipe", "own_modify1")), fmt(med(n, "cpipe", "jobcost_modify1"))]
        p("| " + " | ".join(cols) + " |")
    p("")
    p("Own CPU = user+sys of the cpipe process alone, measured in one extra run under "
      "`perf stat --no-inherit -e task-clock` (the jobs, which are child processes, are not counted; "
      "GNU time's %U/%S would include every waited-for child). '-' = not measured (no full run at that N, or perf unavailable).\n")

    # ------------------------------------------------------------ targets
    lines = []

    def check(name, ok, detail):
        if ok is None:
            lines.append(f"N/A   {name}: {detail}")
        else:
            lines.append(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")

    n10 = 10000
    nin = med(n10, "ninja", "noop")
    for m, label in (("noop", "no-op"), ("dry", "dry run (plan, clean tree)")):
        c = med(n10, "cpipe", m)
        if c is None:
            check(f"{label} at 10,000 <= ninja no-op and < 0.2 s", None, "not measured")
        else:
            ok = c < 0.2 and (nin is None or c <= nin)
            check(f"{label} at 10,000 <= ninja no-op and < 0.2 s", ok,
                  f"cpipe {fmt(c)} s vs ninja no-op {fmt(nin)} s" + ("" if nin is not None else " (ninja not measured)"))
    c = get(100000, "cpipe", "noop")
    if c and c.median is not None:
        check("no-op at 100,000 < 2 s and < 500 MB", c.median < 2 and c.rss is not None and c.rss * KIB < 500 * MB,
              f"{fmt(c.median)} s, {c.rss * KIB / MB:.0f} MB" if c.rss else f"{fmt(c.median)} s")
    else:
        check("no-op at 100,000 < 2 s and < 500 MB", None, "not measured")
    c = get(BIG_N, "cpipe", "dry")
    if c and c.median is not None:
        check(f"plan at {BIG_N:,} ({3 * BIG_N + 1:,} jobs) < 30 s and < 2 GB",
              c.median < 30 and c.rss is not None and c.rss * KIB < 2000 * MB,
              f"{fmt(c.median)} s, {c.rss * KIB / MB:.0f} MB")
    else:
        check(f"plan at {BIG_N:,} < 30 s and < 2 GB", None, "not measured (run with --big)")
    mod, jc, own = med(n10, "cpipe", "modify1"), med(n10, "cpipe", "jobcost_modify1"), med(n10, "cpipe", "own_modify1")
    if mod is not None and jc is not None:
        check("modify-1 at 10,000: cpipe's own time (wall - the 4 jobs) < 0.3 s", mod - jc < 0.3,
              f"wall {fmt(mod)} s - jobs {fmt(jc)} s = {fmt(mod - jc)} s; own CPU {fmt(own)} s; "
              f"make {fmt(med(n10, 'make', 'modify1'))} s, ninja {fmt(med(n10, 'ninja', 'modify1'))} s")
    else:
        check("modify-1 at 10,000 < 0.3 s of cpipe's own time", None, "not measured")
    cj, mj, ofj = med(n10, "cpipe", "full_j2"), med(n10, "make", "full_j2"), med(n10, "cpipe", "own_full_j2")
    jobs = 3 * n10 + 1
    if cj is not None and mj is not None:
        check("full -j2 at 10,000 (30,001 jobs) no slower than make -j2", cj <= mj,
              f"cpipe {fmt(cj)} s vs make {fmt(mj)} s: (cpipe - make)/job = {(cj - mj) / jobs * 1000:+.3f} ms")
    else:
        check("full -j2 at 10,000 no slower than make -j2", None, "not measured")
    if ofj is not None:
        check("full -j2 at 10,000: cpipe's own CPU per job < 1 ms", ofj / jobs * 1000 < 1,
              f"{ofj / jobs * 1000:.3f} ms/job ({fmt(ofj)} s own CPU for {jobs} jobs; includes the parent's "
              f"side of posix_spawn)")
    else:
        check("full -j2 at 10,000: own CPU per job < 1 ms", None, "not measured")
    pu = med(n10, "cpipe", "dry_uptodate")
    if pu is not None:
        check("core loop: plan on an up-to-date study at 10,000 < 0.3 s", pu < 0.3,
              f"cpipe plan {fmt(pu)} s; beside make -n {fmt(med(n10, 'make', 'dry_uptodate'))} s "
              f"(clean tree {fmt(med(n10, 'make', 'dry'))} s), ninja -n {fmt(med(n10, 'ninja', 'dry_uptodate'))} s")
    else:
        check("core loop: plan up-to-date at 10,000 < 0.3 s", None, "not measured")
    if ofj is not None:
        check("core loop: run -j2 at 10,000 spends < 2 ms of its own per job", ofj / jobs * 1000 < 2,
              f"{ofj / jobs * 1000:.3f} ms/job own CPU; wall/job cpipe {cj / jobs * 1000:.3f} ms, "
              f"make -j2 {mj / jobs * 1000:.3f} ms" if cj and mj else f"{ofj / jobs * 1000:.3f} ms/job")
    else:
        check("core loop: run -j2 own time per job < 2 ms", None, "not measured")
    p("## Targets\n")
    p("```")
    out.extend(lines)
    p("```\n")

    # ------------------------------------------------------------ linearity
    p("## Growth of cpipe's planning with N\n")
    p("| N | no-op s | µs/subject | dry (clean) s | µs/subject | plan up-to-date s | µs/subject | no-op RSS MiB |")
    p("|---|---|---|---|---|---|---|---|")
    for n in sizes:
        cols = [str(n)]
        for m in ("noop", "dry", "dry_uptodate"):
            v = med(n, "cpipe", m)
            cols += [fmt(v), f"{v / n * 1e6:.1f}" if v is not None else "-"]
        c = get(n, "cpipe", "noop")
        cols.append(mib(c.rss) if c else "-")
        p("| " + " | ".join(cols) + " |")
    p("")
    grow = []
    for a, b in zip(sizes, sizes[1:]):
        for m in ("noop", "dry"):
            x, y = med(a, "cpipe", m), med(b, "cpipe", m)
            if x and y:
                grow.append(f"{m} {a}->{b}: x{y / x:.1f} for x{b / a:.3g} subjects")
    if grow:
        p("Growth: " + "; ".join(grow) + ".\n")

    # ------------------------------------------------------------ phases
    phase_names = []
    for (n, peer, m) in C:
        if peer == "cpipe" and m.startswith("phase_") and m[6:] not in phase_names:
            phase_names.append(m[6:])
    order = ["parse", "glob", "graph", "state_wait", "sync", "stat", "decide", "run", "release"]
    phase_names.sort(key=lambda x: order.index(x) if x in order else len(order))
    if phase_names:
        p("## Where a no-op's time goes\n")
        p("Medians of `CPIPE_TIMINGS=1 cpipe run -j2` on the up-to-date study (wall ms per phase; the state "
          "database opens and stats the recorded files in a second thread during glob and graph, so "
          "`state wait` is only the part of that thread the main thread waited for).\n")
        p("| N | " + " | ".join(phase_names) + " | sum ms | µs/subject |")
        p("|---|" + "---|" * (len(phase_names) + 2))
        for n in sizes:
            vals = [med(n, "cpipe", "phase_" + ph) for ph in phase_names]
            if all(v is None for v in vals):
                continue
            total = sum(v for v in vals if v is not None)
            p("| " + " | ".join([str(n)] + [f"{v * 1000:.1f}" if v is not None else "-" for v in vals]
                               + [f"{total * 1000:.1f}", f"{total / n * 1e6:.1f}"]) + " |")
        p("")

    # ------------------------------------------------------------ skipped / failed
    notes = []
    for (n, peer, m), c in sorted(C.items()):
        for r in c.failed:
            notes.append(f"- N={n} {peer} {m} run {r['rep']}: FAILED (exit {r['rc']}); logs in BENCH_DIR/logs/{n}-{peer}-{m}.*")
        for s in sorted(set(c.skipped)):
            notes.append(f"- N={n} {peer} {m}: {s}")
        if m == "prebuilt":
            notes.append(f"- N={n} {peer}: no full run; outputs prebuilt by gen_study.py --prebuild")
    p("## Skipped, prebuilt, failed\n")
    p("- Full runs only up to FULL_MAX_N; above it the outputs are written by `gen_study.py --prebuild` "
      "(cpipe then adopts them in one timed `adopt` run, make and snakemake work from mtimes, ninja gets the "
      ".ninja_log it would have written: output mtimes and MurmurHash64A command hashes, checked against a real "
      "ninja build; without a log entry ninja reruns an edge).")
    p("- make/ninja/snakemake touch-1, modify-1 and dry-on-up-to-date only up to PEER_INCR_MAX_N; snakemake full "
      "runs only up to SNAKE_FULL_MAX_N (the peers baseline: >600 s at N=10000), snakemake not at all above "
      "SNAKE_MAX_N.")
    out.extend(notes)
    p("")
    p("## Method\n")
    p("- Each single run: `timeout -k 10 TIMEOUT /usr/bin/time -f '%e %M' CMD` in the study directory, output "
      "to log files. Wall time is taken with bash's $EPOCHREALTIME around it (µs resolution; includes about "
      "1-2 ms to start timeout and time); RSS is GNU time's %M (peak RSS of the largest process, KiB).")
    p("- Commands: cpipe `plan` / `run -j1` / `run -j2` (no-op, touch-1, modify-1 also `run -j2`); "
      "make `-n` / `-j1` / `-j2`; ninja `-n` / `-j1` / `-j2`; snakemake `-n -q --cores 1` / `-q --cores 1` / "
      "`-q --cores 2`. The page cache is warm (each run follows another on the same tree).")
    p("- dry = plan on a clean tree (all jobs pending); full = from a clean tree (outputs and .cpipe, "
      ".ninja_log, .snakemake removed before each run); dry on up-to-date = the same dry command after a "
      "complete build; touch-1 = `touch` subject 000001's input; modify-1 = rewrite it with new random bytes; "
      "jobs = outputs whose mtime is newer than a stamp taken just before the run (cpipe's own `N done` is "
      "kept in runs.tsv as a cross-check).")
    p("- cpipe's own time in modify-1: the median wall of the run minus the median time of the 4 rerun jobs "
      "executed alone, serially, each as `/bin/sh script` (a little more than cpipe pays: it executes the 3 `cp` jobs without a shell) (3 `cp` and the group "
      "`printf`, outputs to a scratch directory). The 4 jobs form a chain, so cpipe runs them one after "
      "another too. Also shown: cpipe's own CPU (perf stat --no-inherit), which excludes the jobs entirely.")
    p("- Per-job overhead of a full run: cpipe's own CPU (perf, children excluded) / jobs; and "
      "(cpipe wall - make wall) / jobs. make and cpipe exec a plain command such as `cp 'a' 'b'` "
      "directly; ninja runs each job through /bin/sh, one extra exec per job.\n")

    findings = os.path.join(HERE, "FINDINGS.md")
    if os.path.exists(findings):  # hand-written reading of the numbers, kept across reruns
        p(open(findings).read().rstrip() + "\n")

    profs = sorted(glob.glob(os.path.join(HERE, "profile-*.txt")))
    if profs:
        p("## Profiles (bench/profile.sh)\n")
        for f in profs:
            p(f"### {os.path.basename(f)}\n")
            p("```")
            p(open(f).read().rstrip())
            p("```\n")

    p("## Raw runs (runs.tsv)\n")
    p("```")
    p(open(RUNS).read().rstrip())
    p("```")
    text = "\n".join(out) + "\n"
    if os.path.exists(RESULTS):
        kept = scale_section(open(RESULTS).read())
        if kept:
            text = with_scale_section(text, kept)
    with open(RESULTS, "w") as f:
        f.write(text)
    # stdout: everything but the raw runs and the method
    cut = text.find("## Skipped")
    sys.stdout.write(text[:cut])
    print(f"(written to {RESULTS})")


if __name__ == "__main__":
    main()
