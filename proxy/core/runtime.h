// The part of the process that a reload replaces: the configuration, the TLS client context
// of each route and the price table, built together and published as one immutable snapshot.
// A request keeps the snapshot it started with until it ends, so a reload never changes the
// route, limits or prices of a request in flight; the next request sees the new snapshot.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "config/config.h"
#include "pricing/price_table.h"
#include "proxy/core/upstream_connection.h"
#include "proxy/net/tls.h"

namespace tokentap {

struct Runtime {
  std::shared_ptr<const Config> config;
  // Per route index: where it connects, its TLS context (null for http) and pool key, built
  // once here rather than per request.
  std::vector<UpstreamTarget> targets;
  std::shared_ptr<const pricing::PriceTable> prices;
  uint64_t generation = 0;  // 1 for the configuration the process started with

  // `route` belongs to `config`.
  const UpstreamTarget& target_for(const Route& route) const {
    return targets.at(static_cast<size_t>(&route - config->routes.data()));
  }
};

// Builds every part, reading the price files and CA bundles the config names (call at start
// or on reload, never per request). Throws std::runtime_error naming what failed: a route's
// TLS setup, or a price file's NAME:LINE.
std::shared_ptr<const Runtime> make_runtime(Config config, uint64_t generation);

// Builds the price table: the built-in one with each of `settings.files` merged over it, in
// order. Reads the files (call at start or reload, never per request). Throws
// std::runtime_error naming the file and line of the first problem.
std::shared_ptr<const pricing::PriceTable> load_price_table(const PricingSettings& settings);

// Where workers find the current snapshot. Publishing is rare (a reload); workers copy the
// pointer on their own loop when told, never per request.
class RuntimeSlot {
 public:
  explicit RuntimeSlot(std::shared_ptr<const Runtime> initial) : current_(std::move(initial)) {}
  std::shared_ptr<const Runtime> get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return current_;
  }
  void publish(std::shared_ptr<const Runtime> next) {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = std::move(next);
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const Runtime> current_;
};

// The config fields a running process cannot change (sockets, threads, log destination, metric
// families): their names where `next` differs from `running`.
std::vector<std::string> restart_only_changes(const Config& running, const Config& next);
// `next` with the restart-only fields of `running`.
Config keep_restart_only(const Config& running, Config next);

}  // namespace tokentap
