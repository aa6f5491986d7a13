"""Reload: SIGHUP, or a change of the config file or a price file (including a Kubernetes
ConfigMap update, which swaps a symlink), replaces config and prices atomically for the next
request, without dropping a connection; a bad file keeps the running configuration, says
FILE:LINE, and counts tokentap_config_reloads_total{result="error"}."""

import json
import os
import signal
import threading
import time
import unittest

import fake_upstream
from harness import Proxy, ProxyTestCase, metric_value, proxy_config, to_yaml, wait_until


def completion(model, prompt, completion_tokens):
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
                      "total_tokens": prompt + completion_tokens}}


def price_file(version, input_usd, output_usd):
    return json.dumps({"pricing_version": version, "unit": "usd_per_million_tokens",
                       "models": {"house-model": {"provider": "openai", "input": input_usd,
                                                  "output": output_usd}}})


CHAT = json.dumps({"model": "house-model",
                   "messages": [{"role": "user", "content": "hi"}]}).encode()
JSON = [("Content-Type", "application/json")]


class ReloadTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.upstream = self.start_upstream()
        self.upstream.handlers["/v1/chat/completions"] = fake_upstream.json_body(
            completion("house-model", 1_000_000, 1_000_000))
        self.prices = os.path.join(self.tmp, "prices.json")
        self.write(self.prices, price_file("v1", 1, 2))

    def write(self, path, text):
        # Write beside and rename, as editors and kubelet do: a reader never sees half a file.
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)

    def config(self, **overrides):
        return proxy_config(self.upstream.url(), pricing={"files": [self.prices]}, **overrides)

    def chat(self, proxy, request_id, client=None):
        response = proxy.request("POST", "/v1/chat/completions", JSON, CHAT,
                                 request_id=request_id, client=client)
        self.assertEqual(response.status, 200, response.body[:300])
        return proxy.log_for(request_id)

    def reloads(self, proxy, result):
        return metric_value(proxy.metrics(), "tokentap_config_reloads_total", result=result) or 0

    def wait_reloads(self, proxy, result, count):
        wait_until(lambda: self.reloads(proxy, result) >= count, timeout=10,
                   what=f"{count} reload(s) with result {result}")

    def test_sighup_applies_new_prices_to_the_next_request(self):
        proxy = self.start_proxy(self.config())
        self.assertEqual(proxy.metric("tokentap_config_last_reload_successful"), 1)
        entry = self.chat(proxy, "before")
        self.assertAlmostEqual(entry["cost_usd"], 3.0, places=9)  # 1M x $1 + 1M x $2
        self.assertEqual(entry["pricing_version"], "v1")

        # Keep a connection open across the reload: it must keep working.
        client = proxy.connect()
        self.addCleanup(client.close)
        self.chat(proxy, "kept-1", client=client)
        with open(self.prices, "w", encoding="utf-8") as f:  # in place: only SIGHUP sees it
            f.write(price_file("v2", 10, 20))
        os.kill(proxy.pid, signal.SIGHUP)
        self.wait_reloads(proxy, "success", 1)
        event = proxy.wait_for_stderr(lambda e: e.get("msg") == "config reloaded",
                                      what="the reload line")
        self.assertEqual(event["pricing_version"], "v2")
        self.assertEqual(event["trigger"], "SIGHUP")
        self.assertEqual(event["generation"], "2")
        entry = self.chat(proxy, "kept-2", client=client)
        self.assertAlmostEqual(entry["cost_usd"], 30.0, places=9)
        self.assertEqual(entry["pricing_version"], "v2")
        self.assertAlmostEqual(proxy.metric("llm_cost_usd_total", model="house-model"), 36.0,
                               places=6)

    def test_a_changed_price_file_is_reloaded_without_a_signal(self):
        proxy = self.start_proxy(self.config())
        self.assertAlmostEqual(self.chat(proxy, "v1")["cost_usd"], 3.0, places=9)
        self.write(self.prices, price_file("v3", 5, 5))
        self.wait_reloads(proxy, "success", 1)
        event = proxy.wait_for_stderr(lambda e: e.get("msg") == "config reloaded",
                                      what="the reload line")
        self.assertEqual(event["trigger"], "file change")
        self.assertAlmostEqual(self.chat(proxy, "v3")["cost_usd"], 10.0, places=9)

    def test_a_bad_file_keeps_the_running_configuration(self):
        proxy = self.start_proxy(self.config())
        bad = to_yaml(self.config(timeouts={"connect": "soon"}))
        with open(proxy.config_path, "w", encoding="utf-8") as f:
            f.write(bad + "\n")
        os.kill(proxy.pid, signal.SIGHUP)
        self.wait_reloads(proxy, "error", 1)
        event = proxy.wait_for_stderr(lambda e: "reload failed" in e.get("msg", ""),
                                      what="the reload error")
        self.assertEqual(event["level"], "error")
        line = bad.splitlines().index('  connect: "soon"') + 1
        self.assertTrue(event["error"].startswith(f"{proxy.config_path}:{line}: timeouts.connect"),
                        event["error"])
        self.assertEqual(proxy.metric("tokentap_config_last_reload_successful"), 0)
        self.assertAlmostEqual(self.chat(proxy, "still-v1")["cost_usd"], 3.0, places=9)

        # Fixed: the file change reloads by itself.
        self.write(proxy.config_path, to_yaml(self.config()) + "\n")
        self.wait_reloads(proxy, "success", 1)
        self.assertEqual(proxy.metric("tokentap_config_last_reload_successful"), 1)

        # A broken price file is rejected the same way, with its own NAME:LINE.
        self.write(self.prices,
                   '{"pricing_version": "v9",\n "models": {"house-model": {"input": -1}}}\n')
        self.wait_reloads(proxy, "error", 2)
        wait_until(lambda: any(e.get("error", "").startswith(self.prices + ":")
                               for e in proxy.stderr_events()), what="the price file error")
        self.assertAlmostEqual(self.chat(proxy, "still-v1-again")["cost_usd"], 3.0, places=9)

        self.write(self.prices, price_file("v4", 2, 2))
        self.wait_reloads(proxy, "success", 2)
        self.assertAlmostEqual(self.chat(proxy, "v4")["cost_usd"], 4.0, places=9)

    def test_a_configmap_symlink_swap_changes_routes_and_budgets(self):
        # kubelet's layout: config.yaml -> ..data/config.yaml, ..data -> ..<timestamp>/
        other = self.start_upstream()
        other.handlers["/v1/chat/completions"] = fake_upstream.json_body(
            completion("house-model", 1000, 1000))
        mount = os.path.join(self.tmp, "configmap")
        os.makedirs(os.path.join(mount, "..v1"))
        with open(os.path.join(mount, "..v1", "config.yaml"), "w", encoding="utf-8") as f:
            f.write(to_yaml(self.config()) + "\n")
        os.symlink("..v1", os.path.join(mount, "..data"))
        os.symlink("..data/config.yaml", os.path.join(mount, "config.yaml"))

        proxy = Proxy(self.config(), self.tmp)
        proxy.config_path = os.path.join(mount, "config.yaml")
        self.addCleanup(self._finish_proxy, proxy)
        proxy.start()
        self.chat(proxy, "to-first")
        self.assertEqual(len(self.upstream.requests), 1)

        second = proxy_config(other.url(), pricing={"files": [self.prices]},
                              budgets=[{"agent": "blocked", "hourly_usd": 0.0001,
                                        "action": "block"}])
        os.makedirs(os.path.join(mount, "..v2"))
        with open(os.path.join(mount, "..v2", "config.yaml"), "w", encoding="utf-8") as f:
            f.write(to_yaml(second) + "\n")
        os.symlink("..v2", os.path.join(mount, "..data_tmp"))
        os.replace(os.path.join(mount, "..data_tmp"), os.path.join(mount, "..data"))
        self.wait_reloads(proxy, "success", 1)

        self.chat(proxy, "to-second")
        self.assertEqual(len(self.upstream.requests), 1)
        self.assertEqual(len(other.requests), 1)
        self.assertEqual(proxy.metric("llm_budget_limit_usd", agent="blocked", window="1h"),
                         0.0001)
        # The new block budget applies: spend, then the next request is refused upstream-free.
        proxy.request("POST", "/v1/chat/completions", JSON + [("x-agent-id", "blocked")], CHAT)
        refused = proxy.request("POST", "/v1/chat/completions",
                                JSON + [("x-agent-id", "blocked")], CHAT)
        self.assert_json_error(refused, 429, "budget_exceeded")
        self.assertEqual(len(other.requests), 2)

    def test_settings_that_need_a_restart_are_kept_and_named(self):
        proxy = self.start_proxy(self.config())
        changed = self.config(workers=2, listen="127.0.0.1:1")
        with open(proxy.config_path, "w", encoding="utf-8") as f:
            f.write(to_yaml(changed) + "\n")
        self.wait_reloads(proxy, "success", 1)
        event = proxy.wait_for_stderr(lambda e: "restart" in e.get("msg", ""),
                                      what="the restart-only warning")
        self.assertEqual(event["settings"], "listen, workers")
        self.chat(proxy, "same-listener")

    def test_reload_under_traffic_loses_no_request(self):
        events = fake_upstream.openai_chunks(20)
        self.upstream.handlers["/v1/stream"] = fake_upstream.sse(events, interval=0.02)
        proxy = self.start_proxy(self.config(
            routes=[{"prefix": "/v1/stream", "upstream": self.upstream.url(),
                     "provider": "openai"},
                    {"prefix": "/", "upstream": self.upstream.url(), "provider": "openai"}]))
        stop = threading.Event()
        failures = []
        counts = {"chat": 0, "stream": 0}
        stream_body = json.dumps({"model": "gpt-4o-mini", "stream": True,
                                  "stream_options": {"include_usage": True},
                                  "messages": [{"role": "user", "content": "hi"}]}).encode()

        def chat_loop(keep_alive):
            client = proxy.connect() if keep_alive else None
            n = 0
            try:
                while not stop.is_set():
                    n += 1
                    rid = f"chat-{keep_alive}-{n}"
                    response = proxy.request("POST", "/v1/chat/completions", JSON, CHAT,
                                             request_id=rid, client=client)
                    if response.status != 200 or b"chatcmpl-1" not in response.body:
                        failures.append((rid, response.status))
                    counts["chat"] += 1
            except Exception as e:  # a dropped connection is a failure, not a crash
                failures.append(("chat", repr(e)))
            finally:
                if client:
                    client.close()

        def stream_loop():
            n = 0
            try:
                while not stop.is_set():
                    n += 1
                    response = proxy.request("POST", "/v1/stream", JSON, stream_body,
                                             request_id=f"stream-{n}")
                    if response.status != 200 or not response.body.endswith(b"data: [DONE]\n\n"):
                        failures.append((f"stream-{n}", response.status))
                    counts["stream"] += 1
            except Exception as e:
                failures.append(("stream", repr(e)))

        threads = [threading.Thread(target=chat_loop, args=(True,)),
                   threading.Thread(target=chat_loop, args=(False,)),
                   threading.Thread(target=stream_loop), threading.Thread(target=stream_loop)]
        for t in threads:
            t.start()
        try:
            for i in range(8):
                time.sleep(0.15)
                with open(self.prices, "w", encoding="utf-8") as f:
                    f.write(price_file(f"r{i}", i + 1, i + 1))
                os.kill(proxy.pid, signal.SIGHUP)
                self.wait_reloads(proxy, "success", i + 1)
            time.sleep(0.2)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        self.assertEqual(failures, [])
        self.assertGreater(counts["stream"], 4)
        sent = counts["chat"] + counts["stream"]
        # Every request is accounted exactly once.
        wait_until(lambda: metric_value(proxy.metrics(), "llm_requests_total") == sent,
                   timeout=10, what=f"llm_requests_total = {sent}")
        entries = proxy.wait_log_count(lambda e: True, sent, timeout=10)
        self.assertEqual(len(entries), sent)
        # The last prices apply to the next request.
        entry = self.chat(proxy, "after")
        self.assertEqual(entry["pricing_version"], "r7")
        self.assertAlmostEqual(entry["cost_usd"], 16.0, places=9)

    def lower_timeouts(self, proxy, **timeouts):
        """Reloads with `timeouts` and proves, with a request that times out by them, that the
        worker now runs the new snapshot."""
        self.upstream.handlers["/v1/embeddings"] = fake_upstream.stall()
        self.write(proxy.config_path, to_yaml(self.config(timeouts=timeouts)) + "\n")
        os.kill(proxy.pid, signal.SIGHUP)
        self.wait_reloads(proxy, "success", 1)
        probe = proxy.request("POST", "/v1/embeddings", JSON, b'{"input": "x"}')
        self.assertEqual(probe.status, 504, probe.body[:300])

    def test_a_reload_keeps_the_first_byte_timeout_of_a_request_in_flight(self):
        def slow(_request, reply):
            reply.pause(1.2)  # longer than the reloaded first_byte, within the request's own
            reply.respond(200, JSON, json.dumps(completion("house-model", 1, 1)).encode())

        self.upstream.handlers["/v1/chat/completions"] = slow
        proxy = self.start_proxy(self.config())
        client = proxy.connect()
        self.addCleanup(client.close)
        # The request starts (its snapshot says first_byte 10s); its body ends after the reload,
        # which is when the first-byte timer starts.
        client.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: proxy.test\r\n"
                    b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                    b"X-Request-ID: in-flight\r\n\r\n" + b"%x\r\n" % len(CHAT) + CHAT + b"\r\n")
        proxy.wait_metric("tokentap_inflight_requests", 1)  # its head was read
        self.lower_timeouts(proxy, first_byte="300ms")
        client.send(b"0\r\n\r\n")
        response = client.read_response(method="POST")
        self.assertEqual(response.status, 200, response.body[:300])
        entry = proxy.log_for("in-flight")
        self.assertEqual(entry["status"], 200)
        self.assertEqual(entry["error_type"], "none")

    def test_a_reload_keeps_the_idle_timeout_of_a_stream_in_flight(self):
        release = threading.Event()
        events = [b'data: {"id":"c","object":"chat.completion.chunk","model":"house-model",'
                  b'"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'] * 3
        events.append(b"data: [DONE]\n\n")

        def stream(request, reply):
            # First event; then, after the reload, one more (each read restarts the idle
            # timer), then silence longer than the reloaded idle timeout.
            reply.start_chunked(200, [("Content-Type", "text/event-stream")])
            reply.chunk(events[0])
            reply.wait(release)
            reply.chunk(events[1])
            reply.pause(1.2)
            reply.chunk(events[2])
            reply.chunk(events[3])
            reply.end_chunks()

        self.upstream.handlers["/v1/chat/completions"] = stream
        proxy = self.start_proxy(self.config())
        client = proxy.connect()
        self.addCleanup(client.close)
        body = json.dumps({"model": "house-model", "stream": True,
                           "messages": [{"role": "user", "content": "hi"}]}).encode()
        client.send_request("POST", "/v1/chat/completions",
                            JSON + [("X-Request-ID", "streaming")], body)
        head = client.read_head(method="POST")
        self.assertEqual(head.status, 200)
        self.lower_timeouts(proxy, idle="300ms", first_byte="300ms")
        release.set()
        response = client.finish_response(head)
        self.assertIn(b"data: [DONE]", response.body)
        entry = proxy.log_for("streaming")
        self.assertEqual(entry["error_type"], "none")


if __name__ == "__main__":
    unittest.main()
