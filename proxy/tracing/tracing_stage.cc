#include "proxy/tracing/tracing_stage.h"

#include "proxy/http/secrets.h"
#include "proxy/tracing/propagation.h"

namespace tokentap {

void TracingHub::configure(const TracingSettings& settings) {
  {
    std::lock_guard lock(mu_);
    settings_ = std::make_shared<const TracingSettings>(settings);
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
}

void TracingHub::attach(std::shared_ptr<OtlpExporter> exporter) {
  std::lock_guard lock(mu_);
  reap_retired();
  if (exporter_ && exporter_ != exporter) {
    exporter_->request_stop();
    retired_.push_back(std::move(exporter_));
  }
  exporter_ = std::move(exporter);
  attached_ = attached_ || exporter_ != nullptr;
}

void TracingHub::stop_exports() {
  std::vector<std::shared_ptr<OtlpExporter>> all;
  {
    std::lock_guard lock(mu_);
    all = retired_;
    if (exporter_) all.push_back(exporter_);
  }
  for (const auto& e : all) e->request_stop();  // their last exports run side by side
  for (const auto& e : all) e->stop();
}

std::shared_ptr<OtlpExporter> TracingHub::exporter() const {
  std::lock_guard lock(mu_);
  return exporter_;
}

void TracingHub::reap_retired() const {
  // Only finished exporters are released here, so their destructor's join never waits; a
  // worker's short-lived copy (enqueue) can never be the last reference of an unfinished one.
  std::erase_if(retired_, [this](const std::shared_ptr<OtlpExporter>& e) {
    if (!e->finished()) return false;
    reaped_stats_ += e->stats();
    return true;
  });
}

std::optional<OtlpExporterStats> TracingHub::export_stats() const {
  std::lock_guard lock(mu_);
  reap_retired();
  if (!attached_) return std::nullopt;
  OtlpExporterStats total = reaped_stats_;
  for (const auto& e : retired_) total += e->stats();
  if (exporter_) total += exporter_->stats();
  return total;
}

std::shared_ptr<const TracingSettings> TracingHub::settings() const {
  std::lock_guard lock(mu_);
  return settings_;
}

bool TracingHub::enqueue(nlohmann::json span) {
  std::shared_ptr<OtlpExporter> exporter;
  {
    std::lock_guard lock(mu_);
    exporter = exporter_;
  }
  return exporter && exporter->enqueue(std::move(span));
}

const TracingSettings& WorkerTracing::settings() {
  uint64_t now = hub_.generation();
  if (now != generation_ || !settings_) {
    settings_ = hub_.settings();
    generation_ = now;
  }
  return *settings_;
}

TraceId session_trace_id(std::string_view session) {
  std::array<unsigned char, 32> digest{};
  std::string keyed = "tokentap session trace\n";
  keyed += session;
  TraceId id{};
  if (sha256(keyed, digest)) std::copy_n(digest.begin(), id.size(), id.begin());
  if (is_zero(id)) id[15] = 1;  // never the invalid all-zero id
  return id;
}

TraceHeaderStage::TraceHeaderStage(std::shared_ptr<WorkerTracing> tracing,
                                   std::optional<uint64_t> seed)
    : tracing_(std::move(tracing)), ids_(seed ? IdGenerator(*seed) : IdGenerator()) {}

void TraceHeaderStage::on_request_head(RequestContext& ctx, const HeaderList& headers,
                                       HeaderEdits& edits) {
  const TracingSettings& settings = tracing_->settings();
  if (!settings.enabled) return;
  RequestTrace trace = trace_from_headers(ids_, headers);
  if (!trace.parent_span_id && settings.session_traces && !ctx.session.empty()) {
    trace.trace_id = session_trace_id(ctx.session);
  }
  edits.request_drop = {"traceparent", "tracestate"};
  append_trace_headers(trace, edits.request_lines);
  if (settings.propagate_response_traceparent) {
    edits.response_drop = {"traceparent"};
    edits.response_lines =
        "traceparent: " +
        format_traceparent(trace.trace_id, trace.span_id, upstream_sampled(trace)) + "\r\n";
  }
  ctx.trace = std::move(trace);
}

TraceCompletionSink::TraceCompletionSink(std::shared_ptr<WorkerTracing> tracing,
                                         std::shared_ptr<SpanQueue> queue,
                                         std::optional<uint64_t> seed)
    : tracing_(std::move(tracing)),
      sink_(
          TracingSinkOptions{}, std::move(queue),
          [](const RequestContext& ctx) { return ctx.trace; }, seed) {}

void TraceCompletionSink::on_request_end(const RequestContext& ctx) {
  const TracingSettings& settings = tracing_->settings();
  if (!settings.enabled) return;
  sink_.set_options(TracingSinkOptions{.sample_ratio = settings.sample_ratio,
                                       .keep_errors = settings.keep_errors});
  sink_.on_request_end(ctx);
}

}  // namespace tokentap
