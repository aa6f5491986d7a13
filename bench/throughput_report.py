#!/usr/bin/env python3
"""Renders what scripts/bench.sh --throughput collected as Markdown and checks it.

Input: one JSON object per line, {"workload", "target", "result"}: wrk runs ("c32": 32
connections, proxies pinned; "scale": workers 1 vs 2, nothing pinned), one per target and round;
"syscalls" (a strace -c summary file over a fixed number of requests); "instr-chat" (callgrind
counts, as bench/report.py --instructions reads them).

--check exits 1 when a number is not sane: a wrk run without requests, with non-2xx answers or
connect/read/write errors; tokentap metering fewer requests than wrk completed (or far more);
an access-log file with fewer lines than requests; a strace summary without reads and writes.
Timings are never checked: on a shared machine they say how busy it was, not whether it works.
"""
import argparse
import json
import statistics
import sys
from collections import defaultdict

import report  # bench/report.py: the arguments and the ending every report shares

MIB = 1024.0
TARGET_ORDER = ["nginx", "tokentap", "tokentap-logfile", "tokentap-jemalloc", "tokentap-mimalloc",
                "nginx-w1", "nginx-w2", "tokentap-w1", "tokentap-w2"]
LABEL = {
    "nginx": "nginx, 1 process",
    "tokentap": "tokentap, access log to /dev/null",
    "tokentap-logfile": "tokentap, access log to a file",
    "tokentap-jemalloc": "tokentap, LD_PRELOAD jemalloc",
    "tokentap-mimalloc": "tokentap, LD_PRELOAD mimalloc",
    "nginx-w1": "nginx, worker_processes 1",
    "nginx-w2": "nginx, worker_processes 2",
    "tokentap-w1": "tokentap, workers: 1",
    "tokentap-w2": "tokentap, workers: 2",
}
# System calls that move request and response bytes, for the per-side summary.
READS = {"read", "readv", "recvfrom", "recvmsg"}
WRITES = {"write", "writev", "sendto", "sendmsg"}


def load(path):
    rows = defaultdict(list)
    for line in open(path, encoding="utf-8"):
        if line.strip():
            row = json.loads(line)
            rows[(row["workload"], row["target"])].append(row["result"])
    return rows


def ordered(targets):
    return sorted(targets, key=lambda t: TARGET_ORDER.index(t) if t in TARGET_ORDER else 99)


def fmt(v, digits=0):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    return None if a is None or not b else a / b


def x(v):
    return "–" if v is None else f"{v:.2f}×"


