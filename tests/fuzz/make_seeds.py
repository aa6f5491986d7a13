#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/<target>/ from the golden recordings
(tests/golden/) and hand-written inputs, in each target's input layout (see the comment at the
top of each *_fuzz.cc). Deterministic: running it again rewrites the same files. Brotli seeds
need a C compiler and libbrotli-dev; without them they are skipped.

    python3 tests/fuzz/make_seeds.py
"""

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
CORPUS = ROOT / "tests" / "fuzz" / "corpus"
SEP = b"\n@@@@\n"
CANARY_KEY = b"sk-proj-fuzzCANARYkey0123456789abcdef"

# Mirrors of the choice tables in the targets.
PROVIDERS = [None, "openai", "azure_openai", "openai_compatible", "anthropic", "gemini"]
LLM_TARGETS = [
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/responses",
    "/v1/embeddings",
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/v1beta/models/gemini-2.0-flash:generateContent",
    "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
    "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
    "/v1beta/models/text-embedding-004:embedContent",
    "/v1beta/models/text-embedding-004:batchEmbedContents",
    "/v1beta/models/gemini-2.0-flash:countTokens",
    "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21",
    "/openai/v1/chat/completions",
    "/v1/models",
    "/api/v1/chat/completions",
]
STATUSES = [200, 200, 200, 201, 204, 304, 100, 400, 401, 403, 404, 408, 413, 422, 429, 500,
            502, 503, 504, 529]
CONTENT_TYPES = ["", "application/json", "application/json; charset=utf-8", "text/event-stream",
                 "text/event-stream; charset=utf-8", "TEXT/EVENT-STREAM", "application/x-ndjson",
                 "text/html", "text/plain"]
# Encoding modes of llm_parser_fuzz.cc: 0 none, 2 gzip, 4 deflate, 6 br, 7 gzip header on raw.
CANNED = ["json", "sse_chunked", "sse_close", "no_content", "interim_json", "rate_limited",
          "gzip_json", "reset"]
MENU = ["openai_stream", "openai_json", "anthropic_stream", "gemini_sse", "gemini_array",
        "responses_stream", "head", "get"]


def cuts(name, count):
    """`count` two-byte cut values derived from the seed's name."""
    return hashlib.sha256(name.encode()).digest()[: 2 * count]


def write(target, name, data):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)


def recordings():
    for sidecar in sorted(GOLDEN.glob("*/*.expect.json")):
        stem = sidecar.name[: -len(".expect.json")]
        meta = json.loads(sidecar.read_text())
        request = sidecar.with_name(stem + ".request.json")
        responses = sorted(sidecar.parent.glob(stem + ".response.*"))
        yield {
            "name": f"{sidecar.parent.name}-{stem}",
            "provider": meta.get("route_provider"),
            "method": meta.get("method", "POST"),
            "target": meta["target"],
            "status": meta["status"],
            "response_headers": meta.get("response_headers") or {},
            "request_headers": meta.get("request_headers") or {},
            "request": request.read_bytes() if request.exists() else b"",
            "response": responses[0].read_bytes(),
            "sse": responses[0].suffix == ".sse",
        }


def llm_target_index(target):
    if target in LLM_TARGETS:
        return LLM_TARGETS.index(target)
    path = target.split("?")[0]
    stream = 8 if "alt=sse" in target else 7
    rules = [("/openai/deployments/", 12), (":streamGenerateContent", stream),
             (":generateContent", 6), (":batchEmbedContents", 10), (":embedContent", 9),
             (":countTokens", 11), ("/messages/count_tokens", 5), ("/messages", 4),
             ("/chat/completions", 0), ("/completions", 1), ("/responses", 2), ("/embeddings", 3)]
    for needle, index in rules:
        if needle in path:
            return index
    return 14


