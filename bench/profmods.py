#!/usr/bin/env python3
"""Group a profile of cpipe by module (used by bench/profile.sh; python3 standard library only).

    profmods.py callgrind FILE SRC_DIR     a callgrind.out file (--dump-instr=no)
    profmods.py perf FILE SRC_DIR          the text of `perf script -F ip,sym,dso` (with call chains)

Modules: walk (glob.c: the directory walk, readdir, stat), match (libpcre2), graph (graph.c,
tree.c, template.c: jobs, edges, template filling), state (state*.c, decide.c, libsqlite3,
libxxhash), exec (exec.c), recipe (recipe.c, libcyaml/libyaml), cli (src/cli other than
decide.c). Cost in shared code (libc, the kernel, util.c, the dynamic loader) goes to the module
that called it: in a callgrind profile in proportion to each caller's inclusive call cost, in a
perf profile to the nearest classified frame of each sample's call chain.
"""
import os
import re
import sys
from collections import defaultdict

MODULE_OF_FILE = {
    "glob.c": "walk", "graph.c": "graph", "tree.c": "graph", "template.c": "graph",
    "state.c": "state", "decide.c": "state", "exec.c": "exec", "recipe.c": "recipe",
    "state_schema.c": "state", "state_files.c": "state", "state_reason.c": "state",
    "state_record.c": "state", "state_check.c": "state", "state_list.c": "state",
}
TRANSPARENT = None  # marker: attribute to the caller


def source_map(src):
    """function name -> source file basename, from the definitions in src/**/*.c"""
    m = {}
    pat = re.compile(r"^(?:static\s+)?(?:inline\s+)?[A-Za-z_][\w \*]*?\b(\w+)\s*\([^;]*$")
    for root, _, files in os.walk(os.path.join(src, "src")):
        for f in files:
            if not f.endswith(".c"):
                continue
            rel = os.path.relpath(os.path.join(root, f), os.path.join(src, "src"))
            for line in open(os.path.join(root, f), errors="replace"):
                if line[:1].isspace() or line.startswith(("#", "/", "}", "{")):
                    continue
                mm = pat.match(line)
                if mm and mm.group(1) not in ("if", "while", "for", "switch", "return", "sizeof"):
                    m.setdefault(mm.group(1), rel)
    return m


def classify(name, fname, obj, srcmap):
    obj = obj or ""
    if "libpcre2" in obj:
        return "match"
    if "libsqlite3" in obj or "libxxhash" in obj:
        return "state"
    if "libcyaml" in obj or "libyaml" in obj:
        return "recipe"
    base = name.split("'")[0]  # callgrind's recursion suffixes: f'2
    rel = None
    if fname and fname not in ("???",) and "/src/" in "/" + fname.replace("\\", "/"):
        rel = fname.split("/src/")[-1]
    if rel is None and base in srcmap and ("cpipe" in os.path.basename(obj) or obj in ("", "inlined")):
        rel = srcmap[base]
    if rel is None:
        return TRANSPARENT
    b = os.path.basename(rel)
    if b == "util.c":
        return TRANSPARENT
    if b in MODULE_OF_FILE:
        return MODULE_OF_FILE[b]
    if rel.startswith("cli/"):
        return "cli"
    return "other"


def parse_callgrind(path):
    names = {"fn": {}, "fl": {}, "ob": {}}
    kind_of = {"fn": "fn", "cfn": "fn", "fl": "fl", "fi": "fl", "fe": "fl", "cfi": "fl", "cfl": "fl",
               "ob": "ob", "cob": "ob"}

    def name(kind, val):
        val = val.strip()
        mm = re.match(r"\((\d+)\)\s*(.*)", val)
        if not mm:
            return val
        ns = names[kind_of[kind]]
        if mm.group(2):
            ns[mm.group(1)] = mm.group(2)
        return ns.get(mm.group(1), "?")

    self_cost = defaultdict(int)
    calls = defaultdict(int)  # (caller, callee) -> inclusive cost of the calls
    info = {}  # fn key -> (name, file, obj)
    ob = fl = cur_file = None
    fn = None
    cob = cfl = cfn = None
    pending_call = False
    for line in open(path, errors="replace"):
        if not line or line[0] == "\n":
            continue
        c0 = line[0]
        if c0.isdigit() or c0 in "+-*":
            parts = line.split()
            cost = int(parts[1]) if len(parts) > 1 else 0
            if pending_call:
                callee = (cob or ob, cfn)
                if callee not in info:
                    info[callee] = (cfn, cfl or cur_file, cob or ob)
                calls[(fn, callee)] += cost
                pending_call = False
                cob = cfl = None
            elif fn is not None:
                self_cost[fn] += cost
            continue
        key, _, val = line.partition("=")
        if key == "ob":
            ob = name("ob", val)
        elif key == "fl":
            fl = cur_file = name("fl", val)
        elif key in ("fi", "fe"):
            cur_file = name(key, val)
        elif key == "fn":
            n = name("fn", val)
            fn = (ob, n)
            cur_file = fl
            if fn not in info or info[fn][1] in (None, "???"):
                info[fn] = (n, fl, ob)
        elif key == "cob":
            cob = name("cob", val)
        elif key in ("cfi", "cfl"):
            cfl = name(key, val)
        elif key == "cfn":
            cfn = name("cfn", val)
        elif key == "calls":
            pending_call = True
    return self_cost, calls, info


