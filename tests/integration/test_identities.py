"""Client-chosen identities (x-agent-id, x-session-id) are bounded before anything stores them:
up to 128 bytes without control bytes they are kept as sent; anything else becomes
"sha256:" + 32 hex characters of its SHA-256, so distinct values stay distinct. Then tens of
thousands of distinct 8 KiB session and agent ids over keep-alive connections leave the proxy's
RSS within a few MiB, where the unbounded values would have cost hundreds.

Under ASan+UBSan (TOKENTAP_SANITIZED=1) the proxy runs with an 8 MiB quarantine, as in
test_resources, and 5,000 requests are sent instead of 20,000 (the bound is the same: unbounded,
5,000 sessions alone would hold 5,000 x 3 x 8 KiB = 117 MiB).
"""

import hashlib
import json
import os
import threading
import unittest

from fake_upstream import json_body
from harness import ProxyTestCase, build_request, key_headers, proxy_config

KIB = 1 << 10
MIB = 1 << 20
SANITIZED = os.environ.get("TOKENTAP_SANITIZED") == "1"
ASAN_ENV = {"ASAN_OPTIONS": ":".join(
    filter(None, [os.environ.get("ASAN_OPTIONS", ""), "quarantine_size_mb=8"]))}
COMPLETION = {"id": "chatcmpl-it", "object": "chat.completion", "model": "gpt-4o-mini",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                           "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}}
CHAT = json.dumps({"model": "gpt-4o-mini",
                   "messages": [{"role": "user", "content": "hi"}]}).encode()
JSON = [("Content-Type", "application/json")]


def hashed(value):
    return "sha256:" + hashlib.sha256(value.encode("latin-1")).hexdigest()[:32]


class IdentityFormTest(ProxyTestCase):
    def test_long_or_unprintable_identities_are_hashed_short_ones_kept(self):
        upstream = self.start_upstream()
        upstream.handlers["/v1/chat/completions"] = json_body(COMPLETION)
        proxy = self.start_proxy(proxy_config(upstream.url()))
        limit = "p" * 128
        long_a = "q" * 8192 + "a"
        long_b = "q" * 8192 + "b"  # the same first 8 KiB: a cut would merge the two
        cases = [
            ("planner", "conv-1", "planner", "conv-1"),
            (limit, limit, limit, limit),
            (long_a, long_b, hashed(long_a), hashed(long_b)),
            (long_b, long_a, hashed(long_b), hashed(long_a)),
            ("tab\there", "conv-2", hashed("tab\there"), "conv-2"),
        ]
        for agent, session, want_agent, want_session in cases:
            response = proxy.request("POST", "/v1/chat/completions",
                                     JSON + [("x-agent-id", agent), ("x-session-id", session)],
                                     CHAT)
            self.assertEqual(response.status, 200)
            line = proxy.log_for(response.sent_request_id)
            self.assertEqual(line["agent"], want_agent)
            self.assertEqual(line["session"], want_session)
        self.assertNotEqual(hashed(long_a), hashed(long_b))
        # Neither header goes upstream; the bounded values are what tokentap itself keeps.
        for request in upstream.requests:
            self.assertNotIn("x-agent-id", request.header_names())
            self.assertNotIn("x-session-id", request.header_names())
        metrics = proxy.admin_get("/metrics").body.decode()
        self.assertNotIn("q" * 200, metrics)
        self.assertIn(hashed(long_a), metrics)  # a metric label value, bounded as well


class ManyLongIdentitiesTest(ProxyTestCase):
    REQUESTS = 5_000 if SANITIZED else 20_000
    CONNECTIONS = 4
    RSS_GROWTH_LIMIT = 32 * MIB

    def test_distinct_8_kib_identities_do_not_grow_memory(self):
        upstream = self.start_upstream(record_requests=False)
        upstream.default_handler = json_body(COMPLETION)
        # No access log: the test process would hold every line, and the point is the proxy.
        proxy = self.start_proxy(proxy_config(upstream.url(), log={"access": "off"}),
                                 env=ASAN_ENV if SANITIZED else None)
        key = key_headers(proxy.new_key())
        filler = "x" * (8 * KIB - 16)

        def request_bytes(i):
            return build_request("POST", "/v1/chat/completions",
                                 JSON + key + [("x-agent-id", f"{i:016d}{filler}"),
                                               ("x-session-id", f"{filler}{i:016d}")], CHAT)

        def send(first, count, failures):
            try:
                with proxy.connect(timeout=30) as client:
                    for i in range(first, first + count):
                        client.send(request_bytes(i))
                        response = client.read_response(method="POST")
                        if response.status != 200:
                            failures.append(response.status)
                            return
            except Exception as e:  # pylint: disable=broad-except
                failures.append(repr(e))

        def run(first, total):
            failures = []
            per = total // self.CONNECTIONS
            threads = [threading.Thread(target=send, args=(first + t * per, per, failures))
                       for t in range(self.CONNECTIONS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            self.assertEqual(failures, [])

        run(0, 400)  # warm-up: pools, metric families, allocator arenas
        before = proxy.rss_bytes()
        run(1_000_000, self.REQUESTS)
        proxy.wait_metric("llm_requests_total", 400 + self.REQUESTS, timeout=30, code="200")
        after = proxy.rss_bytes()
        print(f"\n{self.REQUESTS} distinct 8 KiB session and agent ids: proxy RSS "
              f"{before / MIB:.1f} -> {after / MIB:.1f} MiB")
        self.assertLess(after - before, self.RSS_GROWTH_LIMIT)


if __name__ == "__main__":
    unittest.main()
