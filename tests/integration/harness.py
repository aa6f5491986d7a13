"""Runs the real tokentap binary for black-box tests and talks to it over raw sockets.

Proxy starts `$TOKENTAP_BIN --config <temp yaml>`, reads its stderr until the "listening" event
(ports bound on 127.0.0.1:0), and keeps every stdout line (the access log) and stderr line.
Client is a small HTTP/1.1 client over a plain socket, so tests can send anything (pipelined,
malformed, slow) and see exactly what comes back, including truncation. ProxyTestCase wires
both with a FakeUpstream and, on cleanup, stops the proxy and checks that it exited cleanly,
that no sanitizer complained, and that no canary API key leaked into stdout, stderr, /metrics
or any error response.
"""

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest
from dataclasses import dataclass, field

from fake_upstream import FakeUpstream

START_TIMEOUT = 15.0
STOP_TIMEOUT = 20.0
UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer")
ACCESS_LOG_KEYS = {"time", "request_id", "upstream_request_id", "agent", "session", "method",
                   "path", "route", "upstream", "status", "error_type", "duration_ms",
                   "bytes_in", "bytes_out", "client", "key_id"}


def tokentap_bin():
    path = os.environ.get("TOKENTAP_BIN")
    if not path:
        raise RuntimeError("set TOKENTAP_BIN to the tokentap binary (ctest does this)")
    return path


def new_canary():
    return "sk-canary-" + secrets.token_hex(16)


def key_id(key):
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def key_headers(key):
    """The API key in every header a provider reads it from."""
    return [("Authorization", f"Bearer {key}"), ("x-api-key", key), ("api-key", key),
            ("x-goog-api-key", key)]


