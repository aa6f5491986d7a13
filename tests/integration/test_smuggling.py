"""Request smuggling corpus: ambiguous or malformed framing never reaches the upstream.

Every case in REFUSED is a request a proxy and an upstream could disagree about (where it ends,
which headers it has, which host it is for). tokentap must answer it 400 `bad_request`, close
the connection, and forward nothing: every byte the fake upstream ever received must belong to
a complete request the test sent on purpose (checked after each case with a sentinel request
that reuses the pooled upstream connection). Each case is followed by a pipelined
`GET /v1/smuggled`, which must never be seen upstream. Every case runs twice: as the first
request on a new connection, and as the second request on a keep-alive connection whose first
(valid) request did reach the upstream.

Bodies that are malformed *inside* the chunked framing are sent as JSON, which tokentap reads
whole before contacting the upstream (every LLM API body is JSON), so for them too nothing is
forwarded. A non-JSON body is streamed: its head is forwarded as soon as it is parsed, and a
framing error found later cuts the upstream request off (test_malformed_streamed_body_is_cut_off).

ACCEPTED lists the documented normalisations: obs-fold is replaced by a space (RFC 9112 §5.2),
and a request hidden inside a correctly framed body is body bytes, not a second request.
"""

import unittest

from harness import ProxyTestCase, proxy_config, wait_until

SMUGGLED = b"GET /v1/smuggled HTTP/1.1\r\nHost: proxy.test\r\n\r\n"
HOST = b"Host: proxy.test\r\n"
JSON = b"Content-Type: application/json\r\n"
CHUNKED = b"Transfer-Encoding: chunked\r\n"


def post(*header_lines, body=b"", target=b"/v1/chat/completions", host=HOST):
    return (b"POST " + target + b" HTTP/1.1\r\n" + host + b"%AUTH%" + b"".join(header_lines)
            + b"\r\n" + body)


def get(*header_lines, request_line=b"GET /v1/models HTTP/1.1\r\n", host=HOST):
    return request_line + host + b"%AUTH%" + b"".join(header_lines) + b"\r\n"


def json_chunked(body):
    return post(JSON, CHUNKED, body=body)


