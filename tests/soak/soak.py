#!/usr/bin/env python3
"""Soak: tokentap under a steady mixed load for a fixed time, checked for leaks and accounting.

Drives the real binary ($TOKENTAP_BIN) against the integration tests' fake upstream, replaying
the golden provider recordings: OpenAI chat (JSON and SSE), Anthropic messages (JSON and SSE)
and Gemini generateContent (JSON and SSE), at a fixed request rate from a pool of keep-alive
client connections. 1% of requests are client aborts (the client closes mid-stream) and 1% meet
an upstream error (half a 500 JSON error, half a reset in the middle of a stream).

Pass criteria, all checked here (exit status 1 and a FAIL line otherwise):
  * memory: a least-squares fit of the proxy's VmRSS over the second half of the run (the first
    half is warm-up) grows by less than max(1 MiB, 1 MiB per 10 minutes of that window);
  * file descriptors: once the load has stopped and every client connection is closed, the
    proxy's fds that are not an open connection (per tokentap_open_connections) are no more
    than before the load, plus 2;
  * accounting: every request sent has exactly one access-log line (matched by request id),
    and the sums of llm_requests_total and tokentap_requests_total equal the requests sent;
  * every response is what its request should get (status, complete or visibly truncated);
  * the load kept up (requests sent / elapsed >= 90% of the target rate), and tokentap exits 0
    on SIGTERM with no sanitizer report.
"""

import argparse
import collections
import json
import os
import queue
import random
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
GOLDEN = os.path.join(HERE, "..", "golden")

import fake_upstream  # noqa: E402  pylint: disable=wrong-import-position
from harness import (Client, ConnectionClosed, Proxy, build_request,  # noqa: E402
                     metric_value, proxy_config)

MIB = 1 << 20
ABORT_RATE = 0.01
FAULT_RATE = 0.01


def load_golden(provider, name):
    base = os.path.join(GOLDEN, provider, name)
    with open(base + ".expect.json", encoding="utf-8") as f:
        expect = json.load(f)
    with open(base + ".request.json", "rb") as f:
        request = f.read()
    stream = os.path.exists(base + ".response.sse")
    with open(base + (".response.sse" if stream else ".response.json"), "rb") as f:
        response = f.read()
    return {"name": f"{provider}/{name}", "target": expect["target"], "request": request,
            "stream": stream, "response": response,
            "content_type": expect.get("response_headers", {}).get(
                "content-type", "text/event-stream" if stream else "application/json")}


# (weight, golden recording)
KINDS = [
    (25, ("openai", "chat_nonstream_tool_calls")),
    (25, ("openai", "chat_stream_include_usage")),
    (10, ("anthropic", "messages_nonstream_tool_use")),
    (20, ("anthropic", "messages_stream_text")),
    (10, ("gemini", "generate_content_function_call")),
    (10, ("gemini", "stream_sse")),
]


def split_events(data):
    """SSE bytes -> list of events (each with its blank-line terminator)."""
    events, start = [], 0
    while start < len(data):
        ends = [i for i in (data.find(b"\n\n", start), data.find(b"\r\n\r\n", start)) if i >= 0]
        if not ends:
            events.append(data[start:])
            break
        end = min(ends)
        end += 4 if data.startswith(b"\r\n\r\n", end) else 2
        events.append(data[start:end])
        start = end
    return events


class Upstream:
    """The fake upstream's behaviour: the recording for the path, or a fault on request."""

    def __init__(self, kinds, event_interval):
        self.by_target = {k["target"]: k for k in kinds}
        self.events = {k["target"]: split_events(k["response"]) for k in kinds if k["stream"]}
        self.event_interval = event_interval
        self.server = fake_upstream.FakeUpstream(record_requests=False)
        self.server.default_handler = self.handle

    def handle(self, request, reply):
        kind = self.by_target[request.target]
        fault = request.header("x-soak-fault")
        if fault == "500":
            reply.respond(500, [("Content-Type", "application/json")],
                          b'{"error":{"type":"server_error","message":"soak fault"}}')
            return
        if not kind["stream"]:
            reply.respond(200, [("Content-Type", kind["content_type"])], kind["response"])
            return
        slow = request.header("x-soak-slow") is not None
        reply.start_chunked(200, [("Content-Type", kind["content_type"])])
        for i, event in enumerate(self.events[request.target]):
            if i:
                reply.pause(0.05 if slow else self.event_interval)
            if fault == "reset" and i == 2:
                reply.reset()
                return
            reply.chunk(event)
        reply.end_chunks()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent_ids = []
        self.outcomes = collections.Counter()
        self.unexpected = []
        self.send_failures = 0
        self.max_lag = 0.0

    def add(self, request_id, outcome, problem=None):
        with self.lock:
            self.outcomes[outcome] += 1
            if problem:
                self.unexpected.append(f"{request_id}: {problem}")


