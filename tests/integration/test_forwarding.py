"""Bytes, methods, paths, headers and routes go through the proxy as the client sent them."""

import hashlib
import json
import os
import unittest

import fake_upstream
from harness import ACCESS_LOG_KEYS, ProxyTestCase, key_id, proxy_config

CHAT_REQUEST = (b'{ "model" : "gpt-4o-mini",\n  "messages": [ {"role":"user",'
                b'"content":"h\\u00e9llo \xe2\x98\x83"} ] , "temperature":0.50 ,"n":1}')
CHAT_RESPONSE = (b'{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini",'
                 b'"choices":[{"index":0,"message":{"role":"assistant","content":"hi \xf0\x9f\x91'
                 b'\x8b"},"finish_reason":"stop"}],\n "usage":{"prompt_tokens":12,'
                 b'"completion_tokens":3,"total_tokens":15}}\n')


class BodyTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.upstream = self.start_upstream()
        self.proxy = self.start_proxy(proxy_config(self.upstream.url()))

    def test_json_request_and_response_bodies_are_byte_identical(self):
        self.upstream.handlers["/v1/chat/completions"] = fake_upstream.fixed(
            200, [("Content-Type", "application/json")], CHAT_RESPONSE)
        response = self.proxy.request("POST", "/v1/chat/completions",
                                      [("Content-Type", "application/json")], CHAT_REQUEST)
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, CHAT_RESPONSE)
        self.assertEqual(self.upstream.requests[0].body, CHAT_REQUEST)

    def test_binary_body_with_content_length(self):
        body = os.urandom(1 << 20)
        response = self.proxy.request("POST", "/v1/files",
                                      [("Content-Type", "application/octet-stream")], body)
        self.assertEqual(response.status, 200)
        self.assertEqual(self.upstream.requests[0].body, body)
        self.assertEqual(response.body, body)

    def test_chunked_request_body(self):
        body = os.urandom(300_001)
        response = self.proxy.request("POST", "/v1/uploads/part",
                                      [("Content-Type", "application/octet-stream")], body,
                                      chunked=True, chunk_size=7919)
        self.assertEqual(response.status, 200)
        upstream_request = self.upstream.requests[0]
        self.assertEqual(upstream_request.body, body)
        framing = {n for n in upstream_request.header_names()
                   if n in ("content-length", "transfer-encoding")}
        self.assertEqual(len(framing), 1, f"exactly one body framing upstream, got {framing}")
        if "transfer-encoding" in framing:
            self.assertEqual(upstream_request.header("transfer-encoding").lower(), "chunked")
        else:
            self.assertEqual(upstream_request.header("content-length"), str(len(body)))
        self.assertEqual(response.body, body)

    def test_chunked_response_body(self):
        body = os.urandom(100_000)
        self.upstream.default_handler = fake_upstream.echo(framing="chunked")
        response = self.proxy.request("POST", "/v1/echo", [], body)
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, body)

    def test_large_responses_with_every_framing(self):
        body = os.urandom(5 << 20)
        digest = hashlib.sha256(body).hexdigest()
        for framing in ("length", "chunked", "close"):
            with self.subTest(framing=framing):
                self.upstream.handlers["/v1/big"] = fake_upstream.fixed(
                    200, [("Content-Type", "application/octet-stream")], body, framing)
                response = self.proxy.request("GET", "/v1/big")
                self.assertEqual(response.status, 200)
                self.assertEqual(response.body_length, len(body))
                self.assertEqual(hashlib.sha256(response.body).hexdigest(), digest)

    def test_upstream_error_status_and_body_pass_through(self):
        error = (b'{"error":{"message":"Rate limit reached","type":"requests",'
                 b'"param":null,"code":"rate_limit_exceeded"}}')
        self.upstream.handlers["/v1/chat/completions"] = fake_upstream.fixed(
            429, [("Content-Type", "application/json"), ("Retry-After", "7")], error)
        response = self.proxy.request("POST", "/v1/chat/completions",
                                      [("Content-Type", "application/json")], CHAT_REQUEST)
        self.assertEqual(response.status, 429)
        self.assertEqual(response.header("retry-after"), "7")
        self.assertEqual(response.body, error)


class HeaderTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.upstream = self.start_upstream()
        self.proxy = self.start_proxy(proxy_config(self.upstream.url()))

    def test_method_path_and_query_are_forwarded_as_received(self):
        target = "/v1/models/ft:gpt-4o-mini:org::A1b2?limit=5&after=%2Fx%20y&empty=&limit=6"
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            with self.subTest(method=method):
                body = b'{"x":1}' if method in ("POST", "PUT", "PATCH") else None
                response = self.proxy.request(method, target, [], body)
                self.assertEqual(response.status, 200)
                received = self.upstream.requests[-1]
                self.assertEqual(received.method, method)
                self.assertEqual(received.target, target)
                self.assertEqual(received.version, "HTTP/1.1")

    def test_ordinary_headers_are_forwarded_as_received(self):
        sent = [("User-Agent", "OpenAI/Python 1.40.0"), ("Accept", "application/json"),
                ("OpenAI-Organization", "org-123"), ("OpenAI-Beta", "assistants=v2"),
                ("anthropic-version", "2023-06-01"), ("X-Dup", "first"),
                ("X-Custom-Spaces", "a  b\tc"), ("X-Dup", "second"),
                ("X-Stainless-Lang", "python"), ("Content-Type", "application/json")]
        self.proxy.request("POST", "/v1/chat/completions", sent, CHAT_REQUEST)
        received = self.upstream.requests[0]
        for name, value in sent:
            if name != "X-Dup":
                self.assertEqual(received.header_all(name), [value], name)
        self.assertEqual(received.header_all("x-dup"), ["first", "second"])

    def test_host_is_rewritten_to_the_upstream_authority(self):
        self.proxy.request("GET", "/v1/models", [("Host", "client-side.example:8080")])
        self.assertEqual(self.upstream.requests[0].header_all("host"),
                         [self.upstream.authority])

    def test_hop_by_hop_request_headers_are_not_forwarded(self):
        proxy_credentials = self.proxy.new_key()
        sent = [("Connection", "keep-alive, X-Drop-Me"), ("X-Drop-Me", "1"),
                ("Keep-Alive", "timeout=5, max=100"), ("Proxy-Connection", "keep-alive"),
                ("TE", "trailers"), ("Trailer", "X-Checksum"), ("Upgrade", "example/1"),
                ("Proxy-Authorization", f"Basic {proxy_credentials}"), ("X-Keep-Me", "yes")]
        response = self.proxy.request("POST", "/v1/chat/completions", sent, CHAT_REQUEST)
        self.assertEqual(response.status, 200)
        received = self.upstream.requests[0]
        names = set(received.header_names())
        for hop in ("x-drop-me", "keep-alive", "proxy-connection", "te", "trailer", "upgrade",
                    "proxy-authorization"):
            self.assertNotIn(hop, names)
        for value in received.header_all("connection"):
            self.assertNotIn("x-drop-me", value.lower())
        self.assertEqual(received.header("x-keep-me"), "yes")
        self.assertEqual(received.body, CHAT_REQUEST)

    def test_hop_by_hop_response_headers_are_not_forwarded(self):
        self.upstream.handlers["/v1/models"] = fake_upstream.fixed(
            200, [("Content-Type", "application/json"), ("Connection", "X-Private-Hop"),
                  ("X-Private-Hop", "1"), ("Keep-Alive", "timeout=30"),
                  ("Proxy-Connection", "keep-alive"), ("Upgrade", "example/1"),
                  ("X-Kept", "yes"), ("openai-processing-ms", "42")], b'{"data":[]}')
        response = self.proxy.request("GET", "/v1/models")
        self.assertEqual(response.status, 200)
        names = {n.lower() for n, _ in response.headers}
        for hop in ("x-private-hop", "keep-alive", "proxy-connection", "upgrade"):
            self.assertNotIn(hop, names)
        for value in response.header_all("connection"):
            self.assertNotIn("x-private-hop", value.lower())
        self.assertEqual(response.header("x-kept"), "yes")
        self.assertEqual(response.header("openai-processing-ms"), "42")
        self.assertEqual(response.body, b'{"data":[]}')


