"""Traces: the real binary exports one OpenTelemetry span per LLM request over OTLP/HTTP to a
receiver in this test, which decodes every body with the official opentelemetry-proto
definitions (tests/e2e/otlp_decode.mjs, protobufjs); the trace continues the client's
traceparent and goes on to the upstream; sampling keeps every failure; a dead or slow collector
changes nothing for requests and its losses are counted; no API key reaches an exported byte."""

import os
import signal
import socket
import time
import unittest

from harness import Proxy, metric_value, proxy_config, to_yaml, wait_until
from tracing_support import OtlpReceiver, TracingCase, chat_handler, decoder_missing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
def dead_endpoint():
    """An http endpoint where nothing listens."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/v1/traces"


@unittest.skipIf(decoder_missing(), decoder_missing())
class TracingTest(TracingCase):
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
