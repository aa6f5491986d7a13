// Tracing in the request pipeline: a TracingHub shared by every worker (the current tracing
// settings, replaced on reload, and the exporter spans go to), a header stage per worker that
// decides each request's trace when its head arrives (W3C propagation upstream, and back to the
// client when configured) and a completion sink per worker that builds, samples and queues its
// span. With tracing disabled both stages do nothing but one atomic load per request.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "config/config.h"
#include "proxy/core/exchange.h"
#include "proxy/tracing/otlp_exporter.h"
#include "proxy/tracing/tracing_metrics.h"
#include "proxy/tracing/tracing_sink.h"

namespace tokentap {

class TracingHub : public SpanQueue {
 public:
  // Main thread (start and reload): publishes `settings` for the requests that start next.
  void configure(const TracingSettings& settings);
  // Main thread (start and reload): where kept spans go from now on; before the first, they are
  // dropped. The exporter it replaces is retired without waiting: told to stop (its thread makes
  // one last export and ends on its own), kept until it has, then joined at once.
  void attach(std::shared_ptr<OtlpExporter> exporter);
  // At exit, after the workers: every exporter makes its last export and is joined.
  void stop_exports();
  // Any thread: the exporter spans go to now (null before the first attach).
  std::shared_ptr<OtlpExporter> exporter() const;
  // Any thread: the counters of every exporter attached so far, retired ones included; nullopt
  // before the first.
  std::optional<OtlpExporterStats> export_stats() const;

  // Any thread.
  std::shared_ptr<const TracingSettings> settings() const;
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  bool enqueue(nlohmann::json span) override;
  const std::shared_ptr<SharedPiiCounts>& pii_counts() const { return pii_; }
  // The content scrubber for the current settings (built by configure() from pii_patterns);
  // null when content capture is off.
  std::shared_ptr<const PiiScrubber> scrubber() const;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const TracingSettings> settings_ = std::make_shared<TracingSettings>();
  // Joins the retired exporters whose thread is done; mu_ held.
  void reap_retired() const;

  std::shared_ptr<const PiiScrubber> scrubber_;
  std::shared_ptr<OtlpExporter> exporter_;
  mutable std::vector<std::shared_ptr<OtlpExporter>> retired_;  // stopping, not yet finished
  mutable OtlpExporterStats reaped_stats_;                      // of the finished ones
  bool attached_ = false;
  std::atomic<uint64_t> generation_{0};
  std::shared_ptr<SharedPiiCounts> pii_ = std::make_shared<SharedPiiCounts>();
};

// One worker's copy of the hub's settings, refreshed when the hub's generation moves. Loop
// thread only; shared by that worker's two stages.
class WorkerTracing {
 public:
  explicit WorkerTracing(const TracingHub& hub) : hub_(hub) {}
  const TracingSettings& settings();
  // The scrubber that goes with settings() (call settings() first).
  const std::shared_ptr<const PiiScrubber>& scrubber() const { return scrubber_; }
  const std::shared_ptr<SharedPiiCounts>& pii_counts() const { return hub_.pii_counts(); }

 private:
  const TracingHub& hub_;
  uint64_t generation_ = UINT64_MAX;
  std::shared_ptr<const TracingSettings> settings_;
  std::shared_ptr<const PiiScrubber> scrubber_;
};

// The trace id of a session's trace when tracing.session_traces is on and the agent sent no
// traceparent: derived from the session id, so every call of the session (on any worker, and
// across restarts) lands in one trace. Pure.
TraceId session_trace_id(std::string_view session);

class TraceHeaderStage : public HeaderStage {
 public:
  TraceHeaderStage(std::shared_ptr<WorkerTracing> tracing,
                   std::optional<uint64_t> seed = std::nullopt);
  void on_request_head(RequestContext& ctx, const HeaderList& headers, HeaderEdits& edits) override;

 private:
  std::shared_ptr<WorkerTracing> tracing_;
  IdGenerator ids_;
};

class TraceCompletionSink : public CompletionSink {
 public:
  TraceCompletionSink(std::shared_ptr<WorkerTracing> tracing, std::shared_ptr<SpanQueue> queue,
                      std::optional<uint64_t> seed = std::nullopt);
  void on_request_end(const RequestContext& ctx) override;

 private:
  std::shared_ptr<WorkerTracing> tracing_;
  TracingSink sink_;
};

}  // namespace tokentap
