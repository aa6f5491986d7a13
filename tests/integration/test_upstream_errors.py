"""Upstream failures become JSON errors with the right status, type, log line and metric."""

import socket
import time
import unittest

import fake_upstream
from harness import ProxyTestCase, proxy_config, wait_until


class UpstreamErrorTest(ProxyTestCase):
    def assert_connect_error(self, upstream_url, kind):
        proxy = self.start_proxy(proxy_config(upstream_url))
        response = proxy.request("POST", "/v1/chat/completions",
                                 [("Content-Type", "application/json")], b"{}",
                                 request_id=f"connect-{kind}")
        self.assert_json_error(response, 502, "upstream_connect_error", f"connect-{kind}")
        entry = proxy.log_for(f"connect-{kind}")
        self.assertEqual((entry["status"], entry["error_type"], entry["proxy_error"]),
                         (502, "connect_error", "upstream_connect_error"))
        wait_until(lambda: (proxy.metric("tokentap_upstream_connect_errors_total", route="main",
                                         kind=kind) or 0) >= 1,
                   what=f"tokentap_upstream_connect_errors_total{{kind={kind}}} >= 1")
        proxy.wait_metric("tokentap_requests_total", 1, route="main", code="502")

    def test_refused_connection(self):
        # Bound but not listening: connecting is refused, and nobody else can take the port.
        closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(closed.close)
        closed.bind(("127.0.0.1", 0))
        self.assert_connect_error(f"http://127.0.0.1:{closed.getsockname()[1]}", "connect")

    def test_unresolvable_host(self):
        self.assert_connect_error("http://tokentap-test.invalid:8080", "dns")

    def test_stall_before_response_head_is_a_504(self):
        upstream = self.start_upstream()
        upstream.default_handler = fake_upstream.stall()
        proxy = self.start_proxy(proxy_config(upstream.url(), timeouts={"first_byte": "500ms"}))
        started = time.monotonic()
        response = proxy.request("POST", "/v1/chat/completions",
                                 [("Content-Type", "application/json")], b"{}",
                                 request_id="stall-1")
        elapsed = time.monotonic() - started
        self.assert_json_error(response, 504, "timeout", "stall-1")
        self.assertGreaterEqual(elapsed, 0.45, "first_byte timeout fired early")
        self.assertLess(elapsed, 5.0)
        connection = upstream.connections[0]
        wait_until(lambda: connection.peer_closed_at is not None,
                   what="the proxy to close the stalled upstream connection")
        entry = proxy.log_for("stall-1")
        self.assertEqual((entry["status"], entry["error_type"]), (504, "timeout"))

    def test_malformed_upstream_response_is_a_502(self):
        upstream = self.start_upstream()

        def garbage(_request, reply):
            reply.send(b"THIS IS NOT HTTP\r\n\r\n")
            reply.close()

        upstream.default_handler = garbage
        proxy = self.start_proxy(proxy_config(upstream.url()))
        response = proxy.request("GET", "/v1/models", request_id="garbage-1")
        self.assert_json_error(response, 502, "upstream_protocol_error", "garbage-1")

    def test_the_proxy_stays_healthy_after_upstream_failures(self):
        upstream = self.start_upstream()
        upstream.handlers["/v1/reset"] = lambda _request, reply: reply.reset()
        proxy = self.start_proxy(proxy_config(upstream.url()))
        self.assertEqual(proxy.request("GET", "/v1/reset").status, 502)
        self.assertEqual(proxy.request("GET", "/v1/models").status, 200)
        self.assertEqual(proxy.admin_get("/healthz").status, 200)


if __name__ == "__main__":
    unittest.main()
