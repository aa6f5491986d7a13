// The OTLP/HTTP exporter: a bounded queue (spans and bytes) filled by the workers' tracing
// sinks without blocking, drained by one exporter thread that POSTs batches to `endpoint`
// (http[s]://host:port/v1/traces) as http/protobuf or http/json with a timeout, retrying
// 429/502/503/504 with backoff (Retry-After honoured, capped) as the OTLP specification asks.
// Spans are encoded for the wire when queued (on the worker), batches are framed on the
// exporter thread. https uses the upstreams' TLS verification (proxy/tracing/otlp_http.h).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "config/config.h"
#include "proxy/net/tls.h"
#include "proxy/tracing/otlp_http.h"
#include "proxy/tracing/tracing_sink.h"

namespace tokentap {

enum class OtlpProtocol { protobuf, json };

// "http/protobuf" or "http/json" (TracingSettings::protocol); nullopt for anything else.
std::optional<OtlpProtocol> parse_otlp_protocol(std::string_view name);

struct OtlpExporterOptions {
  std::string endpoint;  // http://otel-collector:4318/v1/traces or https://...
  OtlpProtocol protocol = OtlpProtocol::protobuf;
  std::string ca_file;  // for https: trusted besides the system store
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

  bool operator==(const OtlpExporterOptions&) const = default;
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

  OtlpExporterStats& operator+=(const OtlpExporterStats& other);
};

class OtlpExporter : public SpanQueue {
 public:
  // Throws std::invalid_argument for an endpoint that is not http[s]://host[:port]/path, and
  // std::runtime_error for a ca_file that does not load.
  explicit OtlpExporter(OtlpExporterOptions options);
  ~OtlpExporter() override;  // stop()
  OtlpExporter(const OtlpExporter&) = delete;
  OtlpExporter& operator=(const OtlpExporter&) = delete;

  // Any thread; never blocks on the network (only on the short queue lock).
  bool enqueue(nlohmann::json span) override;
  // Exports what is queued (one last try, bounded by the timeout), then joins the thread.
  void stop();
  // stop() without the wait: the exporter thread makes its last try and ends on its own; new
  // spans are refused from now on. finished() tells when the thread is done (stop() is then
  // immediate). Never blocks, so an event loop may retire an exporter this way.
  void request_stop();
  bool finished() const { return finished_.load(std::memory_order_acquire); }
  const OtlpExporterOptions& options() const { return options_; }
  OtlpExporterStats stats() const;

 private:
  void run();
  std::string request_body(const std::vector<std::string>& batch) const;
  void export_batch(std::vector<std::string>& batch, bool final_attempt);

  OtlpExporterOptions options_;
  OtlpTarget target_;
  std::unique_ptr<TlsClientContext> tls_;  // https only
  std::string request_head_;               // the POST head less Content-Length
  nlohmann::json envelope_;                // the request without spans (resource, scope)
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  size_t queue_bytes_ = 0;
  bool stopping_ = false;
  std::thread thread_;
  std::atomic<bool> finished_{false};

  std::atomic<uint64_t> exported_{0}, export_errors_{0}, dropped_queue_full_{0},
      dropped_too_large_{0}, dropped_export_failed_{0}, dropped_shutdown_{0};
};

}  // namespace tokentap
