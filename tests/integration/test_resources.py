"""Resource bounds under abuse: refused oversized requests leave no memory behind, a client that
stops reading a 1 GiB response pauses the upstream instead of growing the proxy, and 10,000 idle
keep-alive connections cost a few KiB each.

Under ASan+UBSan (TOKENTAP_SANITIZED=1, set by CMake) everything runs with an 8 MiB ASan
quarantine (so freed memory is reused as in the release build), and every bound holds except the
absolute 64 MiB RSS under backpressure: ASan's shadow memory alone puts the idle proxy near
60 MiB, so there only its growth is checked. TOKENTAP_BACKPRESSURE_BYTES overrides the 1 GiB
read-through size (the stall check does not depend on it); the full GiB reads through in ~3 s in
either build on a 2-core VM.
"""

import os
import resource
import time
import unittest

from harness import ProxyTestCase, build_request, key_headers, proxy_config, wait_until

KIB = 1 << 10
MIB = 1 << 20
SANITIZED = os.environ.get("TOKENTAP_SANITIZED") == "1"
# A small quarantine, so that ASan reuses freed buffers as the release allocator does.
ASAN_ENV = {"ASAN_OPTIONS": ":".join(
    filter(None, [os.environ.get("ASAN_OPTIONS", ""), "quarantine_size_mb=8"]))}


def asan_env():
    return ASAN_ENV if SANITIZED else None