# name -> raw request; every one must be answered 400 with nothing forwarded.
REFUSED = {
    # Content-Length and Transfer-Encoding together, in either order, however spelled.
    "cl-then-te": post(b"Content-Length: 5\r\n", CHUNKED, body=b"0\r\n\r\n"),
    "te-then-cl": post(CHUNKED, b"Content-Length: 5\r\n", body=b"0\r\n\r\n"),
    "cl-and-te-uppercase": post(b"Content-Length: 5\r\n", b"TRANSFER-ENCODING: CHUNKED\r\n",
                                body=b"0\r\n\r\n"),
    "cl-and-te-folded": post(b"Content-Length: 5\r\n", b"Transfer-Encoding:\r\n chunked\r\n",
                             body=b"0\r\n\r\n"),
    # Content-Length that is not exactly one decimal number.
    "duplicate-cl-same": post(b"Content-Length: 5\r\n", b"Content-Length: 5\r\n", body=b"hello"),
    "duplicate-cl-different": post(b"Content-Length: 5\r\n", b"Content-Length: 6\r\n",
                                   body=b"hello!"),
    "cl-list": post(b"Content-Length: 5, 5\r\n", body=b"hello"),
    "cl-plus-sign": post(b"Content-Length: +5\r\n", body=b"hello"),
    "cl-negative": post(b"Content-Length: -5\r\n", body=b"hello"),
    "cl-hex": post(b"Content-Length: 0x5\r\n", body=b"hello"),
    "cl-overflow": post(b"Content-Length: 184467440737095516160\r\n", body=b"hello"),
    # Transfer-Encoding that is not exactly "chunked".
    "te-chunked-then-identity": post(b"Transfer-Encoding: chunked, identity\r\n",
                                     body=b"5\r\nhello\r\n0\r\n\r\n"),
    "te-chunked-not-last-two-headers": post(CHUNKED, b"Transfer-Encoding: identity\r\n",
                                            body=b"5\r\nhello\r\n0\r\n\r\n"),
    "te-identity": post(b"Transfer-Encoding: identity\r\n", body=b"hello"),
    "te-unknown": post(b"Transfer-Encoding: foo\r\n", body=b"hello"),
    "te-unknown-then-chunked": post(b"Transfer-Encoding: foo, chunked\r\n",
                                    body=b"5\r\nhello\r\n0\r\n\r\n"),
    "te-gzip-then-chunked": post(b"Transfer-Encoding: gzip, chunked\r\n",
                                 body=b"5\r\nhello\r\n0\r\n\r\n"),
    "te-chunked-twice": post(b"Transfer-Encoding: chunked, chunked\r\n",
                             body=b"5\r\nhello\r\n0\r\n\r\n"),
    "te-xchunked": post(b"Transfer-Encoding: xchunked\r\n", body=b"5\r\nhello\r\n0\r\n\r\n"),
    "te-folded-continuation": post(b"Transfer-Encoding: identity\r\n chunked\r\n",
                                   body=b"5\r\nhello\r\n0\r\n\r\n"),
    # Field names: whitespace before the colon, separators, NUL, 8-bit, empty, leading space.
    "space-before-colon": post(b"Transfer-Encoding : chunked\r\n", body=b"5\r\nhello\r\n0\r\n\r\n"),
    "tab-before-colon": post(b"Content-Length\t: 5\r\n", body=b"hello"),
    "nul-in-name": get(b"X-F\x00oo: a\r\n"),
    "name-with-parenthesis": get(b"X(Foo): a\r\n"),
    "name-with-space": get(b"X Foo: a\r\n"),
    "name-with-at": get(b"X@Foo: a\r\n"),
    "name-with-quote": get(b'X"Foo: a\r\n'),
    "name-8bit": get(b"X-\xe9: a\r\n"),
    "empty-name": get(b": a\r\n"),
    "first-header-line-folded": b"GET /v1/models HTTP/1.1\r\n X-Foo: a\r\n" + HOST + b"\r\n",
    # Field values and line endings.
    "nul-in-value": get(b"X-Foo: a\x00b\r\n"),
    "control-char-in-value": get(b"X-Foo: a\x01b\r\n"),
    "bare-cr-line-endings": b"GET /v1/models HTTP/1.1\rHost: proxy.test\r\r",
    "bare-cr-in-value": get(b"X-Foo: a\rTransfer-Encoding: chunked\r\n"),
    "bare-lf-line-endings": b"GET /v1/models HTTP/1.1\nHost: proxy.test\n\n",
    "bare-lf-hiding-te": post(b"X-Foo: a\nTransfer-Encoding: chunked\r\n", body=b"0\r\n\r\n"),
    # Request line and Host.
    "absolute-form-other-host": get(
        request_line=b"GET http://evil.example/v1/models HTTP/1.1\r\n"),
    "absolute-form-same-host": get(request_line=b"GET http://proxy.test/v1/models HTTP/1.1\r\n"),
    "tab-in-target": get(request_line=b"GET /v1/models\tHTTP/1.0 HTTP/1.1\r\n"),
    "8bit-in-target": get(request_line=b"GET /v1/mod\xe9ls HTTP/1.1\r\n"),
    "http-0.9-request-line": b"GET /v1/models\r\n\r\n",
    "http-2.0-in-text": get(request_line=b"GET /v1/models HTTP/2.0\r\n"),
    "two-hosts": get(b"Host: evil.example\r\n"),
    "no-host": get(host=b""),
    # Chunked bodies (JSON, so read whole before any upstream contact).
    "chunk-size-hex-overflow": json_chunked(b"fffffffffffffffff1\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-negative": json_chunked(b"-5\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-0x": json_chunked(b"0x5\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-missing": json_chunked(b"\r\nhello\r\n0\r\n\r\n"),
    "chunk-size-trailing-space": json_chunked(b"5 \r\nhello\r\n0\r\n\r\n"),
    "chunk-size-bare-lf": json_chunked(b"5\nhello\r\n0\r\n\r\n"),
    "chunk-data-without-crlf": json_chunked(b"5\r\nhelloXX0\r\n\r\n"),
    "chunk-data-bare-lf": json_chunked(b"5\r\nhello\n0\r\n\r\n"),
    "chunk-longer-than-its-size": json_chunked(b"3\r\nhello\r\n0\r\n\r\n"),
    "chunk-extension-oversized": json_chunked(b"5;" + b"e" * 2000 + b"\r\nhello\r\n0\r\n\r\n"),
    "chunk-extensions-many": json_chunked(
        b"".join(b"1;ext=" + b"v" * 100 + b"\r\nx\r\n" for _ in range(20)) + b"0\r\n\r\n"),
}

# A streamed (non-JSON) body broken after its head was forwarded.
STREAMED_BROKEN = {
    "chunk-size-not-hex": b"5\r\nhello\r\nzz\r\n" + SMUGGLED,
    "chunk-data-without-crlf": b"5\r\nhelloXX0\r\n\r\n" + SMUGGLED,
    "chunk-extension-oversized": b"5;" + b"e" * 2000 + b"\r\nhello\r\n0\r\n\r\n" + SMUGGLED,
}


class SmugglingTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.upstream = self.start_upstream()
        self.proxy = self.start_proxy(proxy_config(self.upstream.url()))
        self.sentinels = 0
        self.begin_case()

    def unframed_bytes(self):
        """Bytes the upstream received that are not part of a complete request."""
        framed = sum(len(r.raw_head) + len(r.raw_body) for r in self.upstream.requests)
        return self.upstream.total_bytes_received() - framed

    def begin_case(self):
        """Later checks look only at what happens from here on, so one failing case does not
        fail every case after it."""
        self.expected_targets = []  # every request the upstream may see, in order
        self.seen = len(self.upstream.requests)
        self.unframed_before = self.unframed_bytes()

    def raw(self, template):
        key = self.proxy.new_key()
        return template.replace(b"%AUTH%", f"Authorization: Bearer {key}\r\n".encode())

    def valid_request(self, client, target):
        response = self.proxy.request("GET", target, client=client)
        self.assertEqual(response.status, 200)
        self.expected_targets.append(target)

    def assert_refused(self, client, data):
        client.send(self.raw(data) + SMUGGLED)
        response = client.read_response()
        self.assert_json_error(response, 400, "bad_request")
        self.assertEqual(response.header("connection"), "close")
        self.assertTrue(client.wait_closed(5), "the connection must close after a 400")

    def assert_upstream_saw_only_expected_requests(self):
        """A sentinel request, then: the upstream saw exactly the expected requests, and every
        byte it received belongs to one of them."""
        self.sentinels += 1
        self.valid_request(None, f"/v1/sentinel/{self.sentinels}")
        upstream = self.upstream
        last = upstream.requests[-1].connection
        # A connection the proxy opened and dropped for a refused request is read to its end.
        wait_until(lambda: all(c.closed_at is not None for c in upstream.connections
                               if c is not last),
                   what="every other upstream connection to be finished")
        self.assertEqual([r.target for r in upstream.requests[self.seen:]],
                         self.expected_targets)
        self.assertEqual(self.unframed_bytes(), self.unframed_before,
                         "the upstream received bytes that are not part of a sent request")

    def assert_every_refusal_accounted(self, count):
        self.proxy.wait_metric("tokentap_requests_total", count, code="400")
        refused = self.proxy.wait_log_count(lambda e: e.get("status") == 400, count)
        self.assertEqual(len(refused), count)
        self.assertTrue(all((e["error_type"], e["proxy_error"], e["error_stage"]) ==
                            ("invalid_request", "bad_request", "downstream") for e in refused), refused)

    def test_refused_on_a_new_connection(self):
        for name, data in REFUSED.items():
            with self.subTest(case=name):
                self.begin_case()
                with self.proxy.connect(timeout=5) as client:
                    self.assert_refused(client, data)
                self.assert_upstream_saw_only_expected_requests()
        self.assert_every_refusal_accounted(len(REFUSED))

    def test_refused_as_the_second_request_on_a_keep_alive_connection(self):
        for i, (name, data) in enumerate(REFUSED.items()):
            with self.subTest(case=name):
                self.begin_case()
                with self.proxy.connect(timeout=5) as client:
                    self.valid_request(client, f"/v1/valid/{i}")
                    before = self.upstream.total_bytes_received()
                    self.assert_refused(client, data)
                    self.assertEqual(self.upstream.total_bytes_received(), before)
                self.assert_upstream_saw_only_expected_requests()
        self.assert_every_refusal_accounted(len(REFUSED))

    def test_malformed_streamed_body_is_cut_off(self):
        """Documented limit: a non-JSON body streams, so its head is already upstream when a
        framing error turns up. The upstream request is then cut off (connection closed, never
        a complete request) and nothing after the error is forwarded."""
        for i, (name, body) in enumerate(STREAMED_BROKEN.items()):
            with self.subTest(case=name):
                target = f"/v1/files/streamed-{i}"
                with self.proxy.connect(timeout=5) as client:
                    self.valid_request(client, f"/v1/valid/{i}")
                    pooled = self.upstream.requests[-1].connection
                    head = post(b"Content-Type: application/octet-stream\r\n", CHUNKED,
                                target=target.encode())
                    client.send(self.raw(head) + body)
                    response = client.read_response()
                    self.assert_json_error(response, 400, "bad_request")
                    self.assertTrue(client.wait_closed(5))
                # The pooled connection carried the broken request: it must be closed.
                wait_until(lambda: pooled.peer_closed_at is not None,
                           what="the cut-off upstream connection to be closed")
                self.assertNotIn(target, [r.target for r in self.upstream.requests])
                self.assertNotIn("/v1/smuggled", [r.target for r in self.upstream.requests])
        self.assert_every_refusal_accounted(len(STREAMED_BROKEN))


class AcceptedNormalisationTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.upstream = self.start_upstream()
        self.proxy = self.start_proxy(proxy_config(self.upstream.url()))

    def send(self, client, data):
        key = self.proxy.new_key()
        client.send(data.replace(b"%AUTH%", f"Authorization: Bearer {key}\r\n".encode()))
        response = client.read_response()
        self.assertEqual(response.status, 200, response.body[:300])
        return self.upstream.requests[-1]

    def each_connection_kind(self):
        """Yields a client twice: fresh, and after a valid request on the same connection."""
        with self.proxy.connect(timeout=5) as client:
            yield client
        with self.proxy.connect(timeout=5) as client:
            self.assertEqual(self.proxy.request("GET", "/v1/first", client=client).status, 200)
            yield client

    def test_obs_fold_is_replaced_by_a_space(self):
        for client in self.each_connection_kind():
            received = self.send(client, get(b"X-Folded: a\r\n b\r\n"))
            self.assertEqual(received.header("x-folded"), "a b")
            self.assertNotRegex(received.raw_head, rb"\n[ \t]", "an obs-fold was forwarded")

    def test_folded_transfer_encoding_frames_the_body_once(self):
        for client in self.each_connection_kind():
            received = self.send(client, post(b"Transfer-Encoding:\r\n chunked\r\n",
                                              body=b"5\r\nhello\r\n0\r\n\r\n"))
            self.assertEqual(received.body, b"hello")
            self.assertEqual(received.header_all("transfer-encoding"), ["chunked"])

    def test_a_request_inside_a_framed_body_is_body_bytes(self):
        bodies = {
            "content-length": lambda: post(f"Content-Length: {len(SMUGGLED)}\r\n".encode(),
                                           body=SMUGGLED),
            "chunked": lambda: post(CHUNKED, body=b"%x\r\n" % len(SMUGGLED) + SMUGGLED
                                    + b"\r\n0\r\n\r\n"),
            "get-with-length": lambda: get(f"Content-Length: {len(SMUGGLED)}\r\n".encode())
                                       + SMUGGLED,
        }
        for name, make in bodies.items():
            with self.subTest(framing=name):
                for client in self.each_connection_kind():
                    received = self.send(client, make())
                    self.assertEqual(received.body, SMUGGLED)
        self.assertNotIn("/v1/smuggled", [r.target for r in self.upstream.requests])
        total = sum(len(r.raw_head) + len(r.raw_body) for r in self.upstream.requests)
        self.assertEqual(self.upstream.total_bytes_received(), total)


if __name__ == "__main__":
    unittest.main()
