// Configuration reloads. SIGHUP, or a change of the config file, a price file or the admin token
// file (settled for 300 ms), reads the configuration again and builds a new runtime from it. A
// good one is published to the runtime slot and handed to `apply`, which brings the rest of the
// process along (admin token, budgets, sessions, workers); requests in flight finish on the old
// runtime. A bad file is logged and the running configuration stays. Restart-only settings that
// changed are named in a warning and keep their running values. Each attempt is counted in the
// tokentap_config_* metrics.
//
// Runs on the main loop: construct it, and call every method, on that loop's thread.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/core/proxy_metrics.h"
#include "proxy/core/runtime.h"

namespace tokentap {

// Where the configuration comes from, for reloads: `load` reads it again (the file named
// `path`, or the built-in defaults when `path` is empty, with the environment applied) and
// throws ConfigError with FILE:LINE on a bad file.
struct ConfigSource {
  std::string path;
  std::function<Config()> load;
};

class ConfigReloader {
 public:
  // Called after a new runtime is published.
  using Apply = std::function<void(const std::shared_ptr<const Runtime>& next)>;

  ConfigReloader(uv_loop_t* loop, ConfigSource source, RuntimeSlot& runtime, CoreMetrics& metrics,
                 Apply apply);
  ConfigReloader(const ConfigReloader&) = delete;
  ConfigReloader& operator=(const ConfigReloader&) = delete;

  // Handles SIGHUP and watches the files the current runtime was built from.
  void start();
  // Reloads now; `trigger` names the cause in the log. Ignored after ignore_triggers().
  void reload(const char* trigger);
  // The process is draining: reload no more. SIGHUP stays handled (and ignored) so that it
  // cannot end the process with its default action.
  void ignore_triggers() { ignoring_ = true; }
  // Closes the signal handler, the debounce timer and the file watches. The reloader must
  // outlive the loop run that follows, which releases them.
  void close();

 private:
  void watch_files();
  void stop_watching();
  void on_file_changed();

  uv_loop_t* loop_;
  ConfigSource source_;
  RuntimeSlot& runtime_;
  CoreMetrics& metrics_;
  Apply apply_;
  uv_signal_t sighup_{};
  uv_timer_t debounce_{};
  // One stat poller per watched file. Pollers follow symlinks, so a Kubernetes ConfigMap update
  // (an atomic swap of the ..data link) is seen.
  std::vector<uv_fs_poll_t*> watches_;  // freed by their close callbacks
  std::vector<std::string> watched_paths_;
  bool ignoring_ = false;
  bool started_ = false;
};

}  // namespace tokentap
