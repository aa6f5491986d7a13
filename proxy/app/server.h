// The process: worker threads with their listeners, the admin listener on the main loop,
// signal handling and graceful drain. run() returns the process exit code.
#pragma once

#include <uv.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/log.h"
#include "config/config.h"
#include "proxy/app/reload.h"
#include "proxy/core/exchange.h"
#include "proxy/core/worker.h"
#include "proxy/metering/metering_observer.h"
#include "proxy/policy/budgets.h"
#include "proxy/policy/circuit_breaker.h"
#include "proxy/policy/sessions.h"
#include "proxy/telemetry/recent_errors.h"
#include "proxy/telemetry/usage_store.h"
#include "proxy/tracing/tracing_stage.h"

namespace tokentap {

class AdminServer;

class Server {
 public:
  explicit Server(Config config, ConfigSource source = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, starts workers and serves until drained (SIGTERM/SIGINT). Throws std::runtime_error
  // for startup failures (bind, TLS CA files). SIGHUP, or a change of the config file, a
  // price file or the admin token file, reloads the configuration (see ConfigReloader).
  int run();

 private:
  // A reload published `next`: brings the admin token, budgets, sessions, circuit breakers and
  // workers along.
  void apply_reload(const Runtime& next);
  // The admission policies and completion sinks of worker `worker_index`; runs on that
  // worker's thread before it accepts (SharedState::pipeline_factory).
  Pipeline build_pipeline(size_t worker_index);
  void start_session_sweep();
  // Tracing is enabled (at start or by a reload) and has no exporter yet, or one for another
  // endpoint, protocol, CA file, headers or resource: makes a new one and hands it to the hub,
  // which retires the old one without blocking this loop. Puts the counters on /metrics the
  // first time. Main thread. Throws std::runtime_error for a CA file that does not load: a
  // start error; a reload logs it and keeps the running exporter.
  void update_tracing_exporter(const TracingSettings& settings);
  void add_tracing_metrics(AdminServer& admin);
  void bind_listeners();
  void on_signal(int signum);
  void on_worker_exit();
  void start_drain();

  std::shared_ptr<const Config> config_;  // as started: restart-only fields never change
  ConfigSource source_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<CoreMetrics> metrics_;
  std::unique_ptr<BudgetTracker> budgets_;
  std::unique_ptr<Metering> metering_;
  std::unique_ptr<SessionTracker> sessions_;
  std::unique_ptr<CircuitBreakers> breakers_;
  std::unique_ptr<RequestBufferBudget> request_buffers_;
  RecentErrors recent_errors_;
  UsageStore usage_;
  std::unique_ptr<LineWriter> access_log_;
  std::shared_ptr<TracingHub> tracing_ = std::make_shared<TracingHub>();
  bool tracing_metrics_added_ = false;
  SharedState shared_;
  std::vector<int> listen_fds_;
  HostPort bound_listen_;
  std::vector<std::unique_ptr<Worker>> workers_;
  AdminServer* admin_ = nullptr;  // lives on run()'s stack while the loop runs

  uv_loop_t loop_{};
  uv_signal_t sigterm_{};
  uv_signal_t sigint_{};
  uv_async_t worker_exit_{};
  uv_timer_t drain_timer_{};
  uv_timer_t session_sweep_{};
  std::unique_ptr<ConfigReloader> reloader_;  // made by run(), on the loop
  std::atomic<int> workers_running_{0};
  std::atomic<bool> ready_{false};
  bool draining_ = false;
};

}  // namespace tokentap
