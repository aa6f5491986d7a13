"""Connection reuse on both sides, pipelining, 100-continue and bodiless responses."""

import unittest

import fake_upstream
from harness import ProxyTestCase, build_request, key_headers, proxy_config


class KeepAliveTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.upstream = self.start_upstream()
        self.proxy = self.start_proxy(proxy_config(self.upstream.url()))

    def test_sequential_requests_reuse_both_connections(self):
        before = {reused: self.proxy.metric("tokentap_upstream_connections_total", route="main",
                                            reused=reused) or 0 for reused in ("true", "false")}
        with self.proxy.connect() as client:
            for i in range(3):
                body = b'{"n":%d}' % i
                response = self.proxy.request("POST", f"/v1/seq/{i}", [], body, client=client)
                self.assertEqual(response.status, 200)
                self.assertEqual(response.header("x-echo-target"), f"/v1/seq/{i}")
                self.assertEqual(response.body, body)
        self.assertEqual(len(self.upstream.connections), 1, "one upstream connection")
        self.assertEqual(len(self.upstream.connections[0].requests), 3)
        self.proxy.wait_metric("tokentap_upstream_connections_total", before["false"] + 1,
                               route="main", reused="false")
        self.proxy.wait_metric("tokentap_upstream_connections_total", before["true"] + 2,
                               route="main", reused="true")

    def test_new_client_connections_reuse_the_pooled_upstream_connection(self):
        for i in range(3):
            self.assertEqual(self.proxy.request("GET", f"/v1/models/{i}").status, 200)
        self.assertEqual(len(self.upstream.connections), 1)

    def test_pipelined_requests_are_answered_in_order(self):
        def slow(request, reply):
            reply.pause(0.2)
            fake_upstream.echo()(request, reply)

        self.upstream.handlers["/v1/slow"] = slow
        targets = ["/v1/slow", "/v1/fast?1", "/v1/fast?2"]
        bodies = [b"first", b"second-body", b""]
        data = b"".join(
            build_request("POST", target, key_headers(self.proxy.new_key()), body)
            for target, body in zip(targets, bodies))
        with self.proxy.connect() as client:
            client.send(data)
            for target, body in zip(targets, bodies):
                response = client.read_response("POST")
                self.assertEqual(response.status, 200)
                self.assertEqual(response.header("x-echo-target"), target)
                self.assertEqual(response.body, body)
        self.assertEqual([r.target for r in self.upstream.requests], targets)

    def test_expect_100_continue(self):
        body = b'{"model":"gpt-4o-mini","input":"' + b"x" * 5000 + b'"}'
        headers = key_headers(self.proxy.new_key()) + [
            ("Expect", "100-continue"), ("Content-Type", "application/json"),
            ("Content-Length", str(len(body)))]
        with self.proxy.connect(timeout=5) as client:
            client.send(build_request("POST", "/v1/embeddings", headers))
            interim = client.read_until(b"\r\n\r\n")
            self.assertIsNotNone(interim, "connection closed instead of 100 Continue")
            self.assertRegex(interim, rb"^HTTP/1\.1 100 ")
            client.send(body)
            response = client.read_response("POST")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, body)
        self.assertEqual(self.upstream.requests[0].body, body)

    def test_head_204_and_304_have_no_body_and_keep_the_connection(self):
        self.upstream.handlers["/v1/files/f1"] = fake_upstream.fixed(
            200, [("Content-Type", "application/json"), ("Content-Length", "1234")],
            framing="none")
        self.upstream.handlers["/v1/threads/t1"] = fake_upstream.fixed(204, framing="none")
        self.upstream.handlers["/v1/models/m1"] = fake_upstream.fixed(
            304, [("ETag", '"abc"'), ("Content-Length", "1234")], framing="none")
        with self.proxy.connect(timeout=5) as client:
            head = self.proxy.request("HEAD", "/v1/files/f1", client=client)
            self.assertEqual(head.status, 200)
            self.assertEqual(head.header("content-length"), "1234")
            no_content = self.proxy.request("DELETE", "/v1/threads/t1", client=client)
            self.assertEqual(no_content.status, 204)
            not_modified = self.proxy.request("GET", "/v1/models/m1",
                                              [("If-None-Match", '"abc"')], client=client)
            self.assertEqual(not_modified.status, 304)
            self.assertEqual(not_modified.header("etag"), '"abc"')
            after = self.proxy.request("POST", "/v1/after", [], b"still-works", client=client)
            self.assertEqual(after.status, 200)
            self.assertEqual(after.body, b"still-works")
            self.assertEqual(client.buf, b"", "no stray bytes after the bodiless responses")
        self.assertEqual(len(self.upstream.connections), 1)
        self.assertEqual([r.method for r in self.upstream.requests],
                         ["HEAD", "DELETE", "GET", "POST"])


if __name__ == "__main__":
    unittest.main()
