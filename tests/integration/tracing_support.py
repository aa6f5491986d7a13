"""Shared by the tracing test modules: an OTLP/HTTP receiver and TracingCase.

OtlpReceiver (plain or TLS, on 127.0.0.1:0) keeps every body as received and decodes it with the official opentelemetry-proto
definitions (tests/e2e/otlp_decode.mjs, protobufjs), so a test checks what a real collector
would see. With a certificate it serves HTTPS and records every handshake: the SNI the client
sent, and the error of each handshake that failed (the client refusing the certificate).
TracingCase is a ProxyTestCase that starts a chat upstream, a receiver and a tracing proxy, and
measures request latency and access-log keys for the "export never slows traffic" checks.
"""

import json
import os
import shutil
import ssl
import statistics
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fake_upstream
from harness import ProxyTestCase, proxy_config, wait_until

E2E_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e")
DECODER = os.path.join(E2E_DIR, "otlp_decode.mjs")
CHAT = {"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}
PROVIDER_ERROR = {"error": {"message": "overloaded", "type": "server_error", "code": None}}


def decoder_missing():
    """Why the decoder cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed (scripts/setup.sh installs it)"
    if not os.path.isdir(os.path.join(E2E_DIR, "node_modules", "@opentelemetry", "otlp-transformer")):
        return "tests/e2e/node_modules has no @opentelemetry/otlp-transformer (setup.sh runs npm ci)"
    return None


def decode(body, content_type):
    """An ExportTraceServiceRequest, decoded and checked against the official definitions."""
    fmt = "protobuf" if "protobuf" in content_type else "json"
    result = subprocess.run(["node", DECODER, fmt], input=body, capture_output=True,
                            timeout=60, check=False)
    if result.returncode != 0:
        raise AssertionError("the OTLP body does not decode: "
                             + result.stderr.decode(errors="replace")[-2000:])
    return json.loads(result.stdout)


def attributes(items):
    out = {}
    for item in items or []:
        value = item["value"]
        out[item["key"]] = next(iter(value.values())) if value else None
    return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler, receiver):
        self.receiver = receiver
        super().__init__(("127.0.0.1", 0), handler)

    def finish_request(self, request, client_address):
        # On the connection's own thread: a slow or refused handshake holds up nobody else.
        if self.receiver.tls_context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(10)
        try:
            tls = self.receiver.tls_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            with self.receiver.lock:
                self.receiver.tls_errors.append(str(e) or type(e).__name__)
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()


class OtlpReceiver:
    """`delay` holds each answer that long (a slow collector). `tls_cert`/`tls_key` (PEM paths)
    make it an HTTPS receiver."""

    def __init__(self, delay=0.0, tls_cert=None, tls_key=None):
        self.delay = delay
        self.bodies = []  # (content type, bytes, path, headers)
        self.tls_errors = []  # one per failed handshake
        self.sni = []  # server names of the handshakes that got that far (None: no SNI)
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.tls_context = None
        if tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls_cert, tls_key)
            ctx.sni_callback = self._on_sni
            self.tls_context = ctx
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.bodies.append((self.headers.get("Content-Type", ""), body,
                                            self.path, dict(self.headers.items())))
                if receiver.delay:
                    receiver.released.wait(receiver.delay)
                reply = b"{}"
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass  # the exporter gave up waiting (the slow collector's point)

            def log_message(self, *_args):
                pass

        self.server = _Server(Handler, self)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _on_sni(self, _ssl_socket, server_name, _context):
        with self.lock:
            self.sni.append(server_name)

    @property
    def port(self):
        return self.server.server_address[1]

    def endpoint(self, host="127.0.0.1"):
        scheme = "https" if self.tls_context else "http"
        return f"{scheme}://{host}:{self.port}/v1/traces"

    def stop(self):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def raw(self):
        with self.lock:
            return list(self.bodies)

    def raw_bytes(self):
        """Every exported byte, bodies and headers alike."""
        out = b""
        for _, body, path, headers in self.raw():
            out += path.encode() + json.dumps(headers).encode() + body
        return out

    def handshake_errors(self):
        with self.lock:
            return list(self.tls_errors)

    def spans(self):
        """Every span received so far, with its resource attributes under "resource"."""
        out = []
        for content_type, body, path, _ in self.raw():
            assert path == "/v1/traces", path
            request = decode(body, content_type)
            for resource_spans in request.get("resourceSpans", []):
                resource = attributes(resource_spans.get("resource", {}).get("attributes"))
                for scope_spans in resource_spans.get("scopeSpans", []):
                    for span in scope_spans.get("spans", []):
                        out.append(dict(span, resource=resource,
                                        attrs=attributes(span.get("attributes"))))
        return out

    def wait_spans(self, count, timeout=15.0):
        found = []

        def enough():
            found[:] = self.spans()
            return len(found) >= count

        wait_until(enough, timeout, f"{count} exported spans", interval=0.1)
        return found


def chat_handler(request, reply):
    """A chat completion, or a provider's 500 when the request carries x-test-fail."""
    if request.header("x-test-fail"):
        return fake_upstream.json_body(PROVIDER_ERROR, status=500)(request, reply)
    return fake_upstream.json_body(CHAT)(request, reply)


class TracingCase(ProxyTestCase):
    """start() makes self.upstream (OpenAI chat), self.receiver (unless `endpoint` is given)
    and self.proxy with the `tracing` keys."""

    def start(self, endpoint=None, receiver_delay=0.0, env=None, provider="openai", **tracing):
        self.upstream = self.start_upstream()
        self.upstream.handlers["/v1/chat/completions"] = chat_handler
        if endpoint is None:
            self.receiver = OtlpReceiver(delay=receiver_delay)
            self.addCleanup(self.receiver.stop)
            endpoint = self.receiver.endpoint()
        settings = {"enabled": True, "otlp_endpoint": endpoint}
        settings.update(tracing)
        self.proxy = self.start_proxy(proxy_config(self.upstream.url(), provider=provider,
                                                   tracing=settings), env=env)

    def chat(self, headers=(), path="/v1/chat/completions", request_id=None, fail=False):
        status = 500 if fail else 200
        if fail:
            headers = list(headers) + [("x-test-fail", "1")]
        body = json.dumps({"model": "gpt-4o-mini",
                           "messages": [{"role": "user", "content": "hi"}]}).encode()
        start = time.monotonic()
        response = self.proxy.request("POST", path,
                                      [("Content-Type", "application/json")] + list(headers),
                                      body, request_id=request_id)
        elapsed = time.monotonic() - start
        self.assertEqual(response.status, status, response.body[:300])
        return response, elapsed

    def access_log_keys_and_latency(self, requests=15):
        latencies = []
        keys = None
        for i in range(requests):
            _, elapsed = self.chat(request_id=f"lat-{i}")
            latencies.append(elapsed)
            keys = set(self.proxy.log_for(f"lat-{i}"))
        return keys, statistics.median(latencies), max(latencies)

    def baseline(self):
        """Access-log keys and latency of the same requests with tracing off."""
        upstream = self.start_upstream()
        upstream.handlers["/v1/chat/completions"] = chat_handler
        self.upstream = upstream
        self.proxy = self.start_proxy(proxy_config(upstream.url()))
        result = self.access_log_keys_and_latency()
        self.proxy.stop()
        return result
