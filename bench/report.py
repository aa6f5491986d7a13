#!/usr/bin/env python3
"""Renders the results of scripts/bench.sh as Markdown and checks them.

Input: one JSON object per line, {"workload", "target", "result"}, where result is what
bench_load printed (or the saturation / memory / correctness figures bench.sh collected).
--check exits 1 when a run had errors, unfinished requests, dropped events, streams that never
opened, or metering that disagrees with what the upstream served. Targets from issue 6 are
reported as met or missed, never as a failure: benchmarks are not pass/fail.

--instructions renders what scripts/bench.sh --instructions collected instead: instructions per
proxied request (callgrind) per workload and target, the ratio to nginx, the wall-clock figures
of the same workloads, and tokentap's functions by self cost from the callgrind dumps.
"""
import argparse
import json
import os
import re
import sys
from collections import defaultdict

MIB = 1024.0


def load(path):
    runs = {}
    for line in open(path, encoding="utf-8"):
        if line.strip():
            row = json.loads(line)
            runs[(row["workload"], row["target"])] = row["result"]
    return runs


def fmt(v, digits=1):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}"


def delta(a, b):
    return None if a is None or b is None else a - b


def signed(v):
    return "–" if v is None else f"{v:+,.1f}"


def targets_in(runs):
    order = ["direct", "nginx", "tokentap", "portkey"]
    present = {t for (_, t) in runs}
    return [t for t in order if t in present]


def chat_table(runs, targets, out):
    out.append("| workload | target | req/s | p50 µs | p99 µs | p99.9 µs | added p50 | added p99 "
               "| added p99.9 | proxy CPU | req per proxy CPU-s | peak RSS MiB |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    names = sorted({w for (w, _) in runs if w.startswith("chat-") or w.startswith("large-")},
                   key=lambda w: (w.startswith("large"), "-rate-" in w,
                                  int(w.rsplit("-", 1)[1]) if "-rate-" in w else w))
    for w in names:
        base = runs.get((w, "direct"), {}).get("latency", {})
        for t in targets:
            r = runs.get((w, t))
            if r is None:
                continue
            lat = r["latency"]
            added = [delta(lat.get(k), base.get(k)) if t != "direct" else None
                     for k in ("p50_us", "p99_us", "p999_us")]
            cpu = f"{100 * r['cpu_util']:.0f}%" if "cpu_util" in r else "–"
            rss = fmt(r["rss_peak_kib"] / MIB) if "rss_peak_kib" in r else "–"
            out.append(f"| {w} | {t} | {fmt(r['achieved_rps'], 0)} | {fmt(lat['p50_us'])} | "
                       f"{fmt(lat['p99_us'])} | {fmt(lat['p999_us'])} | {signed(added[0])} | "
                       f"{signed(added[1])} | {signed(added[2])} | {cpu} | "
                       f"{fmt(r.get('req_per_cpu_s'), 0) if 'req_per_cpu_s' in r else '–'} | {rss} |")


def saturation_table(runs, targets, out):
    out.append("| target | req/s (wrk -t1 -c64) | non-2xx | proxy CPU-s | req per proxy CPU-s |")
    out.append("|---|---:|---:|---:|---:|")
    for t in targets:
        r = runs.get(("saturation", t))
        if r is None:
            continue
        per = r["requests"] / r["cpu_s"] if r["cpu_s"] > 0 else None
        out.append(f"| {t} | {fmt(float(r['rps']), 0)} | {r['non2xx']} | "
                   f"{fmt(r['cpu_s'], 2) if t != 'direct' else '–'} | "
                   f"{fmt(per, 0) if t != 'direct' else '–'} |")