def report_callgrind(path, src):
    srcmap = source_map(src)
    self_cost, calls, info = parse_callgrind(path)
    mod = {f: classify(*info.get(f, (f[1], None, f[0])), srcmap) for f in set(self_cost) | set(info)}
    callers = defaultdict(list)
    for (a, b), c in calls.items():
        if a != b and c > 0:
            callers[b].append((a, c))
    memo = {}

    def upward(f, visiting):
        """module fractions for cost spent in transparent function f"""
        if f in memo:
            return memo[f]
        cs = callers.get(f, [])
        total = sum(c for _, c in cs)
        if not total or f in visiting:
            return {"other": 1.0}
        visiting.add(f)
        d = defaultdict(float)
        for a, c in cs:
            w = c / total
            m = mod.get(a)
            if m is TRANSPARENT:
                for k, v in upward(a, visiting).items():
                    d[k] += w * v
            else:
                d[m] += w
        visiting.discard(f)
        memo[f] = dict(d)
        return memo[f]

    per_mod = defaultdict(float)
    for f, s in self_cost.items():
        m = mod.get(f)
        if m is TRANSPARENT:
            for k, v in upward(f, set()).items():
                per_mod[k] += s * v
        else:
            per_mod[m] += s
    total = sum(self_cost.values()) or 1
    print(f"total instructions (Ir): {total:,}")
    print("by module (shared code charged to its callers):")
    for k, v in sorted(per_mod.items(), key=lambda kv: -kv[1]):
        print(f"  {k:8s} {100 * v / total:5.1f}%  {int(v):>15,}")
    print("top functions by self cost:")
    for f, s in sorted(self_cost.items(), key=lambda kv: -kv[1])[:18]:
        n, fl, ob = info.get(f, (f[1], None, f[0]))
        m = mod.get(f)
        where = os.path.basename(fl) if fl and fl != "???" else os.path.basename(ob or "?")
        print(f"  {100 * s / total:5.1f}%  {n}  [{where}; {m or 'shared'}]")
    incl = defaultdict(int)
    for f, s in self_cost.items():
        incl[f] += s
    for (a, b), c in calls.items():
        if a != b:
            incl[a] += c
    print("top cpipe functions by inclusive cost:")
    shown = 0
    for f, s in sorted(incl.items(), key=lambda kv: -kv[1]):
        n, fl, ob = info.get(f, (f[1], None, f[0]))
        if "cpipe" not in os.path.basename(ob or "") or n in ("main", "(below main)"):
            continue
        m = mod.get(f)
        print(f"  {100 * s / total:5.1f}%  {n}  [{m or 'util'}]")
        shown += 1
        if shown >= 18:
            break


def report_perf(path, src):
    srcmap = source_map(src)
    per_mod = defaultdict(int)
    leaf = defaultdict(int)
    samples = 0
    frames = []
    frame_re = re.compile(r"^\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")

    def flush():
        nonlocal samples
        if not frames:
            return
        samples += 1
        m_found = None
        for sym, dso in frames:
            m = classify(sym, None, dso, srcmap)
            if m is not TRANSPARENT:
                m_found = m
                break
        per_mod[m_found or "other"] += 1
        sym, dso = frames[0]
        leaf[(sym, os.path.basename(dso))] += 1
        frames.clear()

    for line in open(path, errors="replace"):
        if not line.strip():
            flush()
            continue
        mm = frame_re.match(line)
        if mm:
            sym = re.sub(r"\+0x[0-9a-f]+$", "", mm.group(1))
            frames.append((sym, mm.group(2)))
        else:
            flush()
    flush()
    if not samples:
        print("no samples")
        return
    print(f"samples (cpu-clock, user+kernel): {samples}")
    print("by module (libc/kernel/util time charged to the nearest cpipe frame):")
    for k, v in sorted(per_mod.items(), key=lambda kv: -kv[1]):
        print(f"  {k:8s} {100 * v / samples:5.1f}%")
    print("top leaf functions:")
    for (sym, dso), v in sorted(leaf.items(), key=lambda kv: -kv[1])[:15]:
        print(f"  {100 * v / samples:5.1f}%  {sym}  [{dso}]")


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("callgrind", "perf"):
        sys.exit(__doc__)
    if sys.argv[1] == "callgrind":
        report_callgrind(sys.argv[2], sys.argv[3])
    else:
        report_perf(sys.argv[2], sys.argv[3])


if __name__ == "__main__":
    main()
