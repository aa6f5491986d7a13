"""Traces: the real binary exports one OpenTelemetry span per LLM request over OTLP/HTTP to a
receiver in this test, which decodes every body with the official opentelemetry-proto
definitions (tests/e2e/otlp_decode.mjs, protobufjs); the trace continues the client's
traceparent and goes on to the upstream; sampling keeps every failure; a dead or slow collector
changes nothing for requests and its losses are counted; no API key reaches an exported byte."""

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fake_upstream
from harness import Proxy, ProxyTestCase, metric_value, proxy_config, to_yaml, wait_until

E2E_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e")
DECODER = os.path.join(E2E_DIR, "otlp_decode.mjs")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
CHAT = {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}
PROVIDER_ERROR = {"error": {"message": "overloaded", "type": "server_error", "code": None}}


def decoder_missing():
    if shutil.which("node") is None:
        return "node is not installed (scripts/setup.sh installs it)"
    if not os.path.isdir(os.path.join(E2E_DIR, "node_modules", "@opentelemetry", "otlp-transformer")):
        return "tests/e2e/node_modules has no @opentelemetry/otlp-transformer (setup.sh runs npm ci)"
    return None


def decode(body, content_type):
    """An ExportTraceServiceRequest, decoded and checked against the official definitions."""
    fmt = "protobuf" if "protobuf" in content_type else "json"
    result = subprocess.run(["node", DECODER, fmt], input=body, capture_output=True,
                            timeout=60, check=False)
    if result.returncode != 0:
        raise AssertionError("the OTLP body does not decode: "
                             + result.stderr.decode(errors="replace")[-2000:])
    return json.loads(result.stdout)


def attributes(items):
    out = {}
    for item in items or []:
        value = item["value"]
        out[item["key"]] = next(iter(value.values())) if value else None
    return out


