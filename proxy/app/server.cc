#include "proxy/app/server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <algorithm>
#include <stdexcept>

#include "common/log.h"
#include "proxy/admin/admin_server.h"
#include "proxy/app/metering_sinks.h"
#include "proxy/core/proxy_metrics.h"
#include "proxy/telemetry/process_metrics.h"

namespace tokentap {

namespace {

std::string format_host_port(const HostPort& hp) {
  if (hp.host.find(':') != std::string::npos) return "[" + hp.host + "]:" + std::to_string(hp.port);
  return hp.host + ":" + std::to_string(hp.port);
}

// Listener sockets are made here, before any loop runs: SO_REUSEPORT lets every worker
// accept on the same address with the kernel spreading connections.
int make_listen_socket(const HostPort& address, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port_text = std::to_string(port);
  const char* host = address.host.empty() ? nullptr : address.host.c_str();
  if (int rc = getaddrinfo(host, port_text.c_str(), &hints, &res); rc != 0) {
    throw std::runtime_error("cannot listen on " + format_host_port(address) + ": " +
                             gai_strerror(rc));
  }
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1;
  if (fd >= 0) {
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  }
  if (fd < 0 || ::bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
    int err = errno;
    if (fd >= 0) ::close(fd);
    freeaddrinfo(res);
    throw std::runtime_error("cannot listen on " + format_host_port(address) + ": " +
                             std::strerror(err));
  }
  freeaddrinfo(res);
  return fd;
}

uint16_t bound_port(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

}  // namespace

Server::Server(Config config, ConfigSource source)
    : source_(std::move(source)),
      registry_(std::make_shared<prometheus::Registry>()),
      metrics_(std::make_unique<CoreMetrics>(*registry_)),
      shared_(make_runtime(std::move(config), 1)) {
  config_ = shared_.runtime.get()->config;
  init_diag_log(config_->log.level);
  access_log_ = std::make_unique<LineWriter>(config_->log.access);
  shared_.metrics = metrics_.get();
  shared_.access_log = access_log_.get();
  register_build_info(*registry_, TOKENTAP_VERSION);
  metering_ = std::make_unique<Metering>(*registry_, config_->metrics, config_->workers);
  // Always present (possibly empty): a reload may add budgets.
  budgets_ = std::make_unique<BudgetTracker>(config_->budgets, *registry_);
  shared_.budgets = budgets_.get();
  sessions_ = std::make_unique<SessionTracker>(config_->sessions, *registry_, metering_->limiter());
  shared_.sessions = sessions_.get();
  shared_.recent_errors = &recent_errors_;
  request_buffers_ = std::make_unique<RequestBufferBudget>(*registry_);
  shared_.request_buffers = request_buffers_.get();
  shared_.observer_factory = with_completion_sinks(
      [metering = metering_.get()](size_t worker_index, const std::shared_ptr<const Runtime>& rt) {
        return metering->make_observer(worker_index, rt);
      },
      [this](size_t) {
        Pipeline pipeline;
        add_metering_sinks(pipeline, *metering_, *budgets_, *sessions_, usage_);
        return pipeline;
      },
      config_->workers);
  metrics_->config_last_reload_successful.Set(1);
  metrics_->config_last_reload_seconds.SetToCurrentTime();
}

Server::~Server() {
  for (int fd : listen_fds_) {
    if (fd >= 0) ::close(fd);
  }
}

void Server::bind_listeners() {
  uint16_t port = config_->listen.port;
  for (uint32_t i = 0; i < config_->workers; ++i) {
    int fd = make_listen_socket(config_->listen, port);
    if (port == 0) port = bound_port(fd);  // every worker shares the port the first one got
    listen_fds_.push_back(fd);
  }
  bound_listen_ = HostPort{config_->listen.host, port};
}

int Server::run() {
  bind_listeners();
  uv_loop_init(&loop_);
  AdminServer admin(&loop_, registry_, [this] { return ready_.load(); });
  admin.listen(config_->admin_listen);
  admin.set_token(config_->admin.token);
  admin.add_collectable(std::make_shared<CallbackCounter>(
      "tokentap_access_log_dropped_total",
      "Access log lines dropped because the writer fell behind or its destination failed",
      [log = access_log_.get()] { return static_cast<double>(log->dropped()); }));
  admin_ = &admin;

  ::signal(SIGPIPE, SIG_IGN);
  uv_signal_init(&loop_, &sigterm_);
  uv_signal_init(&loop_, &sigint_);
  sigterm_.data = sigint_.data = this;
  auto on_sig = [](uv_signal_t* s, int signum) { static_cast<Server*>(s->data)->on_signal(signum); };
  uv_signal_start(&sigterm_, on_sig, SIGTERM);
  uv_signal_start(&sigint_, on_sig, SIGINT);
  uv_async_init(&loop_, &worker_exit_, [](uv_async_t* a) {
    static_cast<Server*>(a->data)->on_worker_exit();
  });
  worker_exit_.data = this;
  uv_timer_init(&loop_, &drain_timer_);
  drain_timer_.data = this;
  uv_timer_init(&loop_, &session_sweep_);
  session_sweep_.data = this;
  start_session_sweep();
  uv_signal_init(&loop_, &sighup_);
  sighup_.data = this;
  uv_signal_start(
      &sighup_, [](uv_signal_t* s, int) { static_cast<Server*>(s->data)->reload("SIGHUP"); },
      SIGHUP);
  uv_timer_init(&loop_, &reload_debounce_);
  reload_debounce_.data = this;
  watch_files();
  register_admin_handlers(admin);

  for (uint32_t i = 0; i < config_->workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(static_cast<int>(i), shared_, listen_fds_[i]));
    listen_fds_[i] = -1;  // owned by the worker's handle now
  }
  workers_running_ = static_cast<int>(workers_.size());
  for (auto& worker : workers_) {
    worker->start([this] {
      workers_running_.fetch_sub(1);
      uv_async_send(&worker_exit_);
    });
  }
  ready_ = true;
  std::string listen_text = format_host_port(bound_listen_);
  std::string admin_text = format_host_port(admin.bound_address());
  std::string workers_text = std::to_string(config_->workers);
  diag(LogLevel::info, "listening",
       {{"listen", listen_text}, {"admin_listen", admin_text},
        {"admin_api", config_->admin.token_file.empty() ? "loopback only" : "loopback or token"},
        {"workers", workers_text},
        {"version", TOKENTAP_VERSION}, {"config", config_->source}});

