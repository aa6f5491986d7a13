"""Byte-identical output snapshots: the safety net for refactors that must not change behaviour.

One proxy, with one route per provider, replays every golden recording under
tests/golden/<provider>/ (sorted) against the fake upstream: the recorded request is sent to the
recorded target, the upstream answers with the recorded status, headers and body (a .sse body
as one chunk per event). The test then compares, as raw text, with the files in
tests/snapshots/:
  access_log.jsonl  the access-log line of every recording, in recording order;
  metrics.txt       the llm_* and tokentap_* series of one /metrics scrape after the run;
  errors.json       the /v1/errors answer after the run;
  exchanges.txt     per recording, the request head tokentap sent upstream (and its body when
                    tokentap changed it) and the response head (and body, when changed) it
                    sent back to the client.
Only what differs between two runs of the same binary is replaced by a <placeholder>: times,
durations, latencies, addresses and ports, and the sums and bucket counts of time histograms.
Everything else, key order and number formatting included, must stay byte for byte.

Updating: TOKENTAP_UPDATE_SNAPSHOTS=1 ctest --preset default -R integration:test_snapshots
rewrites the files. That is legitimate only when the output change is intended (a new log field,
a fixed value, a new recording) and the diff is reviewed in the same commit. A refactor that is
meant to change nothing must pass without updating.
"""

import difflib
import json
import os
import re
import unittest

from harness import ProxyTestCase, proxy_config

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "golden")
SNAPSHOTS = os.path.join(HERE, "..", "snapshots")
UPDATE = os.environ.get("TOKENTAP_UPDATE_SNAPSHOTS") == "1"
PROVIDERS = ("anthropic", "azure_openai", "gemini", "openai", "openai_compatible")
# A fixed key, so that key_id is the same in every run; it is still checked for leaks.
API_KEY = "sk-snapshot-5e1fd0c0ffee5e1fd0c0ffee5e1fd0c0"
AGENT = "snap"

# Access-log fields whose value depends on the clock or on the client's ephemeral port (the
# upstream's address is replaced wherever it appears, keeping the rest of "upstream").
VOLATILE_LOG_FIELDS = ("time", "duration_ms", "upstream_first_byte_ms", "ttft_ms", "client")
# A tool result's duration_ms (access log tool_results) is the clock between two recordings.
NESTED_DURATION_RE = re.compile(r'"duration_ms":-?[0-9][0-9.eE+-]*')
# /v1/errors fields that depend on the clock.
VOLATILE_ERROR_FIELDS = ("time", "duration_ms", "ttft_ms", "upstream_first_byte_ms", "client")
# Histograms measured in time; their sums and bucket counts vary, their _count does not.
TIME_HISTOGRAM_RE = re.compile(r"(seconds|_ms|duration|latency|ttft)")
# Families whose very presence depends on timing, left out whole: time per output token is
# observed only when a stream's first and last content arrived in different reads, and a slow
# (e.g. ASan) proxy reads the events in fewer, larger pieces.
TIMING_DEPENDENT_SERIES = ("llm_time_per_output_token_seconds",)


def recordings():
    """[(provider, name, base path)] of every golden recording, sorted."""
    found = []
    for provider in PROVIDERS:
        directory = os.path.join(GOLDEN, provider)
        for entry in sorted(os.listdir(directory)):
            if entry.endswith(".request.json"):
                name = entry[:-len(".request.json")]
                found.append((provider, name, os.path.join(directory, name)))
    return found


def read(path):
    with open(path, "rb") as f:
        return f.read()


def replay_handler(status, headers, body, sse):
    """Answers with the recording: JSON with a Content-Length, SSE one chunk per event."""

    def handler(_request, reply):
        if not sse:
            reply.respond(status, headers, body, "length")
            return
        reply.start_chunked(status, headers)
        for event in re.split(rb"(?<=\n\n)", body):
            if event:
                reply.chunk(event)
        reply.end_chunks()

    return handler


