"""Slowloris: many connections trickling a request head are cut at the header deadline, and
normal requests served meanwhile keep their latency."""

import selectors
import socket
import statistics
import threading
import time
import unittest

from harness import ProxyTestCase, proxy_config, wait_until

ATTACKERS = 200
HEADER_TIMEOUT = 3.0  # seconds: timeouts.downstream_header in this test
TRICKLE_INTERVAL = 0.1  # one byte per attacker per interval
MEASURE_FOR = 1.2  # seconds of requests, with and without the attack
PACE = 0.005  # seconds between normal requests


class Attacker:
    """One connection that sends a request head one byte at a time and never finishes it."""

    def __init__(self, address, key):
        self.sock = socket.create_connection(address, timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.opened_at = time.monotonic()
        self.sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: proxy.test\r\n"
                          + f"Authorization: Bearer {key}\r\n".encode() + b"X-Slow: ")
        self.sock.setblocking(False)
        self.received = bytearray()
        self.closed_at = None

    def trickle(self):
        try:
            self.sock.send(b"a")
        except OSError:
            pass  # the proxy closed the connection; the reader notices

    def on_readable(self):
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.received += data
        else:
            self.closed_at = time.monotonic()
            self.sock.close()


class Attack:
    def __init__(self, address, keys):
        self.attackers = [Attacker(address, key) for key in keys]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        selector = selectors.DefaultSelector()
        for attacker in self.attackers:
            selector.register(attacker.sock, selectors.EVENT_READ, attacker)
        next_trickle = time.monotonic()
        while not self.stop.is_set() and any(a.closed_at is None for a in self.attackers):
            timeout = max(0.0, next_trickle - time.monotonic())
            for key, _ in selector.select(timeout):
                attacker = key.data
                attacker.on_readable()
                if attacker.closed_at is not None:
                    selector.unregister(key.fileobj)
            if time.monotonic() >= next_trickle:
                for attacker in self.attackers:
                    if attacker.closed_at is None:
                        attacker.trickle()
                next_trickle += TRICKLE_INTERVAL
        selector.close()

    def close(self):
        self.stop.set()
        self.thread.join(10)
        for attacker in self.attackers:
            if attacker.closed_at is None:
                attacker.sock.close()


class SlowlorisTest(ProxyTestCase):
    def test_trickling_heads_are_cut_and_normal_requests_keep_their_latency(self):
        upstream = self.start_upstream()
        proxy = self.start_proxy(proxy_config(
            upstream.url(), timeouts={"downstream_header": f"{int(HEADER_TIMEOUT * 1000)}ms"}))

        def latencies(prefix, duration):
            samples = []
            end = time.monotonic() + duration
            while time.monotonic() < end:
                started = time.monotonic()
                response = proxy.request("GET", f"/v1/models/{prefix}-{len(samples)}")
                samples.append(time.monotonic() - started)
                self.assertEqual(response.status, 200)
                time.sleep(PACE)
            return samples

        latencies("warm", 0.1)
        baseline = statistics.median(latencies("baseline", MEASURE_FOR))

        attack = Attack(proxy.address, [proxy.new_key() for _ in range(ATTACKERS)])
        self.addCleanup(attack.close)
        attack.thread.start()
        # Every attacker is accepted and holding a slot before the measurement starts.
        wait_until(lambda: (proxy.metric("tokentap_open_connections", side="downstream") or 0)
                   >= ATTACKERS, what=f"{ATTACKERS} attacking connections to be open")
        under_attack = latencies("attacked", MEASURE_FOR)
        attack_ended = min(a.opened_at for a in attack.attackers) + HEADER_TIMEOUT
        self.assertLess(time.monotonic(), attack_ended,
                        "the measurement must finish while every attacker is still connected")
        attack.thread.join(HEADER_TIMEOUT + 10)
        self.assertFalse(attack.thread.is_alive(), "some trickling connections were never closed")

        median = statistics.median(under_attack)
        print(f"\nslowloris: median latency {baseline * 1000:.2f} ms without, "
              f"{median * 1000:.2f} ms with {ATTACKERS} trickling connections "
              f"({len(under_attack)} requests)")
        self.assertLess(median, 5 * baseline + 0.020,
                        f"median latency {median * 1000:.1f} ms under attack vs "
                        f"{baseline * 1000:.1f} ms without")

        for attacker in attack.attackers:
            lifetime = attacker.closed_at - attacker.opened_at
            self.assertGreaterEqual(lifetime, HEADER_TIMEOUT - 0.1, "closed before the deadline")
            self.assertLess(lifetime, HEADER_TIMEOUT + 3.0, "closed long after the deadline")
            self.assertRegex(bytes(attacker.received), rb"^HTTP/1\.1 408 ")
            self.assertIn(b'"tokentap_error":"header_timeout"', attacker.received)
        proxy.wait_metric("tokentap_requests_total", ATTACKERS, code="408")
        timed_out = proxy.wait_log_count(lambda e: e.get("status") == 408, ATTACKERS)
        self.assertEqual(len(timed_out), ATTACKERS)
        self.assertEqual(upstream.requests[-1].target,
                         f"/v1/models/attacked-{len(under_attack) - 1}")
        self.assertFalse([r for r in upstream.requests if r.method == "POST"],
                         "no trickled request may reach the upstream")
        proxy.wait_metric("tokentap_open_connections", 0, side="downstream")


if __name__ == "__main__":
    unittest.main()
