"""The access log never holds up a request: when its destination stalls (a pipe nobody reads),
lines past the writer's bounded queue are dropped, counted in
tokentap_access_log_dropped_total, and requests keep being answered."""

import os
import select
import threading
import unittest

import fake_upstream
from harness import ProxyTestCase, proxy_config, wait_until

# Each request's access-log line carries its path: 200 requests of 48 KiB paths are about
# 9.6 MiB of log, past the writer's 8 MiB queue plus the pipe's own buffer.
PATH_BYTES = 48 * 1024
REQUESTS = 200


class StalledAccessLogTest(ProxyTestCase):
    def open_stalled_pipe(self):
        """A FIFO opened for reading and never read: tokentap's writes fill it, then block."""
        path = os.path.join(self.tmp, "access.log")
        os.mkfifo(path)
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # so that tokentap's open succeeds
        self.addCleanup(os.close, reader)
        return path, reader

    def drain(self, reader):
        """Reads the pipe to its end (tokentap writes what it queued before it exits)."""
        def run():
            while True:
                select.select([reader], [], [], 1.0)
                try:
                    if os.read(reader, 1 << 20) == b"":
                        return
                except BlockingIOError:
                    continue

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def test_a_stalled_log_drops_and_counts_lines_and_requests_go_on(self):
        upstream = self.start_upstream(record_requests=False)
        upstream.handlers["/v1/models"] = fake_upstream.json_body({"object": "list", "data": []})
        path, reader = self.open_stalled_pipe()
        drainers = []
        self.addCleanup(lambda: [thread.join(30) for thread in drainers])
        proxy = self.start_proxy(proxy_config(upstream.url(), log={"access": path}))
        # Cleanups run last first: the pipe is drained from before tokentap is stopped (it
        # writes what it queued before it exits) until after it has exited.
        self.addCleanup(lambda: drainers.append(self.drain(reader)))
        self.assertEqual(proxy.metric("tokentap_access_log_dropped_total"), 0)

        target = "/v1/models?pad=" + "a" * PATH_BYTES
        client = proxy.connect(timeout=10)
        self.addCleanup(client.close)
        for i in range(REQUESTS):
            # A request that waited on the log would time out here (10 s), and fail the test.
            response = proxy.request("GET", target, request_id=f"r-{i}", client=client)
            self.assertEqual(response.status, 200, f"request {i}")

        dropped = wait_until(lambda: proxy.metric("tokentap_access_log_dropped_total"),
                             timeout=10, what="dropped access-log lines to be counted")
        self.assertGreater(dropped, 0)
        self.assertLess(dropped, REQUESTS)  # the queue and the pipe still held the first ones
        # The proxy still answers its admin port and new requests.
        self.assertEqual(proxy.request("GET", "/v1/models").status, 200)
        self.assertEqual(proxy.admin_get("/healthz").status, 200)


if __name__ == "__main__":
    unittest.main()
