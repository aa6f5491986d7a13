// An in-process tokentap worker for the proxy fuzz targets and unit tests. The real
// DownstreamConnection, UpstreamConnection, keep-alive pool, metering observer, metrics and access
// log run on the Worker's libuv loop, which the fuzz thread drives itself: the Worker is never
// start()ed, so there is no worker thread and every input runs to the same end. The client is one
// end of a Unix socketpair adopted with uv_tcp_open (so TCP_NODELAY and the peer address are
// no-ops); the upstream is a fake HTTP/1.1 server on 127.0.0.1:0 in the same loop that reads every
// forwarded request with llhttp and answers it, with a canned response or with bytes the target
// sends. After each step the loop runs until nothing more can happen without new input.
//
// Every input opens one client connection: start_client(), then client_send() and, for the
// upstream side, upstream_send() / upstream_close(), then client_half_close() and finish().
// finish() checks what must hold after any input (the connection closed, no request left in
// flight, every observer told of its end exactly once, every access-log line valid JSON, the
// fake upstream never saw malformed HTTP) and returns what each side saw. A broken invariant
// aborts the process (FUZZ_CHECK): in a unit test, that test fails.
#pragma once

#include <llhttp.h>
#include <uv.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/core/request_context.h"
#include "tests/support/http_reference.h"

namespace tokentap::fuzz {

// How the fake upstream answers each complete request when it answers by itself.
enum class Canned {
  json,          // 200, Content-Length, an OpenAI chat completion
  sse_chunked,   // 200, chunked, an OpenAI stream with usage:null and a usage-only chunk
  sse_close,     // 200, close-delimited, an Anthropic stream, then FIN
  no_content,    // 204
  interim_json,  // 100 Continue, then the json response
  rate_limited,  // 429 with an OpenAI error body and retry-after
  gzip_json,     // 200, Content-Encoding: gzip
  reset,         // no response: the connection is reset
};
inline constexpr size_t kCannedCount = 8;

struct ProxyResult {
  std::string client_received;                 // every byte the client read
  bool client_saw_eof = false;                 // the proxy closed its side
  std::vector<HttpMessage> upstream_requests;  // complete requests, in arrival order
  std::vector<std::string> upstream_streams;   // raw bytes per upstream connection
  std::vector<std::string> access_log;         // lines written for this input
  size_t observers = 0;                        // metering observers created
  size_t pooled_upstream = 0;                  // idle upstream connections kept for reuse
  // Each metered request as its observer's on_complete() left it (ctx.llm filled), in order.
  std::vector<RequestContext> completed;
};

class ProxyHarness {
 public:
  static ProxyHarness& get();

  // What the fake upstream sends for `kind`: the head, and the body (after the head unless
  // the request was HEAD). The body is as on the wire (chunked, compressed).
  std::string_view canned_head(Canned kind) const;
  std::string_view canned_body(Canned kind) const;
  // The body a client should read for `kind`, de-chunked, still content-encoded.
  std::string_view canned_payload(Canned kind) const;
  int canned_status(Canned kind) const;

  // `answer`: answer every request with this; nullopt leaves answering to upstream_send().
  void start_client(std::optional<Canned> answer);
  void client_send(std::string_view bytes);
  void client_half_close();
  // To the newest upstream connection.
  void upstream_send(std::string_view bytes);
  void upstream_close();
  size_t upstream_requests_seen() const;
  ProxyResult finish();

  struct Impl;

 private:
  ProxyHarness();
  std::unique_ptr<Impl> impl_;
};

}  // namespace tokentap::fuzz
