#include "proxy/core/runtime.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace tokentap {

std::shared_ptr<const Runtime> make_runtime(Config config, uint64_t generation) {
  auto rt = std::make_shared<Runtime>();
  rt->generation = generation;
  for (const Route& route : config.routes) {
    UpstreamTarget t;
    t.host = route.upstream.host;
    t.port = route.upstream.port;
    t.pool_key = (route.upstream.tls ? "https://" : "http://") + route.upstream.host + ":" +
                 std::to_string(route.upstream.port);
    if (route.upstream.tls) {
      try {
        t.tls = std::make_shared<TlsClientContext>(route.tls.verify, route.tls.ca_file);
      } catch (const std::exception& e) {
        throw std::runtime_error("route " + route.name + ": " + e.what());
      }
      t.sni = route.tls.sni.empty() ? route.upstream.host : route.tls.sni;
      t.pool_key += "|sni=" + t.sni + "|verify=" + (route.tls.verify ? "1" : "0") +
                    "|ca=" + route.tls.ca_file;
    }
    rt->targets.push_back(std::move(t));
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

std::shared_ptr<const pricing::PriceTable> load_price_table(const PricingSettings& settings) {
  auto table = std::make_shared<pricing::PriceTable>(pricing::PriceTable::builtin());
  for (const std::string& path : settings.files) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot read price file: " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    try {
      table = std::make_shared<pricing::PriceTable>(table->merged_with(path, text.str()));
    } catch (const pricing::PricingError& e) {
      throw std::runtime_error(e.what());
    }
  }
  return table;
}

}  // namespace tokentap
