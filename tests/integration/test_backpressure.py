"""A slow client must slow the upstream down instead of growing the proxy's memory."""

import hashlib
import os
import time
import unittest

from harness import ProxyTestCase, build_request, key_headers, proxy_config

MIB = 1 << 20
TOTAL = 200 * MIB
BLOCK = os.urandom(MIB)
RSS_GROWTH_LIMIT = 60 * MIB


class BackpressureTest(ProxyTestCase):
    def test_slow_reader_keeps_proxy_memory_bounded(self):
        upstream = self.start_upstream()

        def huge(_request, reply):
            reply.set_send_buffer(256 * 1024)
            reply.start_chunked(200, [("Content-Type", "application/octet-stream")])
            for _ in range(TOTAL // MIB):
                reply.chunk(BLOCK)
            reply.end_chunks()

        upstream.handlers["/v1/files/file-big/content"] = huge
        # A small ASan quarantine, so that freed buffers are reused as they would be without it.
        asan = os.environ.get("ASAN_OPTIONS", "")
        proxy = self.start_proxy(proxy_config(upstream.url()), env={
            "ASAN_OPTIONS": (asan + ":" if asan else "") + "quarantine_size_mb=8"})
        self.assertEqual(proxy.request("GET", "/v1/models").status, 200)
        baseline = proxy.rss_bytes()
        peak = baseline

        with proxy.connect(timeout=30, recv_buffer=64 * 1024) as client:
            client.send(build_request("GET", "/v1/files/file-big/content",
                                      key_headers(proxy.new_key())))
            request = upstream.wait_for(
                lambda: [r for r in upstream.requests if r.path.endswith("/content")])[0]
            connection = request.connection

            # Read nothing until the upstream stops making progress: the proxy must have
            # stopped reading from it. Fail early if it buffers instead.
            last_sent, last_change = -1, time.monotonic()
            deadline = time.monotonic() + 30
            while time.monotonic() - last_change < 0.5:
                self.assertLess(time.monotonic(), deadline, "upstream never stalled")
                peak = max(peak, proxy.rss_bytes())
                self.assertLess(peak - baseline, RSS_GROWTH_LIMIT,
                                "proxy RSS grew while the client was not reading")
                sent = connection.bytes_sent
                if sent != last_sent:
                    last_sent, last_change = sent, time.monotonic()
                time.sleep(0.05)
            self.assertLess(last_sent, TOTAL // 2,
                            "the upstream sent far more than the client read")

            response = client.read_head()
            self.assertEqual(response.status, 200)
            digest = hashlib.sha256()
            since_sample = 0
            for data in client.body_pieces(response):
                digest.update(data)
                since_sample += len(data)
                if since_sample >= 8 * MIB:
                    since_sample = 0
                    peak = max(peak, proxy.rss_bytes())
            self.assertTrue(response.complete)
        self.assertEqual(response.body_length, TOTAL)
        expected = hashlib.sha256()
        for _ in range(TOTAL // MIB):
            expected.update(BLOCK)
        self.assertEqual(digest.hexdigest(), expected.hexdigest())
        self.assertLess(peak - baseline, RSS_GROWTH_LIMIT,
                        f"proxy RSS grew by {(peak - baseline) / MIB:.1f} MiB")


if __name__ == "__main__":
    unittest.main()