def brotli_encoder():
    """A tiny brotli compressor built from libbrotlienc, or None."""
    source = b"""
#include <brotli/encode.h>
#include <stdio.h>
#include <stdlib.h>
int main(void) {
  static unsigned char in[1 << 22], out[(1 << 22) + 1024];
  size_t n = fread(in, 1, sizeof in, stdin), size = sizeof out;
  if (!BrotliEncoderCompress(5, 22, BROTLI_MODE_GENERIC, n, in, &size, out)) return 1;
  fwrite(out, 1, size, stdout);
  return 0;
}
"""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        return None
    directory = Path(tempfile.mkdtemp(prefix="tokentap-seeds-"))
    (directory / "br.c").write_bytes(source)
    result = subprocess.run([compiler, "-O1", "-o", str(directory / "br"), str(directory / "br.c"),
                             "-lbrotlienc"], capture_output=True)
    if result.returncode != 0:
        print("brotli seeds skipped: cannot build an encoder", file=sys.stderr)
        return None
    return lambda data: subprocess.run([str(directory / "br")], input=data, check=True,
                                       capture_output=True).stdout


def deflate_raw(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


# ---- parsers ----------------------------------------------------------------------------------

def sse_seeds(recs):
    synthetic = {
        "crlf-multiline": b"\xef\xbb\xbf: comment\r\nevent: a\r\ndata: 1\r\ndata: 2\r\nid: 7\r\n"
                          b"retry: 1500\r\n\r\n"
                          b"data:no-space\rdata\r\r\nid\n\ndata: [DONE]\n\n",
        "cut-mid-event": b"event: message_start\ndata: {\"type\":\"message_start\"}\n\n"
                         b"data: {\"partial\":",
        "id-nul-and-bad-retry": b"id: a\x00b\nretry: 12x\nretry: 99999999999999999999\ndata: x\n\n",
        "long-line": b"data: " + b"x" * 3000 + b"\n\nevent: " + b"y" * 700 + b"\ndata: z\n\n",
    }
    for rec in recs:
        if rec["sse"]:
            write("sse", rec["name"], bytes([40]) + cuts(rec["name"], 4) + rec["response"])
    for name, body in synthetic.items():
        write("sse", name, bytes([3]) + cuts(name, 4) + body)


def usage_filter_seeds(recs):
    chunk = (b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,'
             b'"delta":{"content":"Hi"}}],"usage":null}\n\n')
    usage = (b'data: {"id":"c","object":"chat.completion.chunk","choices":[],'
             b'"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}\n\n')
    synthetic = {
        "include-usage": chunk + usage + b"data: [DONE]\n\n",
        "include-usage-crlf": (chunk + usage + b"data: [DONE]\n\n").replace(b"\n", b"\r\n"),
        "include-usage-cr": (chunk + usage).replace(b"\n", b"\r"),
        "usage-first-member": b'data: {"usage":null,"choices":[{"delta":{}}]}\n\n',
        "usage-spaced": b'data: {"choices": [ ], "usage" : {"total_tokens": 3}}\n\n'
                        b'data: {"a":1 ,  "usage" :  null }\n\n',
        "multi-line-data": b'data: {"choices":[],\ndata: "usage":{}}\n\n: comment\n\n',
        "bom-unterminated": b"\xef\xbb\xbfdata: {\"choices\":[],\"usage\":{}}\n\ndata: {\"cut\":",
    }
    for rec in recs:
        if rec["sse"] and rec["provider"] in ("openai", "azure_openai", "openai_compatible"):
            write("usage_chunk_filter", rec["name"], cuts(rec["name"], 4) + rec["response"])
    for name, body in synthetic.items():
        write("usage_chunk_filter", name, cuts(name, 4) + body)


def llm_parser_seeds(recs, brotli):
    for rec in recs:
        content_type = rec["response_headers"].get("content-type", "")
        if content_type in CONTENT_TYPES:
            ct = CONTENT_TYPES.index(content_type)
        else:
            ct = 3 if rec["sse"] else 1
        status = STATUSES.index(rec["status"]) if rec["status"] in STATUSES else 0
        headers = b"".join(f"{k}: {v}\n".encode() for k, v in rec["response_headers"].items()
                           if k.lower() != "content-type")
        provider = PROVIDERS.index(rec["provider"]) if rec["provider"] in PROVIDERS else 0
        method = 7 if rec["method"] == "GET" else 0
        encodings = [0]
        if rec["name"].endswith(("include_usage", "stream_text", "stream_sse", "tool_calls")):
            encodings += [2, 4] + ([6] if brotli else [])
        for encoding in encodings:
            control = bytes([provider, llm_target_index(rec["target"]), method, status, ct,
                             encoding, 0, 0]) + cuts(rec["name"], 4)
            body = rec["response"]
            name = rec["name"] + ("" if encoding == 0 else f"-enc{encoding}")
            write("llm_parser", name, control + rec["request"] + SEP + headers + SEP + body)
    # Small limits and a gzip header on plain bytes.
    for rec in recs[:6]:
        control = bytes([0, llm_target_index(rec["target"]), 0, 0, 3 if rec["sse"] else 1, 7,
                         0x05, 0]) + cuts(rec["name"] + "small", 4)
        write("llm_parser", rec["name"] + "-small-limits",
              control + rec["request"] + SEP + SEP + rec["response"])


def content_decoder_seeds(recs, brotli):
    bodies = [(rec["name"], rec["response"]) for rec in recs if len(rec["response"]) > 600][:6]
    for name, body in bodies:
        head = lambda mode: bytes([mode, 3, 6]) + cuts(name + str(mode), 4)
        write("content_decoder", f"{name}-gzip", head(1) + gzip.compress(body, mtime=0))
        write("content_decoder", f"{name}-deflate", head(2) + zlib.compress(body))
        write("content_decoder", f"{name}-raw-deflate", head(2) + deflate_raw(body))
        write("content_decoder", f"{name}-roundtrip-br", head(7) + body[:400])
        if brotli:
            write("content_decoder", f"{name}-br", head(3) + brotli(body))
    two = gzip.compress(b"first member\n", mtime=0) + gzip.compress(b"second member\n", mtime=0)
    write("content_decoder", "gzip-two-members", bytes([1, 1, 0]) + cuts("two", 4) + two)
    write("content_decoder", "gzip-trailing-garbage",
          bytes([1, 2, 0]) + cuts("garbage", 4) + gzip.compress(b"data", mtime=0) + b"junk")
    write("content_decoder", "gzip-truncated",
          bytes([1, 0, 0]) + cuts("cut", 4) + gzip.compress(b"x" * 5000, mtime=0)[:-9])
    write("content_decoder", "roundtrip-gzip-members",
          bytes([13, 4, 9]) + cuts("rt", 4) + b"ab" * 700)
    write("content_decoder", "bomb-deflate", bytes([2, 4, 0]) + cuts("bomb", 4) +
          zlib.compress(b"\0" * (4 << 20), 9))
    write("content_decoder", "header-values", bytes([0, 0, 0]) + cuts("hv", 4) + b" X-GZIP \t")


def stream_option_seeds(recs):
    for rec in recs:
        if rec["request"]:
            write("stream_usage_option", rec["name"], rec["request"])
    synthetic = {
        "minimal": b'{"stream":true}',
        "spaced": b' \r\n{ "model" : "m" ,\t"stream" : true\n}\n ',
        "has-options": b'{"stream":true,"stream_options":{"include_usage":false}}',
        "duplicate-stream": b'{"stream":true,"stream":false}',
        "bom": b'\xef\xbb\xbf{"stream":true,"messages":[{"content":"}"}]}',
        "not-object": b'[{"stream":true}]',
        "string-true": b'{"stream":"true"}',
    }
    for name, body in synthetic.items():
        write("stream_usage_option", name, body)


def config_seeds():
    configs = {
        "readme-full": """\
listen: 127.0.0.1:8080
admin_listen: 0.0.0.0:9901
workers: 1
agent: {name: unknown, header: x-agent-id}
session_header: x-session-id
request_id_header: x-request-id
routes:
  - name: openai
    prefix: /
    upstream: https://api.openai.com
    provider: openai
    strip_prefix: false
    tls: {verify: true, ca_file: "", sni: ""}
  - name: local-vllm
    prefix: /vllm/
    strip_prefix: true
    upstream: http://vllm.inference.svc:8000/v1
    provider: openai_compatible
  - prefix: /
    path_contains: [":generateContent", ":streamGenerateContent"]
    upstream: "https://[::1]:8443"
    provider: gemini
timeouts: {connect: 10s, first_byte: 10m, idle: 1h30m, downstream_header: 250ms, drain: 0s}
limits: {max_request_body: 64MiB, max_header_bytes: 64KiB, max_headers: 100, max_connections: 10000}
log: {access: stdout, level: info}
metrics: {max_values_per_label: 100, otel_semconv: true}
metering: {include_stream_usage: false}
pricing:
  files: [prices.json]
  azure_deployments: {gpt-4o-prod: gpt-4o}
budgets:
  - {agent: "*", hourly_usd: 5, daily_usd: 50, action: alert}
  - {agent: batch, daily_usd: 0.5, action: block}
""",
        "empty": "",
        "null-doc": "~\n",
        "two-documents": "workers: 2\n---\nworkers: 3\n",
        "secret-userinfo": "routes:\n  - upstream: https://user:fuzzSECRET@api.openai.com:99999\n",
        "secret-query": "routes:\n  - upstream: https://api.openai.com/v1?key=fuzzSECRET\n"
                        "    tls: {verify: yes}\n",
        "bad-values": "timeouts: {connect: 0s, idle: 5q}\n"
                      "limits: {max_headers: 0, max_request_body: 99999999999999999999TiB}\n",
        "unknown-key": "routes:\n  - upstream: http://x\n    prefixx: /a\n",
        "duplicate-route": "routes:\n  - {upstream: 'http://a', prefix: /x}\n"
                           "  - {upstream: 'http://b', prefix: /x}\n",
        "anchors": "a: &a [1, 2]\nroutes: *a\n",
        "same-listen": "listen: 127.0.0.1:9901\nadmin_listen: 127.0.0.1:9901\n",
        "deep-flow": "routes: " + "[" * 40 + "]" * 40 + "\n",
        "bad-yaml": "routes: [\n  - {upstream: \"http://x\n",
    }
    for name, text in configs.items():
        write("config", name, text.encode())
    scalars = ["2h30m15s250ms", "9223372036854775807ms", "1m1h", "64MiB", "18446744073709551615",
               "18446744073709551616B", "[::1]:8080", ":0", "http://[fe80::1]:80/base//",
               "HTTPS://API.OPENAI.COM:443/", "openai_compatible"]
    for i, s in enumerate(scalars):
        write("config", f"scalar-{i}", (s + "\n").encode())


def price_file_seeds():
    usage = bytes([0x10, 0x27, 0x10, 0x00, 0xe8, 0x03, 0x02, 0x00, 0x64, 0, 0x20, 0, 3, 5, 0, 0])
    builtin = (ROOT / "pricing" / "prices.json").read_bytes()
    write("price_file", "builtin", usage + b"gpt-4o-mini-2024-07-18\n" + builtin)
    ours = b"""{
  "pricing_version": "fuzz-1",
  "models": {
    "My-Model": {"provider": "openai", "input": 1.5, "output": 6, "cache_read": 0.15,
                 "tiers": [{"above_input_tokens": 1000, "input": 3},
                           {"above_input_tokens": 5000, "output": 12, "reasoning": 20}],
                 "aliases": ["mine", "azure/mine"]},
    "embedder": {"provider": "openai", "kind": "embedding", "input": 0.02}
  }
}"""
    write("price_file", "tokentap-format", usage + b"models/mine@2024\n" + ours)
    litellm = b"""{
  "sample_spec": {"mode": "chat"},
  "gpt-x": {"litellm_provider": "openai", "mode": "chat", "input_cost_per_token": 2.5e-06,
            "output_cost_per_token": 1e-05, "cache_read_input_token_cost": 1.25e-06,
            "input_cost_per_token_above_200k_tokens": 5e-06},
  "dall-e": {"litellm_provider": "openai", "mode": "image_generation", "input_cost_per_pixel": 1},
  "emb": {"litellm_provider": "openai", "mode": "embedding", "input_cost_per_token": 1e-07}
}"""
    write("price_file", "litellm-format", usage + b"GPT-X\n" + litellm)
    write("price_file", "errors",
          usage + b"x\n" + b'{"models":{"a":{"input":-1,"output":1e400}},"x":1}')


# ---- proxy ------------------------------------------------------------------------------------

def http_request(method, target, headers, body=b"", te_chunked=False):
    lines = [f"{method} {target} HTTP/1.1".encode()]
    lines += [k.encode() + b": " + v for k, v in headers]
    if te_chunked:
        lines.append(b"Transfer-Encoding: chunked")
        half = len(body) // 2
        framed = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:half], body[half:]) if p)
        body = framed + b"0\r\n\r\n"
    elif body or method in ("POST", "PUT"):
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def downstream_seeds(recs):
    def seed(name, kind, data):
        write("downstream_request", name, bytes([CANNED.index(kind)]) + cuts(name, 3) + data)

    auth = [("Host", b"tokentap"), ("Authorization", b"Bearer " + CANARY_KEY)]
    for i, rec in enumerate(recs):
        headers = [("Host", b"localhost:8080"), ("Content-Type", b"application/json")]
        provider = rec["provider"]
        if provider == "anthropic":
            headers += [("x-api-key", CANARY_KEY), ("anthropic-version", b"2023-06-01")]
        elif provider == "gemini":
            headers += [("x-goog-api-key", b"AIzaSyFuzzCANARY0123456789abcdefghij")]
        elif provider == "azure_openai":
            headers += [("api-key", b"azureFuzzCANARY0123456789abcdef")]
        else:
            headers += [("Authorization", b"Bearer " + CANARY_KEY)]
        headers += [(k, v.encode()) for k, v in rec["request_headers"].items()]
        headers += [("x-agent-id", b"golden-agent"), ("x-request-id", f"golden-{i}".encode())]
        kind = CANNED[i % len(CANNED)]
        seed("golden-" + rec["name"], kind,
             http_request(rec["method"], rec["target"], headers, rec["request"],
                          te_chunked=i % 3 == 1))

    chat = b'{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hi"}]}'
    get = http_request("GET", "/v1/models", auth)
    hand = {
        "pipelined-keepalive": ("sse_chunked", http_request("POST", "/v1/chat/completions",
                                auth + [("Content-Type", b"application/json")], chat) + get + get),
        "head": ("json", http_request("HEAD", "/v1/models", auth)),
        "head-no-route": ("json", b"HEAD /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"),
        "expect-continue": ("interim_json", http_request(
            "POST", "/v1/chat/completions", auth + [("Content-Type", b"application/json"),
                                                    ("Expect", b"100-continue")], chat)),
        "streamed-text-body": ("json", http_request(
            "POST", "/v1/files", auth + [("Content-Type", b"text/plain")], b"abc" * 300, True)),
        "http10": ("sse_close", b"GET /v1/models HTTP/1.0\r\nAuthorization: Bearer " + CANARY_KEY +
                   b"\r\n\r\n"),
        "connection-listed": ("json", http_request("GET", "/v1/models", auth + [
            ("Connection", b"keep-alive, X-Drop-Me"), ("X-Drop-Me", b"1"), ("Keep-Alive", b"5"),
            ("TE", b"trailers"), ("Upgrade", b"h2c"), ("Proxy-Authorization", b"Basic abc")])),
        "query-key": ("json", http_request(
            "POST", "/v1beta/models/gemini-2.0-flash:generateContent"
                    "?key=AIzaFuzzCANARYqueryKEY0123456789&alt=json",
            [("Host", b"x"), ("Content-Type", b"application/json")], b'{"contents":[]}')),
        "strip-route": ("json", http_request("POST", "/strip/chat/completions",
                                             auth + [("Content-Type", b"application/json")], chat)),
        "no-route": ("json", http_request("GET", "/elsewhere", auth)),
        "absolute-form": ("json", b"GET http://evil.example/v1/models HTTP/1.1\r\nHost: evil\r\n"
                                  b"\r\n"),
        "connect": ("json", b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com\r\n\r\n"),
        "options-star": ("json", b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"),
        "upgrade": ("json", b"GET /v1/realtime HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                            b"Upgrade: websocket\r\n\r\nGET /v1/models HTTP/1.1\r\n\r\n"),
        "agent-session-ids": ("rate_limited", http_request("GET", "/v1/models", auth + [
            ("X-Agent-Id", b"a1"), ("X-Session-Id", b"s1"),
            ("X-Request-Id", b"bad id with spaces")])),
        "reset": ("reset", get + get),
        "gzip-response": ("gzip_json", http_request("POST", "/v1/chat/completions",
                          auth + [("Content-Type", b"application/json")],
                          chat.replace(b"true", b"false"))),
        "no-content": ("no_content", get),
        # Smuggling and malformed framing: each must be refused before anything reaches upstream.
        "cl-and-te": ("json", b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Length: 6\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                              b"GET /v1/admin HTTP/1.1\r\n\r\n"),
        "duplicate-cl": ("json", b"POST /v1/x HTTP/1.1\r\nContent-Length: 3\r\n"
                                 b"Content-Length: 30\r\n\r\nabc"),
        "cl-list": ("json", b"POST /v1/x HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc"),
        "cl-plus": ("json", b"POST /v1/x HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc"),
        "chunked-not-last": ("json", b"POST /v1/x HTTP/1.1\r\n"
                                     b"Transfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n"
                                     b"0\r\n\r\n"),
        "te-gzip-chunked": ("json", b"POST /v1/x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n"
                                    b"\r\n3\r\nabc\r\n0\r\n\r\n"),
        "te-obs-fold": ("json", b"POST /v1/x HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"
                                b"3\r\nabc\r\n0\r\n\r\n"),
        "obs-fold": ("json", b"GET /v1/models HTTP/1.1\r\nX-Folded: a\r\n b\r\n\r\n"),
        "space-before-colon": ("json", b"POST /v1/x HTTP/1.1\r\nContent-Length : 3\r\n\r\nabc"),
        "te-space-before-colon": ("json", b"POST /v1/x HTTP/1.1\r\n"
                                          b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
        "bare-lf": ("json", b"GET /v1/models HTTP/1.1\nHost: x\n\n"),
        "bare-cr": ("json", b"GET /v1/models HTTP/1.1\rHost: x\r\r"),
        "lf-in-value": ("json", b"GET /v1/models HTTP/1.1\r\nX-A: a\nX-B: b\r\n\r\n"),
        "nul-in-header": ("json", b"GET /v1/models HTTP/1.1\r\nX-A: a\x00b\r\n\r\n"),
        "nul-in-target": ("json", b"GET /v1/mo\x00dels HTTP/1.1\r\n\r\n"),
        "bad-chunk-size": ("json", b"POST /v1/x HTTP/1.1\r\nContent-Type: text/plain\r\n"
                                   b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"),
        "chunk-size-overflow": ("json", b"POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                                        b"\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n"),
        "chunk-size-negative": ("json", b"POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                                        b"\r\n-3\r\nabc\r\n0\r\n\r\n"),
        "chunk-ext-huge": ("json", b"POST /v1/x HTTP/1.1\r\nContent-Type: application/json\r\n"
                                   b"Transfer-Encoding: chunked\r\n\r\n2;" +
                           b"e=" + b"v" * 1500 + b"\r\n{}\r\n0\r\n\r\n"),
        "chunk-missing-crlf": ("json", b"POST /v1/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                                       b"\r\n3\r\nabcX0\r\n\r\n"),
        "oversized-headers": ("json", b"GET /v1/models HTTP/1.1\r\n"
                                      b"X-Big: " + b"b" * 5000 + b"\r\n\r\n"),
        "too-many-headers": ("json", b"GET /v1/models HTTP/1.1\r\n" +
                             b"".join(b"X-H%d: v\r\n" % i for i in range(30)) + b"\r\n"),
        "body-too-large-cl": ("json", b"POST /v1/x HTTP/1.1\r\nContent-Length: 40000\r\n"
                                      b"\r\n" + b"a" * 100),
        "body-too-large-chunked": ("json", b"POST /v1/x HTTP/1.1\r\n"
                                           b"Content-Type: application/json\r\n"
                                           b"Transfer-Encoding: chunked\r\n\r\n" +
                                   (b"4000\r\n" + b"a" * 0x4000 + b"\r\n") * 2 + b"0\r\n\r\n"),
        "invalid-field-name": ("json", b"GET /v1/models HTTP/1.1\r\nX\x7fBad: v\r\n\r\n"),
        "http09": ("json", b"GET /v1/models\r\n\r\n"),
        "http2-preface": ("json", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        "garbage-after-request": ("json", get + b"\x16\x03\x01\x00\xa5\x01\x00"),
        "trailers": ("json", b"POST /v1/x HTTP/1.1\r\nContent-Type: text/plain\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
                             b"X-Trailer: t\r\n\r\n"),
    }
    for name, (kind, data) in hand.items():
        seed(name, kind, data)


def upstream_seeds(recs):
    def seed(name, menu, close, data):
        write("upstream_response", name, bytes([MENU.index(menu), 1 if close else 0]) +
              cuts(name, 3) + data)

    reasons = {200: b"OK", 400: b"Bad Request", 401: b"Unauthorized", 429: b"Too Many Requests",
               500: b"Internal Server Error", 503: b"Service Unavailable", 529: b"Overloaded"}
    for i, rec in enumerate(recs):
        provider, target = rec["provider"], rec["target"]
        if provider == "anthropic":
            menu = "anthropic_stream"
        elif provider == "gemini":
            menu = "gemini_sse" if "alt=sse" in target or rec["sse"] else "gemini_array"
        elif "/responses" in target:
            menu = "responses_stream"
        else:
            menu = "openai_stream" if rec["sse"] else "openai_json"
        head = b"HTTP/1.1 %d %s\r\n" % (rec["status"], reasons.get(rec["status"], b"Status"))
        head += b"".join(f"{k}: {v}\r\n".encode() for k, v in rec["response_headers"].items())
        body = rec["response"]
        framing = i % 3
        if framing == 0:
            data = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
        elif framing == 1:
            chunks = [body[j:j + 700] for j in range(0, len(body), 700)]
            data = head + b"Transfer-Encoding: chunked\r\n\r\n" + b"".join(
                b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        else:
            data = head + b"Connection: close\r\n\r\n" + body
        seed("golden-" + rec["name"], menu, framing == 2, data)

    sse = (b'data: {"choices":[{"index":0,"delta":{"content":"x"}}],"usage":null}\n\n'
           b'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,'
           b'"total_tokens":3}}\n\n'
           b"data: [DONE]\n\n")
    ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    hand = {
        "usage-filter-chunked": ("openai_stream", False, b"HTTP/1.1 200 OK\r\n"
                                                         b"Content-Type: text/event-stream\r\n"
                                 b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n"
                                 b"\r\n" % (len(sse), sse)),
        "usage-filter-gzip": ("openai_stream", True, b"HTTP/1.1 200 OK\r\n"
                                                     b"Content-Type: text/event-stream\r\n"
                              b"Content-Encoding: gzip\r\n\r\n" + gzip.compress(sse, mtime=0)),
        "interim-100-103": ("openai_json", False, b"HTTP/1.1 100 Continue\r\n\r\n"
                                                  b"HTTP/1.1 103 Early Hints\r\n"
                            b"Link: </a>\r\n\r\n" + ok),
        "switching-protocols": ("openai_json", False, b"HTTP/1.1 101 Switching Protocols\r\n"
                                                      b"Upgrade: h2c\r\n"
                                b"Connection: Upgrade\r\n\r\n" + ok),
        "no-content-with-length": ("openai_json", False, b"HTTP/1.1 204 No Content\r\n"
                                                         b"Content-Length: 5\r\n\r\nhello"),
        "not-modified": ("get", False, b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n"),
        "head-with-length": ("head", False, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"),
        "hop-by-hop": ("get", False, b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Internal\r\n"
                                     b"X-Internal: 1\r\n"
                       b"Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nTrailer: X-T\r\n"
                       b"Upgrade: h2\r\n"
                       b"Content-Length: 2\r\n\r\n{}"),
        "cl-and-te": ("openai_json", False, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                                            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        "duplicate-cl": ("openai_json", False, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                               b"Content-Length: 20\r\n\r\n{}"),
        "bad-chunk": ("openai_stream", False, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                              b"\r\n5\r\ndata:\r\nzz\r\n"),
        "truncated-chunked": ("openai_stream", True, b"HTTP/1.1 200 OK\r\n"
                                                     b"Content-Type: text/event-stream\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\n20\r\ndata: {\"choices\":[]}\n"
                              b"\n"),
        "truncated-length": ("openai_json", True, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
                                                  b"\r\n{\"id\":"),
        "close-delimited": ("anthropic_stream", True, b"HTTP/1.1 200 OK\r\n"
                                                      b"Content-Type: text/event-stream\r\n\r\n"
                            b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
        "http10": ("openai_json", True, b"HTTP/1.0 200 OK\r\n\r\n{}"),
        "two-responses": ("openai_json", False, ok + ok),
        "bad-status-line": ("openai_json", False, b"HTTP/1.1 2000 OK\r\n\r\n"),
        "obs-fold": ("openai_json", False, b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\n"
                                           b"Content-Length: 2\r\n\r\n{}"),
        "trailers": ("openai_stream", False, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                             b"\r\n2\r\n{}\r\n0\r\nX-T: 1\r\n\r\n"),
        "empty-then-close": ("openai_json", True, b""),
        "error-529": ("anthropic_stream", False, b"HTTP/1.1 529 \r\n"
                                                 b"Content-Type: application/json\r\n"
                                                 b"retry-after: 3\r\n"
                      b"Content-Length: 72\r\n\r\n"
                      b"{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                      b"\"message\":\"Overloaded\"}}"),
    }
    for name, (menu, close, data) in hand.items():
        seed(name, menu, close, data)


def main():
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    recs = list(recordings())
    brotli = brotli_encoder()
    sse_seeds(recs)
    usage_filter_seeds(recs)
    llm_parser_seeds(recs, brotli)
    content_decoder_seeds(recs, brotli)
    stream_option_seeds(recs)
    config_seeds()
    price_file_seeds()
    downstream_seeds(recs)
    upstream_seeds(recs)
    total = sum(f.stat().st_size for f in CORPUS.rglob("*") if f.is_file())
    count = sum(1 for f in CORPUS.rglob("*") if f.is_file())
    print(f"{count} seeds, {total // 1024} KiB in {os.path.relpath(CORPUS, ROOT)}")


if __name__ == "__main__":
    main()
