"""API keys reach the upstream untouched and appear nowhere else: logs, metrics, errors.

Every request made through the harness carries a fresh canary key in all key headers, and every
test's cleanup scans stdout, stderr, /metrics and error responses for them. This module adds the
places a key is most likely to slip out: the query string, each header alone, and error paths.
"""

import socket
import unittest

import fake_upstream
from certs import CertFactory
from harness import ProxyTestCase, build_request, key_id, proxy_config

JSON = [("Content-Type", "application/json")]


class SecretsTest(ProxyTestCase):
    def test_each_key_location_reaches_the_upstream_and_is_hashed_in_the_log(self):
        upstream = self.start_upstream()
        proxy = self.start_proxy(proxy_config(upstream.url()))
        locations = {
            "authorization": lambda key: ([("Authorization", f"Bearer {key}")], ""),
            "x-api-key": lambda key: ([("x-api-key", key)], ""),
            "api-key": lambda key: ([("api-key", key)], ""),
            "x-goog-api-key": lambda key: ([("x-goog-api-key", key)], ""),
            "query": lambda key: ([], f"?alt=sse&key={key}"),
        }
        for name, place in locations.items():
            with self.subTest(location=name):
                key = proxy.new_key()
                headers, query = place(key)
                target = "/v1beta/models/gemini-1.5-flash:generateContent" + query
                response = proxy.request("POST", target, headers + JSON, b"{}", key=False,
                                         request_id=f"key-{name}")
                self.assertEqual(response.status, 200)
                received = upstream.requests[-1]
                self.assertEqual(received.target, target)
                for header_name, value in headers:
                    self.assertEqual(received.header_all(header_name), [value])
                entry = proxy.log_for(f"key-{name}")
                self.assertEqual(entry["key_id"], key_id(key))
                self.assertNotIn(key, entry["path"])

    def test_no_key_means_an_empty_key_id(self):
        upstream = self.start_upstream()
        proxy = self.start_proxy(proxy_config(upstream.url()))
        proxy.request("GET", "/v1/models", key=False, request_id="keyless")
        self.assertEqual(proxy.log_for("keyless")["key_id"], "")

    def test_keys_do_not_leak_through_error_paths(self):
        ok = self.start_upstream()
        stalled = self.start_upstream()
        stalled.default_handler = fake_upstream.stall()
        pki = CertFactory(self.tmp, "untrusted")
        leaf = pki.leaf()
        untrusted = self.start_upstream(tls_cert=leaf.cert, tls_key=leaf.key)
        refused = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(refused.close)
        refused.bind(("127.0.0.1", 0))
        routes = [
            {"name": "ok", "prefix": "/v1", "upstream": ok.url(), "provider": "openai"},
            {"name": "refused", "prefix": "/refused",
             "upstream": f"http://127.0.0.1:{refused.getsockname()[1]}", "provider": "openai"},
            {"name": "dns", "prefix": "/dns", "upstream": "https://tokentap-test.invalid",
             "provider": "openai"},
            {"name": "tls", "prefix": "/tls", "upstream": untrusted.url(), "provider": "openai"},
            {"name": "stall", "prefix": "/stall", "upstream": stalled.url(),
             "provider": "openai"},
        ]
        config = proxy_config(ok.url(), timeouts={"first_byte": "300ms", "connect": "2s"},
                              limits={"max_request_body": "1KiB", "max_header_bytes": "4KiB"})
        config["routes"] = routes
        proxy = self.start_proxy(config)

        errors = []
        for prefix, status in (("/refused", 502), ("/dns", 502), ("/tls", 502),
                               ("/stall", 504), ("/nowhere", 404)):
            key = proxy.new_key()
            errors.append(proxy.request("POST", f"{prefix}/v1/chat/completions?key={key}",
                                        JSON, b'{"model":"gpt-4o"}', key=key))
            self.assertEqual(errors[-1].status, status, prefix)
        key = proxy.new_key()
        errors.append(proxy.request("POST", f"/v1/embeddings?key={key}", JSON, b"x" * 2000,
                                    key=key))
        self.assertEqual(errors[-1].status, 413)
        key = proxy.new_key()
        errors.append(proxy.request("GET", f"/v1/models?key={key}",
                                    [("X-Padding", "p" * 5000)], key=key))
        self.assertEqual(errors[-1].status, 431)
        key = proxy.new_key()
        with proxy.connect() as client:
            client.send(build_request("GET", f"/v1/models?key={key}",
                                      [("Authorization", f"Bearer {key}"),
                                       ("Bad Header", key)]))
            errors.append(client.read_response())
        self.assertEqual(errors[-1].status, 400)
        for response in errors:
            for canary in proxy.canaries:
                self.assertNotIn(canary.encode(), response.raw_head + response.body)
        self.assertEqual(ok.requests, [])
        proxy.metrics()
        self.assertEqual(proxy.leaks(), set())


if __name__ == "__main__":
    unittest.main()