def wait_until(predicate, timeout=5.0, what="condition", interval=0.01):
    """Polls `predicate()` until it returns something truthy, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _yaml_scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(str(value))


def to_yaml(value, indent=0):
    """Block-style YAML for dicts/lists/scalars; strings are JSON-quoted (valid YAML)."""
    pad = "  " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:")
                lines.append(to_yaml(item, indent + 1))
            elif isinstance(item, (dict, list)):
                lines.append(f"{pad}{key}: {'{}' if isinstance(item, dict) else '[]'}")
            else:
                lines.append(f"{pad}{key}: {_yaml_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item:
                nested = to_yaml(item, indent + 1).split("\n")
                lines.append(f"{pad}- {nested[0].lstrip()}")
                lines.extend(nested[1:])
            else:
                lines.append(f"{pad}- {_yaml_scalar(item)}")
    else:
        lines.append(pad + _yaml_scalar(value))
    return "\n".join(lines)


def _merge(base, overrides):
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def proxy_config(upstream_url, provider="openai", route=None, **overrides):
    """A config with one catch-all route "main" to `upstream_url`; `route` adds keys to it."""
    main = {"name": "main", "prefix": "/", "upstream": upstream_url, "provider": provider}
    main.update(route or {})
    config = {
        "listen": "127.0.0.1:0",
        "admin_listen": "127.0.0.1:0",
        "workers": 1,
        "routes": [main],
        "timeouts": {"connect": "2s", "first_byte": "10s", "idle": "10s",
                     "downstream_header": "10s", "drain": "5s"},
        "log": {"access": "stdout", "level": "info"},
    }
    return _merge(config, overrides)


class ConnectionClosed(Exception):
    """The proxy closed the connection before sending a response head."""


class TruncatedResponse(AssertionError):
    def __init__(self, response):
        super().__init__(f"response truncated after {response.body_length} body bytes "
                         f"(status {response.status}, framing {response.framing})")
        self.response = response


@dataclass
class Response:
    status: int
    reason: str
    headers: list
    raw_head: bytes
    interim: list = field(default_factory=list)  # statuses of 1xx responses before this one
    body: bytes = b""
    body_length: int = 0
    complete: bool = True
    framing: str = "none"  # length | chunked | close | none
    trailers: list = field(default_factory=list)
    sent_request_id: str = None

    def header(self, name):
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name):
        lower = name.lower()
        return [v for n, v in self.headers if n.lower() == lower]

    def json(self):
        return json.loads(self.body)


def build_request(method, target, headers=(), body=None, chunked=False, chunk_size=None,
                  host="proxy.test"):
    headers = list(headers)
    names = {n.lower() for n, _ in headers}
    if "host" not in names and host is not None:
        headers.insert(0, ("Host", host))
    if chunked:
        headers.append(("Transfer-Encoding", "chunked"))
    elif body is not None and "content-length" not in names:
        headers.append(("Content-Length", str(len(body))))
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    data = head.encode("latin-1") + b"\r\n"
    if chunked:
        body = body or b""
        step = chunk_size or max(1, len(body))
        for i in range(0, len(body), step):
            piece = body[i:i + step]
            data += b"%x\r\n" % len(piece) + piece + b"\r\n"
        data += b"0\r\n\r\n"
    elif body:
        data += body
    return data


class Client:
    """One client connection to the proxy. Reads raise socket.timeout after `timeout`."""

    def __init__(self, address, timeout=10.0, recv_buffer=None, record=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if recv_buffer:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, recv_buffer)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.eof = False
        self.was_reset = False
        self._record = record

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def send_request(self, method, target, headers=(), body=None, chunked=False,
                     chunk_size=None, host="proxy.test"):
        self.send(build_request(method, target, headers, body, chunked, chunk_size, host))

    def request(self, method, target, headers=(), body=None, chunked=False, chunk_size=None,
                **read_options):
        self.send_request(method, target, headers, body, chunked, chunk_size)
        return self.read_response(method=method, **read_options)

    def _fill(self, size=262144):
        if self.eof:
            return False
        try:
            data = self.sock.recv(size)
        except ConnectionResetError:
            self.was_reset = True
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _read_until(self, delimiter):
        start = 0
        while True:
            index = self.buf.find(delimiter, start)
            if index >= 0:
                end = index + len(delimiter)
                data = bytes(self.buf[:end])
                del self.buf[:end]
                return data
            start = max(0, len(self.buf) - len(delimiter) + 1)
            if not self._fill():
                return None

    def read_until(self, delimiter):
        """Raw bytes up to and including `delimiter`; None if the connection closed first."""
        return self._read_until(delimiter)

    def read_head(self, method="GET"):
        """Reads the head of the next final response (1xx heads are noted in `interim`)."""
        interim = []
        while True:
            raw_head = self._read_until(b"\r\n\r\n")
            if raw_head is None:
                raise ConnectionClosed(f"connection closed before a response head "
                                       f"({len(self.buf)} stray bytes)")
            lines = raw_head[:-4].decode("latin-1").split("\r\n")
            parts = lines[0].split(" ", 2)
            status = int(parts[1])
            headers = []
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers.append((name, value.strip(" \t")))
            if 100 <= status < 200 and status != 101:
                interim.append(status)
                continue
            break
        response = Response(status=status, reason=parts[2] if len(parts) > 2 else "",
                            headers=headers, raw_head=raw_head, interim=interim)
        transfer_encoding = (response.header("transfer-encoding") or "").lower()
        if method == "HEAD" or status in (204, 304):
            response.framing = "none"
        elif "chunked" in transfer_encoding:
            response.framing = "chunked"
        elif response.header("content-length") is not None:
            response.framing = "length"
        else:
            response.framing = "close"
        response.complete = False
        return response

    def body_pieces(self, response):
        """Yields body bytes as they arrive; sets response.complete when the framing ended."""
        if response.framing == "none":
            response.complete = True
        elif response.framing == "chunked":
            yield from self._chunked_pieces(response)
        elif response.framing == "length":
            remaining = int(response.header("content-length"))
            while remaining > 0:
                if not self.buf and not self._fill():
                    return
                take = min(remaining, len(self.buf))
                response.body_length += take
                yield bytes(self.buf[:take])
                del self.buf[:take]
                remaining -= take
            response.complete = True
        else:
            while self.buf or self._fill():
                response.body_length += len(self.buf)
                yield bytes(self.buf)
                self.buf.clear()
            response.complete = not self.was_reset
        if self._record:
            self._record(response)

    def read_response(self, method="GET", allow_truncated=False, on_body=None, keep_body=True):
        """Reads one whole response. Raises TruncatedResponse if the body framing did not end
        properly, unless allow_truncated (then check response.complete)."""
        response = self.read_head(method)
        return self.finish_response(response, allow_truncated, on_body, keep_body)

    def finish_response(self, response, allow_truncated=False, on_body=None, keep_body=True,
                        pieces=None):
        """Reads the rest of a response whose head (and maybe some `pieces`) was read."""
        body = bytearray(response.body)
        for data in pieces if pieces is not None else self.body_pieces(response):
            if keep_body:
                body += data
            if on_body:
                on_body(data)
        response.body = bytes(body)
        if not response.complete and not allow_truncated:
            raise TruncatedResponse(response)
        return response

    def _chunked_pieces(self, response):
        while True:
            size_line = self._read_until(b"\r\n")
            if size_line is None:
                return
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while True:
                    line = self._read_until(b"\r\n")
                    if line is None:
                        return
                    if line == b"\r\n":
                        response.complete = True
                        return
                    name, _, value = line[:-2].decode("latin-1").partition(":")
                    response.trailers.append((name, value.strip()))
            remaining = size
            while remaining > 0:
                if not self.buf and not self._fill():
                    return
                take = min(remaining, len(self.buf))
                response.body_length += take
                yield bytes(self.buf[:take])
                del self.buf[:take]
                remaining -= take
            if self._read_until(b"\r\n") != b"\r\n":
                return

    def wait_closed(self, timeout=5.0):
        """True once the proxy has closed the connection; any bytes read meanwhile stay in buf."""
        deadline = time.monotonic() + timeout
        previous = self.sock.gettimeout()
        try:
            while not self.eof:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.sock.settimeout(remaining)
                try:
                    self._fill()
                except socket.timeout:
                    return False
                except OSError:
                    self.eof = True
            return True
        finally:
            self.sock.settimeout(previous)

    def abort(self):
        """Closes with a RST, like a client process that was killed."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def parse_metrics(text):
    """Prometheus text exposition -> [(name, {label: value}, float)]."""
    samples = []
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)", line)
        if not match:
            raise AssertionError(f"unparseable metrics line: {line!r}")
        labels = {k: v.encode().decode("unicode_escape")
                  for k, v in label_re.findall(match.group(3) or "")}
        samples.append((match.group(1), labels, float(match.group(4))))
    return samples


