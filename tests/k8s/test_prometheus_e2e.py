"""End to end: the dashboard's queries and the recording rules against a real Prometheus.

tokentap runs with a route per provider to the integration tests' fake upstream, which replays
every golden recording (tests/golden/) and a few crafted cases (an unpriced model, a budget
block, a runaway conversation, a dead upstream behind a circuit breaker, a tool loop with a
repeated call and a failed result), in two waves so that
counters created in the first wave also increase. Debian's Prometheus server, on loopback, scrapes
tokentap's admin port every second and evaluates k8s/rules/tokentap.rules.yml and
tokentap.slo.rules.yml. Then, through Prometheus's HTTP
API: every rule is healthy, every recording rule's query and recorded series and every
dashboard panel query returns at least one finite sample, every dashboard variable has values,
and the alerts without a `for` that this traffic breaches are firing.
"""

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from harness import ProxyTestCase, proxy_config, wait_until  # noqa: E402

GOLDEN = os.path.join(ROOT, "tests", "golden")
RULES = [os.path.join(ROOT, "k8s", "rules", name)
         for name in ("tokentap.rules.yml", "tokentap.slo.rules.yml")]
# Recording rules that compare with the same hour of the last 7 days: no data in a fresh
# Prometheus by design (tokentap.anomaly.rules.test.yml covers them).
NEEDS_HISTORY = (":same_hour_mean7d", ":same_hour_stddev7d", ":zscore7d")
DASHBOARD = os.path.join(ROOT, "k8s", "monitoring", "tokentap-dashboard.json")
PROMETHEUS = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus")


# Client path prefix per provider route; the fake upstream sees the golden target.
PREFIX = {"openai": "", "anthropic": "", "gemini": "", "azure_openai": "", "openai_compatible": "/compat"}
AGENT = {"openai": "planner", "anthropic": "writer", "gemini": "researcher",
         "azure_openai": "planner", "openai_compatible": "local"}


def load_golden_cases():
    cases = []
    for provider in sorted(os.listdir(GOLDEN)):
        directory = os.path.join(GOLDEN, provider)
        if not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            if not name.endswith(".expect.json"):
                continue
            stem = name[: -len(".expect.json")]
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                expect = json.load(f)
            with open(os.path.join(directory, stem + ".request.json"), "rb") as f:
                request = f.read()
            sse = os.path.join(directory, stem + ".response.sse")
            body_path = sse if os.path.exists(sse) else os.path.join(directory, stem + ".response.json")
            with open(body_path, "rb") as f:
                body = f.read()
            cases.append({"id": f"{provider}/{stem}", "expect": expect, "request": request,
                          "body": body, "sse": body_path == sse})
    return cases


def golden_handler(cases):
    by_id = {case["id"]: case for case in cases}

    def handler(request, reply):
        case = by_id[request.header("x-golden")]
        expect = case["expect"]
        headers = list(expect.get("response_headers", {}).items())
        body = case["body"]
        streamed = case["sse"] or b":streamGenerateContent" in request.target.encode()
        if not streamed:
            reply.respond(expect["status"], headers, body)
            return
        # Streams go out in pieces a few milliseconds apart, so that time to first token and
        # time per output token are measured on something.
        reply.start_chunked(expect["status"], headers)
        step = max(1, len(body) // 6)
        for i in range(0, len(body), step):
            if i:
                reply.pause(0.004)
            reply.chunk(body[i:i + step])
        reply.end_chunks()

    return handler


def openai_completion(model, prompt=120, completion=30):
    return json.dumps({
        "id": "chatcmpl-e2e", "object": "chat.completion", "model": model,
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                  "total_tokens": prompt + completion}}).encode()


# The tool loop each wave plays: the model asks for the same call twice in one conversation (a
# repeat), the agent answers the first call with a result and the second with an error.
TOOL_RESULTS = ["4 C, light rain", json.dumps({"error": "weather service timed out"})]


