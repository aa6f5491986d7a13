"""A route's circuit breaker against an upstream that fails, then recovers: it opens after the
configured consecutive failures, answers 503 circuit_open in the provider's error format with
retry-after and the request id without contacting the upstream, half-opens after open_for and
lets one probe through, reopens when the probe fails and closes when it succeeds."""

import json
import socket
import threading
import unittest

from harness import ProxyTestCase, proxy_config, wait_until

CHAT = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
JSON = [("Content-Type", "application/json")]


def completion():
    return json.dumps({
        "id": "chatcmpl-cb", "object": "chat.completion", "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}).encode()


class CircuitBreakerTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.failing = True
        self.release = threading.Event()
        self.release.set()
        self.upstream = self.start_upstream()
        self.upstream.default_handler = self.handle
        breaker = {"consecutive_failures": 3, "window": "30s", "open_for": "300ms",
                   "half_open_requests": 1}
        self.proxy = self.start_proxy(proxy_config(self.upstream.url(),
                                                   route={"circuit_breaker": breaker}))

    def handle(self, _request, reply):
        self.release.wait(10)
        if self.failing:
            reply.respond(503, JSON, json.dumps({"error": {
                "message": "The server is overloaded", "type": "server_error",
                "code": None}}).encode())
        else:
            reply.respond(200, JSON, completion())

    def chat(self, request_id=None):
        return self.proxy.request("POST", "/v1/chat/completions", JSON, CHAT,
                                  request_id=request_id)

    def transitions(self, to):
        return self.proxy.metric("llm_circuit_breaker_transitions_total", route="main", to=to) or 0

    def assert_refused(self, response):
        error = self.assert_json_error(response, 503, "circuit_open", response.sent_request_id,
                                       shape="openai")
        self.assertIn("route main", error["message"])
        self.assertGreaterEqual(int(response.header("retry-after")), 1)
        return error

    def wait_for_probe(self):
        """Sends requests until one is let through (the breaker half-opened); returns it."""
        seen = []

        def let_through():
            response = self.chat()
            if response.status == 503 and b"circuit_open" in response.body:
                return False
            seen.append(response)
            return True

        wait_until(let_through, timeout=5, what="the breaker to let a probe through",
                   interval=0.05)
        return seen[0]

    def test_trips_refuses_without_upstream_contact_half_opens_and_closes(self):
        self.proxy.wait_metric("llm_circuit_breaker_state", 0, route="main")
        for i in range(3):
            response = self.chat(request_id=f"fail-{i}")
            self.assertEqual(response.status, 503)  # the provider's own answer, passed through
            self.assertNotIn(b"circuit_open", response.body)
        self.proxy.wait_metric("llm_circuit_breaker_state", 1, route="main")
        self.assertEqual(self.transitions("open"), 1)
        forwarded = len(self.upstream.requests)
        self.assertEqual(forwarded, 3)

        response = self.chat(request_id="refused-1")
        self.assert_refused(response)
        entry = self.proxy.log_for("refused-1")
        self.assertEqual((entry["status"], entry["error_type"], entry["proxy_error"]),
                         (503, "circuit_open", "circuit_open"))
        self.assertEqual(len(self.upstream.requests), forwarded, "an open breaker forwarded")

        # Half-open with the upstream still failing: the probe fails and reopens it.
        probe = self.wait_for_probe()
        self.assertEqual(probe.status, 503)
        self.assertNotIn(b"circuit_open", probe.body)
        self.proxy.wait_metric("llm_circuit_breaker_transitions_total", 2, route="main", to="open")
        self.assertEqual(self.transitions("half_open"), 1)
        self.assertEqual(self.transitions("closed"), 0)
        self.assert_refused(self.chat())

        # Half-open again, the upstream recovered but slow: one probe in flight, the rest refused.
        self.failing = False
        self.release.clear()
        results = []
        waiter = threading.Thread(target=lambda: results.append(self.wait_for_probe()))
        waiter.start()
        self.upstream.wait_for_requests(forwarded + 2)
        self.proxy.wait_metric("llm_circuit_breaker_state", 2, route="main")
        error = self.assert_refused(self.chat(request_id="while-probing"))
        self.assertIn("try again in 1 s", error["message"])
        self.release.set()
        waiter.join(10)
        self.assertEqual(results[0].status, 200)
        self.proxy.wait_metric("llm_circuit_breaker_state", 0, route="main")
        self.assertEqual(self.transitions("closed"), 1)
        self.assertEqual(self.chat().status, 200)
        self.assertEqual(self.upstream.errors, [])

    def test_client_errors_do_not_trip_it(self):
        self.failing = False
        self.upstream.default_handler = lambda _request, reply: reply.respond(
            400, JSON, b'{"error":{"message":"bad","type":"invalid_request_error"}}')
        for _ in range(5):
            self.assertEqual(self.chat().status, 400)
        self.proxy.wait_metric("tokentap_requests_total", 5, route="main", code="400")
        self.assertEqual(self.proxy.metric("llm_circuit_breaker_state", route="main"), 0)
        self.assertEqual(self.transitions("open"), 0)


class ConnectFailureBreakerTest(ProxyTestCase):
    def test_connect_errors_trip_it_and_the_anthropic_shape_is_kept(self):
        closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(closed.close)
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        proxy = self.start_proxy(proxy_config(url, provider="anthropic", route={
            "circuit_breaker": {"consecutive_failures": 2, "open_for": "1h"}}))
        body = json.dumps({"model": "claude-3-5-haiku-latest", "max_tokens": 8,
                           "messages": [{"role": "user", "content": "hi"}]}).encode()
        for i in range(2):
            response = proxy.request("POST", "/v1/messages", JSON, body, request_id=f"c-{i}")
            self.assert_json_error(response, 502, "upstream_connect_error", f"c-{i}")
        response = proxy.request("POST", "/v1/messages", JSON, body, request_id="open-1")
        error = self.assert_json_error(response, 503, "circuit_open", "open-1", shape="anthropic")
        self.assertEqual(error["type"], "overloaded_error")
        self.assertEqual(response.header("retry-after"), "3600")
        self.assertEqual(response.header("x-should-retry"), "false")  # past the SDKs' patience
        self.assertEqual(proxy.metric("llm_circuit_breaker_state", route="main"), 1)


if __name__ == "__main__":
    unittest.main()
