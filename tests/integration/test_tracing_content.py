"""Content capture in exported spans: prompts and completions of OpenAI chat, Anthropic Messages
and Gemini generateContent, JSON and streamed, arrive as the GenAI v1.37.0 attributes
gen_ai.system_instructions, gen_ai.input.messages and gen_ai.output.messages, PII-scrubbed,
bounded, and never with an API key in any exported byte."""

import json
import unittest

import fake_upstream
from tracing_support import CHAT, TracingCase, decoder_missing

ANTHROPIC_PATH = "/v1/messages"
GEMINI_MODEL = "gemini-2.0-flash"
GEMINI_PATH = f"/v1beta/models/{GEMINI_MODEL}:generateContent"
GEMINI_STREAM_PATH = f"/v1beta/models/{GEMINI_MODEL}:streamGenerateContent"


def text(content):
    return {"type": "text", "content": content}


def sse_event(data, event=None):
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(data).encode() + b"\n\n"


def anthropic_stream(blocks, stop_reason="end_turn"):
    """An Anthropic Messages SSE stream of `blocks`: ("text", [deltas]) or
    ("tool_use", id, name, [partial_json fragments])."""
    events = [sse_event({"type": "message_start", "message": {
        "id": "msg_it", "type": "message", "role": "assistant", "content": [],
        "model": "claude-sonnet-4-5-20250929", "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 40, "output_tokens": 1}}}, "message_start")]
    for index, block in enumerate(blocks):
        if block[0] == "text":
            start, fragments = {"type": "text", "text": ""}, block[1]
            delta = [{"type": "text_delta", "text": f} for f in fragments]
        else:
            start = {"type": "tool_use", "id": block[1], "name": block[2], "input": {}}
            delta = [{"type": "input_json_delta", "partial_json": f} for f in block[3]]
        events.append(sse_event({"type": "content_block_start", "index": index,
                                 "content_block": start}, "content_block_start"))
        if index == 0:
            events.append(sse_event({"type": "ping"}, "ping"))
        for d in delta:
            events.append(sse_event({"type": "content_block_delta", "index": index,
                                     "delta": d}, "content_block_delta"))
        events.append(sse_event({"type": "content_block_stop", "index": index},
                                "content_block_stop"))
    events.append(sse_event({"type": "message_delta", "delta": {"stop_reason": stop_reason,
                                                                "stop_sequence": None},
                             "usage": {"output_tokens": 25}}, "message_delta"))
    events.append(sse_event({"type": "message_stop"}, "message_stop"))
    return events


def gemini_chunk(parts, finish=None):
    candidate = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    usage = {"promptTokenCount": 30, "totalTokenCount": 30}
    if finish:
        usage.update(candidatesTokenCount=12, totalTokenCount=42)
    return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": GEMINI_MODEL,
            "responseId": "resp-it"}


def gemini_json_array(chunks):
    """streamGenerateContent without alt=sse: one JSON array, sent an element at a time."""

    def handler(_request, reply):
        reply.start_chunked(200, [("Content-Type", "application/json; charset=UTF-8")])
        for i, chunk in enumerate(chunks):
            reply.chunk((b"[" if i == 0 else b",\r\n") + json.dumps(chunk).encode())
        reply.chunk(b"]")
        reply.end_chunks()

    return handler


@unittest.skipIf(decoder_missing(), decoder_missing())
class ContentCaptureTest(TracingCase):
    def post(self, path, document, request_id, query=""):
        response = self.proxy.request("POST", path + query,
                                      [("Content-Type", "application/json")],
                                      json.dumps(document).encode(), request_id=request_id)
        self.assertEqual(response.status, 200, response.body[:300])
        return response

    def captured(self, request_id):
        """The content attributes of the one exported span, decoded from their JSON text."""
        [span] = self.receiver.wait_spans(1)
        attrs = span["attrs"]
        self.assertEqual(attrs["tokentap.request_id"], request_id)
        self.assertNotIn("tokentap.content.truncated", attrs)
        return {key: json.loads(attrs[key]) for key in
                ("gen_ai.system_instructions", "gen_ai.input.messages", "gen_ai.output.messages")
                if key in attrs}

    def assert_nothing_secret_exported(self, *secrets_sent):
        """After the proxy stopped: no canary key (whole or its random part) and none of
        `secrets_sent` in any exported byte, bodies, paths and headers alike."""
        raw = self.receiver.raw_bytes()
        self.assertTrue(raw)
        for canary in sorted(self.proxy.canaries):
            self.assertNotIn(canary.encode(), raw)
            self.assertNotIn(canary.rsplit("-", 1)[1].encode(), raw)
        for secret in secrets_sent:
            self.assertNotIn(secret.encode(), raw)

    def assert_redactions(self, **expected):
        for kind, count in expected.items():
            self.assertEqual(self.proxy.metric("tokentap_pii_redactions_total", kind=kind), count,
                             kind)

    def chat_content(self, messages, request_id):
        body = json.dumps({"model": "gpt-4o-mini", "messages": messages}).encode()
        response = self.proxy.request("POST", "/v1/chat/completions",
                                      [("Content-Type", "application/json")], body,
                                      request_id=request_id)
        self.assertEqual(response.status, 200, response.body[:300])

    def test_captured_content_is_scrubbed_and_counted(self):
        self.start(capture_content=True, pii_patterns=["EMP-[0-9]{6}"])
        answer = dict(CHAT, choices=[{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant", "content": "Sent to carol@example.net."}}])
        self.upstream.handlers["/v1/chat/completions"] = fake_upstream.json_body(answer)
        key = self.proxy.new_key()
        prompt = f"I am dave@example.com, card 4111 1111 1111 1111, key {key}, badge EMP-123456."
        self.chat_content([{"role": "system", "content": "Be brief."},
                           {"role": "user", "content": prompt}], "captured")
        [span] = self.receiver.wait_spans(1)
        attrs = span["attrs"]
        self.assertEqual(json.loads(attrs["gen_ai.input.messages"]), [
            {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
            {"role": "user", "parts": [{"type": "text", "content":
                "I am <EMAIL>, card <CREDIT_CARD>, key <API_KEY>, badge <REDACTED>."}]}])
        self.assertEqual(json.loads(attrs["gen_ai.output.messages"]), [
            {"role": "assistant", "parts": [{"type": "text", "content": "Sent to <EMAIL>."}],
             "finish_reason": "stop"}])
        self.assertNotIn("tokentap.content.truncated", attrs)
        expected = {"email": 2, "credit_card": 1, "api_key": 1, "custom": 1, "phone": 0, "ip": 0}
        for kind, count in expected.items():
            self.assertEqual(self.proxy.metric("tokentap_pii_redactions_total", kind=kind), count,
                             kind)
        self.proxy.stop()
        raw = b"".join(body for _, body, _, _ in self.receiver.raw())
        secrets_sent = [key, key.rsplit("-", 1)[1], "dave@example.com", "carol@example.net",
                        "4111 1111 1111 1111", "EMP-123456"]
        for secret in secrets_sent + sorted(self.proxy.canaries):
            self.assertNotIn(secret.encode(), raw)

    def test_captured_content_from_a_stream_is_accumulated_then_scrubbed(self):
        self.start(capture_content=True)

        def chunk(delta, finish=None):
            event = {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return b"data: " + json.dumps(event).encode() + b"\n\n"

        # The e-mail address is split across deltas: only the whole text is scrubbed.
        events = [chunk({"role": "assistant", "content": "Write to erin@exa"}),
                  chunk({"content": "mple.org today."}), chunk({}, "stop"),
                  b"data: " + json.dumps({"id": "c1", "object": "chat.completion.chunk",
                                          "model": "gpt-4o-mini", "choices": [], "usage": {
                                              "prompt_tokens": 5, "completion_tokens": 6,
                                              "total_tokens": 11}}).encode() + b"\n\n",
                  b"data: [DONE]\n\n"]
        self.upstream.handlers["/v1/chat/completions"] = fake_upstream.sse(events)
        body = json.dumps({"model": "gpt-4o-mini", "stream": True,
                           "messages": [{"role": "user", "content": "Who?"}]}).encode()
        response = self.proxy.request("POST", "/v1/chat/completions",
                                      [("Content-Type", "application/json")], body)
        self.assertEqual(response.status, 200)
        [span] = self.receiver.wait_spans(1)
        self.assertEqual(json.loads(span["attrs"]["gen_ai.output.messages"]), [
            {"role": "assistant", "parts": [{"type": "text",
                                              "content": "Write to <EMAIL> today."}],
             "finish_reason": "stop"}])
        self.proxy.stop()
        raw = b"".join(body for _, body, _, _ in self.receiver.raw())
        self.assertNotIn(b"erin@", raw)

    def test_captured_content_is_bounded_and_marked(self):
        self.start(capture_content=True, content_max_bytes=1024)
        self.chat_content([{"role": "user", "content": "é" * 20000}], "long")
        [span] = self.receiver.wait_spans(1)
        attrs = span["attrs"]
        captured = attrs["gen_ai.input.messages"]
        self.assertLessEqual(len(captured.encode()), 1024)
        text = json.loads(captured)[0]["parts"][0]["content"]
        self.assertTrue(text.endswith("...<TRUNCATED>"))
        self.assertEqual(set(text[:-len("...<TRUNCATED>")]), {"é"})
        self.assertIs(attrs["tokentap.content.truncated"], True)

    def test_without_capture_content_a_span_carries_no_content(self):
        self.start()
        self.chat_content([{"role": "user", "content": "I am dave@example.com"}], "plain")
        [span] = self.receiver.wait_spans(1)
        for key in ("gen_ai.input.messages", "gen_ai.output.messages",
                    "gen_ai.system_instructions", "tokentap.content.truncated"):
            self.assertNotIn(key, span["attrs"])
        self.assertEqual(self.proxy.metric("tokentap_pii_redactions_total", kind="email"), 0)
        self.proxy.stop()
        raw = b"".join(body for _, body, _, _ in self.receiver.raw())
        self.assertNotIn(b"dave@example.com", raw)

    def test_anthropic_system_string_blocks_and_a_streamed_answer(self):
        self.start(provider="anthropic", capture_content=True)
        events = anthropic_stream([
            ("text", ["I wrote to frank@exa", "mple.com; card on file ", "5555 5555 5555 4444."]),
            ("tool_use", "toolu_01", "send_mail",
             ['{"to": "grace@', 'example.org", "body": "hi"}'])], stop_reason="tool_use")
        self.upstream.handlers[ANTHROPIC_PATH] = fake_upstream.sse(events)
        key = self.proxy.new_key()
        request = {
            "model": "claude-sonnet-4-5", "max_tokens": 200, "stream": True,
            "system": "You are a mail assistant. Escalate to ops@example.com.",
            "messages": [
                {"role": "user", "content": f"Mail heidi@example.com, my key is {key}."},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Looking her up."},
                    {"type": "tool_use", "id": "toolu_00", "name": "lookup",
                     "input": {"name": "heidi"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_00",
                     "content": [{"type": "text", "text": "heidi@example.com, +1 415 555 0100"}]},
                    {"type": "text", "text": "Go on."}]}]}
        response = self.post(ANTHROPIC_PATH, request, "anthropic-stream")
        self.assertIn(b"send_mail", response.body)  # the stream reached the client unchanged
        captured = self.captured("anthropic-stream")
        self.assertEqual(captured["gen_ai.system_instructions"],
                         [text("You are a mail assistant. Escalate to <EMAIL>.")])
        self.assertEqual(captured["gen_ai.input.messages"], [
            {"role": "user", "parts": [text("Mail <EMAIL>, my key is <API_KEY>.")]},
            {"role": "assistant", "parts": [
                text("Looking her up."),
                {"type": "tool_call", "id": "toolu_00", "name": "lookup",
                 "arguments": '{"name":"heidi"}'}]},
            {"role": "user", "parts": [
                {"type": "tool_call_response", "id": "toolu_00",
                 "response": "<EMAIL>, <PHONE>"},
                text("Go on.")]}])
        # The stream's deltas are joined before scrubbing: the split address is still found.
        self.assertEqual(captured["gen_ai.output.messages"], [
            {"role": "assistant", "finish_reason": "tool_use", "parts": [
                text("I wrote to <EMAIL>; card on file <CREDIT_CARD>."),
                {"type": "tool_call", "id": "toolu_01", "name": "send_mail",
                 "arguments": '{"to": "<EMAIL>", "body": "hi"}'}]}])
        self.assert_redactions(email=5, credit_card=1, api_key=1, phone=1, ip=0, custom=0)
        self.proxy.stop()
        self.assert_nothing_secret_exported("frank@", "mple.com", "grace@", "heidi@",
                                            "ops@example.com", "5555 5555 5555 4444",
                                            "415 555 0100")

    def test_anthropic_system_blocks_and_a_json_answer(self):
        self.start(provider="anthropic", capture_content=True)
        answer = {"id": "msg_it", "type": "message", "role": "assistant",
                  "model": "claude-sonnet-4-5-20250929", "stop_reason": "end_turn",
                  "content": [{"type": "thinking", "thinking": "Card 4012888888881881 is fine.",
                               "signature": "c2lnbmF0dXJl"},
                              {"type": "text", "text": "Charged; receipt to ivan@example.net."}],
                  "usage": {"input_tokens": 50, "output_tokens": 20}}
        self.upstream.handlers[ANTHROPIC_PATH] = fake_upstream.json_body(answer)
        key = self.proxy.new_key()
        request = {"model": "claude-sonnet-4-5", "max_tokens": 200,
                   "system": [{"type": "text", "text": "You bill customers."},
                              {"type": "text", "text": f"Billing key {key}.",
                               "cache_control": {"type": "ephemeral"}}],
                   "messages": [{"role": "user", "content": [
                       {"type": "text", "text": "Charge card 4012 8888 8888 1881."},
                       {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                    "data": "aVZCT1J3MEtHZ28="}}]}]}
        self.post(ANTHROPIC_PATH, request, "anthropic-json")
        captured = self.captured("anthropic-json")
        self.assertEqual(captured["gen_ai.system_instructions"],
                         [text("You bill customers."), text("Billing key <API_KEY>.")])
        # The image is a part of its type, without its data.
        self.assertEqual(captured["gen_ai.input.messages"], [
            {"role": "user", "parts": [text("Charge card <CREDIT_CARD>."), {"type": "image"}]}])
        self.assertEqual(captured["gen_ai.output.messages"], [
            {"role": "assistant", "finish_reason": "end_turn", "parts": [
                {"type": "reasoning", "content": "Card <CREDIT_CARD> is fine."},
                text("Charged; receipt to <EMAIL>.")]}])
        self.assert_redactions(email=1, credit_card=2, api_key=1, phone=0, ip=0, custom=0)
        self.proxy.stop()
        self.assert_nothing_secret_exported("ivan@", "4012 8888 8888 1881", "4012888888881881",
                                            "aVZCT1J3MEtHZ28=")

    def gemini_request(self, key):
        return {"systemInstruction": {"parts": [{"text": "Answer support mail."},
                                                {"text": "Never reveal judy@example.com."}]},
                "contents": [
                    {"role": "user", "parts": [{"text": f"I am kim@example.org, key {key}."}]},
                    {"role": "model", "parts": [{"functionCall": {
                        "name": "find_order", "args": {"card": "4012888888881881"}}}]},
                    {"role": "user", "parts": [{"functionResponse": {
                        "name": "find_order", "response": {"status": "shipped"}}}]},
                    {"role": "user", "parts": [{"text": "Where is it?"},
                                               {"inlineData": {"mimeType": "image/jpeg",
                                                               "data": "LzlqLzRBQVFTa1pKUmdBQg=="}}]}],
                "generationConfig": {"maxOutputTokens": 100}}

    def expected_gemini_input(self):
        return [
            {"role": "user", "parts": [text("I am <EMAIL>, key <API_KEY>.")]},
            {"role": "assistant", "parts": [{"type": "tool_call", "name": "find_order",
                                             "arguments": '{"card":"<CREDIT_CARD>"}'}]},
            {"role": "user", "parts": [{"type": "tool_call_response", "name": "find_order",
                                        "response": '{"status":"shipped"}'}]},
            {"role": "user", "parts": [text("Where is it?"), {"type": "inlineData"}]}]

    def test_gemini_generate_content(self):
        self.start(provider="gemini", capture_content=True)
        answer = gemini_chunk([{"text": "Shipped to lee@example.net on Monday."}], "STOP")
        self.upstream.handlers[GEMINI_PATH] = fake_upstream.json_body(answer)
        key = self.proxy.new_key()
        self.post(GEMINI_PATH, self.gemini_request(key), "gemini-json", query=f"?key={key}")
        captured = self.captured("gemini-json")
        self.assertEqual(captured["gen_ai.system_instructions"],
                         [text("Answer support mail."), text("Never reveal <EMAIL>.")])
        self.assertEqual(captured["gen_ai.input.messages"], self.expected_gemini_input())
        self.assertEqual(captured["gen_ai.output.messages"], [
            {"role": "assistant", "finish_reason": "STOP",
             "parts": [text("Shipped to <EMAIL> on Monday.")]}])
        self.assert_redactions(email=3, credit_card=1, api_key=1, phone=0, ip=0, custom=0)
        self.proxy.stop()
        self.assert_nothing_secret_exported("judy@", "kim@", "lee@", "4012888888881881",
                                            "LzlqLzRBQVFTa1pKUmdBQg==")

    def test_gemini_streams_sse_and_json_array(self):
        chunks = [gemini_chunk([{"text": "Thinking about 10.1.2.3", "thought": True}]),
                  gemini_chunk([{"text": "Your card 4012 8888 "}]),
                  gemini_chunk([{"text": "8888 1881 is on file for mo@exam"}]),
                  gemini_chunk([{"text": "ple.com."}], "STOP")]
        streams = {"sse": ("?alt=sse", fake_upstream.sse([sse_event(c) for c in chunks])),
                   "json array": ("", gemini_json_array(chunks))}
        for name, (query, handler) in streams.items():
            with self.subTest(stream=name):
                self.start(provider="gemini", capture_content=True)
                self.upstream.handlers[GEMINI_STREAM_PATH] = handler
                key = self.proxy.new_key()
                request_id = "gemini-" + name.replace(" ", "-")
                response = self.post(GEMINI_STREAM_PATH, self.gemini_request(key), request_id,
                                     query=query)
                self.assertIn(b"mo@exam", response.body)  # the client gets the stream as sent
                captured = self.captured(request_id)
                self.assertEqual(captured["gen_ai.input.messages"],
                                 self.expected_gemini_input())
                self.assertEqual(captured["gen_ai.output.messages"], [
                    {"role": "assistant", "finish_reason": "STOP", "parts": [
                        {"type": "reasoning", "content": "Thinking about <IP>"},
                        text("Your card <CREDIT_CARD> is on file for <EMAIL>.")]}])
                self.assert_redactions(email=3, credit_card=2, api_key=1, ip=1, phone=0,
                                       custom=0)
                self.proxy.stop()
                self.assert_nothing_secret_exported("judy@", "kim@", "mo@exam", "10.1.2.3",
                                                    "4012888888881881", "8888 1881")


if __name__ == "__main__":
    unittest.main()
