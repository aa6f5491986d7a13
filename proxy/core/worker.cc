#include "proxy/core/worker.h"

#include "proxy/core/downstream_connection.h"

namespace tokentap {

Worker::Worker(int index, SharedState& shared, int listen_fd)
    : index_(index),
      shared_(shared),
      listen_fd_(listen_fd),
      runtime_(shared.runtime.get()),
      metrics_(*shared.metrics),
      pool_(*this),
      rng_(std::random_device{}()),
      read_buffer_(new char[kReadBufferSize]) {
  uv_loop_init(&loop_);
  uv_tcp_init(&loop_, &listener_);
  listener_.data = this;
  uv_async_init(&loop_, &command_,
                [](uv_async_t* a) { static_cast<Worker*>(a->data)->on_command(); });
  command_.data = this;
}

Worker::~Worker() {
  join();
  uv_loop_close(&loop_);
}

void Worker::start(std::function<void()> on_exit) {
  on_exit_ = std::move(on_exit);
  if (int rc = uv_tcp_open(&listener_, listen_fd_); rc != 0) {
    throw std::runtime_error(std::string("cannot adopt listener socket: ") + uv_strerror(rc));
  }
  int rc = uv_listen(
      reinterpret_cast<uv_stream_t*>(&listener_), 1024,
      [](uv_stream_t* s, int status) { static_cast<Worker*>(s->data)->on_connection(status); });
  if (rc != 0) throw std::runtime_error(std::string("cannot listen: ") + uv_strerror(rc));
  listener_open_ = true;
  thread_ = std::thread([this] { run(); });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::build_pipeline() {
  if (shared_.pipeline_factory) pipeline_ = shared_.pipeline_factory(index());
}

void Worker::run() {
  build_pipeline();
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (on_exit_) on_exit_();
}

void Worker::begin_drain() {
  int expected = 0;
  pending_command_.compare_exchange_strong(expected, 1);
  std::lock_guard<std::mutex> lock(command_mutex_);
  if (!command_closed_) uv_async_send(&command_);
}

void Worker::stop_now() {
  pending_command_.store(2);
  std::lock_guard<std::mutex> lock(command_mutex_);
  if (!command_closed_) uv_async_send(&command_);
}

void Worker::reload() {
  pending_reload_.store(true);
  std::lock_guard<std::mutex> lock(command_mutex_);
  if (!command_closed_) uv_async_send(&command_);
}

void Worker::on_command() {
  if (pending_reload_.exchange(false)) runtime_ = shared_.runtime.get();
  int command = pending_command_.load();
  if (command == 0 || finished_) return;
  if (!draining_) {
    draining_ = true;
    if (listener_open_) {
      listener_open_ = false;
      uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    }
    pool_.close_all();
    // Copy: drain() may close (and unlink) the connection.
    std::vector<DownstreamConnection*> conns(connections_.begin(), connections_.end());
    for (DownstreamConnection* c : conns) c->drain();
  }
  if (command == 2) {
    std::vector<DownstreamConnection*> conns(connections_.begin(), connections_.end());
    for (DownstreamConnection* c : conns) c->force_close();
    std::vector<UpstreamConnection*> ups;
    for (auto& [conn, open] : upstreams_) ups.push_back(conn);
    for (UpstreamConnection* u : ups) u->close();
  }
  maybe_finish();
}

void Worker::maybe_finish() {
  if (!draining_ || finished_ || !connections_.empty()) return;
  finished_ = true;
  pool_.close_all();
  std::lock_guard<std::mutex> lock(command_mutex_);
  command_closed_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&command_), nullptr);
}

void Worker::on_connection(int status) {
  if (status != 0 || draining_) return;
  auto* conn = new DownstreamConnection(*this);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&listener_), conn->stream()) != 0) {
    conn->force_close();
    return;
  }
  connections_.insert(conn);
  uint32_t open = shared_.open_downstream.fetch_add(1) + 1;
  if (open > config().limits.max_connections) {
    conn->reject_overloaded();
    return;
  }
  conn->start();
}

void Worker::connection_closed(DownstreamConnection* conn) {
  if (connections_.erase(conn) > 0) shared_.open_downstream.fetch_sub(1);
  maybe_finish();
}

void Worker::track_upstream(UpstreamConnection* conn, bool open) {
  if (open) {
    upstreams_[conn] = true;
  } else {
    upstreams_.erase(conn);
  }
}

}  // namespace tokentap
