// The process: worker threads with their listeners, the admin listener on the main loop,
// signal handling and graceful drain. run() returns the process exit code.
#pragma once

#include <uv.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/metering/metering_observer.h"
#include "proxy/telemetry/usage_store.h"
#include "proxy/core/worker.h"

namespace tokentap {

class AdminServer;

// Where the configuration comes from, for reloads: `load` reads it again (the file named
// `path`, or the built-in defaults when `path` is empty, with the environment applied) and
// throws ConfigError with FILE:LINE on a bad file.
struct ConfigSource {
  std::string path;
  std::function<Config()> load;
};

class Server {
 public:
  explicit Server(Config config, ConfigSource source = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, starts workers and serves until drained (SIGTERM/SIGINT). Throws std::runtime_error
  // for startup failures (bind, TLS CA files). SIGHUP, or a change of the config file, a
  // price file or the admin token file, reloads the configuration (see reload()).
  int run();

 private:
  // Reads the config, price and admin token files again and, if they are good, publishes the
  // new runtime to every worker and the new token to the admin listener; requests in flight
  // finish on the old one. A bad file keeps the running
  // configuration. Runs on the main loop.
  void reload(const char* trigger);
  void watch_files();
  void stop_watching();
  void on_file_changed();
  void start_session_sweep();
  void register_admin_handlers(AdminServer& admin);
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
  std::unique_ptr<RequestBufferBudget> request_buffers_;
  RecentErrors recent_errors_;
  UsageStore usage_;
  std::unique_ptr<LineWriter> access_log_;
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
  uv_signal_t sighup_{};
  uv_timer_t reload_debounce_{};
  // One stat poller per watched file (the config file and each price file). Pollers follow
  // symlinks, so a Kubernetes ConfigMap update (an atomic swap of the ..data link) is seen.
  std::vector<uv_fs_poll_t*> watches_;  // freed by their close callbacks
  std::vector<std::string> watched_paths_;
  std::atomic<int> workers_running_{0};
  std::atomic<bool> ready_{false};
  bool draining_ = false;
};

}  // namespace tokentap
