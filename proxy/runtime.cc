#include "proxy/runtime.h"

#include <stdexcept>
#include <string>

#include "proxy/metering.h"

namespace tokentap {

std::shared_ptr<const Runtime> make_runtime(Config config, uint64_t generation) {
  auto rt = std::make_shared<Runtime>();
  rt->generation = generation;
  for (const Route& route : config.routes) {
    if (!route.upstream.tls) {
      rt->route_tls.push_back(nullptr);
      continue;
    }
    try {
      rt->route_tls.push_back(
          std::make_shared<TlsClientContext>(route.tls.verify, route.tls.ca_file));
    } catch (const std::exception& e) {
      throw std::runtime_error("route " + route.name + ": " + e.what());
    }
  }
  rt->prices = load_price_table(config.pricing);
  rt->config = std::make_shared<const Config>(std::move(config));
  return rt;
}

namespace {

bool same(const HostPort& a, const HostPort& b) { return a.host == b.host && a.port == b.port; }

}  // namespace

std::vector<std::string> restart_only_changes(const Config& running, const Config& next) {
  std::vector<std::string> changed;
  if (!same(running.listen, next.listen)) changed.push_back("listen");
  if (!same(running.admin_listen, next.admin_listen)) changed.push_back("admin_listen");
  if (running.workers != next.workers) changed.push_back("workers");
  if (running.log.access != next.log.access) changed.push_back("log.access");
  if (running.log.level != next.log.level) changed.push_back("log.level");
  if (running.metrics.max_values_per_label != next.metrics.max_values_per_label) {
    changed.push_back("metrics.max_values_per_label");
  }
  if (running.metrics.otel_semconv != next.metrics.otel_semconv) {
    changed.push_back("metrics.otel_semconv");
  }
  return changed;
}

Config keep_restart_only(const Config& running, Config next) {
  next.listen = running.listen;
  next.admin_listen = running.admin_listen;
  next.workers = running.workers;
  next.log = running.log;
  next.metrics = running.metrics;
  return next;
}

}  // namespace tokentap