def stream_table(runs, targets, out):
    out.append("| workload | target | streams done | TTFB p50 µs | TTFB p99 µs | added TTFB p99 "
               "| delivery p50 µs | delivery p99 µs | added delivery p99 | gap p99 µs "
               "| added gap p99 | dropped | merged | errors |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    names = sorted({w for (w, _) in runs if w.startswith("stream-")})
    for w in names:
        base = runs.get((w, "direct"))
        for t in targets:
            r = runs.get((w, t))
            if r is None:
                continue
            add = lambda k, p: (signed(delta(r[k][p], base[k][p]))
                                if base is not None and t != "direct" else "–")
            out.append(f"| {w} | {t} | {r['completed']} | {fmt(r['ttfb']['p50_us'])} | "
                       f"{fmt(r['ttfb']['p99_us'])} | {add('ttfb', 'p99_us')} | "
                       f"{fmt(r['delivery']['p50_us'])} | {fmt(r['delivery']['p99_us'])} | "
                       f"{add('delivery', 'p99_us')} | {fmt(r['gap']['p99_us'])} | "
                       f"{add('gap', 'p99_us')} | {r['dropped_events']} | {r['merged_events']} | "
                       f"{r['errors'] + r['unfinished']} |")


def memory_table(runs, targets, out):
    out.append("| target | idle (fresh) | peak under chat load (5k req/s or highest rate) | "
               + " | ".join(f"{w[5:]} open streams" for w in hold_names(runs)) + " |")
    out.append("|---|---:|---:|" + "---:|" * len(hold_names(runs)))
    load_w = max((w for (w, _) in runs if w.startswith("chat-rate-")),
                 key=lambda w: int(w.rsplit("-", 1)[1]), default=None)
    for t in targets:
        if t == "direct":
            continue
        idle = runs.get(("memory", "tokentap-fresh" if t == "tokentap" else t), {})
        if not idle:
            idle = runs.get(("memory", t), {})
        under = runs.get((load_w, t), {}).get("rss_peak_kib")
        cells = [fmt(idle.get("idle_rss_kib", 0) / MIB), fmt(under / MIB) if under else "–"]
        for w in hold_names(runs):
            r = runs.get((w, t))
            cells.append("–" if r is None else
                         f"{fmt(r['rss_all_open_kib'] / MIB)} ({r['streams_open']} open)")
        out.append(f"| {t} | " + " | ".join(c + " MiB" if c[0].isdigit() else c
                                              for c in cells) + " |")


def hold_names(runs):
    return sorted({w for (w, _) in runs if w.startswith("hold-")},
                  key=lambda w: int(w.split("-")[1]))


def check(runs):
    problems = []
    for (w, t), r in runs.items():
        if t == "portkey":
            continue  # someone else's gateway: its numbers are reported, not checked
        if w.startswith(("chat-", "large-", "stream-")):
            if r.get("errors") or r.get("unfinished"):
                problems.append(f"{w} {t}: {r['errors']} errors, {r['unfinished']} unfinished")
            if r.get("completed", 0) == 0:
                problems.append(f"{w} {t}: nothing completed")
            if r.get("dropped_events"):
                problems.append(f"{w} {t}: {r['dropped_events']} dropped events")
        if w.startswith("hold-"):
            n = int(w.split("-")[1])
            if r["streams_open"] != n:
                problems.append(f"{w} {t}: only {r['streams_open']} of {n} streams opened")
        if w == "saturation" and int(r.get("non2xx", 0)) > 0:
            problems.append(f"saturation {t}: {r['non2xx']} non-2xx responses")
    c = runs.get(("correctness", "tokentap"))
    if c is None:
        problems.append("correctness: not run")
    else:
        for what in ("requests", "input_tokens", "output_tokens"):
            if c[f"metered_{what}"] != c[f"served_{what}"]:
                problems.append(f"correctness: metered {what} {c[f'metered_{what}']} != "
                                f"served {c[f'served_{what}']}")
        if c["served_requests"] != c["client_requests"]:
            problems.append(f"correctness: upstream served {c['served_requests']} requests, "
                            f"clients made {c['client_requests']}")
    return problems


def target_lines(runs):
    lines = []

    def get(w, t, *path):
        r = runs.get((w, t))
        for p in path:
            if r is None:
                return None
            r = r.get(p)
        return r

    def verdict(ok):
        return "–" if ok is None else ("met" if ok else "**missed**")

    d = get("chat-c1", "tokentap", "latency", "p99_us")
    b = get("chat-c1", "direct", "latency", "p99_us")
    added = delta(d, b)
    lines.append(("added p99 at concurrency 1 ≤ 100 µs (proxy on its own CPU)", signed(added),
                  verdict(None if added is None else added <= 100)))
    added = delta(get("chat-c1-samecpu", "tokentap", "latency", "p99_us"),
                  get("chat-c1-samecpu", "direct", "latency", "p99_us"))
    lines.append(("added p99 at concurrency 1 ≤ 100 µs (all on one CPU)", signed(added),
                  verdict(None if added is None else added <= 100)))
    w = "stream-20x50ms"
    added = delta(get(w, "tokentap", "ttfb", "p99_us"), get(w, "direct", "ttfb", "p99_us"))
    lines.append(("added TTFB p99 ≤ 200 µs (20 × 50 ms)", signed(added),
                  verdict(None if added is None else added <= 200)))
    added = delta(get(w, "tokentap", "delivery", "p99_us"), get(w, "direct", "delivery", "p99_us"))
    lines.append(("added per-event latency p99 ≤ 5 µs (20 × 50 ms)", signed(added),
                  verdict(None if added is None else added <= 5)))
    s = runs.get(("saturation", "tokentap"))
    per = s["requests"] / s["cpu_s"] if s and s["cpu_s"] > 0 else None
    lines.append(("≥ 30,000 requests per proxy CPU-second (saturation)", fmt(per, 0),
                  verdict(None if per is None else per >= 30000)))
    n = runs.get(("saturation", "nginx"))
    if s and n:
        lines.append(("saturation throughput ≥ nginx", f"{fmt(float(s['rps']), 0)} vs "
                      f"{fmt(float(n['rps']), 0)} req/s",
                      verdict(float(s["rps"]) >= float(n["rps"]))))
    idle = get("memory", "tokentap-fresh", "idle_rss_kib")
    lines.append(("idle RSS ≤ 8 MiB", "–" if idle is None else f"{idle / MIB:.1f} MiB",
                  verdict(None if idle is None else idle <= 8 * MIB)))
    r500 = get("hold-500", "tokentap", "rss_all_open_kib")
    lines.append(("RSS ≤ 20 MiB with 500 open streams",
                  "–" if r500 is None else f"{r500 / MIB:.1f} MiB",
                  verdict(None if r500 is None else r500 <= 20 * MIB)))
    w = "stream-500x20x50ms"
    r = runs.get((w, "tokentap"))
    if r:
        ok = r["dropped_events"] == 0 and r["errors"] == 0 and r["delivery"]["p99_us"] < 50_000
        lines.append(("500 concurrent streams on one core, no stalls",
                      f"delivery p99 {fmt(r['delivery']['p99_us'])} µs, max "
                      f"{fmt(r['delivery']['max_us'])} µs, {r['merged_events']} merged, "
                      f"{r['dropped_events']} dropped", verdict(ok)))
    return lines


INSTR_WORKLOADS = [
    ("chat", "Non-streaming chat completion, ~1 KiB each way"),
    ("sse", "Streaming chat completion, {events} SSE events, usage at the end"),
    ("large", "64 KiB JSON request body, non-streaming ~1 KiB response"),
]
INSTR_TARGETS = ["nginx", "tokentap", "tokentap-logfile", "tokentap-trace-1",
                 "tokentap-trace-0.1"]
INSTR_TARGET_NAMES = {
    "nginx": "nginx",
    "tokentap": "tokentap (access log to /dev/null)",
    "tokentap-logfile": "tokentap (access log to a file)",
    "tokentap-trace-1": "tokentap, tracing at sample_ratio 1.0",
    "tokentap-trace-0.1": "tokentap, tracing at sample_ratio 0.1",
}
TRACING_TARGETS = ["tokentap", "tokentap-trace-1", "tokentap-trace-0.1"]


def callgrind_self_costs(path):
    """Self cost (Ir) per function in a callgrind dump: cost lines, except the one after each
    calls= line (that is the inclusive cost of the call). Returns ({(object, file, fn): Ir},
    total)."""
    names = {"ob": {}, "fl": {}, "fn": {}}
    kind_of = {"ob": "ob", "cob": "ob", "fl": "fl", "fi": "fl", "fe": "fl", "cfi": "fl",
               "cfl": "fl", "fn": "fn", "cfn": "fn"}
    cur = {"ob": "", "fl": "", "fn": ""}
    costs = defaultdict(int)
    total = 0
    skip_next = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line or line[0] == "#" or line == "\n":
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                if len(parts) >= 2 and not skip_next:
                    costs[(cur["ob"], cur["fl"], cur["fn"])] += int(parts[1])
                skip_next = False
                continue
            if line.startswith("summary:"):
                total = int(line.split()[1])
                continue
            key, _, value = line.rstrip("\n").partition("=")
            if key == "calls":
                skip_next = True
                continue
            kind = kind_of.get(key)
            if kind is None:
                continue
            m = re.match(r"\((\d+)\)(?: (.*))?$", value)
            if m:
                if m.group(2) is not None:
                    names[kind][m.group(1)] = m.group(2)
                name = names[kind].get(m.group(1), "?")
            else:
                name = value
            if key in ("ob", "fl", "fn"):
                cur[key] = name
            # fi/fe (inlined code) keep the function; cob/cfi/cfn only name a call's target.
    return costs, total


def short_function(name):
    """A C++ name without template arguments, parameters, clone suffixes or ABI namespaces."""
    name = re.sub(r"'\d+$", "", name)
    name = re.sub(r" \[clone [^\]]*\]", "", name).replace("(anonymous namespace)::", "")
    out, depth = [], 0
    for ch in name:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    name = "".join(out) or name
    name = re.sub(r"json_abi_v\d+_\d+_\d+::", "", name)
    name = name.replace("std::__cxx11::", "std::")
    return name.strip()


MALLOC_FUNCTIONS = {"malloc", "free", "_int_malloc", "_int_free", "realloc", "_int_realloc",
                    "calloc", "malloc_consolidate", "unlink_chunk", "cfree", "tcache_get",
                    "operator new", "operator delete", "_int_free_merge_chunk",
                    "_int_free_create_chunk", "_int_free_maybe_consolidate"}


def top_functions(path, n):
    costs, total = callgrind_self_costs(path)
    merged = defaultdict(int)
    where = {}
    for (ob, fl, fn), ir in costs.items():
        key = short_function(fn)
        merged[key] += ir
        where.setdefault(key, os.path.basename(ob) or os.path.basename(fl))
    top = sorted(merged.items(), key=lambda kv: -kv[1])[:n]
    alloc = sum(ir for fn, ir in merged.items()
                if fn in MALLOC_FUNCTIONS or fn.startswith(("operator new", "operator delete")))
    return top, where, total, alloc


def instructions_report(args, runs, out):
    events = args.events_per_stream
    targets = [t for t in INSTR_TARGETS if ("instr-chat", t) in runs]
    out += ["# Instructions per proxied request", "",
            f"Produced by `bash scripts/bench.sh {'--tracing' if args.tracing else '--instructions'}` "
            f"on commit {args.commit} "
            f"({args.build} build). Machine: {args.machine}. Chat upstream: {args.chat_upstream}; "
            "streaming upstream: `bench_upstream`.", "",
            "Instructions: each proxy alone under `valgrind --tool=callgrind` on CPU 0, one "
            "keep-alive connection, closed loop (`bench_load --requests`): W warm-up requests, "
            "a callgrind dump, M requests, a dump; per request = the second dump's instruction "
            "count (all threads, everything the process executed meanwhile) / M, i.e. (total "
            "after W + M − total after W) / M. tokentap: one worker, full default metering; "
            "nginx: `master_process off; worker_processes 1;`, `proxy_pass` with upstream "
            "keep-alive, `proxy_buffering off`, access log off. Callgrind counts user-space "
            "instructions only: the kernel's work for the proxy's system calls (about the same "
            "for both proxies: a read and a write each way per request, per event when "
            "streaming) is not in the count.", "",
            "Wall-clock: the same proxies without valgrind, the same workload on one connection, "
            "closed loop, proxy on CPU 0 and load on CPU 1, for the usual duration; proxy CPU is "
            "its threads' run time (`schedstat`, kernel included) per request. These columns "
            "move by 2x between runs on a shared VM; the instruction counts do not.", ""]
    for n in args.note:
        out += [f"Note: {n}", ""]
    if args.tracing:
        tracing_table(runs, out)
    for w, title in INSTR_WORKLOADS:
        rows = [(t, runs.get((f"instr-{w}", t)), runs.get((f"wall-{w}", t))) for t in targets]
        if not any(r for _, r, _ in rows):
            continue
        first = next(r for _, r, _ in rows if r)
        out += [f"## {title.format(events=events)}", "",
                f"W = {first['warmup']}, M = {first['requests']} "
                f"{'streams' if w == 'sse' else 'requests'}."
                + (" Counted in lockstep (`bench_upstream --lockstep`: the upstream sends each "
                   "event once the client has the previous one, so each reaches the proxy in a "
                   "read of its own); the wall-clock columns pace the same events 1 ms apart."
                   if w == "sse" else ""), ""]
        base = runs.get((f"instr-{w}", "nginx"))
        base_per = base["instructions"] / base["requests"] if base else None
        if w == "sse":
            out.append("| target | instructions / stream | per event | × nginx | proxy CPU µs / "
                       "stream | streams/s | TTFB p50 µs | delivery p50 µs | delivery p99 µs |")
            out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        else:
            out.append("| target | instructions / request | × nginx | proxy CPU µs / request "
                       "| req/s | p50 µs | p99 µs |")
            out.append("|---|---:|---:|---:|---:|---:|---:|")
        for t, r, wall in rows:
            if r is None:
                continue
            per = r["instructions"] / r["requests"]
            ratio = f"{per / base_per:.2f}" if base_per else "–"
            cpu = (fmt(1e6 * wall["cpu_s"] / wall["completed"])
                   if wall and wall.get("completed") and "cpu_s" in wall else "–")
            rps = fmt(wall["achieved_rps"], 1 if w == "sse" else 0) if wall else "–"
            cells = [INSTR_TARGET_NAMES[t], fmt(round(per))]
            if w == "sse":
                cells.append(fmt(round(per / events)))
            cells += [ratio, cpu, rps]
            if w == "sse":
                cells += [fmt(wall["ttfb"]["p50_us"]) if wall else "–",
                          fmt(wall["delivery"]["p50_us"]) if wall else "–",
                          fmt(wall["delivery"]["p99_us"]) if wall else "–"]
            else:
                cells += [fmt(wall["latency"]["p50_us"]) if wall else "–",
                          fmt(wall["latency"]["p99_us"]) if wall else "–"]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    profiled = "tokentap" if "tokentap" in targets else "tokentap-logfile"
    out += ["## Where tokentap's instructions go (self cost, callgrind)", "",
            f"From the measured dump of each workload ({INSTR_TARGET_NAMES[profiled]}); inlined "
            "code is charged to the function it was inlined into. `malloc/free` sums every "
            "allocator entry point.", ""]
    for w, title in INSTR_WORKLOADS:
        r = runs.get((f"instr-{w}", profiled))
        if r is None or not os.path.exists(r["profile"]):
            continue
        top, where, total, alloc = top_functions(r["profile"], args.top)
        out += [f"### {title.format(events=events)}", "",
                f"{fmt(total)} instructions over {r['requests']} "
                f"{'streams' if w == 'sse' else 'requests'}; malloc/free together "
                f"{100 * alloc / total:.1f}%.", "",
                "| % | instructions / " + ("stream" if w == "sse" else "request") +
                " | function | object |", "|---:|---:|---|---|"]
        for fn, ir in top:
            out.append(f"| {100 * ir / total:.1f} | {fmt(round(ir / r['requests']))} | "
                       f"`{fn}` | {where[fn]} |")
        out.append("")


def tracing_table(runs, out):
    """`--tracing`: the chat workload with tracing off, at 1.0 and at 0.1, side by side."""
    off = runs.get(("instr-chat", "tokentap"))
    off_wall = runs.get(("wall-chat", "tokentap"))
    if off is None:
        return
    off_per = off["instructions"] / off["requests"]
    out += ["## What tracing costs (chat workload)", "",
            "tokentap with tracing off, and on at `sample_ratio` 1.0 and 0.1, exporting "
            "http/protobuf to a local OTLP sink (`bench/otlp_sink.py`, answers 200 at once). "
            "Before each callgrind dump the bench waits until the sink has been quiet for 2.5 s, "
            "so a dump holds the export of its own requests' spans (the exporter thread's "
            "encoding, batching and POSTs are in the count). Spans: what the sink received for "
            "the M measured requests.", "",
            "| tracing | spans / requests | instructions / request | vs off | "
            "proxy CPU µs / request | req/s (wall) | req/s vs off |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for t in TRACING_TARGETS:
        r = runs.get(("instr-chat", t))
        if r is None:
            continue
        wall = runs.get(("wall-chat", t))
        per = r["instructions"] / r["requests"]
        name = {"tokentap": "off", "tokentap-trace-1": "on, sample_ratio 1.0",
                "tokentap-trace-0.1": "on, sample_ratio 0.1"}[t]
        cpu = (fmt(1e6 * wall["cpu_s"] / wall["completed"])
               if wall and wall.get("completed") and "cpu_s" in wall else "–")
        rps = fmt(wall["achieved_rps"], 0) if wall else "–"
        rps_ratio = (f"{wall['achieved_rps'] / off_wall['achieved_rps']:.2f}"
                     if wall and off_wall and off_wall.get("achieved_rps") else "–")
        out.append(f"| {name} | {r.get('spans', 0)} / {r['requests']} | {fmt(round(per))} | "
                   f"{signed(100 * (per - off_per) / off_per)}% | {cpu} | {rps} | {rps_ratio} |")
    out.append("")


def check_tracing(runs):
    """Spans of the measured requests: none with tracing off, all at 1.0, fewer at 0.1."""
    problems = []
    for t, expect in (("tokentap", "none"), ("tokentap-trace-1", "all"),
                      ("tokentap-trace-0.1", "fewer")):
        r = runs.get(("instr-chat", t))
        if r is None:
            problems.append(f"tracing: no chat count for {t}")
            continue
        spans, n = r.get("spans"), r["requests"]
        ok = {"none": spans == 0, "all": spans == n, "fewer": spans is not None and spans < n}
        if not ok[expect]:
            problems.append(f"tracing: {t} exported {spans} spans for {n} requests "
                            f"(expected {expect})")
    return problems


def check_instructions(runs):
    problems = []
    for (w, t), r in runs.items():
        if w.startswith("instr-"):
            load = r["load"]
            if load["completed"] != r["requests"] or load["errors"] or load.get("dropped_events"):
                problems.append(f"{w} {t}: {load['completed']} of {r['requests']} completed, "
                                f"{load['errors']} errors, {load.get('dropped_events', 0)} dropped")
            if r["instructions"] <= 0:
                problems.append(f"{w} {t}: no instructions counted")
        if w.startswith("wall-"):
            if r.get("errors") or r.get("unfinished") or r.get("dropped_events"):
                problems.append(f"{w} {t}: {r['errors']} errors, {r['unfinished']} unfinished, "
                                f"{r.get('dropped_events', 0)} dropped")
            if r.get("completed", 0) == 0:
                problems.append(f"{w} {t}: nothing completed")
        if w == "access-log" and r["lines"] != r["requests"]:
            problems.append(f"access log of {t}: {r['lines']} lines for {r['requests']} requests")
    if not any(w.startswith("instr-") for (w, _) in runs):
        problems.append("instructions: nothing counted")
    return problems


def add_run_args(ap):
    """The arguments scripts/bench.sh gives every report (report_args) plus --check/--write;
    bench/throughput_report.py shares them."""
    ap.add_argument("--results", required=True)
    ap.add_argument("--machine", default="")
    ap.add_argument("--commit", default="")
    ap.add_argument("--build", default="")
    ap.add_argument("--chat-upstream", default="")
    ap.add_argument("--note", action="append", default=[])
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--write")


def main():
    ap = argparse.ArgumentParser()
    add_run_args(ap)
    ap.add_argument("--instructions", action="store_true")
    ap.add_argument("--tracing", action="store_true")
    ap.add_argument("--events-per-stream", type=int, default=200)
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args()
    runs = load(args.results)
    if args.instructions:
        out = []
        instructions_report(args, runs, out)
        problems = check_instructions(runs) if args.check else []
        if args.check and args.tracing:
            problems += check_tracing(runs)
        return finish(out, problems, args, "bench: every request counted and answered")
    targets = targets_in(runs)

    out = ["# Proxy benchmark results", "",
           f"Produced by `bash scripts/bench.sh` on commit {args.commit} ({args.build} build). "
           f"Machine: {args.machine}. Proxies pinned to CPU 0; load generator and upstreams to "
           f"CPU 1. Chat upstream: {args.chat_upstream}; streaming upstream: `bench_upstream`. "
           "tokentap: one worker, full metering, access log written to /dev/null (formatted and "
           "written, not stored). nginx: one worker, `proxy_pass` with upstream keep-alive, "
           "`proxy_buffering off`. portkey: `@portkey-ai/gateway` (Node.js, headless, "
           "`NODE_ENV=production`), told the upstream by `x-portkey-provider` / "
           "`x-portkey-custom-host` headers. Added = the same percentile through the proxy minus "
           "direct, from the same run.", ""]
    for n in args.note:
        out += [f"Note: {n}", ""]
    out += ["## Against the targets", "", "| target | measured | |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in target_lines(runs)]
    out += ["", "## 1 and 3. Non-streaming chat (~1 KiB) and 256 KiB requests", "",
            "`chat-c1`/`large-c1`: one connection, closed loop; `chat-c1-samecpu`: the same with the "
            "proxy moved onto the load's CPU. `chat-rate-R`: open loop at R "
            "req/s on up to 64 connections, latency from each request's intended send time.", ""]
    chat_table(runs, targets, out)
    out += ["", "## 1. Saturation (closed loop, wrk)", ""]
    saturation_table(runs, targets, out)
    out += ["", "## 2. Streaming", "",
            "TTFB: request sent to first content event. Delivery: event received minus the "
            "upstream's timestamp in it. Gap: time between consecutive events at the client. "
            "Merged: paced events that arrived in one read with their predecessor.", ""]
    stream_table(runs, targets, out)
    out += ["", "## 4. Memory (VmRSS)", "",
            "Open streams: `--hold` keeps N streams open (one event per second) on a freshly "
            "started proxy, N ascending in one process; RSS sampled when all N have their first "
            "event.", ""]
    memory_table(runs, targets, out)
    c = runs.get(("correctness", "tokentap"))
    if c:
        out += ["", "## 5. Metering correctness under load", "",
                "1,000 req/s non-streaming plus 50 concurrent streams through tokentap to "
                "`bench_upstream`; deltas of tokentap's counters against the upstream's "
                "`/stats`.", "",
                "| | clients | upstream served | tokentap metered |", "|---|---:|---:|---:|",
                f"| requests | {c['client_requests']} | {c['served_requests']} | "
                f"{c['metered_requests']} (`llm_requests_total`) |",
                f"| input tokens | | {c['served_input_tokens']} | {c['metered_input_tokens']} |",
                f"| output tokens | | {c['served_output_tokens']} | "
                f"{c['metered_output_tokens']} |"]
    return finish(out, check(runs) if args.check else [], args,
                  "bench: all workloads ran; metering matched the upstream")


def finish(out, problems, args, ok_message):
    if problems:
        out += ["", "## Problems", ""] + [f"- {p}" for p in problems]
    text = "\n".join(out) + "\n"
    print(text)
    if args.write:
        with open(args.write, "w", encoding="utf-8") as f:
            f.write(text)
    if problems:
        print("bench: FAILED: " + "; ".join(problems), file=sys.stderr)
        return 1
    print(ok_message, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
