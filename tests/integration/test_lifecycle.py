"""Process lifecycle: command line, admin endpoints, metrics, graceful and forced shutdown."""

import os
import signal
import socket
import subprocess
import threading
import time
import unittest

import fake_upstream
from harness import (ProxyTestCase, build_request, key_headers, metric_value, proxy_config,
                     to_yaml, tokentap_bin, wait_until)

STREAM_REQUEST = (b'{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},'
                  b'"messages":[]}')


def refuses_connections(address):
    try:
        with socket.create_connection(address, timeout=1):
            return False
    except ConnectionRefusedError:
        return True


class CommandLineTest(ProxyTestCase):
    def run_tokentap(self, *args):
        return subprocess.run([tokentap_bin(), *args], capture_output=True, text=True,
                              timeout=20, check=False)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_version_and_help(self):
        version = self.run_tokentap("--version")
        self.assertEqual(version.returncode, 0, version.stderr)
        self.assertRegex(version.stdout + version.stderr, r"\d+\.\d+\.\d+")
        usage = self.run_tokentap("--help")
        self.assertEqual(usage.returncode, 0, usage.stderr)
        self.assertIn("--config", usage.stdout + usage.stderr)

    def test_check_config(self):
        good = self.write("good.yaml", to_yaml(proxy_config("https://api.openai.com")) + "\n")
        result = self.run_tokentap("--config", good, "--check-config")
        self.assertEqual(result.returncode, 0, result.stderr)
        bad_documents = {
            4: 'listen: "127.0.0.1:0"\nadmin_listen: "127.0.0.1:0"\ntimeouts:\n'
               '  connect: "soon"\n',
            2: 'listen: "127.0.0.1:0"\nno_such_key: 1\n',
            6: 'listen: "127.0.0.1:0"\nroutes:\n  - name: "a"\n    prefix: "/v1"\n'
               '    upstream: "https://api.openai.com"\n    provider: "palm"\n',
            3: 'limits:\n  max_request_body: "1KiB"\n  max_headers: "lots"\n',
        }
        for line, text in bad_documents.items():
            with self.subTest(line=line):
                path = self.write(f"bad{line}.yaml", text)
                result = self.run_tokentap("--config", path, "--check-config")
                self.assertNotEqual(result.returncode, 0)
                self.assertIn(f"{path}:{line}:", result.stderr)

    def test_command_line_listen_addresses_override_the_config(self):
        taken = []
        for _ in range(2):
            occupied = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.addCleanup(occupied.close)
            occupied.bind(("127.0.0.1", 0))
            occupied.listen(1)
            taken.append(f"127.0.0.1:{occupied.getsockname()[1]}")
        upstream = self.start_upstream()
        proxy = self.start_proxy(proxy_config(upstream.url(), listen=taken[0],
                                              admin_listen=taken[1]),
                                 args=["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        self.assertNotIn(f"127.0.0.1:{proxy.address[1]}", taken)
        self.assertNotIn(f"127.0.0.1:{proxy.admin_address[1]}", taken)
        self.assertEqual(proxy.request("GET", "/v1/models").status, 200)
        self.assertEqual(proxy.admin_get("/healthz").status, 200)

    def test_several_workers_serve_requests(self):
        upstream = self.start_upstream()
        proxy = self.start_proxy(proxy_config(upstream.url(), workers=2))
        results = []

        def one(i):
            body = b"worker-%d" % i
            response = proxy.request("POST", f"/v1/w/{i}", [], body)
            results.append(response.status == 200 and response.body == body)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        self.assertEqual(results, [True] * 8)


class AdminTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.upstream = self.start_upstream()
        self.proxy = self.start_proxy(proxy_config(self.upstream.url()))

    def test_health_and_readiness(self):
        self.assertEqual(self.proxy.admin_get("/healthz").status, 200)
        self.assertEqual(self.proxy.admin_get("/readyz").status, 200)

    def test_metrics_exposition(self):
        self.proxy.request("GET", "/v1/models")
        self.proxy.request("GET", "/v1/models")
        self.upstream.handlers["/v1/missing"] = fake_upstream.fixed(404, body=b"{}")
        self.proxy.request("GET", "/v1/missing")
        self.proxy.wait_metric("tokentap_requests_total", 2, route="main", code="200")
        self.proxy.wait_metric("tokentap_requests_total", 1, route="main", code="404")
        self.proxy.wait_metric("tokentap_inflight_requests", 0)
        samples = self.proxy.metrics()
        names = {name for name, _, _ in samples}
        for name in ("tokentap_requests_total", "tokentap_inflight_requests",
                     "tokentap_open_connections", "tokentap_upstream_connections_total",
                     "tokentap_build_info", "process_resident_memory_bytes",
                     "process_cpu_seconds_total", "process_open_fds",
                     "process_start_time_seconds"):
            self.assertIn(name, names)
        for side in ("downstream", "upstream"):
            self.assertIsNotNone(metric_value(samples, "tokentap_open_connections", side=side))
        self.assertGreater(metric_value(samples, "process_resident_memory_bytes"), 1 << 20)
        self.assertGreater(metric_value(samples, "process_open_fds"), 3)
        self.assertGreaterEqual(metric_value(samples, "process_cpu_seconds_total"), 0)
        self.assertLess(abs(metric_value(samples, "process_start_time_seconds") - time.time()),
                        3600)

    def test_gauges_follow_an_in_flight_stream(self):
        release = threading.Event()
        self.addCleanup(release.set)
        self.upstream.handlers["/v1/chat/completions"] = fake_upstream.sse(
            fake_upstream.openai_chunks(2), release=release, release_after=1)
        with self.proxy.connect() as client:
            client.send(build_request("POST", "/v1/chat/completions",
                                      key_headers(self.proxy.new_key()), STREAM_REQUEST))
            response = client.read_head("POST")
            pieces = client.body_pieces(response)
            next(pieces)
            samples = self.proxy.metrics()
            self.assertEqual(metric_value(samples, "tokentap_inflight_requests"), 1)
            self.assertGreaterEqual(metric_value(samples, "tokentap_open_connections",
                                                 side="downstream"), 1)
            self.assertGreaterEqual(metric_value(samples, "tokentap_open_connections",
                                                 side="upstream"), 1)
            release.set()
            client.finish_response(response, pieces=pieces)
        self.proxy.wait_metric("tokentap_inflight_requests", 0)


class ShutdownTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.upstream = self.start_upstream()
        self.release = threading.Event()
        self.addCleanup(self.release.set)
        self.events = fake_upstream.openai_chunks(4)
        self.upstream.handlers["/v1/chat/completions"] = fake_upstream.sse(
            self.events, release=self.release, release_after=1)
        self.proxy = self.start_proxy(proxy_config(self.upstream.url(),
                                                   timeouts={"drain": "30s"}))

    def start_stream(self, client):
        client.send(build_request("POST", "/v1/chat/completions",
                                  key_headers(self.proxy.new_key())
                                  + [("X-Request-ID", "drained-1")], STREAM_REQUEST))
        response = client.read_head("POST")
        self.assertEqual(response.status, 200)
        pieces = client.body_pieces(response)
        first = next(pieces)
        return response, pieces, first

    def test_sigterm_drains_the_in_flight_stream_then_exits_0(self):
        idle = self.proxy.connect()
        self.addCleanup(idle.close)
        self.assertEqual(self.proxy.request("GET", "/v1/models", client=idle).status, 200)
        with self.proxy.connect() as client:
            response, pieces, first = self.start_stream(client)
            self.proxy.send_signal(signal.SIGTERM)
            wait_until(lambda: self.proxy.admin_get("/readyz").status == 503,
                       what="/readyz to report 503 while draining")
            wait_until(lambda: refuses_connections(self.proxy.address),
                       what="new connections to be refused")
            self.assertTrue(self.proxy.running())
            self.assertFalse(self.release.is_set())
            self.release.set()
            client.finish_response(response, pieces=pieces)
            completed_at = time.monotonic()
            self.assertTrue(response.complete)
            self.assertEqual(first + response.body, b"".join(self.events))
        self.assertEqual(self.proxy.wait_exit(timeout=10), 0)
        self.assertLess(time.monotonic() - completed_at, 5.0,
                        "idle keep-alive connections must not hold up the exit")
        self.proxy.exit_checked = True
        self.assertTrue(idle.wait_closed(1))
        entry = self.proxy.log_for("drained-1")
        self.assertEqual((entry["status"], entry["error_type"]), (200, "none"))

    def test_second_sigterm_exits_at_once(self):
        with self.proxy.connect() as client:
            response, pieces, _ = self.start_stream(client)
            self.proxy.send_signal(signal.SIGTERM)
            wait_until(lambda: self.proxy.admin_get("/readyz").status == 503,
                       what="/readyz to report 503 while draining")
            self.proxy.send_signal(signal.SIGTERM)
            self.assertIsNotNone(self.proxy.wait_exit(timeout=3), "still running")
            self.proxy.exit_checked = True
            self.assertFalse(self.release.is_set())
            client.finish_response(response, allow_truncated=True, pieces=pieces)
            self.assertFalse(response.complete)


if __name__ == "__main__":
    unittest.main()
