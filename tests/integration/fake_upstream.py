"""A scriptable HTTP/1.1 upstream (plain or TLS) that runs inside the test process.

FakeUpstream binds 127.0.0.1:0, accepts on a background thread and serves each connection on
its own thread. Every connection is recorded (Connection: peer, times, bytes, TLS outcome, SNI)
and so is every request (Request: raw head, parsed headers, raw and de-chunked body). What a
request gets back is decided by a handler, `handler(request, reply)`, looked up by exact path in
`handlers` and otherwise `default_handler` (echo). A handler drives the wire through Reply:
fixed responses with any framing, chunks with pauses, stalls, resets (SO_LINGER 0), and it can
wait for the peer to go away. Handler exceptions other than the peer leaving are kept in
`errors`, which tests assert empty.
"""

import hashlib
import json
import select
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field

HEAD_LIMIT = 1 << 20


class PeerClosed(Exception):
    """The proxy closed or reset the connection while the fake was reading or writing."""


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list  # [(name, value)] in arrival order, names as received
    raw_head: bytes
    body: bytes  # de-chunked
    raw_body: bytes  # as framed on the wire
    connection: "Connection"
    received_at: float

    @property
    def path(self):
        return self.target.split("?", 1)[0]

    @property
    def query(self):
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def header(self, name):
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name):
        lower = name.lower()
        return [v for n, v in self.headers if n.lower() == lower]

    def header_names(self):
        return [n.lower() for n, _ in self.headers]


@dataclass
class Connection:
    id: int
    peer: tuple
    accepted_at: float
    requests: list = field(default_factory=list)
    request_count: int = 0
    bytes_received: int = 0
    bytes_sent: int = 0
    tls_error: str = None
    sni: str = None
    peer_closed_at: float = None  # when EOF or a reset from the proxy was observed
    closed_at: float = None  # when the socket was finished with, by either side


class Reply:
    """The write side of one request. All methods raise PeerClosed once the proxy is gone."""

    def __init__(self, server, conn, sock, reader, request):
        self._server = server
        self._conn = conn
        self._sock = sock
        self._reader = reader
        self.request = request
        self.keep_alive = True

    @property
    def connection(self):
        return self._conn

    def send(self, data):
        try:
            self._sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError) as e:
            self._reader.mark_peer_closed()
            raise PeerClosed(str(e)) from e
        self._conn.bytes_sent += len(data)

    def head(self, status, headers=(), reason=None):
        reason = reason or _REASONS.get(status, "Whatever")
        lines = [f"HTTP/1.1 {status} {reason}"] + [f"{n}: {v}" for n, v in headers]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def respond(self, status=200, headers=(), body=b"", framing="length"):
        """framing: "length" (adds Content-Length), "chunked" (one chunk), "close" (body then
        close), or "none" (headers sent verbatim, no body: HEAD, 204, 304)."""
        headers = list(headers)
        names = {n.lower() for n, _ in headers}
        if framing == "length" and "content-length" not in names:
            headers.append(("Content-Length", str(len(body))))
        elif framing == "chunked":
            headers.append(("Transfer-Encoding", "chunked"))
        elif framing == "close":
            headers.append(("Connection", "close"))
        self.head(status, headers)
        if framing == "chunked":
            if body:
                self.chunk(body)
            self.end_chunks()
        elif framing != "none":
            self.send(body)
        if framing == "close":
            self.close()

    def start_chunked(self, status=200, headers=()):
        self.head(status, list(headers) + [("Transfer-Encoding", "chunked")])

    def chunk(self, data):
        self.send(b"%x\r\n" % len(data) + bytes(data) + b"\r\n")

    def end_chunks(self):
        self.send(b"0\r\n\r\n")

    def pause(self, seconds):
        """Waits `seconds`; raises PeerClosed as soon as the proxy closes the connection."""
        if self._reader.wait_for_close(seconds):
            raise PeerClosed("peer closed during pause")

    def wait(self, event, timeout=30.0):
        """Waits for a test-controlled threading.Event; raises PeerClosed if the proxy leaves."""
        deadline = time.monotonic() + timeout
        while not event.is_set():
            if time.monotonic() > deadline:
                raise TimeoutError("event was never set")
            self.pause(0.02)

    def stall(self, timeout=60.0):
        """Sends nothing until the proxy closes the connection (or the fake stops)."""
        self._reader.wait_for_close(timeout)
        self.keep_alive = False

    def reset(self):
        """Aborts the connection with a TCP RST."""
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.keep_alive = False
        self._reader.close(graceful=False)

    def close(self):
        self.keep_alive = False
        self._reader.close()

    def set_send_buffer(self, size):
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


