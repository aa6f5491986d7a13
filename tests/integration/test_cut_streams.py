"""Cut streams are billed, not free: a stream that ends before the provider reports usage (the
client goes away, the provider sends an error event, the chunked body is truncated, or a
complete stream simply carries no usage) is billed the exact counts it carried, completed by
estimates from the request and the content received. The log says which (usage_source partial
or estimated), llm_estimated_tokens_total counts the estimated part, and the cost, the token
metrics and /v1/usage agree."""

import json
import unittest

import fake_upstream
from harness import ProxyTestCase, metric_value, proxy_config, wait_until

JSON = [("Content-Type", "application/json"), ("x-agent-id", "cutter")]
PROMPT = "Explain how a proxy meters a streamed completion. " * 8
OPENAI_REQUEST = json.dumps({"model": "gpt-4o-mini", "stream": True,
                             "messages": [{"role": "user", "content": PROMPT}]}).encode()
ANTHROPIC_REQUEST = json.dumps({"model": "claude-haiku-4-5", "stream": True, "max_tokens": 256,
                                "messages": [{"role": "user", "content": PROMPT}]}).encode()


def openai_events(count, usage=True):
    events = fake_upstream.openai_chunks(count)
    return events if usage else [e for e in events if b'"usage"' not in e]


def sse_event(name, data):
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def anthropic_events_until_error():
    message = {"id": "msg_cut", "type": "message", "role": "assistant",
               "model": "claude-haiku-4-5-20251001", "content": [], "stop_reason": None,
               "usage": {"input_tokens": 120, "cache_read_input_tokens": 40,
                         "cache_creation_input_tokens": 0, "output_tokens": 1}}
    events = [sse_event("message_start", {"type": "message_start", "message": message}),
              sse_event("content_block_start", {"type": "content_block_start", "index": 0,
                                                "content_block": {"type": "text", "text": ""}})]
    for i in range(6):
        events.append(sse_event("content_block_delta", {
            "type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": f"part {i} of an answer that is cut. "}}))
    events.append(sse_event("error", {"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}}))
    return events


class CutStreamTest(ProxyTestCase):
    def start(self, provider="openai"):
        self.upstream = self.start_upstream()
        self.proxy = self.start_proxy(proxy_config(self.upstream.url(), provider=provider))

    def assert_billed(self, request_id, source, reason, model):
        """The log line bills non-zero tokens at a non-zero cost with `source`, and the metrics
        and /v1/usage carry the same numbers."""
        entry = self.proxy.log_for(request_id)
        tokens = entry["tokens"]
        self.assertEqual((entry["usage_source"], entry["usage_missing_reason"]), (source, reason),
                         entry)
        self.assertGreater(tokens["input"], 0, entry)
        self.assertGreater(tokens["output"], 0, entry)
        self.assertGreater(entry["cost_usd"], 0, entry)
        self.assertEqual(entry["priced_as"], model, entry)
        estimated = entry["estimated_tokens"]
        self.assertGreater(estimated["output"], 0, entry)
        samples = wait_until(
            lambda: (lambda s: s if metric_value(s, "llm_requests_total", agent="cutter") else
                     None)(self.proxy.metrics()), what="llm_requests_total")
        self.assertEqual(metric_value(samples, "llm_tokens_total", agent="cutter", type="input"),
                         tokens["input"])
        self.assertEqual(metric_value(samples, "llm_tokens_total", agent="cutter",
                                      type="output"), tokens["output"])
        for kind in ("input", "output"):
            self.assertEqual(metric_value(samples, "llm_estimated_tokens_total", agent="cutter",
                                          type=kind) or 0, estimated[kind], kind)
        self.assertAlmostEqual(metric_value(samples, "llm_cost_usd_total", agent="cutter"),
                               entry["cost_usd"], places=12)
        usage = json.loads(self.proxy.admin_get("/v1/usage?agent=cutter").body)["usage"]
        self.assertEqual([(r["tokens"]["input"], r["tokens"]["output"]) for r in usage],
                         [(tokens["input"], tokens["output"])], usage)
        self.assertAlmostEqual(sum(r["cost_usd"] for r in usage), entry["cost_usd"], places=12)
        return entry

    def test_client_abort_is_billed_as_estimated(self):
        self.start()
        self.upstream.handlers["/v1/chat/completions"] = fake_upstream.sse(
            openai_events(300), 0.02)
        client = self.proxy.connect()
        client.send_request("POST", "/v1/chat/completions",
                            JSON + [("x-request-id", "cut-abort")], OPENAI_REQUEST)
        response = client.read_head("POST")
        self.assertEqual(response.status, 200)
        pieces = client.body_pieces(response)
        for _ in range(5):
            next(pieces)
        client.abort()
        entry = self.assert_billed("cut-abort", "estimated", "client_cancelled", "gpt-4o-mini")
        self.assertEqual(entry["error_type"], "client_cancelled")
        self.assertEqual(entry["estimated_tokens"]["input"], entry["tokens"]["input"])

    def test_mid_stream_error_event_is_billed_as_partial(self):
        self.start(provider="anthropic")
        self.upstream.handlers["/v1/messages"] = fake_upstream.sse(anthropic_events_until_error())
        response = self.proxy.request("POST", "/v1/messages",
                                      JSON + [("anthropic-version", "2023-06-01")],
                                      ANTHROPIC_REQUEST, request_id="cut-error")
        self.assertEqual(response.status, 200)
        entry = self.assert_billed("cut-error", "partial", "upstream_error", "claude-haiku-4-5")
        # message_start's input side is exact; only the output is estimated.
        self.assertEqual((entry["tokens"]["input"], entry["tokens"]["cache_read"]), (160, 40))
        self.assertEqual(entry["estimated_tokens"]["input"], 0)
        self.assertEqual(entry["error_type"], "overloaded")

    def test_truncated_chunked_body_is_billed_as_estimated(self):
        self.start()
        events = openai_events(20)

        def truncated(_request, reply):
            reply.start_chunked(200, [("Content-Type", "text/event-stream")])
            for event in events[:10]:
                reply.chunk(event)
            reply.send(b"%x\r\n" % len(events[10]) + events[10][:10])
            reply.close()

        self.upstream.handlers["/v1/chat/completions"] = truncated
        response = self.proxy.request("POST", "/v1/chat/completions", JSON, OPENAI_REQUEST,
                                      request_id="cut-truncated", allow_truncated=True)
        self.assertEqual(response.status, 200)
        self.assertFalse(response.complete)
        entry = self.assert_billed("cut-truncated", "estimated", "upstream_error", "gpt-4o-mini")
        self.assertNotEqual(entry["error_type"], "none")

    def test_complete_stream_without_usage_is_billed_as_estimated(self):
        self.start()
        self.upstream.handlers["/v1/chat/completions"] = fake_upstream.sse(
            openai_events(12, usage=False))
        response = self.proxy.request("POST", "/v1/chat/completions", JSON, OPENAI_REQUEST,
                                      request_id="cut-no-usage")
        self.assertEqual(response.status, 200)
        self.assertTrue(response.complete)
        entry = self.assert_billed("cut-no-usage", "estimated", "not_reported", "gpt-4o-mini")
        self.assertEqual(entry["error_type"], "none")


if __name__ == "__main__":
    unittest.main()
