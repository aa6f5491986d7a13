// A worker: one thread, one libuv loop, its own listener socket (SO_REUSEPORT), upstream pool
// and metric handles. Everything a worker owns is touched only from its loop thread; the
// Server talks to it through thread-safe begin_drain() / stop_now().
#pragma once

#include <uv.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "config/config.h"
#include "proxy/core/exchange.h"
#include "proxy/core/proxy_metrics.h"
#include "proxy/core/request_buffers.h"
#include "proxy/core/request_context.h"
#include "proxy/core/runtime.h"
#include "proxy/core/upstream_connection.h"
#include "proxy/net/tls.h"

namespace tokentap {

class DownstreamConnection;

// Makes the observer for one request; called on the worker's loop thread with its index and
// the runtime snapshot the request uses.
using ObserverFactory = std::function<std::unique_ptr<RequestObserver>(
    size_t worker_index, const std::shared_ptr<const Runtime>& runtime)>;

// State and services shared by all workers; outlives them. What a request passes through
// besides forwarding (metering, admission, end-of-request sinks) comes from the two factories,
// which proxy/app fills; core knows only their interfaces.
struct SharedState {
  explicit SharedState(std::shared_ptr<const Runtime> initial) : runtime(std::move(initial)) {}
  RuntimeSlot runtime;  // the current configuration, prices and TLS contexts
  CoreMetrics* metrics = nullptr;
  ObserverFactory observer_factory;                // empty: requests are not observed
  PipelineFactory pipeline_factory;                // empty: no admission policies, no sinks
  RequestBufferBudget* request_buffers = nullptr;  // null: buffered bodies are not limited
  std::atomic<uint32_t> open_downstream{0};
};

class Worker {
 public:
  Worker(int index, SharedState& shared, int listen_fd);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the thread; `on_exit` runs on the worker thread after its loop ended.
  void start(std::function<void()> on_exit);
  void join();
  // Thread-safe: stop accepting, let in-flight requests finish, then exit the loop.
  void begin_drain();
  // Thread-safe: close every connection now and exit the loop.
  void stop_now();
  // Thread-safe: take the runtime snapshot now in SharedState for the requests that start next.
  void reload();
  // Builds this worker's pipeline with shared().pipeline_factory on the calling thread, which
  // must be the one that runs the loop. start() does it on the worker thread before the loop
  // accepts; a loop driven by its owner instead (tests) calls it once before any connection.
  void build_pipeline();

  // Loop-thread accessors.
  uv_loop_t* loop() { return &loop_; }
  size_t index() const { return static_cast<size_t>(index_); }
  // The snapshot new requests use; replaced only on this loop, between callbacks.
  const std::shared_ptr<const Runtime>& runtime() const { return runtime_; }
  const Config& config() const { return *runtime_->config; }
  SharedState& shared() { return shared_; }
  Pipeline& pipeline() { return pipeline_; }
  WorkerMetrics& metrics() { return metrics_; }
  UpstreamPool& pool() { return pool_; }
  std::mt19937_64& rng() { return rng_; }
  bool draining() const { return draining_; }
  // A read buffer reused by every connection of this worker (reads are processed synchronously).
  char* read_buffer() { return read_buffer_.get(); }
  static constexpr size_t kReadBufferSize = size_t{64} * 1024;

  void connection_closed(DownstreamConnection* conn);
  // Upstream connections report themselves so a forced stop can close them.
  void track_upstream(UpstreamConnection* conn, bool open);

 private:
  void run();
  void on_connection(int status);
  void on_command();
  void maybe_finish();

  int index_;
  SharedState& shared_;
  int listen_fd_;
  uv_loop_t loop_{};
  uv_tcp_t listener_{};
  uv_async_t command_{};
  std::atomic<int> pending_command_{0};  // 1 = drain, 2 = stop
  std::atomic<bool> pending_reload_{false};
  std::shared_ptr<const Runtime> runtime_;
  std::mutex command_mutex_;  // guards command_ against uv_async_send after its close
  bool command_closed_ = false;
  std::thread thread_;
  std::function<void()> on_exit_;
  WorkerMetrics metrics_;
  Pipeline pipeline_;
  UpstreamPool pool_;
  std::mt19937_64 rng_;
  std::unique_ptr<char[]> read_buffer_;
  std::unordered_set<DownstreamConnection*> connections_;
  std::unordered_map<UpstreamConnection*, bool> upstreams_;
  bool draining_ = false;
  bool listener_open_ = false;
  bool finished_ = false;
};

}  // namespace tokentap
