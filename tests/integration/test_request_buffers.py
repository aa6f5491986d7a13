"""One process-wide budget for buffered request bodies (limits.max_buffered_request_bytes).

JSON bodies are read whole before they are forwarded. Each reserves its bytes (all of a declared
Content-Length at once, a chunked one as it grows) against the budget, shared by all workers; a
request that does not fit is answered 503 request_buffer_full, and the reservation is given back
when the body has left for the upstream or the request ended, however it ended. The body moves to
the upstream connection without a copy, and over TLS it is encrypted in pieces as the socket
drains, so the proxy's peak RSS (VmHWM) stays near one copy of what the budget admits.

Under ASan+UBSan (TOKENTAP_SANITIZED=1) the proxy runs with an 8 MiB quarantine, as in
test_resources; the peak bounds get 48 MiB more (shadow memory and redzones of the buffers).
"""

import base64
import hashlib
import os
import select
import threading
import time
import unittest

from certs import CertFactory
from harness import ProxyTestCase, build_request, key_headers, proxy_config, wait_until

KIB = 1 << 10
MIB = 1 << 20
SANITIZED = os.environ.get("TOKENTAP_SANITIZED") == "1"
ASAN_ENV = {"ASAN_OPTIONS": ":".join(
    filter(None, [os.environ.get("ASAN_OPTIONS", ""), "quarantine_size_mb=8"]))}
ASAN_SLACK = 48 * MIB if SANITIZED else 0
JSON = [("Content-Type", "application/json")]
PAYLOAD = base64.b64encode(os.urandom(24 * MIB))  # 32 MiB of JSON-safe text


def json_body(n, size):
    """A distinct JSON body of exactly `size` bytes."""
    head = b'{"model":"gpt-4o-mini","n":%06d,"input":"' % n
    return head + PAYLOAD[n:n + size - len(head) - 2] + b'"}'


def digest(request, reply):
    """Answers with the SHA-256 of the body received, not the body."""
    reply.respond(200, [("Content-Type", "application/json"),
                        ("X-Body-Sha256", hashlib.sha256(request.body).hexdigest())],
                  b'{"ok":true}')


