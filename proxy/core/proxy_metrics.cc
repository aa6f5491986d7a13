#include "proxy/core/proxy_metrics.h"

#include <charconv>

namespace tokentap {

using prometheus::BuildCounter;
using prometheus::BuildGauge;

CoreMetrics::CoreMetrics(prometheus::Registry& registry)
    : requests(BuildCounter()
                   .Name("tokentap_requests_total")
                   .Help("Requests proxied, by route and HTTP status sent to the client")
                   .Register(registry)),
      inflight(BuildGauge()
                   .Name("tokentap_inflight_requests")
                   .Help("Requests currently being proxied")
                   .Register(registry)
                   .Add({})),
      open_connections(BuildGauge()
                           .Name("tokentap_open_connections")
                           .Help("Open TCP connections, by side")
                           .Register(registry)),
      downstream_connections(open_connections.Add({{"side", "downstream"}})),
      upstream_connections(open_connections.Add({{"side", "upstream"}})),
      connect_errors(BuildCounter()
                         .Name("tokentap_upstream_connect_errors_total")
                         .Help("Failed upstream connection attempts, by route and kind "
                               "(dns, connect, tls)")
                         .Register(registry)),
      upstream_connections_total(BuildCounter()
                                     .Name("tokentap_upstream_connections_total")
                                     .Help("Upstream connections used for a request, by whether "
                                           "they came from the keep-alive pool")
                                     .Register(registry)),
      rejected_connections(BuildCounter()
                               .Name("tokentap_rejected_connections_total")
                               .Help("Downstream connections refused with 503 over "
                                     "limits.max_connections")
                               .Register(registry)
                               .Add({})),
      config_reloads(BuildCounter()
                         .Name("tokentap_config_reloads_total")
                         .Help("Reloads of the config and price files (SIGHUP or a file change), "
                               "by result; an error keeps the running configuration")
                         .Register(registry)),
      config_reloads_success(config_reloads.Add({{"result", "success"}})),
      config_reloads_error(config_reloads.Add({{"result", "error"}})),
      config_last_reload_successful(BuildGauge()
                                        .Name("tokentap_config_last_reload_successful")
                                        .Help("1 if the last config load or reload succeeded")
                                        .Register(registry)
                                        .Add({})),
      config_last_reload_seconds(BuildGauge()
                                     .Name("tokentap_config_last_reload_success_timestamp_seconds")
                                     .Help("Unix time of the last successful config load or reload")
                                     .Register(registry)
                                     .Add({})) {}

CallbackCounter::CallbackCounter(std::string name, std::string help, std::function<double()> read)
    : name_(std::move(name)), help_(std::move(help)), read_(std::move(read)) {}

std::vector<prometheus::MetricFamily> CallbackCounter::Collect() const {
  prometheus::MetricFamily family;
  family.name = name_;
  family.help = help_;
  family.type = prometheus::MetricType::Counter;
  family.metric.emplace_back();
  family.metric.back().counter.value = read_();
  return {std::move(family)};
}

prometheus::Counter& WorkerMetrics::request(std::string_view route, int code) {
  char buf[16];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, code);
  return cache_.counter(core_.requests, {{"route", route}, {"code", std::string_view(buf, end)}});
}

prometheus::Counter& WorkerMetrics::connect_error(std::string_view route, std::string_view kind) {
  return cache_.counter(core_.connect_errors, {{"route", route}, {"kind", kind}});
}

prometheus::Counter& WorkerMetrics::upstream_connection(std::string_view route, bool reused) {
  return cache_.counter(core_.upstream_connections_total,
                        {{"route", route}, {"reused", reused ? "true" : "false"}});
}

}  // namespace tokentap