class Driver:
    def __init__(self, proxy, kinds, rate, seconds, workers, seed):
        self.proxy = proxy
        self.kinds = kinds
        self.rate = rate
        self.seconds = seconds
        self.jobs = queue.Queue(maxsize=rate * 2)
        self.stats = Stats()
        self.rng = random.Random(seed)
        self.workers = [threading.Thread(target=self.work, args=(i,), daemon=True)
                        for i in range(workers)]
        self.key = "sk-soak-" + "0" * 24

    def run(self):
        for worker in self.workers:
            worker.start()
        weights = [w for w, _ in KINDS]
        start = time.monotonic()
        n = 0
        while True:
            due = start + n / self.rate
            if due - start >= self.seconds:
                break
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                self.stats.max_lag = max(self.stats.max_lag, -delay)
            roll = self.rng.random()
            action = ("abort" if roll < ABORT_RATE else
                      "fault" if roll < ABORT_RATE + FAULT_RATE else "normal")
            kind = self.rng.choices(self.kinds, weights)[0]
            if action == "abort" and not kind["stream"]:
                kind = next(k for k in self.kinds if k["stream"])
            fault = None
            if action == "fault":
                fault = "reset" if kind["stream"] and n % 2 else "500"
            self.jobs.put((n, kind, action, fault))
            n += 1
        for _ in self.workers:
            self.jobs.put(None)
        for worker in self.workers:
            worker.join(60)
        return n

    def work(self, index):
        client = None
        while True:
            job = self.jobs.get()
            if job is None:
                break
            n, kind, action, fault = job
            request_id = f"soak-{n}"
            headers = [("Content-Type", "application/json"),
                       ("Authorization", f"Bearer {self.key}"),
                       ("X-Request-ID", request_id), ("x-agent-id", f"soak-{index % 4}")]
            if fault:
                headers.append(("x-soak-fault", fault))
            if action == "abort":
                headers.append(("x-soak-slow", "1"))
            data = build_request("POST", kind["target"], headers, kind["request"])
            try:
                if client is None:
                    # Not proxy.connect(): that one keeps every response for leak checks.
                    client = Client(self.proxy.address, timeout=30)
                client.send(data)
            except OSError as e:
                with self.stats.lock:
                    self.stats.send_failures += 1
                    self.stats.unexpected.append(f"{request_id}: send failed: {e}")
                client = None
                continue
            with self.stats.lock:
                self.stats.sent_ids.append(request_id)
            client = self.read(client, request_id, kind, action, fault)
        if client:
            client.close()

    def read(self, client, request_id, kind, action, fault):
        """Reads (or abandons) the response; returns the connection if it can be reused."""
        stats = self.stats
        try:
            response = client.read_head("POST")
            if action == "abort":
                pieces = client.body_pieces(response)
                next(pieces, None)
                client.abort()
                stats.add(request_id, "client_abort")
                return None
            client.finish_response(response, allow_truncated=True, keep_body=False)
        except (ConnectionClosed, OSError) as e:
            stats.add(request_id, "error", f"no response: {e}")
            client.close()
            return None
        if fault == "500":
            expected = (response.status == 500 and response.complete)
            stats.add(request_id, "upstream_500", None if expected else
                      f"fault 500: got {response.status} complete={response.complete}")
        elif fault == "reset":
            expected = (response.status == 200 and not response.complete)
            stats.add(request_id, "upstream_reset", None if expected else
                      f"fault reset: got {response.status} complete={response.complete}")
        else:
            expected = response.status == 200 and response.complete
            stats.add(request_id, "ok", None if expected else
                      f"{kind['name']}: got {response.status} complete={response.complete}")
        if not response.complete or (response.header("connection") or "").lower() == "close":
            client.close()
            return None
        return client


