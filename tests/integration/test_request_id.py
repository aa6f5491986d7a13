"""X-Request-ID: kept when sane, replaced by a UUIDv4 otherwise, and the provider's id wins."""

import unittest

import fake_upstream
from harness import UUID4_RE, ProxyTestCase, build_request, key_headers, proxy_config


class RequestIdTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.upstream = self.start_upstream()
        self.proxy = self.start_proxy(proxy_config(self.upstream.url()))

    def raw_request(self, request_id_header):
        """Sends a request whose X-Request-ID line is given raw (or absent when None)."""
        headers = key_headers(self.proxy.new_key())
        data = build_request("GET", "/v1/models", headers)
        if request_id_header is not None:
            data = data[:-2] + b"X-Request-ID: " + request_id_header + b"\r\n\r\n"
        with self.proxy.connect() as client:
            client.send(data)
            return client.read_response()

    def test_sane_client_ids_are_kept(self):
        for request_id in ("client-abc-123", "req_01J2Z3:x/y=z+q", "a" * 128):
            with self.subTest(request_id=request_id[:20]):
                response = self.proxy.request("GET", "/v1/models", request_id=request_id)
                self.assertEqual(response.header_all("x-request-id"), [request_id])
                self.assertEqual(self.upstream.requests[-1].header_all("x-request-id"),
                                 [request_id])
                entry = self.proxy.log_for(request_id)
                self.assertEqual(entry["upstream_request_id"], "")

    def test_absent_or_insane_ids_are_replaced_by_a_uuid4(self):
        cases = {"absent": None, "empty": b"", "too long": b"a" * 129,
                 "non-ascii": b"id-\xff\xfe"}
        seen = set()
        for name, raw in cases.items():
            with self.subTest(case=name):
                response = self.raw_request(raw)
                self.assertEqual(response.status, 200)
                generated = response.header_all("x-request-id")
                self.assertEqual(len(generated), 1, response.headers)
                self.assertRegex(generated[0], UUID4_RE)
                self.assertEqual(self.upstream.requests[-1].header_all("x-request-id"),
                                 generated)
                self.proxy.log_for(generated[0])
                seen.add(generated[0])
        self.assertEqual(len(seen), len(cases), "every generated id is new")

    def test_the_providers_request_id_is_returned_unchanged(self):
        self.upstream.handlers["/v1/chat/completions"] = fake_upstream.fixed(
            200, [("Content-Type", "application/json"), ("x-request-id", "req_Upstream-XYZ_789")],
            b'{"choices":[]}')
        for sent in ("client-id-1", False):
            with self.subTest(client_sends_id=bool(sent)):
                response = self.proxy.request("POST", "/v1/chat/completions",
                                              [("Content-Type", "application/json")], b"{}",
                                              request_id=sent)
                self.assertEqual(response.header_all("x-request-id"), ["req_Upstream-XYZ_789"])
                ours = self.upstream.requests[-1].header("x-request-id")
                if sent:
                    self.assertEqual(ours, sent)
                else:
                    self.assertRegex(ours, UUID4_RE)
                entry = self.proxy.log_for(ours)
                self.assertEqual(entry["upstream_request_id"], "req_Upstream-XYZ_789")

    def test_proxy_errors_carry_the_request_id(self):
        self.upstream.stop()
        response = self.proxy.request("GET", "/v1/models", request_id="err-id-1")
        self.assert_json_error(response, 502, request_id="err-id-1")
        self.assertEqual(response.header("x-request-id"), "err-id-1")
        response = self.raw_request(None)
        generated = response.header("x-request-id")
        self.assertRegex(generated, UUID4_RE)
        self.assert_json_error(response, 502, request_id=generated)


if __name__ == "__main__":
    unittest.main()