class OversizedRequestMemoryTest(ProxyTestCase):
    WARMUP = 60
    ROUNDS = 300
    RSS_GROWTH_LIMIT = 4 * MIB

    def test_refused_requests_do_not_grow_memory(self):
        upstream = self.start_upstream()
        proxy = self.start_proxy(proxy_config(
            upstream.url(),
            limits={"max_header_bytes": "32KiB", "max_headers": 50,
                    "max_request_body": "256KiB"}), env=asan_env())
        json_type = [("Content-Type", "application/json")]
        big_json = b'{"input":"' + b"z" * (300 * KIB) + b'"}'
        cases = [
            ("one huge header", 431, lambda: proxy.request(
                "GET", "/v1/models", [("X-Big", "b" * (40 * KIB))])),
            ("too many headers", 431, lambda: proxy.request(
                "GET", "/v1/models", [(f"X-Many-{i}", "v" * 200) for i in range(60)])),
            ("declared body too large", 413, lambda: proxy.request(
                "POST", "/v1/embeddings", json_type, big_json)),
            ("chunked body too large", 413, lambda: proxy.request(
                "POST", "/v1/embeddings", json_type, big_json, chunked=True,
                chunk_size=16 * KIB)),
        ]

        def one_round():
            for name, status, send in cases:
                response = send()
                self.assertEqual(response.status, status, name)

        for _ in range(self.WARMUP):
            one_round()
        before = proxy.rss_bytes()
        peak = before
        for i in range(self.ROUNDS):
            one_round()
            if i % 20 == 0:
                peak = max(peak, proxy.rss_bytes())
        after = proxy.rss_bytes()
        peak = max(peak, after)
        total = (self.WARMUP + self.ROUNDS) * len(cases)
        print(f"\noversized requests: RSS {before / MIB:.1f} MiB after {self.WARMUP * 4} "
              f"warm-up refusals, {after / MIB:.1f} MiB (peak {peak / MIB:.1f}) after "
              f"{self.ROUNDS * 4} more")
        self.assertLess(peak - before, self.RSS_GROWTH_LIMIT,
                        f"RSS grew by {(peak - before) / MIB:.2f} MiB over "
                        f"{self.ROUNDS * len(cases)} refused requests")
        self.assertEqual(upstream.connections, [], "refusals must not contact the upstream")
        proxy.wait_metric("tokentap_requests_total", total // 2, code="431")
        proxy.wait_metric("tokentap_requests_total", total // 2, code="413")


class GibBackpressureTest(ProxyTestCase):
    BLOCK = os.urandom(MIB)
    RSS_GROWTH_LIMIT = 32 * MIB
    RSS_LIMIT = 64 * MIB  # absolute, release build only

    def test_client_that_stops_reading_a_gib_pauses_the_upstream(self):
        total = int(os.environ.get("TOKENTAP_BACKPRESSURE_BYTES", 1024 * MIB))
        total -= total % MIB
        upstream = self.start_upstream()
        block = self.BLOCK

        def huge(_request, reply):
            reply.set_send_buffer(256 * KIB)
            reply.head(200, [("Content-Type", "application/octet-stream"),
                             ("Content-Length", str(total))])
            for _ in range(total // MIB):
                reply.send(block)

        upstream.handlers["/v1/files/file-huge/content"] = huge
        proxy = self.start_proxy(proxy_config(upstream.url()), env=asan_env())
        self.assertEqual(proxy.request("GET", "/v1/models").status, 200)
        baseline = proxy.rss_bytes()

        with proxy.connect(timeout=60, recv_buffer=64 * KIB) as client:
            client.send(build_request("GET", "/v1/files/file-huge/content",
                                      key_headers(proxy.new_key())))
            request = upstream.wait_for(
                lambda: [r for r in upstream.requests if r.path.endswith("/content")])[0]
            connection = request.connection
            # Read nothing until the upstream stops making progress: its writes block.
            last_sent, last_change = -1, time.monotonic()
            deadline = time.monotonic() + 30
            peak = baseline
            while time.monotonic() - last_change < 0.5:
                self.assertLess(time.monotonic(), deadline, "the upstream never stalled")
                peak = max(peak, proxy.rss_bytes())
                self.assertLess(peak - baseline, self.RSS_GROWTH_LIMIT,
                                "proxy RSS grew while the client was not reading")
                sent = connection.bytes_sent
                if sent != last_sent:
                    last_sent, last_change = sent, time.monotonic()
                time.sleep(0.05)
            stalled_rss = proxy.rss_bytes()
            print(f"\n{total // MIB} MiB backpressure: upstream paused after "
                  f"{last_sent / MIB:.1f} MiB; proxy RSS {baseline / MIB:.1f} MiB before, "
                  f"{stalled_rss / MIB:.1f} MiB while paused (peak {peak / MIB:.1f} MiB)")
            self.assertLess(last_sent, 64 * MIB, "the upstream wrote far more than was read")
            if not SANITIZED:
                self.assertLess(peak, self.RSS_LIMIT)

            started = time.monotonic()
            response = client.read_head()
            self.assertEqual(response.status, 200)
            doubled = memoryview(block + block)
            offset = 0
            since_sample = 0
            for data in client.body_pieces(response):
                position = offset % MIB
                if doubled[position:position + len(data)] != data:
                    self.fail(f"body differs from what the upstream sent at byte {offset}")
                offset += len(data)
                since_sample += len(data)
                if since_sample >= 32 * MIB:
                    since_sample = 0
                    peak = max(peak, proxy.rss_bytes())
            self.assertTrue(response.complete)
            elapsed = time.monotonic() - started
        self.assertEqual(offset, total)
        print(f"read {total / MIB:.0f} MiB through in {elapsed:.1f} s; proxy RSS peak "
              f"{peak / MIB:.1f} MiB")
        self.assertLess(peak - baseline, self.RSS_GROWTH_LIMIT)
        if not SANITIZED:
            self.assertLess(peak, self.RSS_LIMIT)


def raise_fd_limit(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        return hard
    if soft == resource.RLIM_INFINITY or soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return wanted


class IdleConnectionsTest(ProxyTestCase):
    CONNECTIONS = 10_000
    WAVE = 64
    PER_CONNECTION_LIMIT = 16 * KIB

    def test_ten_thousand_idle_keep_alive_connections(self):
        # The proxy inherits this process's limit: both need one fd per connection and more.
        needed = self.CONNECTIONS + 1024
        if raise_fd_limit(needed) < needed:
            self.skipTest(f"RLIMIT_NOFILE hard limit below {needed}")
        upstream = self.start_upstream()
        proxy = self.start_proxy(proxy_config(
            upstream.url(), limits={"max_connections": self.CONNECTIONS + 100},
            timeouts={"downstream_header": "300s"}), env=asan_env())
        for _ in range(20):
            self.assertEqual(proxy.request("GET", "/v1/models").status, 200)
        before = proxy.rss_bytes()

        request = build_request("GET", "/v1/models", key_headers(proxy.new_key()))
        clients = []
        self.addCleanup(lambda: [c.close() for c in clients])
        started = time.monotonic()
        for first in range(0, self.CONNECTIONS, self.WAVE):
            wave = [proxy.connect(timeout=30)
                    for _ in range(min(self.WAVE, self.CONNECTIONS - first))]
            clients.extend(wave)
            for client in wave:
                client.send(request)
            for client in wave:
                response = client.read_response()
                self.assertEqual(response.status, 200)
        wait_until(lambda: proxy.metric("tokentap_open_connections", side="downstream")
                   >= self.CONNECTIONS, timeout=30, what="every connection to be open")
        after = proxy.rss_bytes()
        per_connection = (after - before) / self.CONNECTIONS
        print(f"\n{self.CONNECTIONS} idle keep-alive connections (one request served on each) "
              f"in {time.monotonic() - started:.1f} s: proxy RSS {before / MIB:.1f} -> "
              f"{after / MIB:.1f} MiB, {per_connection / KIB:.2f} KiB per connection")
        self.assertLess(per_connection, self.PER_CONNECTION_LIMIT)

        # Still serving: a new connection, and the oldest idle one.
        self.assertEqual(proxy.request("POST", "/v1/embeddings", [], b"{}").status, 200)
        self.assertEqual(proxy.request("GET", "/v1/models", client=clients[0]).status, 200)
        self.assertGreaterEqual(len(os.listdir(f"/proc/{proxy.pid}/fd")), self.CONNECTIONS)
        for client in clients:
            client.close()
        proxy.wait_metric("tokentap_open_connections", 0, timeout=30, side="downstream")
        self.assertEqual(len([e for e in proxy.access_log() if e.get("status") == 200]),
                         20 + self.CONNECTIONS + 2)


if __name__ == "__main__":
    unittest.main()
