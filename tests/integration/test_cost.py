"""Cost: every request with token usage is priced from the price table, in the log and in
llm_cost_usd_total; user price files (ours and LiteLLM's) merge over the built-in table; an
unknown model is counted as unpriced, never as free."""

import json
import os
import subprocess
import unittest

import fake_upstream
from harness import ProxyTestCase, metric_value, proxy_config, wait_until

PRICES = json.load(open(os.path.join(os.path.dirname(__file__), "..", "..", "pricing",
                                     "prices.json"), encoding="utf-8"))["models"]


def per_token(usd_per_million):
    return usd_per_million / 1e6


def openai_completion(model, prompt, completion, cached=0, reasoning=0):
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion,
                      "prompt_tokens_details": {"cached_tokens": cached},
                      "completion_tokens_details": {"reasoning_tokens": reasoning}}}


class CostTest(ProxyTestCase):
    def start(self, **overrides):
        self.upstream = self.start_upstream()
        self.proxy = self.start_proxy(proxy_config(self.upstream.url(), **overrides))

    def chat(self, model, reply, agent="coster", path="/v1/chat/completions", body=None,
             request_id=None):
        request_id = request_id or f"cost-{agent}"
        self.upstream.handlers[path] = fake_upstream.json_body(reply)
        request = body or {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        response = self.proxy.request("POST", path, [("Content-Type", "application/json"),
                                                     ("x-agent-id", agent)],
                                      json.dumps(request).encode(), request_id=request_id)
        self.assertEqual(response.status, 200)
        return self.proxy.log_for(request_id)

    def cost_metric(self, agent, model):
        return wait_until(lambda: metric_value(self.proxy.metrics(), "llm_cost_usd_total",
                                               agent=agent, model=model),
                          what="llm_cost_usd_total")

    def assert_refusal_metered(self, request_id, agent, error_type, requests):
        """A request tokentap refused itself is counted once, with its model, in the access log,
        llm_requests_total, /v1/usage and /v1/errors, with the same error_type everywhere."""
        entry = self.proxy.log_for(request_id)
        self.assertEqual((entry["status"], entry["error_type"], entry["error_stage"]),
                         (429, error_type, "proxy"), entry)
        self.assertEqual((entry["model"], entry["provider"]), ("gpt-4o-mini", "openai"), entry)
        self.assertNotIn("llm_error_type", entry)
        samples = self.proxy.metrics()
        self.assertEqual(metric_value(samples, "llm_requests_total", agent=agent, code="429",
                                      model="gpt-4o-mini", error_type=error_type), 1)
        self.assertEqual(metric_value(samples, "llm_requests_total", agent=agent), requests)
        usage = json.loads(self.proxy.admin_get(f"/v1/usage?agent={agent}").body)["usage"]
        self.assertEqual([(r["model"], r["requests"], r["errors_by_type"]) for r in usage],
                         [("gpt-4o-mini", requests, {error_type: 1})])
        errors = json.loads(self.proxy.admin_get(f"/v1/errors?agent={agent}").body)["errors"]
        self.assertEqual([(e["request_id"], e["error_type"], e["stage"], e["model"])
                          for e in errors], [(request_id, error_type, "proxy", "gpt-4o-mini")])

    def test_a_body_over_the_limit_is_metered_as_request_too_large(self):
        self.start(limits={"max_request_body": 1000})
        response = self.proxy.request("POST", "/v1/chat/completions",
                                      [("Content-Type", "application/json"),
                                       ("x-agent-id", "big")],
                                      b'{"model":"gpt-4o-mini","messages":[]}' + b" " * 2000,
                                      request_id="too-big")
        self.assert_json_error(response, 413, "request_too_large", "too-big")
        entry = self.proxy.log_for("too-big")
        self.assertEqual((entry["error_type"], entry["error_stage"], entry["provider"]),
                         ("request_too_large", "downstream", "openai"), entry)
        self.assertEqual(metric_value(self.proxy.metrics(), "llm_requests_total", agent="big",
                                      code="413", error_type="request_too_large"), 1)
        self.assertEqual(len(self.upstream.requests), 0)

    def test_a_stream_failing_mid_way_is_billed_alike_everywhere(self):
        # Golden recording: Anthropic stream with content, then `event: error` overloaded_error
        # and no final usage. Only the exact input side (message_start) is billed; the output
        # placeholder is not, in the log, the metrics, /v1/usage and the cost alike.
        golden = os.path.join(os.path.dirname(__file__), "..", "golden", "anthropic",
                              "messages_stream_overloaded_error")
        with open(golden + ".response.sse", "rb") as f:
            events = [e + b"\n\n" for e in f.read().split(b"\n\n") if e.strip()]
        with open(golden + ".request.json", "rb") as f:
            request = f.read()
        self.upstream = self.start_upstream()
        self.proxy = self.start_proxy(proxy_config(self.upstream.url(), provider="anthropic"))
        self.upstream.handlers["/v1/messages"] = fake_upstream.sse(events)
        response = self.proxy.request("POST", "/v1/messages",
                                      [("Content-Type", "application/json"),
                                       ("x-agent-id", "cut"), ("x-session-id", "cut-1")],
                                      request, request_id="cut-stream")
        self.assertEqual(response.status, 200)
        entry = self.proxy.log_for("cut-stream")
        price = PRICES["claude-sonnet-4"]
        # message_start's input is exact; the output so far is estimated from the content.
        bill = 30 * per_token(price["input"]) + 3 * per_token(price["output"])
        self.assertEqual(entry["tokens"], {"input": 30, "output": 3, "cache_read": 0,
                                           "cache_write": 0, "reasoning": 0})
        self.assertEqual((entry["usage_source"], entry["usage_missing_reason"]),
                         ("partial", "upstream_error"))
        self.assertEqual(entry["estimated_tokens"], {"input": 0, "output": 3})
        self.assertEqual((entry["error_type"], entry["error_stage"]), ("overloaded", "provider"))
        self.assertNotIn("proxy_error", entry)
        self.assertEqual(entry["provider_error"]["type"], "overloaded_error")
        self.assertAlmostEqual(entry["cost_usd"], bill, places=12)
        samples = self.proxy.metrics()
        tokens = {s[1]["type"]: s[2] for s in samples
                  if s[0] == "llm_tokens_total" and s[1].get("agent") == "cut"}
        self.assertEqual(tokens, {"input": 30, "output": 3})
        self.assertAlmostEqual(metric_value(samples, "llm_cost_usd_total", agent="cut"), bill,
                               places=12)
        self.assertEqual(metric_value(samples, "llm_requests_total", agent="cut", code="200",
                                      error_type="overloaded"), 1)
        usage = json.loads(self.proxy.admin_get("/v1/usage?agent=cut").body)["usage"]
        self.assertEqual(len(usage), 1)
        self.assertEqual(usage[0]["tokens"], entry["tokens"])
        self.assertAlmostEqual(usage[0]["cost_usd"], bill, places=12)
        self.assertEqual(usage[0]["errors_by_type"], {"overloaded": 1})
        sessions = json.loads(self.proxy.admin_get("/v1/sessions?agent=cut").body)["sessions"]
        self.assertEqual((sessions[0]["tokens"], sessions[0]["requests"]), (33, 1))
        self.assertAlmostEqual(sessions[0]["cost_usd"], bill, places=12)
        errors = json.loads(self.proxy.admin_get("/v1/errors?agent=cut").body)["errors"]
        self.assertEqual([(e["error_type"], e["stage"], e["status"]) for e in errors],
                         [("overloaded", "provider", 200)])

    def test_openai_cost_by_token_class(self):
        self.start()
        price = PRICES["gpt-4o-mini"]
        # 1000 prompt tokens of which 400 cached, 300 completion tokens.
        entry = self.chat("gpt-4o-mini", openai_completion("gpt-4o-mini-2024-07-18", 1000, 300,
                                                           cached=400))
        expected = (600 * per_token(price["input"]) +
                    400 * per_token(price.get("cache_read", price["input"])) +
                    300 * per_token(price["output"]))
        self.assertAlmostEqual(entry["cost_usd"], expected, places=9)
        self.assertEqual(entry["priced_as"], "gpt-4o-mini")
        self.assertEqual(entry["pricing_version"], "2026-12-04")
        self.assertAlmostEqual(self.cost_metric("coster", "gpt-4o-mini"), expected, places=9)
        samples = self.proxy.metrics()
        self.assertEqual(metric_value(samples, "llm_request_cost_usd_count", agent="coster"), 1)

    def test_anthropic_cache_writes_and_reads(self):
        self.upstream = self.start_upstream()
        self.proxy = self.start_proxy(proxy_config(self.upstream.url(), provider="anthropic"))
        price = PRICES["claude-sonnet-4-5"]
        reply = {"id": "msg_1", "type": "message", "role": "assistant",
                 "model": "claude-sonnet-4-5-20250929", "stop_reason": "end_turn",
                 "content": [{"type": "text", "text": "ok"}],
                 "usage": {"input_tokens": 100, "cache_creation_input_tokens": 2000,
                           "cache_read_input_tokens": 5000, "output_tokens": 250}}
        entry = self.chat("claude-sonnet-4-5", reply, path="/v1/messages",
                          body={"model": "claude-sonnet-4-5", "max_tokens": 300,
                                "messages": [{"role": "user", "content": "hi"}]})
        self.assertEqual(entry["tokens"]["input"], 7100)
        expected = (100 * per_token(price["input"]) + 2000 * per_token(price["cache_write"]) +
                    5000 * per_token(price["cache_read"]) + 250 * per_token(price["output"]))
        self.assertAlmostEqual(entry["cost_usd"], expected, places=9)
        self.assertAlmostEqual(self.cost_metric("coster", "claude-sonnet-4-5"), expected,
                               places=9)

    def test_unknown_model_is_unpriced_not_free(self):
        self.start()
        entry = self.chat("my-private-model", openai_completion("my-private-model", 10, 5))
        self.assertIsNone(entry["cost_usd"])
        self.assertTrue(entry["unpriced"])
        value = wait_until(lambda: metric_value(self.proxy.metrics(),
                                                "llm_unpriced_requests_total",
                                                provider="openai", model="my-private-model"),
                           what="llm_unpriced_requests_total")
        self.assertEqual(value, 1)
        self.assertIsNone(metric_value(self.proxy.metrics(), "llm_cost_usd_total",
                                       model="my-private-model"))

    def test_user_price_files_merge_over_the_builtin_table(self):
        ours = os.path.join(self.tmp, "team-prices.json")
        with open(ours, "w", encoding="utf-8") as f:
            json.dump({"pricing_version": "team-7", "unit": "usd_per_million_tokens",
                       "models": {"gpt-4o-mini": {"provider": "openai", "input": 1,
                                                  "output": 2},
                                  "llama-3.3-70b": {"provider": "openai_compatible",
                                                    "input": 0.5, "output": 0.5}}}, f)
        litellm = os.path.join(self.tmp, "model_prices_and_context_window.json")
        with open(litellm, "w", encoding="utf-8") as f:
            json.dump({"sample_spec": {"mode": "chat"},
                       "openai/house-model": {"mode": "chat", "litellm_provider": "openai",
                                              "input_cost_per_token": 2e-06,
                                              "output_cost_per_token": 8e-06}}, f)
        self.start(pricing={"files": [ours, litellm]})
        entry = self.chat("gpt-4o-mini", openai_completion("gpt-4o-mini", 1000, 1000),
                          agent="a1")
        self.assertAlmostEqual(entry["cost_usd"], 1000 * 1e-6 + 1000 * 2e-6, places=9)
        self.assertEqual(entry["pricing_version"], "team-7")
        entry = self.chat("llama-3.3-70b", openai_completion("llama-3.3-70b", 2000, 2000),
                          agent="a2")
        self.assertAlmostEqual(entry["cost_usd"], 4000 * 0.5e-6, places=9)
        entry = self.chat("house-model", openai_completion("house-model", 100, 10), agent="a3")
        self.assertAlmostEqual(entry["cost_usd"], 100 * 2e-6 + 10 * 8e-6, places=9)

    def test_a_blocking_budget_answers_429_before_any_upstream_contact(self):
        self.start(budgets=[{"agent": "spender", "hourly_usd": 0.001, "action": "block"}])
        # 1000 output tokens of gpt-4o-mini cost more than 0.001 USD: the first request spends
        # the budget, the next one is refused without reaching the upstream.
        self.chat("gpt-4o-mini", openai_completion("gpt-4o-mini", 10, 10000), agent="spender")
        self.assertEqual(len(self.upstream.requests), 1)
        response = self.proxy.request("POST", "/v1/chat/completions",
                                      [("Content-Type", "application/json"),
                                       ("x-agent-id", "spender")],
                                      b'{"model":"gpt-4o-mini","messages":[]}',
                                      request_id="over-budget")
        self.assert_json_error(response, 429, "budget_exceeded", "over-budget")
        self.assertEqual(len(self.upstream.requests), 1)
        self.assertEqual(len(self.upstream.connections), 1)
        self.assert_refusal_metered("over-budget", "spender", "budget_exceeded", requests=2)
        # Another agent is not blocked.
        self.chat("gpt-4o-mini", openai_completion("gpt-4o-mini", 10, 10), agent="saver")
        samples = self.proxy.metrics()
        self.assertEqual(metric_value(samples, "llm_budget_blocked_requests_total",
                                      agent="spender"), 1)
        self.assertEqual(metric_value(samples, "llm_budget_limit_usd", agent="spender",
                                      window="1h"), 0.001)
        self.assertGreater(metric_value(samples, "llm_budget_spent_usd", agent="spender",
                                        window="1h"), 0.001)
        wait_until(lambda: '"msg":"budget exceeded"' in self.proxy.stderr_text(),
                   what="the budget warning on stderr")

    def test_sessions_are_reported_and_runaways_blocked(self):
        self.start(sessions={"max_requests_per_minute": 2, "runaway_action": "block"})
        self.upstream.handlers["/v1/chat/completions"] = fake_upstream.json_body(
            openai_completion("gpt-4o-mini", 100, 50))
        statuses = []
        for i in range(3):
            response = self.proxy.request(
                "POST", "/v1/chat/completions",
                [("Content-Type", "application/json"), ("x-agent-id", "looper"),
                 ("x-session-id", "conv-42")],
                b'{"model":"gpt-4o-mini","messages":[]}', request_id=f"loop-{i}")
            statuses.append(response.status)
            if i == 2:
                self.assert_json_error(response, 429, "runaway_session", "loop-2")
        self.assertEqual(statuses, [200, 200, 429])
        self.assertEqual(len(self.upstream.requests), 2)
        self.assert_refusal_metered("loop-2", "looper", "runaway_session", requests=3)
        self.assertNotIn("x-session-id", {k.lower() for k, _ in self.upstream.requests[0].headers})
        sessions = json.loads(self.proxy.admin_get("/v1/sessions?agent=looper").body)["sessions"]
        self.assertEqual(len(sessions), 1)
        self.assertEqual(sessions[0]["session"], "conv-42")
        self.assertEqual(sessions[0]["requests"], 3)
        self.assertEqual(sessions[0]["tokens"], 300)
        self.assertTrue(sessions[0]["runaway"])
        self.assertAlmostEqual(sessions[0]["cost_usd"],
                               2 * (100 * per_token(PRICES["gpt-4o-mini"]["input"]) +
                                    50 * per_token(PRICES["gpt-4o-mini"]["output"])), places=9)
        self.assertEqual(metric_value(self.proxy.metrics(), "llm_session_runaway_total",
                                      agent="looper"), 1)
        wait_until(lambda: '"msg":"runaway session"' in self.proxy.stderr_text(),
                   what="the runaway warning on stderr")

    def test_recent_errors_with_their_context(self):
        self.start()
        self.upstream.handlers["/v1/chat/completions"] = fake_upstream.json_body(
            {"error": {"message": "Rate limit reached for gpt-4o-mini", "type": "requests",
                       "code": "rate_limit_exceeded"}}, status=429)
        self.proxy.request("POST", "/v1/chat/completions",
                           [("Content-Type", "application/json"), ("x-agent-id", "erring"),
                            ("x-session-id", "s-1")],
                           b'{"model":"gpt-4o-mini","messages":[]}', request_id="err-429")
        self.proxy.request("GET", "/v1/models", [("x-agent-id", "fine")], request_id="ok-1")
        body = json.loads(self.proxy.admin_get("/v1/errors?limit=5&agent=erring").body)
        self.assertEqual(len(body["errors"]), 1)
        entry = body["errors"][0]
        self.assertEqual(entry["request_id"], "err-429")
        self.assertEqual(entry["agent"], "erring")
        self.assertEqual(entry["session"], "s-1")
        self.assertEqual(entry["provider"], "openai")
        self.assertEqual(entry["model"], "gpt-4o-mini")
        self.assertEqual(entry["stage"], "provider")
        self.assertEqual(entry["status"], 429)
        self.assertEqual(entry["error_type"], "rate_limited")
        self.assertIn("Rate limit reached", entry["message"])
        # One error vocabulary: the access log and the metric say the same.
        line = self.proxy.log_for("err-429")
        self.assertEqual((line["error_type"], line["error_stage"]), ("rate_limited", "provider"))
        self.assertNotIn("llm_error_type", line)
        self.assertNotIn("proxy_error", line)
        self.assertEqual(metric_value(self.proxy.metrics(), "llm_requests_total", agent="erring",
                                      code="429", error_type="rate_limited"), 1)
        self.assertEqual(json.loads(self.proxy.admin_get("/v1/errors?agent=fine").body),
                         {"errors": []})

    def test_usage_endpoint_matches_the_hand_computed_bill(self):
        self.start()
        price = PRICES["gpt-4o-mini"]
        cache_read = price.get("cache_read", price["input"])
        bills = {"a": 0.0, "b": 0.0}
        for n, (agent, prompt, completion, cached) in enumerate(
                (("a", 1000, 200, 0), ("a", 3000, 100, 1000), ("b", 500, 50, 0))):
            entry = self.chat("gpt-4o-mini", openai_completion("gpt-4o-mini", prompt, completion,
                                                               cached=cached),
                              agent=agent, request_id=f"usage-{n}")
            bill = ((prompt - cached) * per_token(price["input"]) +
                    cached * per_token(cache_read) + completion * per_token(price["output"]))
            self.assertAlmostEqual(entry["cost_usd"], bill, places=9)
            bills[agent] += bill
        self.upstream.handlers["/v1/chat/completions"] = fake_upstream.json_body(
            {"error": {"message": "Rate limit reached", "type": "requests",
                       "code": "rate_limit_exceeded"}}, status=429)
        self.proxy.request("POST", "/v1/chat/completions",
                           [("Content-Type", "application/json"), ("x-agent-id", "a")],
                           b'{"model":"gpt-4o-mini","messages":[]}', request_id="usage-429")
        self.proxy.log_for("usage-429")

        usage = json.loads(self.proxy.admin_get("/v1/usage?hours=1").body)
        self.assertEqual(usage["window"]["hours"], 1)
        self.assertEqual(usage["pricing_version"], "2026-12-04")
        self.assertEqual(usage["totals"]["requests"], 4)
        self.assertAlmostEqual(usage["totals"]["cost_usd"], bills["a"] + bills["b"], places=9)
        self.assertEqual(usage["totals"]["tokens"]["input"], 4500)
        self.assertEqual(usage["totals"]["tokens"]["cache_read"], 1000)
        self.assertEqual(usage["totals"]["tokens"]["output"], 350)
        rows = {(r["agent"], r["model"]): r for r in usage["usage"]}
        self.assertEqual(set(rows), {("a", "gpt-4o-mini"), ("b", "gpt-4o-mini")})
        a = rows[("a", "gpt-4o-mini")]
        self.assertEqual(a["provider"], "openai")
        self.assertEqual(a["requests"], 3)
        self.assertEqual(a["errors"], 1)
        self.assertEqual(a["errors_by_type"], {"rate_limited": 1})
        self.assertAlmostEqual(a["cost_usd"], bills["a"], places=9)
        self.assertEqual(a["latency_seconds"]["count"], 3)
        self.assertGreater(a["latency_seconds"]["p95"], 0)
        self.assertIsNone(a["ttft_seconds"])  # no streams
        # The same answer as Prometheus.
        samples = self.proxy.metrics()
        for agent in ("a", "b"):
            self.assertAlmostEqual(metric_value(samples, "llm_cost_usd_total", agent=agent),
                                   rows[(agent, "gpt-4o-mini")]["cost_usd"], places=9)
        only_b = json.loads(self.proxy.admin_get("/v1/usage?agent=b&minutes=true").body)
        self.assertEqual([r["agent"] for r in only_b["usage"]], ["b"])
        self.assertEqual(sum(m["requests"] for m in only_b["usage"][0]["minutes"]), 1)
        self.assertEqual(json.loads(self.proxy.admin_get("/v1/usage?model=none").body)["usage"],
                         [])
        bad = self.proxy.admin_get("/v1/usage?hours=25")
        self.assertEqual(bad.status, 400)
        self.assertEqual(json.loads(bad.body)["error"]["type"], "invalid_request")

    def test_a_bad_price_file_is_rejected_with_its_line(self):
        bad = os.path.join(self.tmp, "bad-prices.json")
        with open(bad, "w", encoding="utf-8") as f:
            f.write('{\n  "unit": "usd_per_million_tokens",\n  "models": {\n'
                    '    "m": {"input": "cheap"}\n  }\n}\n')
        config = os.path.join(self.tmp, "bad.yaml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(f"pricing:\n  files: [{bad}]\n")
        result = subprocess.run([os.environ["TOKENTAP_BIN"], "--config", config,
                                 "--check-config"], capture_output=True, text=True, timeout=10,
                                check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(f"{bad}:4:", result.stderr)


if __name__ == "__main__":
    unittest.main()
