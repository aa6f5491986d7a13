// The tracing counters on /metrics, read from the exporters' and the scrubber's atomics at scrape
// time (AdminServer::add_collectable): tokentap_trace_spans_exported_total,
// tokentap_trace_export_errors_total, tokentap_trace_spans_dropped_total{reason} and
// tokentap_pii_redactions_total{kind}. Collect() is thread-safe.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "proxy/tracing/otlp_exporter.h"
#include "proxy/tracing/pii.h"

namespace tokentap {

// Redactions across all workers; each worker adds its PiiCounts after scrubbing a span.
struct SharedPiiCounts {
  std::array<std::atomic<uint64_t>, kPiiKindCount> by_kind{};
  void add(const PiiCounts& c);
};

class TracingCollector : public prometheus::Collectable {
 public:
  // `exports` returns the counters of every exporter so far (a reload may replace it), nullopt
  // while there was none; it must be thread-safe.
  using ExportStats = std::function<std::optional<OtlpExporterStats>()>;
  TracingCollector(ExportStats exports, std::shared_ptr<const SharedPiiCounts> pii);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  ExportStats exports_;
  std::shared_ptr<const SharedPiiCounts> pii_;
};

}  // namespace tokentap