class OtlpReceiver:
    """An OTLP/HTTP trace receiver on 127.0.0.1:0. `delay` holds each answer that long
    (a slow collector); every body is kept as received."""

    def __init__(self, delay=0.0):
        self.delay = delay
        self.bodies = []  # (content type, bytes)
        self.lock = threading.Lock()
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.bodies.append((self.headers.get("Content-Type", ""), body,
                                            self.path, dict(self.headers.items())))
                if receiver.delay:
                    receiver.released.wait(receiver.delay)
                reply = b"{}"
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass  # the exporter gave up waiting (the slow collector's point)

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def endpoint(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"

    def stop(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def raw(self):
        with self.lock:
            return list(self.bodies)

    def spans(self):
        """Every span received so far, with its resource attributes under "resource"."""
        out = []
        for content_type, body, path, _ in self.raw():
            assert path == "/v1/traces", path
            request = decode(body, content_type)
            for resource_spans in request.get("resourceSpans", []):
                resource = attributes(resource_spans.get("resource", {}).get("attributes"))
                for scope_spans in resource_spans.get("scopeSpans", []):
                    for span in scope_spans.get("spans", []):
                        out.append(dict(span, resource=resource,
                                        attrs=attributes(span.get("attributes"))))
        return out

    def wait_spans(self, count, timeout=15.0):
        found = []

        def enough():
            found[:] = self.spans()
            return len(found) >= count

        wait_until(enough, timeout, f"{count} exported spans", interval=0.1)
        return found


def chat_handler(request, reply):
    """A chat completion, or a provider's 500 when the request carries x-test-fail."""
    if request.header("x-test-fail"):
        return fake_upstream.json_body(PROVIDER_ERROR, status=500)(request, reply)
    return fake_upstream.json_body(CHAT)(request, reply)


def dead_endpoint():
    """An http endpoint where nothing listens."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/v1/traces"


@unittest.skipIf(decoder_missing(), decoder_missing())
class TracingTest(ProxyTestCase):
    def start(self, endpoint=None, receiver_delay=0.0, env=None, **tracing):
        self.upstream = self.start_upstream()
        self.upstream.handlers["/v1/chat/completions"] = chat_handler
        if endpoint is None:
            self.receiver = OtlpReceiver(delay=receiver_delay)
            self.addCleanup(self.receiver.stop)
            endpoint = self.receiver.endpoint()
        settings = {"enabled": True, "otlp_endpoint": endpoint}
        settings.update(tracing)
        self.proxy = self.start_proxy(proxy_config(self.upstream.url(), tracing=settings),
                                      env=env)

    def chat(self, headers=(), path="/v1/chat/completions", request_id=None, fail=False):
        status = 500 if fail else 200
        if fail:
            headers = list(headers) + [("x-test-fail", "1")]
        body = json.dumps({"model": "gpt-4o-mini",
                           "messages": [{"role": "user", "content": "hi"}]}).encode()
        start = time.monotonic()
        response = self.proxy.request("POST", path,
                                      [("Content-Type", "application/json")] + list(headers),
                                      body, request_id=request_id)
        elapsed = time.monotonic() - start
        self.assertEqual(response.status, status, response.body[:300])
        return response, elapsed

    def test_a_client_traceparent_makes_the_span_a_child_and_the_upstream_a_grandchild(self):
        self.start()
        incoming = f"00-{TRACE_ID}-{PARENT_ID}-01"
        response, _ = self.chat([("traceparent", incoming), ("tracestate", "vendor=abc")],
                                request_id="traced-1")
        self.assertIsNone(response.header("traceparent"))  # not configured to answer it
        sent = self.upstream.requests[-1]
        self.assertEqual(len(sent.header_all("traceparent")), 1)
        version, trace_id, span_id, flags = sent.header("traceparent").split("-")
        self.assertEqual((version, trace_id, flags), ("00", TRACE_ID, "01"))
        self.assertNotEqual(span_id, PARENT_ID)
        self.assertEqual(sent.header("tracestate"), "vendor=abc")

        [span] = self.receiver.wait_spans(1)
        self.assertEqual(span["traceId"], TRACE_ID)
        self.assertEqual(span["parentSpanId"], PARENT_ID)
        self.assertEqual(span["spanId"], span_id)  # the upstream's parent is tokentap's span
        self.assertEqual(span["kind"], 3)  # SPAN_KIND_CLIENT
        self.assertEqual(span["name"], "chat gpt-4o-mini")
        attrs = span["attrs"]
        self.assertEqual(attrs["gen_ai.operation.name"], "chat")
        self.assertEqual(attrs["gen_ai.provider.name"], "openai")
        self.assertEqual(attrs["gen_ai.request.model"], "gpt-4o-mini")
        self.assertEqual(attrs["gen_ai.response.model"], "gpt-4o-mini-2024-07-18")
        self.assertEqual(attrs["gen_ai.usage.input_tokens"], "12")
        self.assertEqual(attrs["gen_ai.usage.output_tokens"], "3")
        self.assertEqual(attrs["tokentap.request_id"], "traced-1")
        self.assertEqual(attrs["http.response.status_code"], "200")
        self.assertEqual(span["resource"]["service.name"], "tokentap")
        self.assertNotEqual(span.get("status", {}).get("code"), 2)

    def test_both_protocols_decode_with_the_official_definitions(self):
        for protocol, content_type in (("http/protobuf", "application/x-protobuf"),
                                       ("http/json", "application/json")):
            with self.subTest(protocol=protocol):
                self.start(protocol=protocol)
                self.chat(request_id=f"proto-{protocol}")
                [span] = self.receiver.wait_spans(1)
                self.assertEqual(self.receiver.raw()[0][0], content_type)
                self.assertEqual(span["attrs"]["tokentap.request_id"], f"proto-{protocol}")
                self.assertEqual(span["attrs"]["gen_ai.usage.input_tokens"], "12")
                self.proxy.stop()

    def test_a_reload_turns_tracing_on_and_moves_it_to_a_new_endpoint_and_protocol(self):
        self.upstream = self.start_upstream()
        self.upstream.handlers["/v1/chat/completions"] = chat_handler
        first, second = OtlpReceiver(), OtlpReceiver()
        self.addCleanup(first.stop)
        self.addCleanup(second.stop)
        self.proxy = self.start_proxy(proxy_config(self.upstream.url()))
        reloads = 0
        for receiver, protocol, content_type in ((first, "http/protobuf", "application/x-protobuf"),
                                                 (second, "http/json", "application/json")):
            config = proxy_config(self.upstream.url(), tracing={
                "enabled": True, "otlp_endpoint": receiver.endpoint(), "protocol": protocol})
            with open(self.proxy.config_path, "w", encoding="utf-8") as f:
                f.write(to_yaml(config) + "\n")
            os.kill(self.proxy.pid, signal.SIGHUP)
            reloads += 1
            wait_until(lambda n=reloads: (metric_value(
                self.proxy.metrics(), "tokentap_config_reloads_total", result="success")
                or 0) >= n, timeout=10, what="the reload")
            self.chat(request_id=f"after-reload-{reloads}")
            [span] = receiver.wait_spans(1)
            self.assertEqual(span["attrs"]["tokentap.request_id"], f"after-reload-{reloads}")
            self.assertEqual(receiver.raw()[0][0], content_type)
        self.assertEqual(len(first.spans()), 1)  # the old endpoint got nothing more
        wait_until(lambda: self.proxy.metric("tokentap_trace_spans_exported_total") == 2,
                   timeout=10, what="both exporters' spans counted")

    def test_without_a_traceparent_tokentap_starts_the_trace_and_can_answer_it(self):
        self.start(propagate_response_traceparent=True)
        response, _ = self.chat(request_id="root-1")
        sent = self.upstream.requests[-1].header("traceparent")
        self.assertRegex(sent, r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$")
        self.assertEqual(response.header("traceparent"), sent)
        [span] = self.receiver.wait_spans(1)
        self.assertEqual(f"00-{span['traceId']}-{span['spanId']}-01", sent)
        self.assertNotIn("parentSpanId", span)

    def test_a_malformed_traceparent_is_ignored_never_an_error(self):
        self.start()
        self.chat([("traceparent", f"00-{TRACE_ID.upper()}-{PARENT_ID}-01")])
        sent = self.upstream.requests[-1]
        self.assertEqual(len(sent.header_all("traceparent")), 1)
        self.assertNotIn(TRACE_ID, sent.header("traceparent").lower())
        [span] = self.receiver.wait_spans(1)
        self.assertNotEqual(span["traceId"], TRACE_ID)

    def test_ratio_zero_still_exports_every_failed_request(self):
        self.start(sample_ratio=0)
        for i in range(3):
            self.chat(request_id=f"ok-{i}")
        for i in range(2):
            self.chat(request_id=f"failed-{i}", fail=True)
        for i in range(2):
            self.proxy.log_for(f"failed-{i}")
        self.proxy.stop()  # flushes what is queued
        spans = self.receiver.spans()
        self.assertEqual(sorted(s["attrs"]["tokentap.request_id"] for s in spans),
                         ["failed-0", "failed-1"])
        for span in spans:
            self.assertEqual(span["status"]["code"], 2)  # STATUS_CODE_ERROR
            self.assertIn("error.type", span["attrs"])

    def test_sessions_share_one_trace_when_configured(self):
        self.start(session_traces=True)
        for i in range(2):
            self.chat([("x-session-id", "conversation-7")], request_id=f"turn-{i}")
        self.chat([("x-session-id", "conversation-8")], request_id="other")
        spans = {s["attrs"]["tokentap.request_id"]: s for s in self.receiver.wait_spans(3)}
        self.assertEqual(spans["turn-0"]["traceId"], spans["turn-1"]["traceId"])
        self.assertNotEqual(spans["turn-0"]["spanId"], spans["turn-1"]["spanId"])
        self.assertNotEqual(spans["turn-0"]["traceId"], spans["other"]["traceId"])

    def test_no_api_key_canary_in_any_exported_byte(self):
        self.start()
        key = self.proxy.new_key()
        self.chat([("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01")])
        self.chat(path=f"/v1/chat/completions?key={key}")
        self.chat(fail=True)
        self.receiver.wait_spans(3)
        self.proxy.stop()
        raw = b"".join(body for _, body, _, _ in self.receiver.raw())
        self.assertTrue(raw)
        for canary in self.proxy.canaries:
            secret = canary.rsplit("-", 1)[1].encode()
            self.assertNotIn(canary.encode(), raw)
            self.assertNotIn(secret, raw)

    def chat_content(self, messages, request_id):
        body = json.dumps({"model": "gpt-4o-mini", "messages": messages}).encode()
        response = self.proxy.request("POST", "/v1/chat/completions",
                                      [("Content-Type", "application/json")], body,
                                      request_id=request_id)
        self.assertEqual(response.status, 200, response.body[:300])

    def test_captured_content_is_scrubbed_and_counted(self):
        self.start(capture_content=True, pii_patterns=["EMP-[0-9]{6}"])
        answer = dict(CHAT, choices=[{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": "Sent to carol@example.net."}}])
        self.upstream.handlers["/v1/chat/completions"] = fake_upstream.json_body(answer)
        key = self.proxy.new_key()
        prompt = f"I am dave@example.com, card 4111 1111 1111 1111, key {key}, badge EMP-123456."
        self.chat_content([{"role": "system", "content": "Be brief."},
                           {"role": "user", "content": prompt}], "captured")
        [span] = self.receiver.wait_spans(1)
        attrs = span["attrs"]
        self.assertEqual(json.loads(attrs["gen_ai.input.messages"]), [
            {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
            {"role": "user", "parts": [{"type": "text", "content":
                "I am <EMAIL>, card <CREDIT_CARD>, key <API_KEY>, badge <REDACTED>."}]}])
        self.assertEqual(json.loads(attrs["gen_ai.output.messages"]), [
            {"role": "assistant", "parts": [{"type": "text", "content": "Sent to <EMAIL>."}],
             "finish_reason": "stop"}])
        self.assertNotIn("tokentap.content.truncated", attrs)
        expected = {"email": 2, "credit_card": 1, "api_key": 1, "custom": 1, "phone": 0, "ip": 0}
        for kind, count in expected.items():
            self.assertEqual(self.proxy.metric("tokentap_pii_redactions_total", kind=kind), count,
                             kind)
        self.proxy.stop()
        raw = b"".join(body for _, body, _, _ in self.receiver.raw())
        secrets_sent = [key, key.rsplit("-", 1)[1], "dave@example.com", "carol@example.net",
                        "4111 1111 1111 1111", "EMP-123456"]
        for secret in secrets_sent + sorted(self.proxy.canaries):
            self.assertNotIn(secret.encode(), raw)

    def test_captured_content_from_a_stream_is_accumulated_then_scrubbed(self):
        self.start(capture_content=True)

        def chunk(delta, finish=None):
            event = {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return b"data: " + json.dumps(event).encode() + b"\n\n"

        # The e-mail address is split across deltas: only the whole text is scrubbed.
        events = [chunk({"role": "assistant", "content": "Write to erin@exa"}),
                  chunk({"content": "mple.org today."}), chunk({}, "stop"),
                  b"data: " + json.dumps({"id": "c1", "object": "chat.completion.chunk",
                                          "model": "gpt-4o-mini", "choices": [], "usage": {
                                              "prompt_tokens": 5, "completion_tokens": 6,
                                              "total_tokens": 11}}).encode() + b"\n\n",
                  b"data: [DONE]\n\n"]
        self.upstream.handlers["/v1/chat/completions"] = fake_upstream.sse(events)
        body = json.dumps({"model": "gpt-4o-mini", "stream": True,
                           "messages": [{"role": "user", "content": "Who?"}]}).encode()
        response = self.proxy.request("POST", "/v1/chat/completions",
                                      [("Content-Type", "application/json")], body)
        self.assertEqual(response.status, 200)
        [span] = self.receiver.wait_spans(1)
        self.assertEqual(json.loads(span["attrs"]["gen_ai.output.messages"]), [
            {"role": "assistant", "parts": [{"type": "text",
                                              "content": "Write to <EMAIL> today."}],
             "finish_reason": "stop"}])
        self.proxy.stop()
        raw = b"".join(body for _, body, _, _ in self.receiver.raw())
        self.assertNotIn(b"erin@", raw)

    def test_captured_content_is_bounded_and_marked(self):
        self.start(capture_content=True, content_max_bytes=1024)
        self.chat_content([{"role": "user", "content": "é" * 20000}], "long")
        [span] = self.receiver.wait_spans(1)
        attrs = span["attrs"]
        captured = attrs["gen_ai.input.messages"]
        self.assertLessEqual(len(captured.encode()), 1024)
        text = json.loads(captured)[0]["parts"][0]["content"]
        self.assertTrue(text.endswith("...<TRUNCATED>"))
        self.assertEqual(set(text[:-len("...<TRUNCATED>")]), {"é"})
        self.assertIs(attrs["tokentap.content.truncated"], True)

    def test_without_capture_content_a_span_carries_no_content(self):
        self.start()
        self.chat_content([{"role": "user", "content": "I am dave@example.com"}], "plain")
        [span] = self.receiver.wait_spans(1)
        for key in ("gen_ai.input.messages", "gen_ai.output.messages",
                    "gen_ai.system_instructions", "tokentap.content.truncated"):
            self.assertNotIn(key, span["attrs"])
        self.assertEqual(self.proxy.metric("tokentap_pii_redactions_total", kind="email"), 0)
        self.proxy.stop()
        raw = b"".join(body for _, body, _, _ in self.receiver.raw())
        self.assertNotIn(b"dave@example.com", raw)

    def access_log_keys_and_latency(self, requests=15):
        latencies = []
        keys = None
        for i in range(requests):
            _, elapsed = self.chat(request_id=f"lat-{i}")
            latencies.append(elapsed)
            keys = set(self.proxy.log_for(f"lat-{i}"))
        return keys, statistics.median(latencies), max(latencies)

    def baseline(self):
        """Access-log keys and latency of the same requests with tracing off."""
        upstream = self.start_upstream()
        upstream.handlers["/v1/chat/completions"] = chat_handler
        self.upstream = upstream
        self.proxy = self.start_proxy(proxy_config(upstream.url()))
        result = self.access_log_keys_and_latency()
        self.proxy.stop()
        return result

    def test_a_dead_collector_changes_nothing_for_requests_and_counts_drops(self):
        keys_off, median_off, _ = self.baseline()
        self.start(endpoint=dead_endpoint())
        keys_on, median_on, worst = self.access_log_keys_and_latency()
        self.assertEqual(keys_on, keys_off)
        self.assertLess(worst, 2.0)
        self.assertLess(median_on, median_off * 3 + 0.05)
        # Connection refused is retried with backoff (0.5 s, 1 s, 2 s), then the batch is lost.
        dropped = wait_until(lambda: self.proxy.metric("tokentap_trace_spans_dropped_total",
                                                       reason="export_failed"),
                             timeout=20, what="spans dropped after failed exports")
        self.assertGreaterEqual(dropped, 1)
        self.assertGreaterEqual(self.proxy.metric("tokentap_trace_export_errors_total"), 4)
        self.assertEqual(self.proxy.metric("tokentap_trace_spans_exported_total"), 0)

    def test_a_slow_collector_changes_nothing_for_requests_and_counts_errors(self):
        keys_off, median_off, _ = self.baseline()
        # The collector holds every answer past the exporter's 5 s timeout.
        self.start(receiver_delay=30.0)
        keys_on, median_on, worst = self.access_log_keys_and_latency()
        self.assertEqual(keys_on, keys_off)
        # A later batch waits behind the stuck export; these requests are not held up either.
        time.sleep(1.5)
        more_keys, more_median, more_worst = self.access_log_keys_and_latency(5)
        self.assertEqual(more_keys, keys_off)
        self.assertLess(max(worst, more_worst), 2.0)
        self.assertLess(max(median_on, more_median), median_off * 3 + 0.05)
        errors = wait_until(lambda: self.proxy.metric("tokentap_trace_export_errors_total"),
                            timeout=15, what="a timed-out export counted")
        self.assertGreaterEqual(errors, 1)
        self.assertEqual(self.proxy.metric("tokentap_trace_spans_exported_total"), 0)
        self.receiver.released.set()  # let shutdown's last export go through quickly

    def test_the_standard_otel_variables_configure_the_exporter(self):
        self.receiver = OtlpReceiver()
        self.addCleanup(self.receiver.stop)
        self.upstream = self.start_upstream()
        self.upstream.handlers["/v1/chat/completions"] = chat_handler
        token = "collector-token-" + os.urandom(8).hex()
        base = self.receiver.endpoint().rsplit("/v1/traces", 1)[0]
        env = {"OTEL_TRACES_EXPORTER": "otlp",
               "OTEL_EXPORTER_OTLP_ENDPOINT": base,
               "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer%20{token},x-tenant=t1",
               "OTEL_SERVICE_NAME": "planner-gateway",
               "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
               "OTEL_TRACES_SAMPLER": "parentbased_always_off",
               "K8S_POD_NAME": "planner-7d9f-abcde",
               "K8S_NAMESPACE_NAME": "agents"}
        # No tracing block in the file: the environment turns it on.
        self.proxy = self.start_proxy(proxy_config(self.upstream.url()), env=env)
        self.chat(request_id="sampled-out")
        self.chat(request_id="kept", fail=True)
        [span] = self.receiver.wait_spans(1)
        self.assertEqual(span["attrs"]["tokentap.request_id"], "kept")
        resource = span["resource"]
        self.assertEqual(resource["service.name"], "planner-gateway")
        self.assertEqual(resource["k8s.pod.name"], "planner-7d9f-abcde")
        self.assertEqual(resource["k8s.namespace.name"], "agents")
        self.assertEqual(resource["deployment.environment.name"], "test")
        headers = {k.lower(): v for k, v in self.receiver.raw()[0][3].items()}
        self.assertEqual(headers["authorization"], f"Bearer {token}")
        self.assertEqual(headers["x-tenant"], "t1")
        self.proxy.stop()
        self.assertNotIn(token, self.proxy.stderr_text() + self.proxy.stdout_text())

    def test_a_bad_otel_variable_is_a_start_error_naming_it(self):
        upstream = self.start_upstream()
        proxy = Proxy(proxy_config(upstream.url()), self.tmp,
                      env={"OTEL_TRACES_SAMPLER": "traceidratio",
                           "OTEL_TRACES_SAMPLER_ARG": "1.5"})
        proxy.exit_checked = True
        with self.assertRaises(AssertionError):
            proxy.start()
        self.assertEqual(proxy.wait_exit(), 1)
        self.assertIn("OTEL_TRACES_SAMPLER_ARG: expected a ratio from 0 to 1",
                      proxy.stderr_text())

    def test_tracing_metrics_only_when_enabled(self):
        upstream = self.start_upstream()
        proxy = self.start_proxy(proxy_config(upstream.url()))
        self.assertNotIn("tokentap_trace_spans_exported_total", proxy.admin_get("/metrics")
                         .body.decode())
        proxy.stop()
        self.start()
        self.chat()
        self.receiver.wait_spans(1)
        wait_until(lambda: self.proxy.metric("tokentap_trace_spans_exported_total") == 1,
                   timeout=10, what="the exported span counted")


if __name__ == "__main__":
    unittest.main()
