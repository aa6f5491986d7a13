"""Request limits and malformed input are refused by the proxy itself, with JSON errors."""

import threading
import time
import unittest

from harness import (ConnectionClosed, ProxyTestCase, build_request, key_headers, proxy_config,
                     wait_until)

LIMITS = {"max_request_body": "1KiB", "max_header_bytes": "4KiB", "max_headers": 30,
          "max_connections": 4}


class LimitTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.upstream = self.start_upstream()

    def limited_proxy(self, **timeouts):
        return self.start_proxy(proxy_config(self.upstream.url(), limits=LIMITS,
                                             timeouts=timeouts))

    def assert_upstream_untouched(self):
        self.assertEqual(self.upstream.connections, [], "the upstream must not be contacted")

    def test_oversized_headers_are_431(self):
        proxy = self.limited_proxy()
        cases = {"one huge header": [("X-Big", "b" * 6000)],
                 "too many headers": [(f"X-Many-{i}", "v") for i in range(40)]}
        for name, headers in cases.items():
            with self.subTest(case=name):
                response = proxy.request("GET", "/v1/models", headers)
                self.assert_json_error(response, 431, "headers_too_large")
        self.assert_upstream_untouched()
        within = [("X-Fits", "f" * 1500)] + [(f"X-Some-{i}", "v") for i in range(15)]
        self.assertEqual(proxy.request("GET", "/v1/models", within).status, 200)

    def test_oversized_bodies_are_413_before_contacting_the_upstream(self):
        proxy = self.limited_proxy()
        json_type = [("Content-Type", "application/json")]
        too_big = b'{"input":"' + b"z" * 1100 + b'"}'
        for chunked in (False, True):
            with self.subTest(chunked=chunked):
                response = proxy.request("POST", "/v1/embeddings", json_type, too_big,
                                         chunked=chunked, chunk_size=256,
                                         request_id=f"413-{chunked}")
                self.assert_json_error(response, 413, "request_too_large", f"413-{chunked}")
        self.assert_upstream_untouched()
        exactly = b'{"input":"' + b"z" * (1024 - 12) + b'"}'
        self.assertEqual(len(exactly), 1024)
        for chunked in (False, True):
            response = proxy.request("POST", "/v1/embeddings", json_type, exactly,
                                     chunked=chunked, chunk_size=100)
            self.assertEqual(response.status, 200)
            self.assertEqual(self.upstream.requests[-1].body, exactly)

    def test_malformed_requests_are_400_and_closed(self):
        proxy = self.limited_proxy()
        key = proxy.new_key()
        auth = f"Authorization: Bearer {key}\r\n".encode()
        cases = {
            "garbage": b"GARBAGE\r\n\r\n",
            "header without colon": b"GET /v1/models HTTP/1.1\r\nHost: a\r\n" + auth
                                    + b"No colon here\r\n\r\n",
            "length and chunked": b"POST /v1/x HTTP/1.1\r\nHost: a\r\n" + auth
                                  + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  + b"0\r\n\r\n",
            "chunked not last": b"POST /v1/x HTTP/1.1\r\nHost: a\r\n" + auth
                                + b"Transfer-Encoding: gzip\r\n\r\nhello",
            "two lengths": b"POST /v1/x HTTP/1.1\r\nHost: a\r\n" + auth
                           + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            "bad length": b"POST /v1/x HTTP/1.1\r\nHost: a\r\n" + auth
                          + b"Content-Length: 12abc\r\n\r\n",
            "bad chunk size": b"POST /v1/x HTTP/1.1\r\nHost: a\r\n" + auth
                              + b"Content-Type: application/json\r\n"
                              + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        }
        for name, data in cases.items():
            with self.subTest(case=name), proxy.connect(timeout=5) as client:
                client.send(data)
                response = client.read_response()
                self.assert_json_error(response, 400, "bad_request")
                self.assertTrue(client.wait_closed(5), "connection must close after a 400")
        self.assertEqual(self.upstream.requests, [])

    def test_connections_over_the_limit_get_503(self):
        proxy = self.limited_proxy()
        held = [proxy.connect() for _ in range(LIMITS["max_connections"])]
        try:
            for client in held:
                self.assertEqual(proxy.request("GET", "/v1/models", client=client).status, 200)
            with proxy.connect(timeout=5) as extra:
                try:
                    extra.send(build_request("GET", "/v1/models",
                                             key_headers(proxy.new_key())))
                except OSError:
                    pass  # the proxy may answer and close before reading the request
                self.assert_json_error(extra.read_response(), 503, "overloaded")
        finally:
            held.pop().close()

        def accepted_again():
            try:
                return proxy.request("GET", "/v1/models").status == 200
            except (ConnectionClosed, OSError):
                return False

        wait_until(accepted_again, what="a freed connection slot to be usable")
        for client in held:
            client.close()

    def test_slow_request_heads_get_408(self):
        proxy = self.limited_proxy(downstream_header="500ms")
        key = proxy.new_key()
        head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\n"
                + f"Authorization: Bearer {key}\r\n".encode())
        with self.subTest(case="stops sending"), proxy.connect(timeout=5) as client:
            started = time.monotonic()
            client.send(head)
            response = client.read_response()
            self.assert_json_error(response, 408, "header_timeout")
            self.assertGreaterEqual(time.monotonic() - started, 0.45)
            self.assertTrue(client.wait_closed(5))
        with self.subTest(case="drips one byte at a time"), proxy.connect(timeout=5) as client:
            stop = threading.Event()

            def drip():
                try:
                    client.send(head)
                    while not stop.wait(0.05):
                        client.send(b"X")
                except OSError:
                    pass

            dripper = threading.Thread(target=drip, daemon=True)
            started = time.monotonic()
            dripper.start()
            try:
                response = client.read_response()
            finally:
                stop.set()
                dripper.join()
            self.assert_json_error(response, 408, "header_timeout")
            self.assertLess(time.monotonic() - started, 3.0,
                            "the header deadline covers the whole head, not each byte")
        self.assert_upstream_untouched()


if __name__ == "__main__":
    unittest.main()