def raw_json_value(line, key):
    """The span of the raw text of `"key":value` at the top level of a one-line JSON object."""
    depth = 0
    i = 0
    needle = json.dumps(key) + ":"
    while i < len(line):
        c = line[i]
        if c == '"':
            if depth == 1 and line.startswith(needle, i):
                start = i + len(needle)
                _, end = json.JSONDecoder().raw_decode(line, start)
                return start, end
            i += 1
            while line[i] != '"':
                i += 2 if line[i] == "\\" else 1
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
        i += 1
    return None


def normalise_object_line(line, fields, addresses):
    """Replaces the raw values of the top-level `fields` by placeholders; keeps all other
    bytes. Then replaces the agent's time running a tool (duration_ms inside tool_results,
    the only numeric duration_ms left) and the run's host:port addresses wherever they
    still appear."""
    for key in fields:
        span = raw_json_value(line, key)
        if span:
            line = line[:span[0]] + f'"<{key}>"' + line[span[1]:]
    line = NESTED_DURATION_RE.sub('"duration_ms":"<tool_duration_ms>"', line)
    for address, placeholder in addresses:
        line = line.replace(address, placeholder)
    return line


def normalise_metrics(text, addresses):
    """Keeps llm_* and tokentap_* lines (HELP/TYPE too) but the timing-dependent families,
    with placeholders in time histograms and clock gauges, sorted."""
    kept = []
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            name = line.split(" ", 3)[2]
        elif line and not line.startswith("#"):
            name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
        else:
            continue
        if not name.startswith(("llm_", "tokentap_")) or name.startswith("tokentap_process_"):
            continue
        if name.startswith(TIMING_DEPENDENT_SERIES):
            continue
        if not line.startswith("#"):
            clocked = name.endswith("_timestamp_seconds")
            if clocked or (TIME_HISTOGRAM_RE.search(name) and name.endswith(("_sum", "_bucket"))):
                line = line.rsplit(" ", 1)[0] + " <value>"
        for address, placeholder in addresses:
            line = line.replace(address, placeholder)
        kept.append(line)
    return "\n".join(sorted(kept)) + "\n"


