// The tracing completion sink: builds the span of every finished LLM request, takes the tail
// sampling decision and hands kept spans to the exporter's bounded queue (never blocks).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "proxy/core/exchange.h"
#include "proxy/tracing/pii.h"
#include "proxy/tracing/span.h"
#include "proxy/tracing/trace_context.h"

namespace tokentap {

struct SharedPiiCounts;

// Where kept spans go; OtlpExporter implements it. Must not block; false when the span was
// dropped (the implementation counts why).
class SpanQueue {
 public:
  virtual ~SpanQueue() = default;
  virtual bool enqueue(nlohmann::json span) = 0;
};

struct TracingSinkOptions {
  double sample_ratio = 1.0;
  bool keep_errors = true;  // failed requests are kept whatever the ratio
  bool llm_only = true;     // spans for metered LLM requests only
  // Content capture: a kept span whose request captured content (ctx.content) carries it,
  // scrubbed by `scrubber` (null: never) and bounded to `content_max_bytes` per side; the
  // redactions are added to `pii_counts` (may be null).
  std::shared_ptr<const PiiScrubber> scrubber{};  // {}: designated initializers may omit it
  size_t content_max_bytes = size_t{16} << 10;
  std::shared_ptr<SharedPiiCounts> pii_counts{};
};

// Spans are built for kept requests only: the sampling decision (the trace's head decision, else
// drawn here; a failed request is kept with keep_errors) comes first.
class TracingSink : public CompletionSink {
 public:
  // `trace_of` returns the trace decided when the request headers arrived (TraceHeaderStage, a
  // HeaderStage of proxy/core/exchange.h, stores it in RequestContext::trace); when it is empty
  // or returns nullopt a fresh root trace is used.
  using TraceLookup = std::function<std::optional<RequestTrace>(const RequestContext&)>;

  TracingSink(TracingSinkOptions options, std::shared_ptr<SpanQueue> queue,
              TraceLookup trace_of = {}, std::optional<uint64_t> seed = std::nullopt);
  void on_request_end(const RequestContext& ctx) override;
  // A reload's new sampling settings, for the requests that end next.
  void set_options(TracingSinkOptions options) { options_ = std::move(options); }

  uint64_t sampled_out() const { return sampled_out_; }

 private:
  TracingSinkOptions options_;
  std::shared_ptr<SpanQueue> queue_;
  TraceLookup trace_of_;
  IdGenerator ids_;
  uint64_t sampled_out_ = 0;
};

}  // namespace tokentap