def tool_loop_reply(request, reply):
    body = json.loads(request.body)
    answered = sum(1 for m in body["messages"] if m["role"] == "tool")
    message = {"role": "assistant", "content": "Oslo: 4 C" if answered == len(TOOL_RESULTS) else None}
    if answered < len(TOOL_RESULTS):
        message["tool_calls"] = [{
            "id": f"call-{request.header('x-session-id')}-{answered}", "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": "Oslo"})}}]
    reply.respond(200, [("Content-Type", "application/json")], json.dumps({
        "id": "chatcmpl-tools", "object": "chat.completion", "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": message,
                     "finish_reason": "tool_calls" if "tool_calls" in message else "stop"}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}}).encode())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_finite_sample(sample):
    value = float(sample["value"][1])
    return not math.isnan(value) and not math.isinf(value)


def dashboard_queries():
    with open(DASHBOARD, encoding="utf-8") as f:
        dashboard = json.load(f)
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queries.append((f'{panel["title"]} [{target["refId"]}]', target["expr"]))
    variables = [v for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return queries, variables


def substitute(expr):
    """The dashboard's variables as Grafana sends them with "All" selected."""
    for name in ("agent", "provider", "model"):
        expr = expr.replace(f"${name}", ".*")
    return expr.replace("$__rate_interval", "1m")


class Prometheus:
    def __init__(self, directory, target):
        self.directory = directory
        self.config = os.path.join(directory, "prometheus.yml")
        with open(self.config, "w", encoding="utf-8") as f:
            f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                    f"rule_files: {json.dumps(RULES)}\n"
                    "scrape_configs:\n"
                    "  - job_name: tokentap\n"
                    f"    static_configs: [{{targets: [{json.dumps(target)}]}}]\n")
        self.process = None
        self.log = None
        self.url = None

    def start(self):
        for _ in range(5):  # a port picked free can be taken before Prometheus binds it
            port = free_port()
            self.url = f"http://127.0.0.1:{port}"
            self.log = open(os.path.join(self.directory, "prometheus.log"), "w+b")
            self.process = subprocess.Popen(
                [PROMETHEUS, f"--config.file={self.config}",
                 f"--storage.tsdb.path={os.path.join(self.directory, 'data')}",
                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                        if r.status == 200:
                            return self
                except (urllib.error.URLError, OSError):
                    time.sleep(0.1)
            self.stop()
            if "address already in use" not in self.output():
                break
        raise AssertionError("Prometheus did not become ready:\n" + self.output())

    def output(self):
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")[-4000:]

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log:
            self.log.close()

    def api(self, path, **params):
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                document = json.load(r)
        except urllib.error.HTTPError as e:
            document = json.load(e)
        if document.get("status") != "success":
            raise AssertionError(f"{path} {params}: {document.get('errorType')}: {document.get('error')}")
        return document["data"]

    def query(self, expr):
        data = self.api("query", query=expr)
        if data["resultType"] != "vector":
            raise AssertionError(f"{expr}: result type {data['resultType']}")
        return data["result"]

    def last_scrape(self):
        targets = self.api("targets", state="active")["activeTargets"]
        return [(t["health"], t["lastScrape"], t["lastError"]) for t in targets]


@unittest.skipUnless(PROMETHEUS, "Debian's prometheus package is not installed (scripts/setup.sh)")
class PrometheusEndToEndTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.cases = load_golden_cases()
        self.upstream = self.start_upstream()
        for path in {c["expect"]["target"].split("?", 1)[0] for c in self.cases}:
            self.upstream.handlers[path] = golden_handler(self.cases)
        self.upstream.handlers["/v1/house/chat/completions"] = self.house_model
        self.upstream.handlers["/v1/tools/chat/completions"] = tool_loop_reply
        url = self.upstream.url()
        dead = free_port()  # nothing listens there: connect errors
        routes = [
            {"name": "anthropic", "prefix": "/v1/messages", "upstream": url, "provider": "anthropic"},
            {"name": "gemini", "prefix": "/v1beta/", "upstream": url, "provider": "gemini"},
            {"name": "azure", "prefix": "/openai/deployments/", "upstream": url,
             "provider": "azure_openai"},
            {"name": "compat", "prefix": "/compat/", "upstream": url,
             "provider": "openai_compatible", "strip_prefix": True},
            # Its breaker opens on each wave's connect error and half-opens by the next wave,
            # whose request goes upstream as the probe (502 again): transitions to graph.
            {"name": "dead", "prefix": "/dead/", "upstream": f"http://127.0.0.1:{dead}",
             "provider": "openai", "strip_prefix": True,
             "circuit_breaker": {"consecutive_failures": 1, "open_for": "100ms"}},
            {"name": "openai", "prefix": "/", "upstream": url, "provider": "openai"},
        ]
        config = proxy_config(url, routes=routes,
                              budgets=[{"agent": "budgeted", "hourly_usd": 0.001, "action": "block"},
                                       {"agent": "*", "daily_usd": 500, "action": "alert"}],
                              sessions={"idle_timeout": "1s", "max_requests_per_minute": 4,
                                        "runaway_action": "alert"},
                              pricing={"azure_deployments": {"gpt-35-turbo": "gpt-4o-mini",
                                                             "gpt4o-prod": "gpt-4o"}})
        self.proxy = self.start_proxy(config)
        host, port = self.proxy.admin_address
        self.prometheus = Prometheus(self.tmp, f"{host}:{port}").start()
        self.addCleanup(self.prometheus.stop)

    @staticmethod
    def house_model(_request, reply):
        reply.respond(200, [("Content-Type", "application/json")], openai_completion("house-model", 100000, 1000))

    def send(self, method, path, body, headers):
        return self.proxy.request(method, path, [("Content-Type", "application/json")] + headers,
                                  body)

    def wave(self, number):
        for case in self.cases:
            expect = case["expect"]
            provider = expect["route_provider"]
            agent = AGENT[provider]
            self.send("POST", PREFIX[provider] + expect["target"], case["request"],
                      [("x-golden", case["id"]), ("x-agent-id", agent),
                       ("x-session-id", f"{agent}-{number}")])
        chat = json.dumps({"model": "house-model", "messages": [{"role": "user", "content": "hi"}]})
        self.send("POST", "/v1/house/chat/completions", chat.encode(),
                  [("x-agent-id", "planner"), ("x-session-id", f"planner-{number}")])
        for _ in range(2):  # priced (0.016 USD), then refused: over the 0.001 USD hourly budget
            self.send("POST", "/v1/house/chat/completions",
                      json.dumps({"model": "gpt-4o-mini", "messages": []}).encode(),
                      [("x-agent-id", "budgeted")])
        for _ in range(6):  # over max_requests_per_minute in one conversation
            self.send("POST", "/v1/house/chat/completions", chat.encode(),
                      [("x-agent-id", "looper"), ("x-session-id", f"loop-{number}")])
        response = self.send("POST", "/dead/v1/chat/completions", chat.encode(),
                             [("x-agent-id", "planner")])
        self.assertEqual(response.status, 502)
        self.tool_loop(f"tools-{number}")

    def tool_loop(self, session):
        messages = [{"role": "user", "content": "Weather in Oslo?"}]
        for result in TOOL_RESULTS + [None]:
            response = self.send("POST", "/v1/tools/chat/completions",
                                 json.dumps({"model": "gpt-4o-mini", "messages": messages}).encode(),
                                 [("x-agent-id", "toolsmith"), ("x-session-id", session)])
            self.assertEqual(response.status, 200)
            message = response.json()["choices"][0]["message"]
            if result is None:
                self.assertNotIn("tool_calls", message)
                return
            [call] = message["tool_calls"]
            messages += [message, {"role": "tool", "tool_call_id": call["id"], "content": result}]

    def wait_for_scrapes(self, count=2):
        """Waits until Prometheus has scraped tokentap `count` more times, successfully."""
        seen = set()

        def scraped():
            targets = self.prometheus.last_scrape()
            if not targets:  # not discovered yet
                return False
            [(health, last, error)] = targets
            if health == "up":
                seen.add(last)
            elif health == "down":
                raise AssertionError(f"scrape failed: {error}")
            return len(seen) > count

        wait_until(scraped, timeout=30, what=f"{count} scrapes of tokentap", interval=0.2)

    def wait_for_sessions_closed(self):
        wait_until(lambda: not self.proxy_sessions(), timeout=10, what="sessions to close",
                   interval=0.2)

    def proxy_sessions(self):
        response = self.proxy.admin_get("/v1/sessions")
        return response.json()["sessions"]

    def test_rules_and_dashboard_queries_return_data(self):
        for number in (1, 2):
            self.wave(number)
            self.wait_for_sessions_closed()
            self.wait_for_scrapes()
        self.wait_for_rule_evaluations()

        queries, variables = dashboard_queries()
        self.assertGreater(len(queries), 30)
        problems = []
        for title, expr in queries:
            problem = self.check_query(substitute(expr))
            if problem:
                problems.append(f"panel {title}: {problem}\n  {expr}")
        for variable in variables:
            query = variable["query"]["query"]
            metric, label = query[len("label_values("):-1].rsplit(",", 1)
            series = self.prometheus.api("series", **{"match[]": substitute(metric.strip())})
            values = {s.get(label.strip()) for s in series} - {None}
            if not values:
                problems.append(f"variable {variable['name']}: {query} has no values")

        groups = self.prometheus.api("rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        self.assertGreaterEqual(len(rules), 20)
        for rule in rules:
            name = rule["name"]
            if rule["health"] != "ok" or rule.get("lastError"):
                problems.append(f"rule {name}: health {rule['health']}: {rule.get('lastError')}")
            if rule["type"] == "recording" and not name.endswith(NEEDS_HISTORY):
                for expr in (rule["query"], name):
                    problem = self.check_query(expr)
                    if problem:
                        problems.append(f"recording rule {name}: {problem}\n  {expr}")
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

        # The tool loops, as Prometheus has them: one result and one error per wave, each
        # timed, and the second call of each conversation a repeat.
        def tool_series(expr, by):
            return {s["metric"].get(by): float(s["value"][1]) for s in self.prometheus.query(expr)}
        self.assertEqual(tool_series('llm_tool_results_total{agent="toolsmith"}', "status"),
                         {"success": 2, "error": 2})
        self.assertEqual(tool_series('llm_tool_duration_seconds_count{agent="toolsmith"}', "tool"),
                         {"get_weather": 4})
        self.assertEqual(tool_series('llm_session_tool_repeats_total{agent="toolsmith"}', "tool"),
                         {"get_weather": 2})

        alerts = {rule["name"]: rule for rule in rules if rule["type"] == "alerting"}
        firing = {name: [a["labels"] for a in rule["alerts"] if a["state"] == "firing"]
                  for name, rule in alerts.items()}
        self.assertIn({"alertname": "LLMUnpricedModel", "provider": "openai",
                       "model": "house-model", "severity": "warning"}, firing["LLMUnpricedModel"])
        self.assertIn("budgeted", [a["agent"] for a in firing["LLMBudgetBlocking"]])
        self.assertIn("looper", [a["agent"] for a in firing["LLMRunawaySessions"]])
        for quiet in ("TokentapTargetDown", "TokentapTargetAbsent", "TokentapConfigReloadFailed"):
            self.assertEqual(alerts[quiet]["alerts"], [], quiet)

    def check_query(self, expr):
        try:
            result = self.prometheus.query(expr)
        except AssertionError as e:
            return f"error: {e}"
        if not result:
            return "no data"
        if not any(is_finite_sample(s) for s in result):
            return f"no finite value: {result}"
        return None

    def wait_for_rule_evaluations(self):
        """Waits until every rule group was evaluated after the last scrape we waited for."""
        since = time.time()

        def evaluated():
            groups = self.prometheus.api("rules")["groups"]
            return all(_timestamp(g["lastEvaluation"]) > since for g in groups)

        wait_until(evaluated, timeout=30, what="rule evaluations", interval=0.2)


def _timestamp(rfc3339):
    # "2026-11-22T08:01:02.123456789Z" -> seconds since the epoch (to the microsecond).
    from datetime import datetime, timezone
    head, _, rest = rfc3339.rstrip("Z").partition(".")
    fraction = float("0." + rest) if rest else 0.0
    moment = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return moment.timestamp() + fraction


if __name__ == "__main__":
    unittest.main()
