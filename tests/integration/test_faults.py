"""Faults on either side that the other tests do not cover: a client that half-closes, an
upstream that never answers the TLS ClientHello, and upstream responses whose framing breaks or
ends early. Every one must be visible to the client (a JSON error, or a body whose framing
never completes) and accounted exactly once (access-log line and metrics).

Expired and wrong-host upstream certificates are covered in test_tls.py.
"""

import json
import socket
import threading
import time
import unittest

import fake_upstream
from harness import ProxyTestCase, build_request, key_headers, proxy_config, wait_until

CHAT = json.dumps({"model": "gpt-4o-mini", "stream": True,
                   "stream_options": {"include_usage": True},
                   "messages": [{"role": "user", "content": "hi"}]}).encode()
JSON = [("Content-Type", "application/json")]


class FaultTestCase(ProxyTestCase):
    def assert_logged_once(self, proxy, request_id, status, error_type, proxy_error=None):
        """`error_type` is the one error vocabulary; `proxy_error` tokentap's own class."""
        entry = proxy.log_for(request_id)
        self.assertEqual((entry["status"], entry["error_type"], entry.get("proxy_error")),
                         (status, error_type, proxy_error), entry)
        lines = [e for e in proxy.access_log() if e.get("request_id") == request_id]
        self.assertEqual(len(lines), 1, "exactly one access-log line per request")
        return entry


class HalfCloseTest(FaultTestCase):
    """README: a client that disconnects closes the upstream exchange at once and is logged as
    client_cancelled. A FIN (shutdown(SHUT_WR)) is read as that disconnect: tokentap, like
    nginx, cannot tell a half-close from a client that went away."""

    def setUp(self):
        super().setUp()
        self.upstream = self.start_upstream()
        self.release = threading.Event()
        self.addCleanup(self.release.set)

        def held(request, reply):
            reply.wait(self.release, timeout=20)
            fake_upstream.echo()(request, reply)

        self.upstream.handlers["/v1/chat/completions"] = held
        self.proxy = self.start_proxy(proxy_config(self.upstream.url()))

    def test_half_close_while_the_response_is_in_flight_is_a_client_abort(self):
        with self.proxy.connect(timeout=5) as client:
            client.send(build_request("POST", "/v1/chat/completions",
                                      JSON + key_headers(self.proxy.new_key())
                                      + [("X-Request-ID", "half-close-1")], CHAT))
            request = self.upstream.wait_for_requests(1)[0]
            client.sock.shutdown(socket.SHUT_WR)
            wait_until(lambda: request.connection.peer_closed_at is not None,
                       what="the proxy to close the upstream exchange")
            self.assertTrue(client.wait_closed(5), "the proxy must close the connection")
            self.assertEqual(bytes(client.buf), b"", "no response after the client's FIN")
        self.assert_logged_once(self.proxy, "half-close-1", 499, "client_cancelled",
                                "client_cancelled")
        self.proxy.wait_metric("tokentap_requests_total", 1, code="499")
        self.proxy.wait_metric("llm_requests_total", 1, code="499", error_type="client_cancelled")

    def test_half_close_after_a_complete_response_closes_quietly(self):
        self.release.set()
        with self.proxy.connect(timeout=5) as client:
            response = self.proxy.request("POST", "/v1/chat/completions", JSON, CHAT,
                                          request_id="half-close-2", client=client)
            self.assertEqual(response.status, 200)
            client.sock.shutdown(socket.SHUT_WR)
            self.assertTrue(client.wait_closed(5))
            self.assertEqual(bytes(client.buf), b"")
        self.assert_logged_once(self.proxy, "half-close-2", 200, "none")
        self.proxy.wait_metric("tokentap_open_connections", 0, side="downstream")
        self.assertEqual(len(self.proxy.access_log()), 1, "the FIN is not a request")

    def test_half_close_in_the_middle_of_a_head_is_a_client_abort(self):
        with self.proxy.connect(timeout=5) as client:
            client.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: proxy.test\r\n"
                        b"X-Request-ID: half-close-3\r\n")
            client.sock.shutdown(socket.SHUT_WR)
            self.assertTrue(client.wait_closed(5))
        entry = self.proxy.wait_for_log(lambda e: e.get("status") == 499)
        self.assertEqual(entry["error_type"], "client_cancelled")
        self.assertEqual(len(self.proxy.access_log()), 1)
        self.assertEqual(self.upstream.connections, [])