def median_of(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def per_cpu_s(r):
    return r["requests"] / r["cpu_s"] if r.get("cpu_s") else None


def wrk_table(rows, workload, out, baseline_of, base_label="nginx"):
    targets = ordered({t for (w, t) in rows if w == workload})
    rounds = max((r["round"] for t in targets for r in rows[(workload, t)]), default=0)
    med = {t: median_of(rows[(workload, t)], "rps") for t in targets}
    head = "| target | " + " | ".join(f"round {i} req/s" for i in range(1, rounds + 1))
    out.append(head + f" | median req/s | × {base_label} (median) | × {base_label} (per round) "
               f"| proxy CPUs busy | req per proxy CPU-s | × {base_label} per CPU-s | idle RSS MiB "
               "| peak RSS MiB |")
    out.append("|---|" + "---:|" * (rounds + 8))
    eff_of = {t: statistics.median(per_cpu_s(r) or 0 for r in rows[(workload, t)]) for t in targets}
    for t in targets:
        runs = sorted(rows[(workload, t)], key=lambda r: r["round"])
        base = baseline_of(t)
        base_runs = {r["round"]: r for r in rows.get((workload, base), [])} if base else {}
        per_round = [ratio(r["rps"], base_runs[r["round"]]["rps"]) for r in runs
                     if r["round"] in base_runs]
        cells = [fmt(r["rps"]) for r in runs] + ["–"] * (rounds - len(runs))
        busy = statistics.median(r["cpu_s"] / r["seconds"] for r in runs)
        eff = eff_of[t]
        out.append(f"| {LABEL.get(t, t)} | " + " | ".join(cells) +
                   f" | **{fmt(med[t])}** | {x(ratio(med[t], med.get(base)))} | "
                   f"{', '.join(x(v) for v in per_round) or '–'} | {busy:.2f} | {fmt(eff)} | "
                   f"{x(ratio(eff, eff_of.get(base)))} | "
                   f"{median_of(runs, 'idle_rss_kib') / MIB:.1f} | "
                   f"{median_of(runs, 'peak_rss_kib') / MIB:.1f} |")
    return med


def strace_counts(path):
    """{syscall: calls} from a strace -c summary."""
    counts = {}
    for line in open(path, encoding="utf-8"):
        f = line.split()
        # "% time  seconds  usecs/call  calls  [errors]  syscall", then a "total" row.
        if len(f) in (5, 6) and f[-1] != "total" and f[0].replace(".", "", 1).isdigit():
            counts[f[-1]] = int(f[3])
    return counts


def syscall_table(rows, out):
    per = {}
    for (w, t), runs in rows.items():
        if w == "syscalls":
            r = runs[-1]
            per[t] = {k: v / r["requests"] for k, v in strace_counts(r["strace"]).items()}
    targets = ordered(per)
    if not targets:
        return per
    names = sorted({n for t in targets for n in per[t]},
                   key=lambda n: (-max(per[t].get(n, 0) for t in targets), n))
    out.append("| system call | " + " | ".join(f"{t} per request" for t in targets) + " |")
    out.append("|---|" + "---:|" * len(targets))
    for n in names:
        out.append(f"| `{n}` | " + " | ".join(fmt(per[t].get(n), 2) for t in targets) + " |")
    out.append("| **all** | " + " | ".join(f"**{sum(per[t].values()):.2f}**" for t in targets)
               + " |")
    out.append("| of which reads / writes of bytes | " + " | ".join(
        f"{sum(v for k, v in per[t].items() if k in READS):.2f} / "
        f"{sum(v for k, v in per[t].items() if k in WRITES):.2f}" for t in targets) + " |")
    return per


def allocator_table(rows, c32, workload, out):
    targets = [t for t in ["tokentap", "tokentap-jemalloc", "tokentap-mimalloc"]
               if (workload, t) in rows or ("instr-chat", t) in rows]
    instr = {t: rows[("instr-chat", t)][-1]["instructions"] / rows[("instr-chat", t)][-1]["requests"]
             for t in targets + ["nginx"] if ("instr-chat", t) in rows}
    out.append("| allocator | instructions per chat request | × glibc | × nginx | median req/s "
               "| × glibc | × nginx | req per proxy CPU-s | idle RSS MiB | peak RSS MiB (under load) |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    names = {"tokentap": "glibc malloc", "tokentap-jemalloc": "jemalloc", "tokentap-mimalloc":
             "mimalloc"}
    for t in targets:
        runs = rows.get((workload, t), [])
        eff = statistics.median(per_cpu_s(r) or 0 for r in runs) if runs else None
        idle = median_of(runs, "idle_rss_kib")
        peak = median_of(runs, "peak_rss_kib")
        out.append(f"| {names[t]} | {fmt(instr.get(t))} | {x(ratio(instr.get(t), instr.get('tokentap')))} "
                   f"| {x(ratio(instr.get(t), instr.get('nginx')))} | {fmt(c32.get(t))} "
                   f"| {x(ratio(c32.get(t), c32.get('tokentap')))} | {x(ratio(c32.get(t), c32.get('nginx')))} "
                   f"| {fmt(eff)} | {'–' if idle is None else f'{idle / MIB:.1f}'} "
                   f"| {'–' if peak is None else f'{peak / MIB:.1f}'} |")
    if "nginx" in instr:
        out.append("")
        out.append(f"nginx under the same count: {fmt(instr['nginx'])} instructions per request.")


def check(rows, syscalls):
    problems = []
    for (w, t), runs in rows.items():
        for r in runs:
            where = f"{w} {t} round {r.get('round')}"
            if "rps" in r:
                if not r["requests"] or not r["rps"]:
                    problems.append(f"{where}: no requests completed")
                if r["non2xx"]:
                    problems.append(f"{where}: {r['non2xx']} non-2xx answers")
                errs = {k: int(v) for k, v in (p.split() for p in r["socket_errors"].split(", ")
                                                if p)} if r["socket_errors"] else {}
                if any(errs.get(k, 0) for k in ("connect", "read", "write")):
                    problems.append(f"{where}: socket errors {r['socket_errors']}")
                if t.startswith("tokentap") and not (
                        r["requests"] <= r["metered"] <= r["requests"] + 4 * r["connections"]):
                    problems.append(f"{where}: metered {r['metered']} requests, wrk completed "
                                    f"{r['requests']}")
                if "log_lines" in r and r["log_lines"] < r["requests"]:
                    problems.append(f"{where}: {r['log_lines']} access-log lines for "
                                    f"{r['requests']} requests")
            if w == "syscalls" and r["load"].get("errors"):
                problems.append(f"{where}: {r['load']['errors']} requests failed")
            if w.startswith("instr-") and not r.get("instructions"):
                problems.append(f"{where}: no instructions counted")
    for t, per in syscalls.items():
        if not sum(v for k, v in per.items() if k in READS) or \
                not sum(v for k, v in per.items() if k in WRITES):
            problems.append(f"syscalls {t}: strace saw no reads or writes")
    return problems


def main():
    ap = argparse.ArgumentParser()
    report.add_run_args(ap)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", default="5")
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    rows = load(args.results)

    out = ["# Throughput against nginx, workers, system calls, allocators (issue 16)", "",
           "Written by `bash scripts/bench.sh --throughput` (bench/README.md, \"Throughput against "
           "nginx\").", "",
           f"- commit: {args.commit}; build: {args.build}",
           f"- machine: {args.machine}",
           f"- upstream: {args.chat_upstream}, the 1,008-byte chat completion with usage; request: "
           "the ~1 KiB chat POST", ""]
    out += [f"- {n}" for n in args.note]

    out += ["", f"## Closed loop, {args.connections} connections (`wrk -t1 -c{args.connections}`, "
            f"{args.seconds} s per run, {args.rounds} rounds, proxy on CPU 0, wrk and upstream on "
            "CPU 1)", ""]
    vs_nginx = lambda t: "nginx" if t != "nginx" else None  # noqa: E731
    main_runs = wrk_table(rows, f"c{args.connections}", out, vs_nginx)
    out += ["", "\"proxy CPUs busy\" is the proxy's CPU time over the run's length (schedstat, "
            "kernel included); at 1.00 the proxy's CPU was the limit. Below that, wrk and the "
            "upstream on the other CPU (or other work on the machine) were, and req/s says little "
            "about the proxy: compare requests per proxy CPU-second instead."]
    if args.connections != 64 and any(w == "c64" for (w, _) in rows):
        out += ["", "## The same on 64 connections (`wrk -t1 -c64`, the default bench's saturation "
                "run), for comparison", ""]
        wrk_table(rows, "c64", out, vs_nginx)

    if any(w == "scale" for (w, _) in rows):
        out += ["", f"## Workers 1 vs 2 (`wrk -t2 -c{args.connections}`, nothing pinned: proxy, "
                "wrk and upstream share both CPUs)", ""]
        scale = wrk_table(rows, "scale", out,
                          lambda t: t.rsplit("-", 1)[0] + "-w1" if t.endswith("-w2") else None,
                          "1 worker")
        lines = []
        for w in ("w1", "w2"):
            a, b = scale.get(f"tokentap-{w}"), scale.get(f"nginx-{w}")
            if a and b:
                lines.append(f"- {w[1]} worker(s): tokentap {fmt(a)} req/s, nginx {fmt(b)}: "
                             f"tokentap at {x(a / b)} nginx")
        out += [""] + lines if lines else []

    out += ["", "## System calls per request (`strace -f -c`, one keep-alive connection)", ""]
    syscalls = syscall_table(rows, out)
    sys_rows = [r for (w, _), runs in rows.items() if w == "syscalls" for r in runs]
    if sys_rows:
        out += ["", f"{sys_rows[0]['requests']:,} requests, closed loop on one connection, after "
                "an untraced warm-up; every thread of the proxy traced, the load generator and "
                "the upstream not. One read and one write per side is 2 / 2 per request."]

    if any(w == "instr-chat" or t.startswith("tokentap-") and t[9:] in ("jemalloc", "mimalloc")
           for (w, t) in rows):
        out += ["", "## Allocators (LD_PRELOAD; tokentap's link is unchanged)", ""]
        allocator_table(rows, main_runs, f"c{args.connections}", out)
        out += ["", "Instructions: callgrind, 1,000 chat requests on one connection after 200 of "
                "warm-up (the `--instructions` method). Callgrind does not replace malloc, so the "
                "preloaded allocator is what it counts. req/s and RSS: the 32-connection rounds "
                "above; peak RSS is VmHWM after the run."]

    return report.finish(out, check(rows, syscalls) if args.check else [], args,
                         "bench: throughput runs completed with sane numbers")


if __name__ == "__main__":
    sys.exit(main())
