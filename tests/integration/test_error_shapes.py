"""tokentap's own refusals reach the client in the route provider's error shape, with the retry
advice the SDKs read: a spent budget says how long until its window admits again (and not to
retry past a minute), a runaway session says not to retry, an unreachable upstream says to."""

import json
import socket
import unittest

import fake_upstream
from harness import ProxyTestCase, proxy_config

JSON = [("Content-Type", "application/json")]
HOUR = 3600

# Route prefix -> (provider, path the SDK would call, shape of the answer).
ROUTES = {
    "/oa": ("openai", "/v1/chat/completions", "openai"),
    "/an": ("anthropic", "/v1/messages", "anthropic"),
    "/ge": ("gemini", "/v1beta/models/gemini-2.0-flash:generateContent", "gemini"),
    # An OpenAI-compatible endpoint of Gemini is read by an OpenAI SDK.
    "/ge-oa": ("gemini", "/v1beta/openai/chat/completions", "openai"),
    "/auto": ("auto", "/v1/messages", "anthropic"),
}


def routes_to(upstream_url):
    return [{"name": prefix.strip("/"), "prefix": prefix, "strip_prefix": True,
             "upstream": upstream_url, "provider": provider}
            for prefix, (provider, _path, _shape) in ROUTES.items()]


class ErrorShapeTest(ProxyTestCase):
    def start(self, upstream_url=None, **overrides):
        if upstream_url is None:
            self.upstream = self.start_upstream()
            upstream_url = self.upstream.url()
        config = proxy_config(upstream_url, **overrides)
        config["routes"] = routes_to(upstream_url)
        self.proxy = self.start_proxy(config)

    def refused(self, prefix, request_id, headers=()):
        _provider, path, _shape = ROUTES[prefix]
        return self.proxy.request("POST", prefix + path, JSON + list(headers), b"{}",
                                  request_id=request_id)

    def assert_request_id_header(self, response, request_id):
        self.assertEqual(response.header_all("x-request-id"), [request_id])

    def test_a_spent_budget_answers_in_each_provider_shape_with_the_wait(self):
        self.start(budgets=[{"agent": "spender", "hourly_usd": 0.001, "action": "block"}])
        # 10000 output tokens of gpt-4o-mini cost more than 0.001 USD.
        self.upstream.handlers["/v1/chat/completions"] = fake_upstream.json_body(
            {"id": "c", "object": "chat.completion", "model": "gpt-4o-mini",
             "choices": [{"index": 0, "finish_reason": "stop",
                          "message": {"role": "assistant", "content": "ok"}}],
             "usage": {"prompt_tokens": 10, "completion_tokens": 10000,
                       "total_tokens": 10010}})
        spend = self.proxy.request("POST", "/oa/v1/chat/completions",
                                   JSON + [("x-agent-id", "spender")],
                                   b'{"model":"gpt-4o-mini","messages":[]}',
                                   request_id="spend")
        self.assertEqual(spend.status, 200)
        self.proxy.log_for("spend")  # the spend is recorded once the request has ended

        for prefix, (_provider, _path, shape) in ROUTES.items():
            with self.subTest(route=prefix):
                request_id = f"budget{prefix.replace('/', '-')}"
                response = self.refused(prefix, request_id, [("x-agent-id", "spender")])
                error = self.assert_json_error(response, 429, "budget_exceeded", request_id,
                                               shape=shape)
                self.assert_request_id_header(response, request_id)
                self.assertIn("hourly budget of 0.0010 USD", error["message"])
                # Spent this minute (or the one before): the hour admits again in 59-60 minutes.
                wait = int(response.header("retry-after"))
                self.assertGreater(wait, HOUR - 120)
                self.assertLessEqual(wait, HOUR)
                self.assertEqual(response.header("x-should-retry"), "false")
                if shape == "openai":
                    self.assertEqual(error["type"], "insufficient_quota")
                    self.assertEqual(error["code"], "budget_exceeded")
                elif shape == "anthropic":
                    self.assertEqual(error["type"], "rate_limit_error")
                else:
                    self.assertEqual(error["status"], "RESOURCE_EXHAUSTED")
                    retry_info = [d for d in error["details"]
                                  if d["@type"] == "type.googleapis.com/google.rpc.RetryInfo"]
                    self.assertEqual(retry_info, [{"@type": retry_info[0]["@type"],
                                                   "retryDelay": f"{wait}s"}])
                entry = self.proxy.log_for(request_id)
                self.assertEqual((entry["status"], entry["error_type"]),
                                 (429, "budget_exceeded"))
        self.assertEqual(len(self.upstream.requests), 1, "refusals never reach the upstream")

        # Answering HEAD: the same head, no body.
        head = self.proxy.request("HEAD", "/an/v1/messages", [("x-agent-id", "spender")],
                                  request_id="budget-head")
        self.assertEqual(head.status, 429)
        self.assertEqual(head.body, b"")
        self.assertEqual(head.header("x-should-retry"), "false")
        self.assertGreater(int(head.header("retry-after")), HOUR - 120)

    def test_a_blocked_runaway_session_must_not_be_retried(self):
        self.start(sessions={"max_requests_per_minute": 1, "runaway_action": "block"})
        self.upstream.default_handler = fake_upstream.json_body({"ok": True})
        session = [("x-agent-id", "looper"), ("x-session-id", "conv-7")]
        first = self.refused("/an", "loop-1", session)
        self.assertEqual(first.status, 200)
        for prefix, (_provider, _path, shape) in ROUTES.items():
            with self.subTest(route=prefix):
                request_id = f"loop{prefix.replace('/', '-')}"
                response = self.refused(prefix, request_id, session)
                error = self.assert_json_error(response, 429, "runaway_session", request_id,
                                               shape=shape)
                self.assert_request_id_header(response, request_id)
                self.assertEqual(response.header("x-should-retry"), "false")
                self.assertIsNone(response.header("retry-after"))
                self.assertIn("conv-7", error["message"])
        self.assertEqual(len(self.upstream.requests), 1)

    def test_an_unreachable_upstream_is_a_retryable_502_in_the_anthropic_shape(self):
        closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(closed.close)
        closed.bind(("127.0.0.1", 0))
        self.start(f"http://127.0.0.1:{closed.getsockname()[1]}")
        response = self.refused("/an", "down-1")
        error = self.assert_json_error(response, 502, "upstream_connect_error", "down-1",
                                       shape="anthropic")
        self.assertEqual(error["type"], "api_error")
        document = response.json()
        self.assertEqual(document["request_id"], "down-1")
        self.assert_request_id_header(response, "down-1")
        self.assertEqual(response.header("x-should-retry"), "true")
        self.assertIsNone(response.header("retry-after"))

        response = self.refused("/ge", "down-2")
        error = self.assert_json_error(response, 502, "upstream_connect_error", "down-2",
                                       shape="gemini")
        self.assertEqual(error["status"], "UNAVAILABLE")

    def test_a_request_without_a_route_answers_in_the_openai_shape(self):
        self.start()
        response = self.proxy.request("POST", "/v1/messages", JSON, b"{}",
                                      request_id="nowhere")
        error = self.assert_json_error(response, 404, "no_route", "nowhere", shape="openai")
        self.assertEqual(error["type"], "invalid_request_error")
        self.assertIsNone(response.header("x-should-retry"))
        self.assertIsNone(response.header("retry-after"))
        self.assertEqual(json.loads(response.body)["error"]["code"], "no_route")


if __name__ == "__main__":
    unittest.main()