def metric_value(samples, name, **labels):
    """Sum of the samples called `name` whose labels include `labels`; None if none match."""
    values = [v for n, ls, v in samples
              if n == name and all(ls.get(k) == val for k, val in labels.items())]
    return sum(values) if values else None


class Proxy:
    def __init__(self, config, directory, args=(), env=None):
        self.config = config
        self.config_path = os.path.join(directory, f"tokentap-{secrets.token_hex(4)}.yaml")
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(to_yaml(config) + "\n")
        self.args = list(args)
        self.env = {k: v for k, v in os.environ.items() if k != "TOKENTAP_AGENT"}
        self.env.update(env or {})
        self.stdout_lines = []
        self.stderr_lines = []
        self.responses = []  # every response a Client made through this proxy received
        self.canaries = set()
        self.metrics_snapshots = []
        self.address = None
        self.admin_address = None
        self.process = None
        self.exit_checked = False
        self._lock = threading.RLock()  # re-entered by the error paths of _wait_lines
        self._changed = threading.Condition(self._lock)
        self._readers = []

    def start(self):
        self.process = subprocess.Popen(
            [tokentap_bin(), "--config", self.config_path] + self.args,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=self.env)
        for stream, sink in ((self.process.stdout, self.stdout_lines),
                             (self.process.stderr, self.stderr_lines)):
            thread = threading.Thread(target=self._pump, args=(stream, sink), daemon=True)
            thread.start()
            self._readers.append(thread)
        try:
            event = self.wait_for_stderr(lambda e: e.get("msg") == "listening",
                                         timeout=START_TIMEOUT, what="the listening line")
        except AssertionError:
            self.exit_checked = True  # the start failure is the report; skip the exit check
            raise
        self.address = _parse_address(event["listen"])
        self.admin_address = _parse_address(event["admin_listen"])
        return self

    def _pump(self, stream, sink):
        for raw in iter(stream.readline, b""):
            with self._changed:
                sink.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def pid(self):
        return self.process.pid

    def running(self):
        return self.process.poll() is None

    def stderr_events(self):
        with self._lock:
            lines = list(self.stderr_lines)
        return [event for event in map(_json_or_none, lines) if isinstance(event, dict)]

    def access_log(self):
        with self._lock:
            lines = list(self.stdout_lines)
        return [entry for entry in map(_json_or_none, lines) if isinstance(entry, dict)]

    def _wait_lines(self, source, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for entry in source():
                    if predicate(entry):
                        return entry
                if self.process.poll() is not None and all(
                        not t.is_alive() for t in self._readers):
                    raise AssertionError(f"tokentap exited ({self.process.returncode}) "
                                         f"before {what}; stderr:\n" + self.stderr_text())
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"timed out waiting for {what}; stderr:\n"
                                         + self.stderr_text()[-4000:])
                self._changed.wait(min(remaining, 0.1))

    def wait_for_stderr(self, predicate, timeout=5.0, what="a stderr event"):
        return self._wait_lines(self._events_unlocked, predicate, timeout, what)

    def wait_for_log(self, predicate, timeout=5.0, what="an access log line"):
        return self._wait_lines(self._log_unlocked, predicate, timeout, what)

    def wait_log_count(self, predicate, count, timeout=5.0, what="access log lines"):
        """Waits until at least `count` access-log lines match; returns all that match (the
        log is written in batches, so a line may follow the metrics by a moment)."""
        matching = []

        def enough():
            matching[:] = [e for e in self.access_log() if predicate(e)]
            return len(matching) >= count

        wait_until(enough, timeout, f"{count} {what}", interval=0.02)
        return matching

    def log_for(self, request_id, timeout=5.0):
        return self.wait_for_log(lambda e: e.get("request_id") == request_id, timeout,
                                 f"the access log line of request {request_id}")

    def _events_unlocked(self):
        return [e for e in map(_json_or_none, self.stderr_lines) if isinstance(e, dict)]

    def _log_unlocked(self):
        return [e for e in map(_json_or_none, self.stdout_lines) if isinstance(e, dict)]

    def stdout_text(self):
        with self._lock:
            return "\n".join(self.stdout_lines)

    def stderr_text(self):
        with self._lock:
            return "\n".join(self.stderr_lines)

    def connect(self, timeout=10.0, recv_buffer=None):
        return Client(self.address, timeout, recv_buffer, record=self._record)

    def _record(self, response):
        with self._lock:
            self.responses.append(response)

    def new_key(self):
        key = new_canary()
        self.canaries.add(key)
        return key

    def request(self, method, target, headers=(), body=None, request_id=None, key=None,
                chunked=False, chunk_size=None, client=None, **read_options):
        """One request on a new connection (or `client`). Adds a fresh canary API key in every
        key header unless key=False, and an X-Request-ID unless request_id=False."""
        headers = list(headers)
        if key is None:
            key = self.new_key()
        if key:
            headers += key_headers(key)
        if request_id is None:
            request_id = "it-" + secrets.token_hex(8)
        if request_id:
            headers.append(("X-Request-ID", request_id))
        own = client is None
        client = client or self.connect()
        try:
            response = client.request(method, target, headers, body, chunked, chunk_size,
                                      **read_options)
        finally:
            if own:
                client.close()
        response.sent_request_id = request_id or None
        return response

    def admin_get(self, path, timeout=5.0):
        with Client(self.admin_address, timeout) as client:
            client.send_request("GET", path, [("Connection", "close")], host="admin.test")
            return client.read_response()

    def metrics(self):
        response = self.admin_get("/metrics")
        if response.status != 200:
            raise AssertionError(f"/metrics answered {response.status}")
        text = response.body.decode()
        self.metrics_snapshots.append(text)
        return parse_metrics(text)

    def metric(self, name, **labels):
        return metric_value(self.metrics(), name, **labels)

    def wait_metric(self, name, expected, timeout=5.0, **labels):
        """Polls /metrics until the sample equals `expected`: request metrics are recorded when
        the request ends, which may be just after the client read the last byte."""
        last = []

        def matches():
            last[:] = [self.metric(name, **labels)]
            return last[0] == expected

        try:
            wait_until(matches, timeout, f"{name}{labels} == {expected}", interval=0.02)
        except AssertionError as e:
            raise AssertionError(f"{name}{labels} is {last[0]}, expected {expected}") from e

    def rss_bytes(self):
        with open(f"/proc/{self.pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc status")

    def send_signal(self, sig):
        self.process.send_signal(sig)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        for thread in self._readers:
            thread.join(timeout=5)
        self.process.stdout.close()
        self.process.stderr.close()
        return code

    def stop(self):
        """SIGTERM and wait; returns the exit code (killing it, and failing, if it hangs)."""
        if self.running():
            try:
                self.metrics()
            except (OSError, AssertionError, ConnectionClosed):
                pass
            self.send_signal(signal.SIGTERM)
        code = self.wait_exit()
        if code is None:
            self.process.kill()
            self.wait_exit()
            raise AssertionError("tokentap did not exit within "
                                 f"{STOP_TIMEOUT}s of SIGTERM; stderr:\n" + self.stderr_text())
        return code

    def leaks(self):
        """Canary keys found anywhere the proxy wrote: logs, metrics, error responses."""
        texts = [self.stdout_text(), self.stderr_text()] + self.metrics_snapshots
        with self._lock:
            for response in self.responses:
                if response.status >= 400:
                    texts.append(response.raw_head.decode("latin-1"))
                    texts.append(response.body.decode("latin-1"))
        found = set()
        for key in self.canaries:
            secret_part = key.rsplit("-", 1)[1]
            if any(key in text or secret_part in text for text in texts):
                found.add(key)
        return found


