// The OTLP/HTTP JSON exporter: a bounded queue (spans and bytes) filled by the workers' tracing
// sinks without blocking, drained by one exporter thread that POSTs batches to
// `endpoint` (http://host:port/v1/traces) with a timeout, retrying 429/502/503/504 with backoff
// (Retry-After honoured, capped) as the OTLP specification asks. https endpoints are refused at
// construction for now.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "config/config.h"
#include "proxy/tracing/tracing_sink.h"

namespace tokentap {

struct OtlpExporterOptions {
  std::string endpoint;  // http://otel-collector:4318/v1/traces
  std::string service_name = "tokentap";
  std::vector<std::pair<std::string, std::string>> resource_attributes;
  std::vector<std::pair<std::string, std::string>> headers;  // sent with every POST; secret
  size_t max_queue_spans = 2048;
  size_t max_queue_bytes = size_t{8} << 20;
  size_t max_span_bytes = size_t{256} << 10;
  size_t max_batch_spans = 512;
  std::chrono::milliseconds flush_interval{1000};
  std::chrono::milliseconds timeout{5000};
  int max_attempts = 4;
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{8000};
};

// Counter values for tokentap_trace_spans_exported_total, tokentap_trace_export_errors_total and
// tokentap_trace_spans_dropped_total{reason}.
struct OtlpExporterStats {
  uint64_t exported = 0;
  uint64_t export_errors = 0;  // failed POST attempts (connect, timeout, non-2xx)
  uint64_t dropped_queue_full = 0;
  uint64_t dropped_too_large = 0;
  uint64_t dropped_export_failed = 0;  // batches given up after max_attempts or a 4xx
  uint64_t dropped_shutdown = 0;
};

class OtlpExporter : public SpanQueue {
 public:
  // Throws std::invalid_argument for an endpoint that is not http://host[:port]/path.
  explicit OtlpExporter(OtlpExporterOptions options);
  ~OtlpExporter() override;  // stop()
  OtlpExporter(const OtlpExporter&) = delete;
  OtlpExporter& operator=(const OtlpExporter&) = delete;

  // Any thread; never blocks on the network (only on the short queue lock).
  bool enqueue(nlohmann::json span) override;
  // Exports what is queued (one last try, bounded by the timeout), then joins the thread.
  void stop();
  OtlpExporterStats stats() const;

 private:
  struct Target {
    std::string host;
    uint16_t port = 80;
    std::string path;
  };
  void run();
  // One POST; returns the HTTP status, 0 on a transport error; `retry_after` from the header.
  int post(const std::string& body, std::optional<std::chrono::seconds>& retry_after);
  void export_batch(std::deque<std::string>& batch, bool final_attempt);

  OtlpExporterOptions options_;
  Target target_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  size_t queue_bytes_ = 0;
  bool stopping_ = false;
  std::thread thread_;

  std::atomic<uint64_t> exported_{0}, export_errors_{0}, dropped_queue_full_{0},
      dropped_too_large_{0}, dropped_export_failed_{0}, dropped_shutdown_{0};
};

}  // namespace tokentap