  uv_run(&loop_, UV_RUN_DEFAULT);
  for (auto& worker : workers_) worker->join();
  workers_.clear();
  admin_ = nullptr;
  admin.close();
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
  access_log_->flush();
  diag(LogLevel::info, "stopped");
  flush_diag_log();
  return 0;
}

void Server::register_admin_handlers(AdminServer& admin) {
  admin.add_handler("/v1/usage", [this](const AdminRequest& request) {
    UsageStore::Query q;
    auto param = [&](const char* name) -> const std::string* {
      auto it = request.params.find(name);
      return it == request.params.end() ? nullptr : &it->second;
    };
    if (const std::string* agent = param("agent")) q.agent = *agent;
    if (const std::string* model = param("model")) q.model = *model;
    if (const std::string* hours = param("hours")) {
      char* end = nullptr;
      const long h = std::strtol(hours->c_str(), &end, 10);
      if (hours->empty() || *end != '\0' || h < 1 || h > 24) {
        nlohmann::ordered_json error = {
            {"error", {{"type", "invalid_request"},
                       {"message", "hours must be a whole number from 1 to 24"}}}};
        return AdminResponse{400, "application/json", error.dump()};
      }
      q.hours = static_cast<int>(h);
    }
    if (const std::string* minutes = param("minutes")) q.per_minute = *minutes == "true" || *minutes == "1";
    nlohmann::ordered_json body = usage_.query(q);
    body["pricing_version"] = shared_.runtime.get()->prices->version();
    return AdminResponse{200, "application/json",
                         body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
  });
  admin.add_handler("/v1/errors", [this](const AdminRequest& request) {
    size_t limit = 50;
    if (auto it = request.params.find("limit"); it != request.params.end()) {
      limit = std::clamp<size_t>(std::strtoul(it->second.c_str(), nullptr, 10), 1,
                                 RecentErrors::kCapacity);
    }
    auto agent = request.params.find("agent");
    nlohmann::ordered_json body = {
        {"errors", recent_errors_.list(limit, agent == request.params.end() ? "" : agent->second)}};
    return AdminResponse{200, "application/json",
                         body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
  });
  admin.add_handler("/v1/sessions", [this](const AdminRequest& request) {
    auto it = request.params.find("agent");
    std::string agent = it == request.params.end() ? "" : it->second;
    nlohmann::ordered_json sessions = nlohmann::ordered_json::array();
    for (const SessionTracker::Snapshot& s : sessions_->snapshot(agent)) {
      sessions.push_back({{"session", s.id}, {"agent", s.agent}, {"requests", s.requests},
                          {"tokens", s.tokens},
                          {"cost_usd", static_cast<double>(s.nano_usd) / 1e9},
                          {"age_seconds", s.age_seconds}, {"runaway", s.runaway}});
    }
    nlohmann::ordered_json body = {{"sessions", std::move(sessions)}};
    return AdminResponse{200, "application/json",
                         body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
  });
}

void Server::on_signal(int signum) {
  if (draining_) {
    diag(LogLevel::warn, "second signal: exiting now", {{"signal", strsignal(signum)}});
    access_log_->flush();
    flush_diag_log();
    std::_Exit(1);
  }
  diag(LogLevel::info, "draining", {{"signal", strsignal(signum)}});
  start_drain();
}

void Server::start_drain() {
  draining_ = true;
  ready_ = false;
  for (auto& worker : workers_) worker->begin_drain();
  uv_timer_start(
      &drain_timer_,
      [](uv_timer_t* t) {
        auto* server = static_cast<Server*>(t->data);
        diag(LogLevel::warn, "drain deadline reached: closing remaining connections");
        for (auto& worker : server->workers_) worker->stop_now();
      },
      static_cast<uint64_t>(shared_.runtime.get()->config->timeouts.drain.count()), 0);
}

void Server::on_worker_exit() {
  if (workers_running_.load() > 0) return;
  uv_timer_stop(&drain_timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&worker_exit_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&session_sweep_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sighup_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&reload_debounce_), nullptr);
  stop_watching();
  if (admin_) admin_->close();
}

void Server::start_session_sweep() {
  // Idle sessions close within a quarter of the idle timeout (at least every second).
  const auto idle = shared_.runtime.get()->config->sessions.idle_timeout;
  const uint64_t sweep_ms =
      std::clamp<uint64_t>(static_cast<uint64_t>(idle.count()) / 4, 1000, 10'000);
  uv_timer_start(
      &session_sweep_, [](uv_timer_t* t) { static_cast<Server*>(t->data)->sessions_->sweep(); },
      sweep_ms, sweep_ms);
}

void Server::reload(const char* trigger) {
  if (draining_) return;
  const std::shared_ptr<const Runtime> running = shared_.runtime.get();
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
    metrics_->config_reloads_error.Increment();
    metrics_->config_last_reload_successful.Set(0);
    diag(LogLevel::error, "config reload failed: keeping the running configuration",
         {{"trigger", trigger}, {"error", e.what()}});
    return;
  }
  shared_.runtime.publish(next);
  if (admin_) admin_->set_token(next->config->admin.token);
  budgets_->reconfigure(next->config->budgets);
  sessions_->reconfigure(next->config->sessions);
  start_session_sweep();
  for (auto& worker : workers_) worker->reload();
  metrics_->config_reloads_success.Increment();
  metrics_->config_last_reload_successful.Set(1);
  metrics_->config_last_reload_seconds.SetToCurrentTime();
  const std::string generation = std::to_string(next->generation);
  const std::string routes = std::to_string(next->config->routes.size());
  diag(LogLevel::info, "config reloaded",
       {{"trigger", trigger}, {"config", next->config->source}, {"generation", generation},
        {"routes", routes}, {"pricing_version", next->prices->version()}});
  watch_files();  // the list of price files or the token file may have changed
}

void Server::watch_files() {
  std::vector<std::string> paths;
  if (!source_.path.empty()) paths.push_back(source_.path);
  const std::shared_ptr<const Config> config = shared_.runtime.get()->config;
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
    uv_fs_poll_init(&loop_, poll);
    poll->data = this;
    // stat() every second on the libuv thread pool; a change in size, times or inode (the
    // ConfigMap symlink swap) calls back. Errors (a missing file) are left to the reload.
    int rc = uv_fs_poll_start(
        poll,
        [](uv_fs_poll_t* p, int status, const uv_stat_t*, const uv_stat_t*) {
          if (status == 0) static_cast<Server*>(p->data)->on_file_changed();
        },
        path.c_str(), 1000);
    if (rc != 0) {
      diag(LogLevel::warn, "cannot watch file for changes: SIGHUP still reloads",
           {{"file", path}, {"error", uv_strerror(rc)}});
    }
    watches_.push_back(poll);
  }
}

void Server::stop_watching() {
  for (uv_fs_poll_t* poll : watches_) {
    uv_close(reinterpret_cast<uv_handle_t*>(poll),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_fs_poll_t*>(h); });
  }
  watches_.clear();
  watched_paths_.clear();
}

void Server::on_file_changed() {
  // Writers and kubelet change files in several steps: reload once they have settled.
  uv_timer_start(
      &reload_debounce_,
      [](uv_timer_t* t) { static_cast<Server*>(t->data)->reload("file change"); }, 300, 0);
}

}  // namespace tokentap
