#include "proxy/app/server.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>

#include "common/log.h"
#include "proxy/admin/admin_server.h"
#include "proxy/admin/endpoints.h"
#include "proxy/app/metering_sinks.h"
#include "proxy/core/proxy_metrics.h"
#include "proxy/net/address.h"
#include "proxy/net/listen_socket.h"
#include "proxy/policy/admission.h"
#include "proxy/policy/circuit_breaker.h"
#include "proxy/telemetry/access_log.h"
#include "proxy/telemetry/process_metrics.h"
#include "proxy/tracing/tracing_metrics.h"

namespace tokentap {

Server::Server(Config config, ConfigSource source)
    : source_(std::move(source)),
      registry_(std::make_shared<prometheus::Registry>()),
      metrics_(std::make_unique<CoreMetrics>(*registry_)),
      shared_(make_runtime(std::move(config), 1)) {
  config_ = shared_.runtime.get()->config;
  init_diag_log(config_->log.level);
  access_log_ = std::make_unique<LineWriter>(config_->log.access);
  shared_.metrics = metrics_.get();
  register_build_info(*registry_, TOKENTAP_VERSION);
  metering_ = std::make_unique<Metering>(*registry_, config_->metrics, config_->workers);
  // Always present (possibly empty): a reload may add budgets.
  budgets_ = std::make_unique<BudgetTracker>(config_->budgets, *registry_);
  sessions_ = std::make_unique<SessionTracker>(config_->sessions, *registry_, metering_->limiter());
  breakers_ = std::make_unique<CircuitBreakers>(*registry_);
  breakers_->configure(config_->routes);
  request_buffers_ = std::make_unique<RequestBufferBudget>(*registry_);
  shared_.request_buffers = request_buffers_.get();
  shared_.observer_factory = [metering = metering_.get()](
                                 size_t worker_index, const std::shared_ptr<const Runtime>& rt) {
    return metering->make_observer(worker_index, rt);
  };
  shared_.pipeline_factory = [this](size_t worker_index) { return build_pipeline(worker_index); };
  tracing_->configure(config_->tracing);
  update_tracing_exporter(config_->tracing);
  metrics_->config_last_reload_successful.Set(1);
  metrics_->config_last_reload_seconds.SetToCurrentTime();
}

Pipeline Server::build_pipeline(size_t /*worker_index*/) {
  Pipeline p;
  // Always present: a reload may enable tracing. Disabled, both tracing stages return at once.
  auto tracing = std::make_shared<WorkerTracing>(*tracing_);
  p.header_stages.push_back(std::make_unique<TraceHeaderStage>(tracing));
  // Admission, asked in this order before any upstream contact; the first refusal answers.
  // Both trackers always exist (possibly empty): a reload may add budgets or session limits.
  p.admission.push_back(std::make_unique<BudgetAdmission>(*budgets_));
  p.admission.push_back(std::make_unique<SessionAdmission>(*sessions_));
  // Last: a request the breaker lets through as a half-open probe must reach the upstream.
  p.admission.push_back(std::make_unique<CircuitBreakerAdmission>(*breakers_));
  // Completion sinks, told in this order after the observer's on_complete and the core request
  // counters. Whatever updates a metric or a store comes before the sinks that report the
  // request (recent errors, then the access log, last): a reader who saw the log line finds
  // every counter already moved. Sinks that record (LLM metrics, budgets, sessions, the usage
  // store, the circuit breakers) are registered here, above the two that report.
  add_metering_sinks(p, *metering_, *budgets_, *sessions_, usage_);
  p.sinks.push_back(std::make_unique<CircuitBreakerSink>(*breakers_));
  p.sinks.push_back(std::make_unique<TraceCompletionSink>(tracing, tracing_));
  p.sinks.push_back(std::make_unique<RecentErrorsSink>(recent_errors_));
  p.sinks.push_back(std::make_unique<AccessLogSink>(*access_log_));
  return p;
}

void Server::update_tracing_exporter(const TracingSettings& settings) {
  if (!settings.enabled) return;  // the idle exporter stays: nothing reaches it
  OtlpExporterOptions options{
      .endpoint = settings.endpoint,
      .protocol = parse_otlp_protocol(settings.protocol).value_or(OtlpProtocol::protobuf),
      .ca_file = settings.ca_file,
      .service_name = settings.service_name,
      .resource_attributes = settings.resource_attributes,
      .headers = settings.export_headers,
      .max_queue_spans = settings.max_queue};
  std::shared_ptr<OtlpExporter> current = tracing_->exporter();
  if (current && current->options() == options) return;
  // Throws only for a CA file that does not load (the endpoint and protocol were validated with
  // the config); the message names the file and OpenSSL's reason, never a header.
  auto next = std::make_shared<OtlpExporter>(std::move(options));
  tracing_->attach(std::move(next));  // the previous one finishes off this loop
  if (admin_ && !tracing_metrics_added_) add_tracing_metrics(*admin_);
}

void Server::add_tracing_metrics(AdminServer& admin) {
  tracing_metrics_added_ = true;
  admin.add_collectable(std::make_shared<TracingCollector>(
      [hub = tracing_] { return hub->export_stats(); }, tracing_->pii_counts()));
}

Server::~Server() {
  for (int fd : listen_fds_) {
    if (fd >= 0) ::close(fd);
  }
}

void Server::bind_listeners() {
  uint16_t port = config_->listen.port;
  for (uint32_t i = 0; i < config_->workers; ++i) {
    int fd = bind_listen_socket({config_->listen.host, port}, PortSharing::shared);
    if (port == 0) port = bound_address(fd).port;  // every worker shares the first one's port
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
  if (tracing_->exporter()) add_tracing_metrics(admin);

  ::signal(SIGPIPE, SIG_IGN);
  uv_signal_init(&loop_, &sigterm_);
  uv_signal_init(&loop_, &sigint_);
  sigterm_.data = sigint_.data = this;
  auto on_sig = [](uv_signal_t* s, int signum) {
    static_cast<Server*>(s->data)->on_signal(signum);
  };
  uv_signal_start(&sigterm_, on_sig, SIGTERM);
  uv_signal_start(&sigint_, on_sig, SIGINT);
  uv_async_init(&loop_, &worker_exit_,
                [](uv_async_t* a) { static_cast<Server*>(a->data)->on_worker_exit(); });
  worker_exit_.data = this;
  uv_timer_init(&loop_, &drain_timer_);
  drain_timer_.data = this;
  uv_timer_init(&loop_, &session_sweep_);
  session_sweep_.data = this;
  start_session_sweep();
  reloader_ = std::make_unique<ConfigReloader>(
      &loop_, std::move(source_), shared_.runtime, *metrics_,
      [this](const std::shared_ptr<const Runtime>& next) { apply_reload(*next); });
  reloader_->start();
  register_usage_endpoint(admin, usage_, shared_.runtime);
  register_errors_endpoint(admin, recent_errors_);
  register_sessions_endpoint(admin, *sessions_);

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
       {{"listen", listen_text},
        {"admin_listen", admin_text},
        {"admin_api", config_->admin.token_file.empty() ? "loopback only" : "loopback or token"},
        {"workers", workers_text},
        {"version", TOKENTAP_VERSION},
        {"config", config_->source}});

  uv_run(&loop_, UV_RUN_DEFAULT);
  for (auto& worker : workers_) worker->join();
  workers_.clear();
  admin_ = nullptr;
  admin.close();
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
  // The spans of the drained requests go out before exit (bounded by the export timeout).
  tracing_->stop_exports();
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
  reloader_->ignore_triggers();
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
  reloader_->close();
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

void Server::apply_reload(const Runtime& next) {
  if (admin_) admin_->set_token(next.config->admin.token);
  budgets_->reconfigure(next.config->budgets);
  sessions_->reconfigure(next.config->sessions);
  tracing_->configure(next.config->tracing);
  try {
    update_tracing_exporter(next.config->tracing);
  } catch (const std::exception& e) {
    diag(LogLevel::error, "tracing exporter not started", {{"error", e.what()}});
  }
  breakers_->configure(next.config->routes);
  start_session_sweep();
  for (auto& worker : workers_) worker->reload();
}

}  // namespace tokentap
