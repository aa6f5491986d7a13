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


def raw(data):
    """A handler that answers with `data` as is and keeps the connection open."""
    def handler(_request, reply):
        reply.send(data)
    return handler


class UntrustworthyResponseTest(ProxyTestCase):
    """Upstream responses a client could misread are refused, rebuilt, or end their connection."""

    def setUp(self):
        super().setUp()
        self.upstream = self.start_upstream()
        self.proxy = self.start_proxy(proxy_config(self.upstream.url()))

    def assert_protocol_error(self, path, data, request_id):
        self.upstream.handlers[path] = raw(data)
        response = self.proxy.request("GET", path, request_id=request_id)
        self.assert_json_error(response, 502, "upstream_protocol_error", request_id)
        entry = self.proxy.log_for(request_id)
        self.assertEqual((entry["status"], entry["error_type"], entry["proxy_error"]),
                         (502, "protocol_error", "upstream_protocol_error"))

    def test_a_204_or_1xx_announcing_a_body_is_a_protocol_error(self):
        self.assert_protocol_error(
            "/v1/te", b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n0\r\n\r\n", "204-te")
        self.assert_protocol_error(
            "/v1/cl", b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello", "204-cl")
        self.assert_protocol_error(
            "/v1/interim", b"HTTP/1.1 103 Early Hints\r\nContent-Length: 4\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "103-cl")
        # What RFC 9110 allows still passes: Content-Length 0 on a 204, the length of the
        # representation on a 304.
        self.upstream.handlers["/v1/zero"] = raw(
            b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        self.upstream.handlers["/v1/cached"] = raw(
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\nETag: \"a\"\r\n\r\n")
        with self.proxy.connect(timeout=5) as client:
            self.assertEqual(self.proxy.request("DELETE", "/v1/zero", client=client).status, 204)
            cached = self.proxy.request("GET", "/v1/cached", client=client)
            self.assertEqual((cached.status, cached.header("content-length")), (304, "1234"))
            after = self.proxy.request("POST", "/v1/after", [], b"still-works", client=client)
            self.assertEqual((after.status, after.body), (200, b"still-works"))

    def test_a_reason_phrase_with_control_bytes_is_replaced(self):
        self.upstream.handlers["/v1/nul"] = raw(
            b"HTTP/1.1 304 Not\x00\x00}i'st\xabHTTP/1.1 200 OK\r\nETag: \"a\"\r\n\r\n")
        self.upstream.handlers["/v1/del"] = raw(
            b"HTTP/1.1 429 Slow\x7f Down\r\nContent-Length: 2\r\n\r\n{}")
        self.upstream.handlers["/v1/latin1"] = raw(
            b"HTTP/1.1 200 Tr\xe8s bien\r\nContent-Length: 2\r\n\r\n{}")
        self.upstream.handlers["/v1/plain"] = raw(
            b"HTTP/1.1 200 All\tgood, thanks\r\nContent-Length: 2\r\n\r\n{}")
        expected = {"/v1/nul": b"HTTP/1.1 304 Not Modified\r\n",
                    "/v1/del": b"HTTP/1.1 429 Too Many Requests\r\n",
                    "/v1/latin1": b"HTTP/1.1 200 OK\r\n",
                    "/v1/plain": b"HTTP/1.1 200 All\tgood, thanks\r\n"}
        for path, status_line in expected.items():
            response = self.proxy.request("GET", path)
            self.assertTrue(response.raw_head.startswith(status_line), response.raw_head)

    def test_a_connection_that_sent_bytes_after_its_response_is_not_reused(self):
        self.upstream.handlers["/v1/extra"] = raw(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra")
        self.upstream.handlers["/v1/304-body"] = raw(
            b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nextra\r\n0\r\n\r\n")
        for path, status in (("/v1/extra", 200), ("/v1/304-body", 304)):
            with self.subTest(path=path):
                with self.proxy.connect(timeout=5) as client:
                    first = self.proxy.request("GET", path, client=client)
                    self.assertEqual(first.status, status)
                    self.assertEqual(first.body, b"ok" if status == 200 else b"")
                    second = self.proxy.request("POST", "/v1/next", [], b"mine", client=client)
                    self.assertEqual((second.status, second.body), (200, b"mine"))
                    self.assertEqual(client.buf, b"", "stray bytes reached the client")
                dropped = [c for c in self.upstream.connections
                           if any(r.path == path for r in c.requests)]
                self.assertEqual(len(dropped), 1)
                dropped = dropped[0]
                self.assertEqual(dropped.requests[-1].path, path,
                                 "the next request went out on the out-of-step connection")
                wait_until(lambda: dropped.peer_closed_at is not None,
                           what="the proxy to close the out-of-step upstream connection")


if __name__ == "__main__":
    unittest.main()
