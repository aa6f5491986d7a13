#include "proxy/tracing/tracing_metrics.h"

#include <string>
#include <utility>

namespace tokentap {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily counter_family(const char* name, const char* help) {
  MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = MetricType::Counter;
  return family;
}

void add_counter(MetricFamily& family, double value, const char* label = nullptr,
                 const char* label_value = nullptr) {
  ClientMetric metric;
  if (label != nullptr) metric.label.push_back({label, label_value});
  metric.counter.value = value;
  family.metric.push_back(std::move(metric));
}

}  // namespace

void SharedPiiCounts::add(const PiiCounts& c) {
  for (size_t i = 0; i < kPiiKindCount; ++i) {
    if (c.by_kind[i] > 0) by_kind[i].fetch_add(c.by_kind[i], std::memory_order_relaxed);
  }
}

TracingCollector::TracingCollector(ExportStats exports, std::shared_ptr<const SharedPiiCounts> pii)
    : exports_(std::move(exports)), pii_(std::move(pii)) {}

std::vector<MetricFamily> TracingCollector::Collect() const {
  std::vector<MetricFamily> families;
  if (std::optional<OtlpExporterStats> stats = exports_ ? exports_() : std::nullopt) {
    const OtlpExporterStats& s = *stats;
    MetricFamily exported =
        counter_family("tokentap_trace_spans_exported_total", "Spans the OTLP collector accepted.");
    add_counter(exported, static_cast<double>(s.exported));
    families.push_back(std::move(exported));
    MetricFamily errors = counter_family("tokentap_trace_export_errors_total",
                                         "Failed OTLP export attempts (each retry counts).");
    add_counter(errors, static_cast<double>(s.export_errors));
    families.push_back(std::move(errors));
    MetricFamily dropped = counter_family("tokentap_trace_spans_dropped_total",
                                          "Spans dropped before export, by reason.");
    add_counter(dropped, static_cast<double>(s.dropped_queue_full), "reason", "queue_full");
    add_counter(dropped, static_cast<double>(s.dropped_too_large), "reason", "too_large");
    add_counter(dropped, static_cast<double>(s.dropped_export_failed), "reason", "export_failed");
    add_counter(dropped, static_cast<double>(s.dropped_shutdown), "reason", "shutdown");
    families.push_back(std::move(dropped));
  }
  if (pii_) {
    MetricFamily pii = counter_family("tokentap_pii_redactions_total",
                                      "PII replaced in captured content, by kind.");
    for (size_t i = 0; i < kPiiKindCount; ++i) {
      add_counter(pii, static_cast<double>(pii_->by_kind[i].load(std::memory_order_relaxed)),
                  "kind", pii_kind_name(static_cast<PiiKind>(i)));
    }
    families.push_back(std::move(pii));
  }
  return families;
}

}  // namespace tokentap