class _Reader:
    """Buffered reads from one socket; also the place that notices the peer going away."""

    def __init__(self, server, conn, sock):
        self.server = server
        self.conn = conn
        self.sock = sock
        self.buf = bytearray()
        self.eof = False
        self.closed = False

    def mark_peer_closed(self):
        self.eof = True
        if self.conn.peer_closed_at is None:
            self.conn.peer_closed_at = time.monotonic()

    def _fill(self):
        try:
            data = self.sock.recv(65536)
        except ssl.SSLWantReadError:
            return True
        except (ConnectionResetError, ssl.SSLError, OSError):
            data = b""
        if not data:
            if not self.server.stopping.is_set():
                self.mark_peer_closed()
            return False
        self.conn.bytes_received += len(data)
        self.buf += data
        return True

    def wait_for_close(self, timeout):
        """True when the peer closed within `timeout` (bytes that arrive meanwhile are kept)."""
        deadline = time.monotonic() + timeout
        while not self.eof and not self.closed:
            if self.server.stopping.is_set():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
            if pending or select.select([self.sock], [], [], min(remaining, 0.05))[0]:
                if not self._fill():
                    return True
        return True

    def read_until(self, delimiter, limit):
        start = 0
        while True:
            index = self.buf.find(delimiter, start)
            if index >= 0:
                end = index + len(delimiter)
                data = bytes(self.buf[:end])
                del self.buf[:end]
                return data
            if len(self.buf) > limit:
                raise ValueError("request head too large")
            start = max(0, len(self.buf) - len(delimiter) + 1)
            if not self._fill():
                raise PeerClosed("eof while reading")

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise PeerClosed("eof while reading body")
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def at_eof_before_anything(self):
        while not self.buf:
            if not self._fill():
                return True
        return False

    def close(self, graceful=True):
        if self.closed:
            return
        self.closed = True
        if self.conn.closed_at is None:
            self.conn.closed_at = time.monotonic()
        try:
            if graceful and isinstance(self.sock, ssl.SSLSocket) and not self.eof:
                self.sock.settimeout(0.5)
                self.sock.unwrap().close()
        except (ssl.SSLError, OSError, ValueError):
            pass
        try:
            self.sock.close()
        except OSError:
            pass