class SnapshotTest(ProxyTestCase):
    def compare(self, snapshots):
        """Compares every {file name: text} with its snapshot; one failure lists all diffs."""
        failures = []
        for name, actual in snapshots.items():
            path = os.path.join(SNAPSHOTS, name)
            if UPDATE:
                os.makedirs(SNAPSHOTS, exist_ok=True)
                with open(path, "w", encoding="utf-8", newline="\n") as f:
                    f.write(actual)
                continue
            if not os.path.exists(path):
                failures.append(f"{path} is missing (TOKENTAP_UPDATE_SNAPSHOTS=1 creates it)")
                continue
            with open(path, encoding="utf-8", newline="") as f:
                expected = f.read()
            if actual != expected:
                failures.append("".join(difflib.unified_diff(
                    expected.splitlines(True), actual.splitlines(True),
                    f"tests/snapshots/{name} (checked in)", f"{name} (this run)")))
        if failures:
            self.fail("output differs from tests/snapshots/ (if the change is intended, rerun "
                      "with TOKENTAP_UPDATE_SNAPSHOTS=1 and review the diff):\n"
                      + "\n".join(failures))

    def test_output_matches_the_snapshots(self):
        upstream = self.start_upstream()
        routes = [{"name": provider, "prefix": f"/{provider}", "strip_prefix": True,
                   "upstream": upstream.url(), "provider": provider}
                  for provider in PROVIDERS]
        proxy = self.start_proxy(proxy_config(upstream.url(), routes=routes))
        proxy.canaries.add(API_KEY)
        addresses = [(f"{proxy.address[0]}:{proxy.address[1]}", "<proxy-address>"),
                     (upstream.authority, "<upstream-address>")]

        lines = []
        exchanges = []
        covered = recordings()
        self.assertGreaterEqual(len(covered), 50, "golden recordings not found")
        for provider, name, base in covered:
            expect = json.loads(read(base + ".expect.json"))
            self.assertEqual(expect["route_provider"], provider, base)
            sse = os.path.exists(base + ".response.sse")
            body = read(base + (".response.sse" if sse else ".response.json"))
            target = expect["target"]
            upstream.handlers[target.split("?", 1)[0]] = replay_handler(
                expect["status"], list(expect.get("response_headers", {}).items()), body, sse)
            request_id = f"snap-{provider}-{name}"
            response = proxy.request(
                "POST", f"/{provider}{target}",
                [("Content-Type", "application/json"), ("x-agent-id", AGENT)],
                read(base + ".request.json"), request_id=request_id, key=API_KEY)
            self.assertEqual(response.status, expect["status"], request_id)
            exchanges.append(describe_exchange(request_id, upstream.requests[-1],
                                               read(base + ".request.json"), response, body,
                                               addresses))
            entry = proxy.log_for(request_id)
            raw = next(line for line in proxy.stdout_text().split("\n")
                       if line.startswith("{") and json.loads(line) == entry)
            lines.append(normalise_object_line(raw, VOLATILE_LOG_FIELDS, addresses))

        # Every request's metrics are recorded by now (its log line is written after them); wait
        # for the proxy to have seen the last client close, so the connection gauge is settled.
        proxy.wait_metric("tokentap_open_connections", 0, side="downstream")
        metrics = proxy.admin_get("/metrics")
        self.assertEqual(metrics.status, 200)
        errors = proxy.admin_get("/v1/errors")
        self.assertEqual(errors.status, 200)
        error_lines = json.loads(errors.body)["errors"]
        raw_errors = errors.body.decode()

        self.compare({
            "access_log.jsonl": "\n".join(lines) + "\n",
            "metrics.txt": normalise_metrics(metrics.body.decode(), addresses),
            "errors.json": normalise_errors(raw_errors, len(error_lines), addresses),
            "exchanges.txt": "\n".join(exchanges),
        })
        print(f"\n{len(covered)} recordings compared", flush=True)


def describe_body(body, original, what):
    """A body that is byte for byte the original is only named; a changed one is shown whole."""
    if body == original:
        return f"<body as {what}, {len(body)} bytes>"
    return body.decode("utf-8", "backslashreplace").rstrip("\n")


def describe_exchange(request_id, forwarded, sent_body, response, recorded_body, addresses):
    """What tokentap put on the wire for one recording, as text with placeholders for the
    upstream's address and the API key."""
    text = [f"== {request_id}", "-- upstream request"]
    text += forwarded.raw_head.decode("latin-1").rstrip("\r\n").split("\r\n")
    text.append(describe_body(forwarded.body, sent_body, "sent"))
    text.append("-- response to the client")
    text += response.raw_head.decode("latin-1").rstrip("\r\n").split("\r\n")
    text.append(describe_body(response.body, recorded_body, "recorded"))
    text.append("")
    result = "\n".join(text).replace(API_KEY, "<api-key>")
    for address, placeholder in addresses:
        result = result.replace(address, placeholder)
    return result


def normalise_errors(raw, count, addresses):
    """The /v1/errors document with one error object per line, volatile values replaced."""
    document = raw.strip()
    prefix, _, _ = document.partition('"errors":[')
    objects = []
    decoder = json.JSONDecoder()
    position = len(prefix) + len('"errors":[')
    for _ in range(count):
        _, end = decoder.raw_decode(document, position)
        objects.append(normalise_object_line(document[position:end], VOLATILE_ERROR_FIELDS,
                                             addresses))
        position = end + 1  # past the comma (or the closing bracket after the last one)
    rest = document[position - 1 if count else position:]
    return prefix + '"errors":[\n' + ",\n".join(objects) + "\n" + rest + "\n"


if __name__ == "__main__":
    unittest.main()
