// The named stages of one proxied request (Pingora's request_filter ... logging), in the order
// the connection drives them:
//   0. header stages: when a routed request's head arrived, may record facts in its context and
//      add header lines to the two forwarded heads (W3C trace context today);
//   1. observers: told about request headers and body, response headers and body, and the end;
//      they only watch (ExchangeObserver) - today the metering observer;
//   2. admission: may answer the request locally before any upstream contact (budgets,
//      runaway sessions, the circuit breaker); the first rejection wins;
//   3. the one sanctioned change to bytes on the wire (BodyRewriter): stream_options injection;
//   4. completion sinks: each receives the same finished request exactly once, in registration
//      order, after every observer's on_complete (LLM metrics, budgets, sessions, the usage
//      store, the circuit breakers, core request counts, recent errors, the access log; a
//      tracing exporter next).
// The connection knows these interfaces only; what the stages are is decided in proxy/app.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/core/request_context.h"
#include "proxy/http/http1.h"

namespace tokentap {

struct Runtime;

// A local answer instead of forwarding: the error type (its status and error_type come from the
// error table), a secret-free message, and retry advice when the default for the type is wrong.
struct Rejection {
  ErrorType type = ErrorType::internal;
  std::string message;
  std::optional<RetryAdvice> retry;
};

// Decides whether a request may go upstream. Called once per routed request on the worker's
// loop thread: for a buffered (JSON) body after the whole body arrived, otherwise after the
// headers; in both cases before any upstream contact. Must not block.
class AdmissionPolicy {
 public:
  virtual ~AdmissionPolicy() = default;
  virtual std::optional<Rejection> admit(const RequestContext& ctx) = 0;
};

// Header lines one request adds to its two forwarded heads. Names are lower-case; lines are
// complete "name: value\r\n" lines.
struct HeaderEdits {
  std::vector<std::string> request_drop;   // the client's headers of these names stay behind
  std::string request_lines;               // added to the upstream request head
  std::vector<std::string> response_drop;  // the upstream's headers of these names stay behind
  std::string response_lines;              // added to the client's response head
};

// Told once per routed request, on the worker's loop thread, when its head arrived: after the
// observer's on_request_headers, before admission and any upstream contact. It may record facts
// in `ctx` and add to `edits`, which the connection renders into the forwarded heads without
// knowing what they mean. Must not block. A request refused before routing never reaches it.
class HeaderStage {
 public:
  virtual ~HeaderStage() = default;
  virtual void on_request_head(RequestContext& ctx, const HeaderList& headers,
                               HeaderEdits& edits) = 0;
};

// Receives every finished request exactly once (succeeded, failed, refused, or abandoned by the
// client), after the observers' on_complete, so ctx.llm and the outcome are final. Called on the
// worker's loop thread; must not block (hand slow work to a bounded queue).
class CompletionSink {
 public:
  virtual ~CompletionSink() = default;
  virtual void on_request_end(const RequestContext& ctx) = 0;
};

// The stages of one worker, built once on that worker's thread, so a stage may keep
// loop-thread-only state (metric handle caches) without locks.
struct Pipeline {
  std::vector<std::unique_ptr<HeaderStage>> header_stages;  // told in order
  std::vector<std::unique_ptr<AdmissionPolicy>> admission;  // asked in order
  std::vector<std::unique_ptr<CompletionSink>> sinks;       // told in order
};

// Builds worker `worker_index`'s pipeline; called once per worker before it accepts.
using PipelineFactory = std::function<Pipeline(size_t worker_index)>;

}  // namespace tokentap
