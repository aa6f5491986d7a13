"""Tool execution time and tool loops through the real binary (issue 15).

A fake agent runs a multi-step tool loop per provider: a response asks for tool calls (as a JSON
body or streamed), the agent "runs" them by sleeping a known time after the response ended, and
its next request carries the results (some of them errors). tokentap must observe that time in
llm_tool_duration_seconds{agent, tool}, count every result in llm_tool_results_total{agent,
tool, status} and list it in the access log's tool_results with duration_ms.

The agent starts its sleep once the previous request's access-log line is written (the last
completion sink, so the response's end was stamped before). Pending calls are kept to the
millisecond, so a measured time may read up to 1 ms below the sleep; above it, it may carry the
agent's own overhead, up to MARGIN.

A tool loop is the same tool asked for with the same arguments again and again in one session
(x-session-id): llm_session_tool_repeats_total grows with every repeat, and past
sessions.max_identical_tool_calls the session is a runaway, refused like every runaway session
with runaway_action block, counted and let through with alert.
"""

import collections
import json
import time
import unittest

import fake_upstream
from harness import ProxyTestCase, metric_value, proxy_config

SHORT = 0.3  # seconds the agent takes to run a tool
LONG = 0.6
MARGIN = 0.25
STORE_RESOLUTION = 0.001


def sse_events(events):
    """SSE `data:` events (dicts, or (event name, dict) pairs) as bytes, one per chunk."""
    out = []
    for event in events:
        name = None
        if isinstance(event, tuple):
            name, event = event
        data = event if isinstance(event, str) else json.dumps(event)
        out.append((f"event: {name}\n" if name else "").encode() + f"data: {data}\n\n".encode())
    return out


# OpenAI chat completions.
def chat_call(call_id, name, arguments):
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments)}}


def chat_tool_response(calls):
    return fake_upstream.json_body({
        "id": "chatcmpl-tools", "object": "chat.completion", "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "tool_calls",
                     "message": {"role": "assistant", "content": None, "tool_calls": calls}}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}})


def chat_text_response():
    return fake_upstream.json_body({
        "id": "chatcmpl-text", "object": "chat.completion", "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "done"}}],
        "usage": {"prompt_tokens": 60, "completion_tokens": 1, "total_tokens": 61}})