class AccessLogTest(ProxyTestCase):
    def test_one_line_per_request_with_every_field(self):
        upstream = self.start_upstream()
        upstream.handlers["/v1/chat/completions"] = fake_upstream.fixed(
            200, [("Content-Type", "application/json")], CHAT_RESPONSE)
        proxy = self.start_proxy(proxy_config(upstream.url(), agent={"name": "fleet-default"}))
        key = proxy.new_key()
        response = proxy.request("POST", "/v1/chat/completions?api-version=1",
                                 [("Content-Type", "application/json"),
                                  ("X-Agent-ID", "agent-7"), ("X-Session-ID", "sess-9")],
                                 CHAT_REQUEST, key=key, request_id="log-test-1")
        self.assertEqual(response.status, 200)
        entry = proxy.log_for("log-test-1")
        self.assertLessEqual(ACCESS_LOG_KEYS, set(entry), entry)
        self.assertRegex(entry["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
        expected = {"request_id": "log-test-1", "upstream_request_id": "", "agent": "agent-7",
                    "session": "sess-9", "method": "POST", "route": "main",
                    "upstream": upstream.url(), "status": 200, "error_type": "none",
                    "bytes_in": len(CHAT_REQUEST), "bytes_out": len(CHAT_RESPONSE),
                    "key_id": key_id(key)}
        self.assertEqual({k: entry[k] for k in expected}, expected)
        self.assertTrue(entry["path"].startswith("/v1/chat/completions"), entry["path"])
        self.assertIsInstance(entry["duration_ms"], (int, float))
        self.assertGreaterEqual(entry["duration_ms"], 0)
        self.assertTrue(entry["client"].startswith("127.0.0.1"), entry["client"])

        proxy.request("GET", "/v1/models", request_id="log-test-2")
        second = proxy.log_for("log-test-2")
        self.assertEqual(second["agent"], "fleet-default")
        self.assertEqual(second["session"], "")
        lines = proxy.stdout_text().splitlines()
        self.assertEqual(len(lines), 2, "one access log line per request")
        for line in lines:
            self.assertIsInstance(json.loads(line), dict)

    def test_configured_agent_and_session_headers(self):
        upstream = self.start_upstream()
        proxy = self.start_proxy(proxy_config(upstream.url(),
                                              agent={"name": "nobody", "header": "x-team"},
                                              session_header="x-conversation"))
        proxy.request("GET", "/v1/models", [("X-Team", "search-bot"),
                                            ("X-Conversation", "conv-42"),
                                            ("X-Agent-ID", "ignored")], request_id="agent-1")
        entry = proxy.log_for("agent-1")
        self.assertEqual(entry["agent"], "search-bot")
        self.assertEqual(entry["session"], "conv-42")


class RoutingTest(ProxyTestCase):
    def test_prefixes_base_paths_and_strip_prefix(self):
        first = self.start_upstream()
        second = self.start_upstream()
        routes = [
            {"name": "openai", "prefix": "/openai", "strip_prefix": True,
             "upstream": first.url("/base"), "provider": "openai"},
            {"name": "v1", "prefix": "/v1", "upstream": first.url("/api"), "provider": "openai"},
            {"name": "v1-models", "prefix": "/v1/models", "upstream": second.url(),
             "provider": "openai"},
            {"name": "gemini", "prefix": "/v1beta",
             "path_contains": [":generateContent", ":streamGenerateContent"],
             "upstream": second.url(), "provider": "gemini"},
            {"name": "v1beta", "prefix": "/v1beta", "upstream": first.url(),
             "provider": "openai_compatible"},
        ]
        config = proxy_config(first.url())
        config["routes"] = routes
        proxy = self.start_proxy(config)
        cases = [
            ("/openai/v1/chat/completions?a=1", first, "/base/v1/chat/completions?a=1", "openai"),
            ("/v1/chat/completions", first, "/api/v1/chat/completions", "v1"),
            ("/v1/models/gpt-4o", second, "/v1/models/gpt-4o", "v1-models"),
            ("/v1beta/models/gemini-1.5-pro:generateContent", second,
             "/v1beta/models/gemini-1.5-pro:generateContent", "gemini"),
            ("/v1beta/models", first, "/v1beta/models", "v1beta"),
        ]
        for path, upstream, upstream_target, route in cases:
            with self.subTest(path=path):
                response = proxy.request("GET", path, request_id=f"route-{route}")
                self.assertEqual(response.status, 200)
                received = upstream.requests[-1]
                self.assertEqual(received.header("x-request-id"), f"route-{route}")
                self.assertEqual(received.target, upstream_target)
                self.assertEqual(received.header("host"), upstream.authority)
                self.assertEqual(proxy.log_for(f"route-{route}")["route"], route)

    def test_unmatched_path_is_a_json_404(self):
        upstream = self.start_upstream()
        config = proxy_config(upstream.url())
        config["routes"][0]["prefix"] = "/v1"
        proxy = self.start_proxy(config)
        response = proxy.request("GET", "/admin/secret", request_id="no-route-1")
        self.assert_json_error(response, 404, "no_route", "no-route-1")
        self.assertEqual(upstream.connections, [])
        self.assertEqual(proxy.log_for("no-route-1")["status"], 404)


if __name__ == "__main__":
    unittest.main()