class TlsHandshakeHangTest(FaultTestCase):
    def test_upstream_that_never_answers_the_client_hello(self):
        # Listening but never accepting: the kernel completes TCP, nobody speaks TLS.
        silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(silent.close)
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        proxy = self.start_proxy(proxy_config(f"https://127.0.0.1:{port}",
                                              timeouts={"connect": "800ms"}))
        started = time.monotonic()
        response = proxy.request("POST", "/v1/chat/completions", JSON, CHAT,
                                 request_id="tls-hang-1")
        elapsed = time.monotonic() - started
        error = self.assert_json_error(response, 502, "upstream_tls_error", "tls-hang-1")
        self.assertIn("timed out", error["message"])
        self.assertGreaterEqual(elapsed, 0.75, "the connect timeout fired early")
        self.assertLess(elapsed, 5.0)
        self.assert_logged_once(proxy, "tls-hang-1", 502, "tls_error", "upstream_tls_error")
        proxy.wait_metric("tokentap_upstream_connect_errors_total", 1, route="main", kind="tls")
        proxy.wait_metric("llm_requests_total", 1, code="502", error_type="tls_error")


class BrokenUpstreamResponseTest(FaultTestCase):
    """A response that breaks after its head went out cannot become an error response: the
    client must see a body whose framing never completes, and the connection closes."""

    EVENTS = fake_upstream.openai_chunks(3)

    def setUp(self):
        super().setUp()
        self.upstream = self.start_upstream()
        self.proxy = self.start_proxy(proxy_config(self.upstream.url(),
                                                   timeouts={"idle": "5s"}))

    def run_case(self, request_id, handler):
        self.upstream.handlers["/v1/chat/completions"] = handler
        response = self.proxy.request("POST", "/v1/chat/completions", JSON, CHAT,
                                      request_id=request_id, allow_truncated=True)
        self.assertEqual(response.status, 200)
        self.assertFalse(response.complete, "the truncation must be visible to the client")
        return response

    def test_malformed_chunked_framing_mid_response(self):
        events = self.EVENTS
        cases = {
            "chunk-size-not-hex": b"zz\r\n" + events[1] + b"\r\n0\r\n\r\n",
            "chunk-data-without-crlf": b"%x\r\n" % len(events[1]) + events[1] + b"XX0\r\n\r\n",
            "chunk-size-overflow": b"fffffffffffffffff1\r\n" + events[1],
        }
        for i, (name, broken) in enumerate(cases.items()):
            with self.subTest(case=name):
                def handler(_request, reply, broken=broken):
                    reply.start_chunked(200, [("Content-Type", "text/event-stream")])
                    reply.chunk(events[0])
                    reply.send(broken)
                    reply.pause(5)

                request_id = f"bad-chunk-{i}"
                response = self.run_case(request_id, handler)
                self.assertEqual(response.framing, "chunked")
                # llhttp hands out a chunk's data before it checks the CRLF that ends it.
                self.assertIn(response.body, (events[0], events[0] + events[1]))
                self.assert_logged_once(self.proxy, request_id, 200, "protocol_error",
                                        "upstream_protocol_error")
        self.proxy.wait_metric("tokentap_requests_total", len(cases), code="200")
        self.proxy.wait_metric("llm_requests_total", len(cases), error_type="protocol_error")

    def test_upstream_that_closes_early(self):
        events = self.EVENTS

        def short_content_length(_request, reply):
            reply.head(200, [("Content-Type", "application/json"), ("Content-Length", "100000")])
            reply.send(b"x" * 1000)
            reply.close()

        def eof_inside_a_chunk(_request, reply):
            reply.start_chunked(200, [("Content-Type", "text/event-stream")])
            reply.chunk(events[0])
            reply.send(b"%x\r\n" % len(events[1]) + events[1][:10])
            reply.close()

        def eof_between_chunks(_request, reply):
            reply.start_chunked(200, [("Content-Type", "text/event-stream")])
            reply.chunk(events[0])
            reply.close()

        cases = {"length": (short_content_length, "length", 1000),
                 "inside-chunk": (eof_inside_a_chunk, "chunked", None),
                 "between-chunks": (eof_between_chunks, "chunked", None)}
        for name, (handler, framing, body_length) in cases.items():
            with self.subTest(case=name):
                request_id = f"early-eof-{name}"
                response = self.run_case(request_id, handler)
                self.assertEqual(response.framing, framing)
                if body_length is not None:
                    self.assertEqual(response.body_length, body_length)
                    self.assertEqual(response.header("content-length"), "100000")
                else:
                    self.assertTrue(response.body.startswith(events[0]))
                    self.assertLess(len(response.body), len(events[0]) + len(events[1]))
                self.assert_logged_once(self.proxy, request_id, 200, "upstream_error",
                                        "upstream_reset")
        self.proxy.wait_metric("llm_requests_total", len(cases), error_type="upstream_error")


if __name__ == "__main__":
    unittest.main()