def peak_rss(proxy):
    with open(f"/proc/{proxy.pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * KIB
    raise AssertionError("no VmHWM in /proc status")


class BufferBudgetTest(ProxyTestCase):
    BODY = 8 * MIB
    BUDGET = 64 * MIB
    CLIENTS = 32
    FIT = BUDGET // BODY  # 8

    def start(self, **limits):
        upstream = self.start_upstream(record_requests=False)
        upstream.default_handler = digest
        settings = {"max_request_body": f"{self.BODY}", "max_buffered_request_bytes":
                    f"{self.BUDGET}"}
        settings.update(limits)
        proxy = self.start_proxy(proxy_config(upstream.url(), limits=settings,
                                              timeouts={"idle": "60s"}),
                                 env=ASAN_ENV if SANITIZED else None)
        return upstream, proxy

    def assert_drained(self, proxy):
        proxy.wait_metric("tokentap_buffered_request_bytes", 0, timeout=10)

    def test_concurrent_large_bodies_over_the_budget(self):
        upstream, proxy = self.start()
        self.assertEqual(proxy.request("POST", "/v1/embeddings", JSON, json_body(0, 1000)).status,
                         200)
        self.assert_drained(proxy)
        baseline_peak = peak_rss(proxy)
        key = key_headers(proxy.new_key())
        bodies = [json_body(i, self.BODY) for i in range(self.CLIENTS)]

        # Phase 1, deterministic: 32 clients send their head and 16 KiB of an 8 MiB body, and
        # wait. The first 8 heads take the whole budget; the other 24 are answered at once.
        clients = [proxy.connect(timeout=60) for _ in range(self.CLIENTS)]
        self.addCleanup(lambda: [c.close() for c in clients])
        for i, client in enumerate(clients):
            data = build_request("POST", "/v1/embeddings",
                                 JSON + key + [("X-Request-ID", f"budget-{i}")], bodies[i])
            head_end = data.index(b"\r\n\r\n") + 4
            client.send(data[:head_end + 16 * KIB])
            client.rest = data[head_end + 16 * KIB:]
        answered = set()
        deadline = time.monotonic() + 30
        while len(answered) < self.CLIENTS - self.FIT and time.monotonic() < deadline:
            readable, _, _ = select.select([c.sock for c in clients], [], [], 1.0)
            answered |= {i for i, c in enumerate(clients) if c.sock in readable}
        self.assertEqual(len(answered), self.CLIENTS - self.FIT, "clients answered early")
        self.assertEqual(proxy.metric("tokentap_buffered_request_bytes"), self.BUDGET)
        for i in answered:
            response = clients[i].read_response(method="POST")
            self.assertEqual(response.status, 503)
            self.assertEqual(response.header("retry-after"), "1")
            self.assertIn("request_buffer_full", response.body.decode())
            line = proxy.log_for(f"budget-{i}")
            self.assertEqual(line["error_type"], "overloaded")
            self.assertEqual(line["proxy_error"], "request_buffer_full")
        for i, client in enumerate(clients):
            if i in answered:
                continue
            client.send(client.rest)
        for i, client in enumerate(clients):
            if i in answered:
                continue
            response = client.read_response(method="POST")
            self.assertEqual(response.status, 200)
            self.assertEqual(response.header("x-body-sha256"),
                             hashlib.sha256(bodies[i]).hexdigest(), "forwarded byte for byte")
        self.assert_drained(proxy)
        self.assertEqual(proxy.metric("tokentap_request_buffer_full_total"),
                         self.CLIENTS - self.FIT)

        # Phase 2, load: 32 threads each send an 8 MiB body with Expect: 100-continue (the
        # 503 comes instead of the 100, before the body is sent) and on a 503 try again shortly
        # on a new connection, until every body went through byte for byte.
        refused = []
        failures = []

        def post(i):
            with proxy.connect(timeout=60) as client:
                data = build_request("POST", "/v1/embeddings",
                                     JSON + key + [("Expect", "100-continue")], bodies[i])
                head_end = data.index(b"\r\n\r\n") + 4
                client.send(data[:head_end])
                interim = client.read_until(b"\r\n\r\n")
                if interim is not None and interim.startswith(b"HTTP/1.1 100 "):
                    client.send(data[head_end:])
                elif interim is not None:
                    client.buf[0:0] = interim
                return client.read_response(method="POST")

        def send(i):
            try:
                while True:
                    response = post(i)
                    if response.status == 503:
                        refused.append(i)
                        time.sleep(float(response.header("retry-after") or 0) or 0.05)
                        continue
                    if response.header("x-body-sha256") != hashlib.sha256(bodies[i]).hexdigest():
                        failures.append(f"{i}: status {response.status}, body differs")
                    return
            except Exception as e:  # pylint: disable=broad-except
                failures.append(f"{i}: {e!r}")

        threads = [threading.Thread(target=send, args=(i,)) for i in range(self.CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        self.assertEqual(failures, [])
        self.assert_drained(proxy)
        peak = peak_rss(proxy)
        print(f"\n{2 * self.CLIENTS} concurrent {self.BODY // MIB} MiB bodies, budget "
              f"{self.BUDGET // MIB} MiB: {self.CLIENTS - self.FIT} + {len(refused)} refused "
              f"with 503, peak RSS {baseline_peak / MIB:.1f} -> {peak / MIB:.1f} MiB")
        # What the budget admits, once, plus the working set of 64 connections and the
        # allocator's slack: measured +80 MiB here (without the budget: +512 MiB and more).
        self.assertLess(peak - baseline_peak, self.BUDGET + 24 * MIB + ASAN_SLACK)
        self.assertEqual(upstream.errors, [])

    def test_reservation_comes_back_on_abort_and_chunked_growth_is_bounded(self):
        _, proxy = self.start(max_request_body="4MiB", max_buffered_request_bytes="4MiB")
        key = key_headers(proxy.new_key())
        # A declared length is reserved whole, up front.
        holder = proxy.connect()
        self.addCleanup(holder.close)
        holder.send(build_request("POST", "/v1/embeddings", JSON + key,
                                  json_body(1, 3 * MIB))[:64 * KIB])
        wait_until(lambda: proxy.metric("tokentap_buffered_request_bytes") == 3 * MIB,
                   what="the 3 MiB reservation")
        # A chunked body grows within what is left, then is refused mid-body (past 1 MiB).
        response = proxy.request("POST", "/v1/embeddings", JSON, json_body(2, 3 * MIB // 2),
                                 chunked=True, chunk_size=64 * KIB, request_id="chunked-refused")
        self.assertEqual(response.status, 503)
        self.assertEqual(proxy.log_for("chunked-refused")["proxy_error"], "request_buffer_full")
        self.assertEqual(proxy.metric("tokentap_buffered_request_bytes"), 3 * MIB)
        # The client holding the reservation goes away mid-body: all of it comes back.
        holder.abort()
        self.assert_drained(proxy)
        chunked = json_body(2, 3 * MIB)
        response = proxy.request("POST", "/v1/embeddings", JSON, chunked, chunked=True,
                                 chunk_size=64 * KIB)
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header("x-body-sha256"), hashlib.sha256(chunked).hexdigest())
        self.assert_drained(proxy)


class LargeBodyCopiesTest(ProxyTestCase):
    """One 32 MiB body costs about one copy of itself at the peak, over TLS too."""

    BODY = 32 * MIB

    @classmethod
    def setUpClass(cls):
        cls.pki = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                               f"tokentap-pki-buffers-{os.getpid()}")
        os.makedirs(cls.pki, exist_ok=True)
        cls.ca = CertFactory(cls.pki, "buffers")
        cls.leaf = cls.ca.leaf()

    def check_one_body(self, tls):
        upstream = self.start_upstream(tls_cert=self.leaf.cert if tls else None,
                                       tls_key=self.leaf.key if tls else None,
                                       record_requests=False)
        upstream.default_handler = digest
        route = {"tls": {"ca_file": self.ca.ca_cert}} if tls else None
        proxy = self.start_proxy(proxy_config(upstream.url(), route=route,
                                              limits={"max_request_body": "32MiB"}),
                                 env=ASAN_ENV if SANITIZED else None)
        self.assertEqual(proxy.request("POST", "/v1/embeddings", JSON, json_body(0, 1000)).status,
                         200)
        baseline_peak = peak_rss(proxy)
        body = json_body(3, self.BODY)
        # A new upstream connection each time: the body is complete before it is ready.
        for framing in ("length", "chunked"):
            upstream_requests = sum(c.request_count for c in upstream.connections)
            response = proxy.request("POST", "/v1/embeddings",
                                     JSON + [("Connection", "close")], body,
                                     chunked=framing == "chunked", chunk_size=MIB)
            self.assertEqual(response.status, 200, framing)
            self.assertEqual(response.header("x-body-sha256"), hashlib.sha256(body).hexdigest(),
                             framing)
            self.assertEqual(sum(c.request_count for c in upstream.connections),
                             upstream_requests + 1)
        # A streamed (not buffered) body through the same write path, in 16 KiB chunks.
        octets = PAYLOAD[:self.BODY]
        head = build_request("POST", "/v1/files", [("Content-Type", "application/octet-stream"),
                                                   ("Transfer-Encoding", "chunked")])
        framed = b"".join(b"%x\r\n" % len(octets[i:i + 16 * KIB]) + octets[i:i + 16 * KIB] +
                          b"\r\n" for i in range(0, len(octets), 16 * KIB))
        with proxy.connect(timeout=60) as client:
            client.send(head + framed + b"0\r\n\r\n")
            response = client.read_response(method="POST")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header("x-body-sha256"), hashlib.sha256(octets).hexdigest())
        peak = peak_rss(proxy)
        print(f"\n{self.BODY // MIB} MiB JSON body over {'TLS' if tls else 'plain HTTP'}: "
              f"peak RSS {baseline_peak / MIB:.1f} -> {peak / MIB:.1f} MiB")
        # One copy of the body; growing a chunked one by doubling briefly holds the old half
        # too. Two copies (a pending_ copy, or plaintext and ciphertext) would not fit.
        self.assertLess(peak - baseline_peak, self.BODY * 3 // 2 + 8 * MIB + ASAN_SLACK)
        proxy.wait_metric("tokentap_buffered_request_bytes", 0, timeout=10)

    def test_plain_http(self):
        self.check_one_body(tls=False)

    def test_tls(self):
        self.check_one_body(tls=True)


if __name__ == "__main__":
    unittest.main()
