"""The OTLP/HTTP trace sink for `scripts/bench.sh --tracing`: answers every POST 200 at once.

Binds 127.0.0.1:0, prints {"port": N} on stdout when ready. Counts what it received: POSTs,
body bytes and spans (http/protobuf bodies are walked just deep enough to count
resourceSpans.scopeSpans.spans; http/json ones are parsed). GET /stats answers
{"posts", "bytes", "spans", "in_flight", "idle_ms"}, idle_ms being the time since the last
POST was answered (or since the start), so the bench can wait until an exporter has sent
everything it held before it reads a count.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def varint(data, i):
    value = shift = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def fields(data):
    """(field number, wire type, value or bytes) of one protobuf message."""
    i = 0
    while i < len(data):
        key, i = varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(data, i)
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 2:
            n, i = varint(data, i)
            value, i = data[i:i + n], i + n
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield number, wire, value


def count_protobuf_spans(body):
    # ExportTraceServiceRequest.resource_spans = 1, ResourceSpans.scope_spans = 2,
    # ScopeSpans.spans = 2.
    return sum(1 for n1, w1, rs in fields(body) if n1 == 1 and w1 == 2
               for n2, w2, ss in fields(rs) if n2 == 2 and w2 == 2
               for n3, w3, _ in fields(ss) if n3 == 2 and w3 == 2)


def count_json_spans(body):
    request = json.loads(body)
    return sum(len(s.get("spans", [])) for rs in request.get("resourceSpans", [])
               for s in rs.get("scopeSpans", []))


class Sink:
    def __init__(self):
        self.lock = threading.Lock()
        self.posts = self.bytes = self.spans = self.in_flight = 0
        self.last_done = time.monotonic()


def main():
    sink = Sink()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 (http.server's naming)
            with sink.lock:
                sink.in_flight += 1
            try:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                content_type = self.headers.get("Content-Type", "")
                spans = (count_json_spans(body) if "json" in content_type
                         else count_protobuf_spans(body))
                self.send_response(200)
                self.send_header("Content-Type", content_type or "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()
                with sink.lock:
                    sink.posts += 1
                    sink.bytes += len(body)
                    sink.spans += spans
            finally:
                with sink.lock:
                    sink.in_flight -= 1
                    sink.last_done = time.monotonic()

        def do_GET(self):  # noqa: N802
            with sink.lock:
                stats = {"posts": sink.posts, "bytes": sink.bytes, "spans": sink.spans,
                         "in_flight": sink.in_flight,
                         "idle_ms": int(1000 * (time.monotonic() - sink.last_done))}
            body = json.dumps(stats).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
