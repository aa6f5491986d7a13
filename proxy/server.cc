#include "proxy/server.h"

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

#include "proxy/access_log.h"
#include "proxy/admin.h"
#include "proxy/process_metrics.h"

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

Server::Server(Config config)
    : config_(std::make_shared<const Config>(std::move(config))),
      registry_(std::make_shared<prometheus::Registry>()),
      metrics_(std::make_unique<CoreMetrics>(*registry_)) {
  init_diag_log(config_->log.level);
  access_log_ = std::make_unique<LineWriter>(config_->log.access);
  shared_.config = config_;
  shared_.metrics = metrics_.get();
  shared_.access_log = access_log_.get();
  for (const Route& route : config_->routes) {
    if (!route.upstream.tls) {
      shared_.route_tls.push_back(nullptr);
      continue;
    }
    try {
      shared_.route_tls.push_back(
          std::make_shared<TlsClientContext>(route.tls.verify, route.tls.ca_file));
    } catch (const std::exception& e) {
      throw std::runtime_error("route " + route.name + ": " + e.what());
    }
  }
  register_build_info(*registry_, TOKENTAP_VERSION);
  metering_ = std::make_unique<Metering>(*registry_, config_, load_price_table(config_->pricing),
                                         config_->workers);
  if (!config_->budgets.empty()) {
    budgets_ = std::make_unique<BudgetTracker>(config_->budgets, *registry_);
    metering_->set_budgets(budgets_.get());
    shared_.budgets = budgets_.get();
  }
  sessions_ = std::make_unique<SessionTracker>(config_->sessions, *registry_, metering_->limiter());
  metering_->set_sessions(sessions_.get());
  shared_.sessions = sessions_.get();
  shared_.recent_errors = &recent_errors_;
  shared_.observer_factory = [metering = metering_.get()](size_t worker_index) {
    return metering->make_observer(worker_index);
  };
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
  // Idle sessions close within a quarter of the idle timeout (at least every second).
  uint64_t sweep_ms = std::clamp<uint64_t>(
      static_cast<uint64_t>(config_->sessions.idle_timeout.count()) / 4, 1000, 10'000);
  uv_timer_init(&loop_, &session_sweep_);
  session_sweep_.data = this;
  uv_timer_start(
      &session_sweep_, [](uv_timer_t* t) { static_cast<Server*>(t->data)->sessions_->sweep(); },
      sweep_ms, sweep_ms);
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
       {{"listen", listen_text}, {"admin_listen", admin_text}, {"workers", workers_text},
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
      static_cast<uint64_t>(config_->timeouts.drain.count()), 0);
}

void Server::on_worker_exit() {
  if (workers_running_.load() > 0) return;
  uv_timer_stop(&drain_timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigterm_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&sigint_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&worker_exit_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&drain_timer_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&session_sweep_), nullptr);
  if (admin_) admin_->close();
}

}  // namespace tokentap