def proc_rss(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def proc_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def slope(points):
    """Least-squares slope of [(t, y)] in y per second."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    return sum((t - mean_t) * (y - mean_y) for t, y in points) / var if var else 0.0


class Sampler(threading.Thread):
    def __init__(self, pid, interval):
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.samples = []  # (t, rss, fds)
        self.stop = threading.Event()
        self.start_time = time.monotonic()

    def run(self):
        while not self.stop.is_set():
            self.samples.append((time.monotonic() - self.start_time, proc_rss(self.pid),
                                 proc_fds(self.pid)))
            self.stop.wait(self.interval)


def quiesce(proxy, timeout=30):
    """Waits until nothing is in flight and no client connection is open."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        samples = proxy.metrics()
        if (metric_value(samples, "tokentap_inflight_requests") == 0 and
                metric_value(samples, "tokentap_open_connections", side="downstream") == 0):
            return samples
        time.sleep(0.1)
    raise AssertionError("tokentap did not quiesce")


def unexplained_fds(proxy, samples):
    connections = sum(metric_value(samples, "tokentap_open_connections", side=side) or 0
                      for side in ("downstream", "upstream"))
    return proc_fds(proxy.pid) - int(connections)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1800)
    parser.add_argument("--rate", type=int, default=int(os.environ.get("SOAK_RATE", 200)))
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--event-interval", type=float, default=0.005,
                        help="seconds between SSE events of a stream")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not os.environ.get("TOKENTAP_BIN"):
        sys.exit("set TOKENTAP_BIN to the tokentap binary")

    kinds = [load_golden(*recording) for _, recording in KINDS]
    upstream = Upstream(kinds, args.event_interval)
    tmp = tempfile.mkdtemp(prefix="tokentap-soak-")
    access_log = os.path.join(tmp, "access.log")
    routes = [
        {"name": "anthropic", "prefix": "/v1/messages", "upstream": upstream.server.url(),
         "provider": "anthropic"},
        {"name": "gemini", "prefix": "/v1beta/", "upstream": upstream.server.url(),
         "provider": "gemini"},
        {"name": "openai", "prefix": "/", "upstream": upstream.server.url(),
         "provider": "openai"},
    ]
    config = proxy_config(upstream.server.url(), routes=routes,
                          log={"access": access_log, "level": "info"},
                          timeouts={"idle": "30s", "first_byte": "30s",
                                    "downstream_header": "60s"})
    proxy = Proxy(config, tmp).start()
    failures = []
    try:
        start_samples = quiesce(proxy)
        fds_before = unexplained_fds(proxy, start_samples)
        raw_fds_before = proc_fds(proxy.pid)
        sampler = Sampler(proxy.pid, interval=max(1.0, args.seconds / 240))
        sampler.start()
        driver = Driver(proxy, kinds, args.rate, args.seconds, args.workers, args.seed)
        print(f"soak: {args.seconds:.0f} s at {args.rate} req/s, pid {proxy.pid}", flush=True)
        started = time.monotonic()
        scheduled = driver.run()
        elapsed = time.monotonic() - started
        sampler.stop.set()
        sampler.join()
        end_samples = quiesce(proxy)
        fds_after = unexplained_fds(proxy, end_samples)
        raw_fds_after = proc_fds(proxy.pid)

        stats = driver.stats
        sent = len(stats.sent_ids)
        # Memory: fit over the second half, after warm-up.
        half = args.seconds / 2
        window = [(t, rss) for t, rss, _ in sampler.samples if t >= half]
        rss_slope = slope(window)
        window_seconds = (window[-1][0] - window[0][0]) if len(window) > 1 else 0.0
        growth = rss_slope * window_seconds
        allowed = max(MIB, MIB * window_seconds / 600)
        rss_values = [rss for _, rss, _ in sampler.samples]
        fd_values = [fds for _, _, fds in sampler.samples]

        # Accounting.
        llm_total = metric_value(end_samples, "llm_requests_total") or 0
        proxy_total = metric_value(end_samples, "tokentap_requests_total") or 0
        logged = collections.Counter()
        lines = 0
        error_types = collections.Counter()
        with open(access_log, encoding="utf-8") as f:
            for line in f:
                lines += 1
                entry = json.loads(line)
                logged[entry.get("request_id")] += 1
                error_types[entry.get("error_type")] += 1
        sent_set = set(stats.sent_ids)
        missing = sent_set - set(logged)
        extra = set(logged) - sent_set
        duplicated = [rid for rid, count in logged.items() if count > 1]

        summary = {
            "seconds": round(elapsed, 1), "target_rate": args.rate,
            "achieved_rate": round(sent / elapsed, 1) if elapsed else 0,
            "requests_sent": sent, "scheduled": scheduled, "outcomes": dict(stats.outcomes),
            "access_log_lines": lines, "access_log_error_types": dict(error_types),
            "llm_requests_total": llm_total, "tokentap_requests_total": proxy_total,
            "rss_mib": {"first": round(rss_values[0] / MIB, 2),
                        "last": round(rss_values[-1] / MIB, 2),
                        "max": round(max(rss_values) / MIB, 2)},
            "rss_slope_kib_per_10min": round(rss_slope * 600 / 1024, 1),
            "rss_growth_second_half_kib": round(growth / 1024, 1),
            "rss_growth_allowed_kib": round(allowed / 1024, 1),
            "fds": {"before": raw_fds_before, "after": raw_fds_after,
                    "max_during": max(fd_values), "unexplained_before": fds_before,
                    "unexplained_after": fds_after},
            "max_dispatch_lag_ms": round(stats.max_lag * 1000, 1),
        }
        print(json.dumps(summary, indent=2), flush=True)

        if growth >= allowed:
            failures.append(f"RSS grew {growth / 1024:.0f} KiB over the last "
                            f"{window_seconds:.0f} s (allowed {allowed / 1024:.0f} KiB)")
        if fds_after > fds_before + 2:
            failures.append(f"fds not explained by open connections: {fds_before} before, "
                            f"{fds_after} after")
        if sent != scheduled or stats.send_failures:
            failures.append(f"{scheduled - sent} requests could not be sent")
        if missing or extra or duplicated or lines != sent:
            failures.append(f"access log: {lines} lines for {sent} requests; "
                            f"{len(missing)} missing, {len(extra)} unknown, "
                            f"{len(duplicated)} duplicated (e.g. "
                            f"{sorted(missing)[:3]} {sorted(extra)[:3]} {duplicated[:3]})")
        if llm_total != sent:
            failures.append(f"llm_requests_total sums to {llm_total}, {sent} requests sent")
        if proxy_total != sent:
            failures.append(f"tokentap_requests_total sums to {proxy_total}, {sent} sent")
        if stats.unexpected:
            failures.append(f"{len(stats.unexpected)} unexpected responses, e.g. "
                            f"{stats.unexpected[:5]}")
        if sent < 0.9 * args.rate * elapsed:
            failures.append(f"the load fell behind: {sent} requests in {elapsed:.0f} s, "
                            f"target {args.rate} req/s")
        if upstream.server.errors:
            failures.append(f"fake upstream errors: {upstream.server.errors[:3]}")
    finally:
        code = proxy.stop()
        upstream.server.stop()
        if code != 0:
            failures.append(f"tokentap exited {code}; stderr tail:\n{proxy.stderr_text()[-2000:]}")
        for marker in ("ERROR: AddressSanitizer", "runtime error:"):
            if marker in proxy.stderr_text():
                failures.append("sanitizer report on stderr")
        shutil.rmtree(tmp, True)

    if failures:
        for failure in failures:
            print(f"soak: FAIL: {failure}")
        print("0 passed, 1 failed")
        return 1
    print("soak: PASS")
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