def _parse_address(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def _json_or_none(line):
    try:
        return json.loads(line)
    except ValueError:
        return None


class ProxyTestCase(unittest.TestCase):
    """Base class: temp dir, fake upstreams and proxies that are checked and torn down."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tokentap-it-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def start_upstream(self, **kwargs):
        upstream = FakeUpstream(**kwargs)
        self.addCleanup(self._finish_upstream, upstream)
        return upstream

    def _finish_upstream(self, upstream):
        upstream.stop()
        self.assertEqual(upstream.errors, [], "fake upstream handler errors")

    def start_proxy(self, config, args=(), env=None):
        proxy = Proxy(config, self.tmp, args, env)
        self.addCleanup(self._finish_proxy, proxy)
        return proxy.start()

    def _finish_proxy(self, proxy):
        code = proxy.stop() if proxy.process else None
        stderr = proxy.stderr_text()
        for marker in SANITIZER_MARKERS:
            self.assertNotIn(marker, stderr, "sanitizer report on tokentap's stderr")
        if not proxy.exit_checked and proxy.process:
            self.assertEqual(code, 0, "tokentap exit code after SIGTERM; stderr:\n" + stderr)
        self.assertEqual(proxy.leaks(), set(), "API keys leaked into logs/metrics/errors")

    def assert_json_error(self, response, status, error_type=None, request_id=None, shape=None):
        """An error tokentap answered itself, in the shape of `shape` (openai, anthropic,
        gemini) when given; `error_type` is tokentap's name for it. Returns the error object."""
        self.assertEqual(response.status, status, response.body[:500])
        self.assertIn("application/json", response.header("content-type") or "")
        document = response.json()
        self.assertIsInstance(document.get("error"), dict, document)
        error = document["error"]
        if document.get("type") == "error":
            found = "anthropic"
            self.assertIsInstance(error.get("type"), str, error)
            self.assertEqual(document.get("request_id"), error.get("request_id"), document)
        elif "status" in error:
            found = "gemini"
            self.assertEqual(error.get("code"), status, error)
            self.assertIsInstance(error.get("status"), str, error)
        else:
            found = "openai"
            self.assertIsInstance(error.get("type"), str, error)
            self.assertIsNone(error.get("param", "missing"), error)
            self.assertEqual(error.get("code"), error.get("tokentap_error"), error)
        if shape is not None:
            self.assertEqual(found, shape, document)
        name = error.get("tokentap_error")
        self.assertIsInstance(name, str, error)
        self.assertIsInstance(error.get("message"), str, error)
        self.assertTrue(error["message"].startswith(f"tokentap {name}: "), error)
        self.assertIsInstance(error.get("request_id"), str, error)
        self.assertTrue(error["request_id"], error)
        if error_type is not None:
            self.assertEqual(name, error_type, error)
        if request_id is not None:
            self.assertEqual(error["request_id"], request_id, error)
        return error