class FakeUpstream:
    """record_requests=False keeps only counts (Connection.request_count), for long runs."""

    def __init__(self, tls_cert=None, tls_key=None, record_requests=True):
        self.record_requests = record_requests
        self.tls_context = None
        if tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls_cert, tls_key)
            ctx.set_alpn_protocols(["http/1.1"])
            ctx.sni_callback = self._on_sni
            self.tls_context = ctx
        self.handlers = {}
        self.default_handler = echo()
        self.connections = []
        self.errors = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._threads = []
        self._readers = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self._sni_by_socket = {}
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept_thread.start()

    @property
    def scheme(self):
        return "https" if self.tls_context else "http"

    @property
    def authority(self):
        return f"127.0.0.1:{self.port}"

    def url(self, base_path=""):
        return f"{self.scheme}://{self.authority}{base_path}"

    @property
    def requests(self):
        with self._lock:
            return [r for c in self.connections for r in c.requests]

    def total_bytes_received(self):
        with self._lock:
            return sum(c.bytes_received for c in self.connections)

    def wait_for(self, predicate, timeout=5.0, what="condition"):
        """Polls `predicate()` until true; raises AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"fake upstream: timed out waiting for {what}")
            time.sleep(0.01)

    def wait_for_requests(self, count, timeout=5.0):
        return self.wait_for(lambda: len(self.requests) >= count and self.requests, timeout,
                             f"{count} request(s)")

    def stop(self):
        self.stopping.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            readers = list(self._readers)
        for reader in readers:
            try:
                reader.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in [self._accept_thread] + self._threads:
            thread.join(timeout=5)
        for reader in readers:
            reader.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def _on_sni(self, ssl_socket, server_name, _context):
        self._sni_by_socket[id(ssl_socket)] = server_name

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                sock, peer = self._listener.accept()
            except OSError:
                return
            with self._lock:
                conn = Connection(id=len(self.connections), peer=peer,
                                  accepted_at=time.monotonic())
                self.connections.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn, sock), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn, sock):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls_context:
            try:
                sock = self.tls_context.wrap_socket(sock, server_side=True,
                                                    do_handshake_on_connect=False)
                sock.settimeout(10)
                sock.do_handshake()
                sock.settimeout(None)
                conn.sni = self._sni_by_socket.pop(id(sock), None)
            except (ssl.SSLError, OSError) as e:
                conn.tls_error = str(e) or type(e).__name__
                conn.closed_at = time.monotonic()
                sock.close()
                return
        reader = _Reader(self, conn, sock)
        with self._lock:
            self._readers.append(reader)
        try:
            while not self.stopping.is_set() and not reader.closed:
                if reader.at_eof_before_anything():
                    break
                request = self._read_request(conn, reader, sock)
                reply = Reply(self, conn, sock, reader, request)
                handler = self.handlers.get(request.path, self.default_handler)
                try:
                    handler(request, reply)
                except PeerClosed:
                    break
                wants_close = (request.header("connection") or "").lower() == "close"
                if not reply.keep_alive or wants_close:
                    break
        except PeerClosed:
            pass
        except Exception as e:  # pylint: disable=broad-except
            if not self.stopping.is_set():
                self.errors.append(f"connection {conn.id}: {type(e).__name__}: {e}")
        finally:
            reader.close()

    def _read_request(self, conn, reader, sock):
        raw_head = reader.read_until(b"\r\n\r\n", HEAD_LIMIT)
        lines = raw_head[:-4].decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name, value.strip(" \t")))
        lower = {n.lower(): v for n, v in headers}
        if (lower.get("expect") or "").lower() == "100-continue":
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in (lower.get("transfer-encoding") or "").lower():
            raw_body, body = _read_chunked(reader)
        else:
            raw_body = body = reader.read_exact(int(lower.get("content-length") or 0))
        request = Request(method=method, target=target, version=version, headers=headers,
                          raw_head=raw_head, body=body, raw_body=raw_body, connection=conn,
                          received_at=time.monotonic())
        with self._lock:
            conn.request_count += 1
            if self.record_requests:
                conn.requests.append(request)
        return request


def _read_chunked(reader):
    raw = bytearray()
    body = bytearray()
    while True:
        size_line = reader.read_until(b"\r\n", 4096)
        raw += size_line
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while True:
                trailer = reader.read_until(b"\r\n", 65536)
                raw += trailer
                if trailer == b"\r\n":
                    return bytes(raw), bytes(body)
        data = reader.read_exact(size + 2)
        raw += data
        body += data[:-2]


_REASONS = {100: "Continue", 200: "OK", 201: "Created", 204: "No Content",
            304: "Not Modified", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


def echo(framing="length", extra_headers=()):
    """Answers 200 with the request body; tells the target and a body digest in headers."""

    def handler(request, reply):
        content_type = request.header("content-type") or "application/octet-stream"
        headers = [("Content-Type", content_type), ("X-Echo-Target", request.target),
                   ("X-Echo-Sha256", hashlib.sha256(request.body).hexdigest())]
        body = b"" if request.method == "HEAD" else request.body
        reply.respond(200, headers + list(extra_headers), body, framing)

    return handler


def fixed(status=200, headers=(), body=b"", framing="length"):
    def handler(_request, reply):
        reply.respond(status, headers, body, framing)

    return handler


def json_body(obj, status=200, headers=()):
    return fixed(status, [("Content-Type", "application/json")] + list(headers),
                 json.dumps(obj).encode(), "length")


def sse(events, interval=0.0, sent_times=None, release=None, release_after=None,
        headers=()):
    """Streams `events` (bytes, each a complete SSE event) as chunks, `interval` seconds apart.
    Appends time.monotonic() to `sent_times` after each send. With `release` (an Event), the
    stream holds after `release_after` events until the test sets it."""

    def handler(_request, reply):
        reply.start_chunked(200, [("Content-Type", "text/event-stream"),
                                  ("Cache-Control", "no-cache")] + list(headers))
        for i, event in enumerate(events):
            if i and interval:
                reply.pause(interval)
            if release is not None and i == release_after:
                reply.wait(release)
            reply.chunk(event)
            if sent_times is not None:
                sent_times.append(time.monotonic())
        reply.end_chunks()

    return handler


def stall():
    def handler(_request, reply):
        reply.stall()

    return handler


def openai_chunks(count):
    """`count` OpenAI chat.completion.chunk SSE events, a usage chunk and [DONE], as bytes."""
    events = []
    for i in range(count):
        chunk = {"id": "chatcmpl-it", "object": "chat.completion.chunk", "created": 1700000000,
                 "model": "gpt-4o-mini",
                 "choices": [{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}]}
        events.append(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    usage = {"id": "chatcmpl-it", "object": "chat.completion.chunk", "created": 1700000000,
             "model": "gpt-4o-mini", "choices": [],
             "usage": {"prompt_tokens": 9, "completion_tokens": count, "total_tokens": 9 + count}}
    events.append(b"data: " + json.dumps(usage).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events
