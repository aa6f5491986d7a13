#include "proxy/app/reload.h"

#include <algorithm>
#include <csignal>
#include <exception>
#include <string>
#include <utility>

#include "common/log.h"

namespace tokentap {

namespace {

constexpr uint64_t kSettleMs = 300;
constexpr uint64_t kPollIntervalMs = 1000;

}  // namespace

ConfigReloader::ConfigReloader(uv_loop_t* loop, ConfigSource source, RuntimeSlot& runtime,
                               CoreMetrics& metrics, Apply apply)
    : loop_(loop),
      source_(std::move(source)),
      runtime_(runtime),
      metrics_(metrics),
      apply_(std::move(apply)) {}

void ConfigReloader::start() {
  uv_signal_init(loop_, &sighup_);
  sighup_.data = this;
  uv_signal_start(
      &sighup_,
      [](uv_signal_t* s, int) { static_cast<ConfigReloader*>(s->data)->reload("SIGHUP"); }, SIGHUP);
  uv_timer_init(loop_, &debounce_);
  debounce_.data = this;
  started_ = true;
  watch_files();
}

void ConfigReloader::close() {
  if (!started_) return;
  started_ = false;
  ignoring_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&sighup_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&debounce_), nullptr);
  stop_watching();
}

void ConfigReloader::reload(const char* trigger) {
  if (ignoring_) return;
  const std::shared_ptr<const Runtime> running = runtime_.get();
  std::shared_ptr<const Runtime> next;
  try {
    Config loaded = source_.load ? source_.load() : default_config();
    std::vector<std::string> fixed = restart_only_changes(*running->config, loaded);
    if (!fixed.empty()) {
      std::string names;
      for (const std::string& f : fixed) names += (names.empty() ? "" : ", ") + f;
      diag(LogLevel::warn, "config reload: these settings take effect only after a restart",
           {{"settings", names}});
    }
    next = make_runtime(keep_restart_only(*running->config, std::move(loaded)),
                        running->generation + 1);
  } catch (const std::exception& e) {
    metrics_.config_reloads_error.Increment();
    metrics_.config_last_reload_successful.Set(0);
    diag(LogLevel::error, "config reload failed: keeping the running configuration",
         {{"trigger", trigger}, {"error", e.what()}});
    return;
  }
  runtime_.publish(next);
  if (apply_) apply_(next);
  metrics_.config_reloads_success.Increment();
  metrics_.config_last_reload_successful.Set(1);
  metrics_.config_last_reload_seconds.SetToCurrentTime();
  const std::string generation = std::to_string(next->generation);
  const std::string routes = std::to_string(next->config->routes.size());
  diag(LogLevel::info, "config reloaded",
       {{"trigger", trigger},
        {"config", next->config->source},
        {"generation", generation},
        {"routes", routes},
        {"pricing_version", next->prices->version()}});
  watch_files();  // the list of price files or the token file may have changed
}

void ConfigReloader::watch_files() {
  std::vector<std::string> paths;
  if (!source_.path.empty()) paths.push_back(source_.path);
  const std::shared_ptr<const Config> config = runtime_.get()->config;
  std::vector<std::string> files = config->pricing.files;
  // A rotated admin token (a Kubernetes Secret update) is picked up like a config change.
  if (!config->admin.token_file.empty()) files.push_back(config->admin.token_file);
  for (const std::string& file : files) {
    if (std::find(paths.begin(), paths.end(), file) == paths.end()) paths.push_back(file);
  }
  if (paths == watched_paths_) return;
  stop_watching();
  watched_paths_ = paths;
  for (const std::string& path : paths) {
    auto* poll = new uv_fs_poll_t;
    uv_fs_poll_init(loop_, poll);
    poll->data = this;
    // stat() every second on the libuv thread pool; a change in size, times or inode (the
    // ConfigMap symlink swap) calls back. Errors (a missing file) are left to the reload.
    int rc = uv_fs_poll_start(
        poll,
        [](uv_fs_poll_t* p, int status, const uv_stat_t*, const uv_stat_t*) {
          if (status == 0) static_cast<ConfigReloader*>(p->data)->on_file_changed();
        },
        path.c_str(), kPollIntervalMs);
    if (rc != 0) {
      diag(LogLevel::warn, "cannot watch file for changes: SIGHUP still reloads",
           {{"file", path}, {"error", uv_strerror(rc)}});
    }
    watches_.push_back(poll);
  }
}

void ConfigReloader::stop_watching() {
  for (uv_fs_poll_t* poll : watches_) {
    uv_close(reinterpret_cast<uv_handle_t*>(poll),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_fs_poll_t*>(h); });
  }
  watches_.clear();
  watched_paths_.clear();
}

void ConfigReloader::on_file_changed() {
  // Writers and kubelet change files in several steps: reload once they have settled.
  uv_timer_start(
      &debounce_,
      [](uv_timer_t* t) { static_cast<ConfigReloader*>(t->data)->reload("file change"); },
      kSettleMs, 0);
}

}  // namespace tokentap
