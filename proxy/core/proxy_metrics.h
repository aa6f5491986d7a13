// Core proxy metrics. CoreMetrics owns the families in the shared registry; each worker keeps
// a WorkerMetrics that resolves label sets to handles through its HandleCache.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/core/handle_cache.h"

namespace tokentap {

struct CoreMetrics {
  explicit CoreMetrics(prometheus::Registry& registry);

  prometheus::Family<prometheus::Counter>& requests;  // {route, code}
  prometheus::Gauge& inflight;
  prometheus::Family<prometheus::Gauge>& open_connections;  // {side}
  prometheus::Gauge& downstream_connections;
  prometheus::Gauge& upstream_connections;
  prometheus::Family<prometheus::Counter>& connect_errors;              // {route, kind}
  prometheus::Family<prometheus::Counter>& upstream_connections_total;  // {route, reused}
  prometheus::Counter& rejected_connections;                            // over max_connections
  prometheus::Family<prometheus::Counter>& config_reloads;              // {result}
  prometheus::Counter& config_reloads_success;
  prometheus::Counter& config_reloads_error;
  prometheus::Gauge& config_last_reload_successful;  // 1 after a good (re)load, 0 after a bad one
  prometheus::Gauge& config_last_reload_seconds;     // Unix time of the last successful (re)load
};

// A counter without labels whose value is read at scrape time, for counts kept elsewhere (e.g.
// LineWriter::dropped() as tokentap_access_log_dropped_total). `read` is called on the scraping
// thread and must be thread-safe and monotonic.
class CallbackCounter : public prometheus::Collectable {
 public:
  CallbackCounter(std::string name, std::string help, std::function<double()> read);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::string name_;
  std::string help_;
  std::function<double()> read_;
};

// One worker's handles on the core families; used only from the worker's loop thread. Route
// names come from the config, so no label here is capped.
class WorkerMetrics {
 public:
  explicit WorkerMetrics(CoreMetrics& core) : core_(core) {}

  CoreMetrics& core() { return core_; }
  prometheus::Counter& request(std::string_view route, int code);
  prometheus::Counter& connect_error(std::string_view route, std::string_view kind);
  prometheus::Counter& upstream_connection(std::string_view route, bool reused);

 private:
  CoreMetrics& core_;
  HandleCache cache_;
};

}  // namespace tokentap