def chat_streamed_call(call_id, name, arguments):
    """A streamed chat completion whose one tool call's arguments arrive in two deltas."""
    text = json.dumps(arguments)
    half = len(text) // 2

    def chunk(delta, finish=None):
        return {"id": "chatcmpl-stream", "object": "chat.completion.chunk", "created": 1,
                "model": "gpt-4o-mini",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    return fake_upstream.sse(sse_events([
        chunk({"role": "assistant", "content": None, "tool_calls": [
            {"index": 0, "id": call_id, "type": "function",
             "function": {"name": name, "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": text[:half]}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": text[half:]}}]}),
        chunk({}, "tool_calls"),
        {"id": "chatcmpl-stream", "object": "chat.completion.chunk", "created": 1,
         "model": "gpt-4o-mini", "choices": [],
         "usage": {"prompt_tokens": 50, "completion_tokens": 9, "total_tokens": 59}},
        "[DONE]"]))


def chat_request(results=(), stream=False):
    """A chat request whose newest turn holds one role "tool" message per (id, content)."""
    messages = [{"role": "user", "content": "plan my trip"}]
    if results:
        messages.append({"role": "assistant", "content": None, "tool_calls": []})
    messages += [{"role": "tool", "tool_call_id": call_id, "content": content}
                 for call_id, content in results]
    body = {"model": "gpt-4o-mini", "messages": messages}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return body


# OpenAI Responses.
def responses_body(output, status="completed"):
    return {"id": "resp_tools", "object": "response", "created_at": 1, "status": status,
            "model": "gpt-4.1-mini", "output": output,
            "usage": {"input_tokens": 40, "output_tokens": 10, "total_tokens": 50,
                      "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens_details": {"reasoning_tokens": 0}}}


def function_call_item(call_id, name, arguments, item_id):
    return {"id": item_id, "type": "function_call", "status": "completed", "call_id": call_id,
            "name": name, "arguments": json.dumps(arguments)}


def responses_streamed_call(call_id, name, arguments):
    text = json.dumps(arguments)
    item = function_call_item(call_id, name, arguments, "fc_stream")
    added = dict(item, status="in_progress", arguments="")
    created = responses_body([], "in_progress")
    del created["usage"]
    return fake_upstream.sse(sse_events([
        ("response.created", {"type": "response.created", "response": created}),
        ("response.output_item.added",
         {"type": "response.output_item.added", "output_index": 0, "item": added}),
        ("response.function_call_arguments.delta",
         {"type": "response.function_call_arguments.delta", "item_id": "fc_stream",
          "output_index": 0, "delta": text[:3]}),
        ("response.function_call_arguments.delta",
         {"type": "response.function_call_arguments.delta", "item_id": "fc_stream",
          "output_index": 0, "delta": text[3:]}),
        ("response.output_item.done",
         {"type": "response.output_item.done", "output_index": 0, "item": item}),
        ("response.completed",
         {"type": "response.completed", "response": responses_body([item])})]))


def responses_request(results=(), stream=False):
    """A Responses request whose input ends with one function_call_output per (id, output)."""
    items = [{"role": "user", "content": "find the bug"}]
    items += [{"type": "function_call_output", "call_id": call_id, "output": output}
              for call_id, output in results]
    body = {"model": "gpt-4.1-mini", "input": items}
    if stream:
        body["stream"] = True
    return body


# Anthropic messages.
ANTHROPIC_MODEL = "claude-sonnet-4-20250514"


def anthropic_tool_response(blocks):
    return fake_upstream.json_body({
        "id": "msg_tools", "type": "message", "role": "assistant", "model": ANTHROPIC_MODEL,
        "content": [{"type": "tool_use", "id": block_id, "name": name, "input": arguments}
                    for block_id, name, arguments in blocks],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 25, "output_tokens": 15}})


def anthropic_text_response():
    return fake_upstream.json_body({
        "id": "msg_text", "type": "message", "role": "assistant", "model": ANTHROPIC_MODEL,
        "content": [{"type": "text", "text": "all done"}], "stop_reason": "end_turn",
        "stop_sequence": None, "usage": {"input_tokens": 70, "output_tokens": 3}})


def anthropic_streamed_call(block_id, name, arguments):
    text = json.dumps(arguments)
    return fake_upstream.sse(sse_events([
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_stream", "type": "message", "role": "assistant", "model": ANTHROPIC_MODEL,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 50, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": block_id, "name": name, "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
            "type": "input_json_delta", "partial_json": text[:4]}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
            "type": "input_json_delta", "partial_json": text[4:]}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta",
                           "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                           "usage": {"output_tokens": 11}}),
        ("message_stop", {"type": "message_stop"})]))


def anthropic_request(results=(), stream=False):
    """A messages request whose last (user) turn holds one tool_result per (id, is_error)."""
    messages = [{"role": "user", "content": "fix the build"}]
    if results:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": "on it"}]})
        blocks = []
        for block_id, is_error in results:
            block = {"type": "tool_result", "tool_use_id": block_id, "content": "output"}
            if is_error:
                block["is_error"] = True
            blocks.append(block)
        messages.append({"role": "user", "content": blocks})
    body = {"model": ANTHROPIC_MODEL, "max_tokens": 1024, "messages": messages}
    if stream:
        body["stream"] = True
    return body


# Gemini generateContent.
GEMINI_MODEL = "gemini-2.5-flash"
GEMINI_PATH = f"/v1beta/models/{GEMINI_MODEL}:generateContent"
GEMINI_STREAM_PATH = f"/v1beta/models/{GEMINI_MODEL}:streamGenerateContent?alt=sse"


def gemini_call_part(name, arguments, call_id=None):
    call = {"name": name, "args": arguments}
    if call_id:
        call["id"] = call_id
    return {"functionCall": call}


def gemini_answer(parts):
    return {"candidates": [{"content": {"role": "model", "parts": parts},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 8,
                              "totalTokenCount": 38},
            "modelVersion": GEMINI_MODEL}


def gemini_request(responses=()):
    """A request whose last (user) content holds one functionResponse per (id, name, error)."""
    contents = [{"role": "user", "parts": [{"text": "look it up"}]}]
    if responses:
        contents.append({"role": "model", "parts": [{"text": "calling tools"}]})
        parts = []
        for call_id, name, error in responses:
            response = {"error": {"message": error}} if error else {"result": "found"}
            function_response = {"name": name, "response": response}
            if call_id:
                function_response["id"] = call_id
            parts.append({"functionResponse": function_response})
        contents.append({"role": "user", "parts": parts})
    return {"contents": contents}


class ToolLoopTest(ProxyTestCase):
    def start(self, provider, **overrides):
        self.upstream = self.start_upstream()
        self.replies = collections.deque()
        self.upstream.default_handler = self._next_reply
        self.proxy = self.start_proxy(proxy_config(self.upstream.url(), provider=provider,
                                                   **overrides))

    def _next_reply(self, request, reply):
        self.replies.popleft()(request, reply)

    def step(self, agent, path, body, answer, request_id, after=None, session=None):
        """Waits `after` seconds (the agent running its tools), sends `body` and returns the
        request's access-log line once tokentap wrote it."""
        if after:
            time.sleep(after)
        self.replies.append(answer)
        headers = [("Content-Type", "application/json"), ("x-agent-id", agent)]
        if session:
            headers.append(("x-session-id", session))
        response = self.proxy.request("POST", path, headers, json.dumps(body).encode(),
                                      request_id=request_id)
        self.assertEqual(response.status, 200, response.body[:300])
        return self.proxy.log_for(request_id)

    def assert_in_window(self, seconds, slept, what):
        self.assertGreaterEqual(seconds, slept - STORE_RESOLUTION, what)
        self.assertLessEqual(seconds, slept + MARGIN, what)

    def assert_tool_results(self, entry, expected):
        """`entry`'s tool_results are `expected`: [(tool, status, slept seconds or None)]."""
        found = entry.get("tool_results")
        self.assertIsInstance(found, list, entry)
        self.assertEqual([(r["tool"], r["status"]) for r in found],
                         [(tool, status) for tool, status, _ in expected], entry)
        for result, (tool, _, slept) in zip(found, expected):
            if slept is None:
                self.assertNotIn("duration_ms", result, result)
            else:
                self.assert_in_window(result["duration_ms"] / 1000, slept,
                                      f"duration_ms of {tool}: {result}")

    def assert_tool_metrics(self, agent, durations, results):
        """durations: {tool: [slept seconds]}; results: {(tool, status): count}."""
        samples = self.proxy.metrics()
        for tool, slept in durations.items():
            count = metric_value(samples, "llm_tool_duration_seconds_count", agent=agent,
                                 tool=tool)
            total = metric_value(samples, "llm_tool_duration_seconds_sum", agent=agent, tool=tool)
            self.assertEqual(count, len(slept), f"llm_tool_duration_seconds_count of {tool}")
            self.assertGreaterEqual(total, sum(slept) - len(slept) * STORE_RESOLUTION, tool)
            self.assertLessEqual(total, sum(slept) + len(slept) * MARGIN, tool)
        observed = {s[1]["tool"] for s in samples
                    if s[0] == "llm_tool_duration_seconds_count" and s[1].get("agent") == agent}
        self.assertEqual(observed, set(durations))
        counted = {(s[1]["tool"], s[1]["status"]): s[2] for s in samples
                   if s[0] == "llm_tool_results_total" and s[1].get("agent") == agent}
        self.assertEqual(counted, results)

    def test_openai_chat_tool_loop(self):
        self.start("openai")
        path = "/v1/chat/completions"
        first = self.step("chat", path, chat_request(), chat_tool_response([
            chat_call("call_weather", "get_weather", {"city": "Oslo"}),
            chat_call("call_time", "get_time", {"tz": "Europe/Oslo"})]), "chat-1")
        self.assertNotIn("tool_results", first)
        # get_time failed: its content is a JSON object with an `error` key. The next answer
        # streams one more call.
        second = self.step("chat", path, chat_request(
            [("call_weather", "sunny, 4 C"), ("call_time", '{"error": "tz database missing"}')],
            stream=True), chat_streamed_call("call_search", "search", {"q": "Oslo museums"}),
            "chat-2", after=SHORT)
        self.assert_tool_results(second, [("get_weather", "success", SHORT),
                                          ("get_time", "error", SHORT)])
        third = self.step("chat", path, chat_request([("call_search", "3 results")]),
                          chat_text_response(), "chat-3", after=LONG)
        self.assert_tool_results(third, [("search", "success", LONG)])
        # A result nobody asked for (or sent twice) is counted, untimed, as tool "unknown".
        fourth = self.step("chat", path, chat_request([("call_search", "3 results")]),
                           chat_text_response(), "chat-4")
        self.assert_tool_results(fourth, [("unknown", "success", None)])
        self.assert_tool_metrics(
            "chat", {"get_weather": [SHORT], "get_time": [SHORT], "search": [LONG]},
            {("get_weather", "success"): 1, ("get_time", "error"): 1, ("search", "success"): 1,
             ("unknown", "success"): 1})

    def test_openai_responses_tool_loop(self):
        self.start("openai")
        path = "/v1/responses"
        self.step("resp", path, responses_request(), fake_upstream.json_body(responses_body([
            function_call_item("call_grep", "grep", {"pattern": "TODO"}, "fc_1"),
            function_call_item("call_cat", "cat", {"file": "main.cc"}, "fc_2")])), "resp-1")
        second = self.step("resp", path, responses_request(
            [("call_grep", "3 matches"), ("call_cat", '{"error": "no such file"}')],
            stream=True), responses_streamed_call("call_test", "run_tests", {"suite": "unit"}),
            "resp-2", after=LONG)
        self.assert_tool_results(second, [("grep", "success", LONG), ("cat", "error", LONG)])
        third = self.step("resp", path, responses_request([("call_test", "all passed")]),
                          fake_upstream.json_body(responses_body([
                              {"id": "msg_1", "type": "message", "role": "assistant",
                               "status": "completed",
                               "content": [{"type": "output_text", "text": "fixed"}]}])),
                          "resp-3", after=SHORT)
        self.assert_tool_results(third, [("run_tests", "success", SHORT)])
        self.assert_tool_metrics(
            "resp", {"grep": [LONG], "cat": [LONG], "run_tests": [SHORT]},
            {("grep", "success"): 1, ("cat", "error"): 1, ("run_tests", "success"): 1})

    def test_anthropic_tool_loop(self):
        self.start("anthropic")
        path = "/v1/messages"
        self.step("claude", path, anthropic_request(), anthropic_tool_response([
            ("toolu_read", "read_file", {"path": "a.txt"}),
            ("toolu_build", "build", {"target": "all"})]), "claude-1")
        second = self.step("claude", path, anthropic_request(
            [("toolu_read", False), ("toolu_build", True)], stream=True),
            anthropic_streamed_call("toolu_read2", "read_file", {"path": "build.log"}),
            "claude-2", after=SHORT)
        self.assert_tool_results(second, [("read_file", "success", SHORT),
                                          ("build", "error", SHORT)])
        third = self.step("claude", path, anthropic_request([("toolu_read2", False)]),
                          anthropic_text_response(), "claude-3", after=LONG)
        self.assert_tool_results(third, [("read_file", "success", LONG)])
        self.assert_tool_metrics(
            "claude", {"read_file": [SHORT, LONG], "build": [SHORT]},
            {("read_file", "success"): 2, ("build", "error"): 1})

    def test_gemini_tool_loop(self):
        self.start("gemini")
        # One call with an id (answered by id), one without (answered by name).
        self.step("gem", GEMINI_PATH, gemini_request(), fake_upstream.json_body(gemini_answer([
            gemini_call_part("find", {"q": "flights"}, call_id="fc-find"),
            gemini_call_part("book", {"flight": "LH 123"})])), "gem-1")
        # book failed: its response has an `error` key. The answer streams the next call.
        second = self.step("gem", GEMINI_STREAM_PATH, gemini_request(
            [("fc-find", "find", None), (None, "book", "sold out")]),
            fake_upstream.sse(sse_events([
                gemini_answer([gemini_call_part("notify", {"to": "me"})])])),
            "gem-2", after=LONG)
        self.assert_tool_results(second, [("find", "success", LONG), ("book", "error", LONG)])
        third = self.step("gem", GEMINI_PATH, gemini_request([(None, "notify", None)]),
                          fake_upstream.json_body(gemini_answer([{"text": "booked"}])),
                          "gem-3", after=SHORT)
        self.assert_tool_results(third, [("notify", "success", SHORT)])
        # An unmatched functionResponse keeps the name the request gives it, untimed.
        fourth = self.step("gem", GEMINI_PATH, gemini_request([("fc-none", "find", None)]),
                           fake_upstream.json_body(gemini_answer([{"text": "ok"}])), "gem-4")
        self.assert_tool_results(fourth, [("find", "success", None)])
        self.assert_tool_metrics(
            "gem", {"find": [LONG], "book": [LONG], "notify": [SHORT]},
            {("find", "success"): 2, ("book", "error"): 1, ("notify", "success"): 1})

    def tool_loop(self, agent, session, repeats):
        """`repeats` requests of `session` (None: no session header) whose answers all ask for
        read_file with the same arguments (new call ids each time, as a model gives them)."""
        name = session or agent
        for i in range(repeats):
            results = [(f"call_{name}_{i - 1}", "same output")] if i else []
            self.step(agent, "/v1/chat/completions", chat_request(results),
                      chat_tool_response([chat_call(f"call_{name}_{i}", "read_file",
                                                    {"path": "loop.txt"})]),
                      f"{name}-{i}", session=session)

    def loop_request(self, agent, session, request_id):
        headers = [("Content-Type", "application/json"), ("x-agent-id", agent),
                   ("x-session-id", session)]
        return self.proxy.request("POST", "/v1/chat/completions", headers,
                                  json.dumps(chat_request([("call_x", "same")])).encode(),
                                  request_id=request_id)

    def test_a_tool_loop_is_blocked_as_a_runaway_session(self):
        self.start("openai", sessions={"max_identical_tool_calls": 2, "runaway_action": "block"})
        self.tool_loop("looper", "loop-a", 3)
        samples = self.proxy.metrics()
        # The second and third answers repeat the first call; the third is one too many.
        self.assertEqual(metric_value(samples, "llm_session_tool_repeats_total", agent="looper",
                                      tool="read_file"), 2)
        self.assertEqual(metric_value(samples, "llm_session_runaway_total", agent="looper"), 1)
        response = self.loop_request("looper", "loop-a", "loop-a-refused")
        error = self.assert_json_error(response, 429, "runaway_session", "loop-a-refused")
        self.assertIn("loop-a", error["message"])
        self.assertEqual(response.header("x-should-retry"), "false")
        self.assertEqual(len(self.upstream.requests), 3)
        entry = self.proxy.log_for("loop-a-refused")
        self.assertEqual((entry["status"], entry["error_type"]), (429, "runaway_session"), entry)
        sessions = json.loads(self.proxy.admin_get("/v1/sessions?agent=looper").body)["sessions"]
        self.assertEqual([(s["session"], s["runaway"]) for s in sessions], [("loop-a", True)])
        # Another session of the same agent is not affected.
        self.replies.append(chat_text_response())
        self.assertEqual(self.loop_request("looper", "loop-b", "loop-b-0").status, 200)

    def test_a_tool_loop_in_alert_mode_is_counted_and_let_through(self):
        self.start("openai", sessions={"max_identical_tool_calls": 2, "runaway_action": "alert"})
        self.tool_loop("alerter", "loop-c", 4)
        # Other arguments are another call: not a repeat.
        self.step("alerter", "/v1/chat/completions", chat_request(),
                  chat_tool_response([chat_call("call_other", "read_file", {"path": "b.txt"})]),
                  "loop-c-other", session="loop-c")
        samples = self.proxy.metrics()
        self.assertEqual(metric_value(samples, "llm_session_tool_repeats_total",
                                      agent="alerter", tool="read_file"), 3)
        self.assertEqual(metric_value(samples, "llm_session_runaway_total", agent="alerter"), 1)
        self.assertEqual(len(self.upstream.requests), 5)
        sessions = json.loads(self.proxy.admin_get("/v1/sessions?agent=alerter").body)["sessions"]
        self.assertEqual([(s["session"], s["runaway"], s["requests"]) for s in sessions],
                         [("loop-c", True, 5)])
        # Without a session header nothing is counted as a loop.
        self.tool_loop("loner", None, 3)
        self.assertIsNone(metric_value(self.proxy.metrics(), "llm_session_tool_repeats_total",
                                       agent="loner"))


if __name__ == "__main__":
    unittest.main()
