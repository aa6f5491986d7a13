"""TLS to the upstream: verified against a CA made at test time, and never a silent fallback."""

import datetime
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import fake_upstream
from certs import CertFactory
from harness import ProxyTestCase, proxy_config, wait_until


class TlsTest(ProxyTestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki = tempfile.mkdtemp(prefix="tokentap-pki-")
        cls.trusted = CertFactory(cls.pki, "trusted")
        unknown = CertFactory(cls.pki, "unknown")
        now = datetime.datetime.now(datetime.timezone.utc)
        cls.good = cls.trusted.leaf()
        cls.with_sni_name = cls.trusted.leaf(dns=("api.example.test", "localhost"))
        cls.bad = {
            "unknown CA": unknown.leaf(),
            "wrong host": cls.trusted.leaf(ips=(), dns=("wrong.example.test",)),
            "expired": cls.trusted.leaf(not_before=now - datetime.timedelta(days=3),
                                        not_after=now - datetime.timedelta(days=1)),
        }

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.pki, True)

    def tls_pair(self, leaf, **tls):
        upstream = self.start_upstream(tls_cert=leaf.cert, tls_key=leaf.key)
        settings = {"ca_file": self.trusted.ca_cert}
        settings.update(tls)
        proxy = self.start_proxy(proxy_config(upstream.url(), route={"tls": settings}))
        return upstream, proxy

    def test_upstream_with_a_certificate_from_the_configured_ca(self):
        upstream, proxy = self.tls_pair(self.good)
        body = os.urandom(200_000)
        response = proxy.request("POST", "/v1/files",
                                 [("Content-Type", "application/octet-stream")], body,
                                 request_id="tls-ok")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body, body)
        received = upstream.requests[0]
        self.assertEqual(received.body, body)
        self.assertEqual(received.header("host"), upstream.authority)
        self.assertIsNone(upstream.connections[0].tls_error)
        self.assertEqual(proxy.log_for("tls-ok")["error_type"], "none")

    def test_curl_through_to_an_https_upstream(self):
        upstream, proxy = self.tls_pair(self.good)
        completion = {"id": "chatcmpl-curl", "object": "chat.completion", "model": "gpt-4o-mini",
                      "choices": [{"index": 0, "finish_reason": "stop",
                                   "message": {"role": "assistant", "content": "hello"}}],
                      "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}
        upstream.handlers["/v1/chat/completions"] = fake_upstream.json_body(completion)
        request = json.dumps({"model": "gpt-4o-mini",
                              "messages": [{"role": "user", "content": "hi"}]})
        host, port = proxy.address
        result = subprocess.run(
            ["curl", "-sS", "--fail-with-body", "--max-time", "10",
             "-H", "content-type: application/json", "-H", "x-request-id: curl-1",
             "--data-binary", request, f"http://{host}:{port}/v1/chat/completions"],
            capture_output=True, timeout=20, check=False)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout), completion)
        self.assertEqual(upstream.requests[0].body, request.encode())
        self.assertIsNone(upstream.connections[0].tls_error)
        self.assertEqual(proxy.log_for("curl-1")["status"], 200)

    def test_untrusted_certificates_fail_with_502_and_no_fallback(self):
        for name, leaf in self.bad.items():
            with self.subTest(certificate=name):
                upstream, proxy = self.tls_pair(leaf)
                request_id = "tls-" + name.replace(" ", "-")
                response = proxy.request("POST", "/v1/chat/completions",
                                         [("Content-Type", "application/json")], b"{}",
                                         request_id=request_id)
                self.assert_json_error(response, 502, "upstream_tls_error", request_id)
                wait_until(lambda: all(c.closed_at for c in upstream.connections),
                           what="the failed handshakes to finish")
                self.assertEqual(upstream.requests, [], "no request may reach the upstream")
                self.assertTrue(upstream.connections, "the proxy did try to connect")
                for connection in upstream.connections:
                    self.assertIsNotNone(connection.tls_error)
                entry = proxy.log_for(request_id)
                self.assertEqual((entry["status"], entry["error_type"], entry["proxy_error"],
                                  entry["error_stage"]),
                                 (502, "tls_error", "upstream_tls_error", "upstream"))
                wait_until(lambda: (proxy.metric("tokentap_upstream_connect_errors_total",
                                                 route="main", kind="tls") or 0) >= 1,
                           what="tokentap_upstream_connect_errors_total{kind=tls} >= 1")

    def test_verify_false_accepts_any_certificate(self):
        _, proxy = self.tls_pair(self.bad["unknown CA"], verify=False)
        self.assertEqual(proxy.request("GET", "/v1/models").status, 200)

    def test_configured_sni_is_sent(self):
        upstream, proxy = self.tls_pair(self.with_sni_name, sni="api.example.test")
        self.assertEqual(proxy.request("GET", "/v1/models").status, 200)
        self.assertEqual(upstream.connections[0].sni, "api.example.test")

    def test_plain_http_upstream(self):
        upstream = self.start_upstream()
        proxy = self.start_proxy(proxy_config(upstream.url()))
        self.assertEqual(proxy.request("POST", "/v1/embeddings", [], b"{}").status, 200)
        self.assertEqual(upstream.requests[0].body, b"{}")


if __name__ == "__main__":
    unittest.main()
