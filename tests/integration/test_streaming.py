"""Server-sent events flow through as they are produced; stalls, resets and aborts are visible."""

import json
import time
import unittest

import fake_upstream
from harness import ProxyTestCase, build_request, key_headers, proxy_config, wait_until

# The client asks for usage itself, so the proxy forwards the stream exactly as produced (see
# test_usage_chunk_the_proxy_asked_for_is_hidden_from_the_client for the other case).
STREAM_REQUEST = json.dumps({"model": "gpt-4o-mini", "stream": True,
                             "stream_options": {"include_usage": True},
                             "messages": [{"role": "user", "content": "count"}]}).encode()
JSON = [("Content-Type", "application/json"), ("Accept", "text/event-stream")]


class StreamingTest(ProxyTestCase):
    def setUp(self):
        super().setUp()
        self.upstream = self.start_upstream()
        self.proxy = self.start_proxy(proxy_config(
            self.upstream.url(), timeouts={"idle": "1s", "first_byte": "5s"}))

    def start_stream(self, client, request_id):
        headers = JSON + key_headers(self.proxy.new_key()) + [("X-Request-ID", request_id)]
        client.send(build_request("POST", "/v1/chat/completions", headers, STREAM_REQUEST))
        return client.read_head("POST")

    def test_slow_but_steady_upload_is_not_cut(self):
        # A streamed (non-JSON) upload that takes longer than the idle timeout but keeps
        # moving is progress, not silence.
        pieces = [b"x" * 100 for _ in range(7)]
        with self.proxy.connect(timeout=10) as client:
            head = ("POST /v1/files HTTP/1.1\r\nHost: proxy.test\r\n"
                    "Content-Type: application/octet-stream\r\n"
                    "Transfer-Encoding: chunked\r\nX-Request-ID: slow-upload\r\n\r\n")
            client.send(head.encode())
            for piece in pieces:
                client.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                time.sleep(0.3)  # pacing the upload, not synchronising on anything
            client.send(b"0\r\n\r\n")
            response = client.read_response("POST")
        self.assertEqual(response.status, 200)
        self.assertEqual(self.upstream.requests[0].body, b"".join(pieces))
        self.assertEqual(self.proxy.log_for("slow-upload")["error_type"], "none")

    def test_events_reach_the_client_while_the_upstream_is_still_sending(self):
        events = fake_upstream.openai_chunks(3)
        sent_at = []
        self.upstream.handlers["/v1/chat/completions"] = fake_upstream.sse(events, 0.2, sent_at)
        arrivals = []
        response = self.proxy.request(
            "POST", "/v1/chat/completions", JSON, STREAM_REQUEST, request_id="sse-1",
            on_body=lambda data: arrivals.append((time.monotonic(), data)))
        self.assertEqual(response.status, 200)
        self.assertEqual(response.header("content-type"), "text/event-stream")
        self.assertEqual(response.body, b"".join(events))
        received = b""
        for arrived_at, data in arrivals:
            received += data
            if received.startswith(events[0]):
                first_event_at = arrived_at
                break
        self.assertEqual(len(sent_at), len(events))
        self.assertLess(first_event_at, sent_at[-1],
                        "the first event must arrive before the upstream sent the last")
        entry = self.proxy.log_for("sse-1")
        self.assertEqual((entry["status"], entry["error_type"]), (200, "none"))

    def test_usage_chunk_the_proxy_asked_for_is_hidden_from_the_client(self):
        request = json.dumps({"model": "gpt-4o-mini", "stream": True,
                              "messages": [{"role": "user", "content": "count"}]}).encode()
        events = fake_upstream.openai_chunks(3)  # content chunks, a usage-only chunk, [DONE]
        self.upstream.handlers["/v1/chat/completions"] = fake_upstream.sse(events)
        response = self.proxy.request("POST", "/v1/chat/completions", JSON, request)
        self.assertEqual(self.upstream.requests[-1].body,
                         request[:-1] + b',"stream_options":{"include_usage":true}}')
        self.assertEqual(response.body, b"".join(events[:3] + events[4:]))

        upstream = self.start_upstream()
        upstream.handlers["/v1/chat/completions"] = fake_upstream.sse(events)
        proxy = self.start_proxy(proxy_config(upstream.url(),
                                              metering={"include_stream_usage": False}))
        response = proxy.request("POST", "/v1/chat/completions", JSON, request)
        self.assertEqual(upstream.requests[-1].body, request)
        self.assertEqual(response.body, b"".join(events))

    def test_stream_that_goes_silent_is_cut_visibly(self):
        events = fake_upstream.openai_chunks(1)

        def goes_silent(_request, reply):
            reply.start_chunked(200, [("Content-Type", "text/event-stream")])
            reply.chunk(events[0])
            reply.chunk(events[1])
            reply.stall()

        self.upstream.handlers["/v1/chat/completions"] = goes_silent
        response = self.proxy.request("POST", "/v1/chat/completions", JSON, STREAM_REQUEST,
                                      request_id="silent-1", allow_truncated=True)
        self.assertEqual(response.status, 200)
        self.assertFalse(response.complete, "a timed-out stream must not end with a 0-chunk")
        self.assertEqual(response.body, events[0] + events[1])
        entry = self.proxy.log_for("silent-1")
        self.assertEqual(entry["error_type"], "timeout")

    def test_slow_but_steady_stream_is_not_cut(self):
        events = fake_upstream.openai_chunks(6)
        self.upstream.handlers["/v1/chat/completions"] = fake_upstream.sse(events, 0.3)
        response = self.proxy.request("POST", "/v1/chat/completions", JSON, STREAM_REQUEST,
                                      request_id="steady-1")
        self.assertTrue(response.complete)
        self.assertEqual(response.body, b"".join(events))
        self.assertEqual(self.proxy.log_for("steady-1")["error_type"], "none")

    def test_upstream_reset_mid_response_is_visible(self):
        def reset_after_length_prefix(_request, reply):
            reply.head(200, [("Content-Type", "application/json"), ("Content-Length", "100000")])
            reply.send(b"x" * 1000)
            reply.reset()

        def reset_mid_chunks(_request, reply):
            reply.start_chunked(200, [("Content-Type", "text/event-stream")])
            reply.chunk(b"data: {}\n\n")
            reply.reset()

        for name, handler in (("length", reset_after_length_prefix),
                              ("chunked", reset_mid_chunks)):
            with self.subTest(framing=name):
                self.upstream.handlers["/v1/chat/completions"] = handler
                response = self.proxy.request("POST", "/v1/chat/completions", JSON,
                                              STREAM_REQUEST, request_id=f"reset-{name}",
                                              allow_truncated=True)
                self.assertEqual(response.status, 200)
                self.assertFalse(response.complete, "truncation must be visible to the client")
                entry = self.proxy.log_for(f"reset-{name}")
                self.assertNotEqual(entry["error_type"], "none")
                self.assertNotEqual(entry["error_type"], "client_cancelled")

    def test_reset_before_the_response_head_is_a_502(self):
        self.upstream.handlers["/v1/chat/completions"] = lambda _request, reply: reply.reset()
        response = self.proxy.request("POST", "/v1/chat/completions", JSON, STREAM_REQUEST,
                                      request_id="reset-early")
        error = self.assert_json_error(response, 502, request_id="reset-early")
        self.assertNotEqual(error["tokentap_error"], "none")

    def test_client_abort_closes_the_upstream_stream_promptly(self):
        self.upstream.handlers["/v1/chat/completions"] = fake_upstream.sse(
            fake_upstream.openai_chunks(300), 0.05)
        for how in ("close", "reset"):
            with self.subTest(how=how):
                request_id = f"abort-{how}"
                client = self.proxy.connect()
                response = self.start_stream(client, request_id)
                self.assertEqual(response.status, 200)
                next(client.body_pieces(response))
                aborted_at = time.monotonic()
                if how == "close":
                    client.close()
                else:
                    client.abort()
                upstream_request = self.upstream.wait_for(
                    lambda: [r for r in self.upstream.requests
                             if r.header("x-request-id") == request_id])[0]
                connection = upstream_request.connection
                wait_until(lambda: connection.peer_closed_at is not None,
                           timeout=5, what="the proxy to close the upstream connection")
                self.assertLess(connection.peer_closed_at - aborted_at, 2.0)
                entry = self.proxy.log_for(request_id)
                self.assertEqual(entry["error_type"], "client_cancelled")


if __name__ == "__main__":
    unittest.main()
