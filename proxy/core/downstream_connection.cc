#include "proxy/core/downstream_connection.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "common/log.h"
#include "proxy/core/downstream_active.h"
#include "proxy/core/exchange.h"
#include "proxy/core/worker.h"
#include "proxy/http/forwarding.h"
#include "proxy/http/http1.h"
#include "proxy/http/identity.h"
#include "proxy/http/secrets.h"
#include "proxy/net/stream_write.h"

namespace tokentap {

using downstream_detail::hex;
using downstream_detail::self;

namespace {

DownstreamConnection* from_parser(llhttp_t* p) {
  return static_cast<DownstreamConnection*>(p->data);
}

// Bytes of a pipelined next request held while the current one is served.
constexpr size_t kMaxPipelinedBytes = size_t{64} * 1024;

std::string format_address(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = {0};
  int port = 0;
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    uv_ip4_name(in, host, sizeof host);
    port = ntohs(in->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    uv_ip6_name(in6, host, sizeof host);
    port = ntohs(in6->sin6_port);
    return "[" + std::string(host) + "]:" + std::to_string(port);
  }
  return "";
}

}  // namespace

const llhttp_settings_t DownstreamConnection::kParserSettings = {
    .on_message_begin = [](llhttp_t* p) { return from_parser(p)->on_message_begin(); },
    .on_url = [](llhttp_t* p, const char* at, size_t n) { return from_parser(p)->on_url(at, n); },
    .on_status = nullptr,
    .on_method = nullptr,
    .on_version = nullptr,
    .on_header_field = [](llhttp_t* p, const char* at,
                          size_t n) { return from_parser(p)->on_header_field(at, n); },
    .on_header_value = [](llhttp_t* p, const char* at,
                          size_t n) { return from_parser(p)->on_header_value(at, n); },
    .on_chunk_extension_name = [](llhttp_t* p, const char*,
                                  size_t n) { return from_parser(p)->on_chunk_extension(n); },
    .on_chunk_extension_value = [](llhttp_t* p, const char*,
                                   size_t n) { return from_parser(p)->on_chunk_extension(n); },
    .on_headers_complete = [](llhttp_t* p) { return from_parser(p)->on_headers_complete(); },
    .on_body = [](llhttp_t* p, const char* at, size_t n) { return from_parser(p)->on_body(at, n); },
    .on_message_complete = [](llhttp_t* p) { return from_parser(p)->on_message_complete(); },
    .on_url_complete = nullptr,
    .on_status_complete = nullptr,
    .on_method_complete = nullptr,
    .on_version_complete = nullptr,
    .on_header_field_complete =
        [](llhttp_t* p) { return from_parser(p)->on_header_field_complete(); },
    .on_header_value_complete = nullptr,
    .on_chunk_extension_name_complete = nullptr,
    .on_chunk_extension_value_complete = nullptr,
    .on_chunk_header = nullptr,
    .on_chunk_complete = nullptr,
    .on_reset = nullptr,
};

DownstreamConnection::DownstreamConnection(Worker& worker) : worker_(worker) {
  uv_tcp_init(worker_.loop(), &tcp_);
  uv_timer_init(worker_.loop(), &timer_);
  uv_idle_init(worker_.loop(), &next_request_);
  tcp_.data = this;
  timer_.data = this;
  next_request_.data = this;
  open_handles_ = 3;
  llhttp_init(&parser_, HTTP_REQUEST, &kParserSettings);
  parser_.data = this;
  worker_.metrics().core().downstream_connections.Increment();
}

void DownstreamConnection::start() {
  sockaddr_storage addr{};
  int len = sizeof addr;
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    client_address_ = format_address(addr);
  }
  uv_tcp_nodelay(&tcp_, 1);
  resume_reading();
  arm_timer(static_cast<uint64_t>(worker_.config().timeouts.downstream_header.count()),
            [](uv_timer_t* t) { self(t)->on_head_timeout(); });
}

void DownstreamConnection::reject_overloaded() {
  worker_.metrics().core().rejected_connections.Increment();
  begin_request();
  active_->ctx.method = "";
  respond_error(ErrorType::overloaded, "too many connections to tokentap (limits.max_connections)");
}

// ---- reading and parsing ----

void DownstreamConnection::resume_reading() {
  if (reading_ || closing_ || shutting_down_write_) return;
  reading_ = true;
  uv_read_start(
      stream(),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        buf->base = self(h)->worker_.read_buffer();
        buf->len = Worker::kReadBufferSize;
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) { self(s)->on_read(nread, buf); });
}

void DownstreamConnection::pause_reading() {
  if (!reading_) return;
  reading_ = false;
  uv_read_stop(stream());
}

void DownstreamConnection::on_read(ssize_t nread, const uv_buf_t* buf) {
  if (closing_) return;
  if (nread == 0) return;
  if (nread < 0) {
    client_gone(nread == UV_EOF ? "client closed the connection"
                                : std::string("client connection error: ") +
                                      uv_strerror(static_cast<int>(nread)));
    return;
  }
  if (active_ && active_->request_complete) {
    // A pipelined request: hold it (bounded) until the current response is done.
    pipelined_.append(buf->base, static_cast<size_t>(nread));
    if (pipelined_.size() > kMaxPipelinedBytes) pause_reading();
    return;
  }
  parse(buf->base, static_cast<size_t>(nread));
}

void DownstreamConnection::parse(const char* data, size_t len) {
  llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  if (closing_) return;
  if (err == HPE_OK) return;
  if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
    const char* pos = llhttp_get_error_pos(&parser_);
    // After an Upgrade, llhttp's error position may point into an earlier buffer (found by
    // fuzzing): only a position inside this one marks where the next request starts.
    if (pos != nullptr && pos >= data && pos < data + len) {
      pipelined_.append(pos, static_cast<size_t>(data + len - pos));
    }
    if (err == HPE_PAUSED_UPGRADE && active_) active_->client_keep_alive = false;
    if (pipelined_.size() > kMaxPipelinedBytes) pause_reading();
    return;
  }
  if (active_ && (active_->finished || active_->response_started)) return;  // already answered
  if (!active_) begin_request();
  const char* reason = llhttp_get_error_reason(&parser_);
  respond_error(ErrorType::bad_request, std::string("malformed HTTP request: ") +
                                            (reason && *reason ? reason : llhttp_errno_name(err)));
}

void DownstreamConnection::on_upstream_writable() {
  if (active_ && !active_->request_complete) resume_reading();
}

void DownstreamConnection::on_upstream_connected() {
  if (active_) active_->ctx.upstream_connected = Clock::now();
}

// ---- response ----

void DownstreamConnection::on_upstream_response_head(ResponseHead& head) {
  Active& a = *active_;
  const Config& config = *a.config;
  a.ctx.first_response_byte = Clock::now();
  a.ctx.upstream_status = head.status;
  a.ctx.status = head.status;
  if (const std::string* id = find_header(head.headers, "x-request-id")) {
    a.ctx.upstream_request_id = *id;
  } else if (const std::string* rid = find_header(head.headers, "request-id")) {
    a.ctx.upstream_request_id = *rid;
  }
  a.response_body_expected = head.body_expected;
  if (a.observer) {
    a.observer->on_response_headers(a.ctx, head.status, head.headers);
    a.response_filtered = head.body_expected && a.observer->filters_response();
  }
  // A filtered body has a new length: it goes out chunked.
  bool length_known = head.has_content_length && !head.chunked && !a.response_filtered;
  a.response_chunked = head.body_expected && !length_known && !a.http10;
  a.close_after = !a.client_keep_alive || draining_ || worker_.draining() ||
                  (head.body_expected && !length_known && a.http10);

  const ForwardedResponse forwarded{.status = head.status,
                                    .reason = head.reason,
                                    .headers = head.headers,
                                    .request_id_header = config.request_id_header,
                                    .request_id = a.ctx.request_id,
                                    .drop_content_length = a.response_filtered,
                                    .chunked = a.response_chunked,
                                    .close = a.close_after,
                                    .drop = a.edits.response_drop,
                                    .added_lines = a.edits.response_lines};
  a.response_started = true;
  hold_client(client_response_head(forwarded));
}

void DownstreamConnection::on_upstream_body(std::string_view data) {
  Active& a = *active_;
  if (data.empty()) return;
  if (a.observer) a.observer->on_response_body(a.ctx, data);
  if (a.response_filtered) {
    a.filtered.clear();
    a.observer->filter_response(data, a.filtered);
    send_client_body(a.filtered);
  } else {
    send_client_body(data);
  }
  if (queued_to_client_ > kHighWatermark && a.upstream && !upstream_read_paused_) {
    upstream_read_paused_ = true;
    a.upstream->pause_reading();
  }
}

void DownstreamConnection::send_client_body(std::string_view data) {
  Active& a = *active_;
  if (data.empty()) return;
  a.ctx.response_body_bytes += data.size();
  if (closing_) return;
  size_t before = held_.size();
  if (a.response_chunked) {
    held_ += hex(data.size());
    held_ += "\r\n";
    held_ += data;
    held_ += "\r\n";
  } else {
    held_ += data;
  }
  queued_to_client_ += held_.size() - before;
}

void DownstreamConnection::on_upstream_complete() {
  Active& a = *active_;
  if (a.response_filtered) {
    a.filtered.clear();
    a.observer->finish_response_filter(a.filtered);
    send_client_body(a.filtered);
  }
  if (a.response_chunked) hold_client("0\r\n\r\n");
  UpstreamConnection* conn = a.upstream;
  a.upstream = nullptr;
  upstream_read_paused_ = false;
  worker_.pool().release(conn, a.request_complete);
  flush_client();
  if (closing_) return;  // the write failed: already finished and closing
  response_done();
}

void DownstreamConnection::on_upstream_read_done() { flush_client(); }

void DownstreamConnection::on_upstream_failed(ErrorType type, std::string detail) {
  if (!active_) return;
  active_->upstream = nullptr;  // it closes itself
  upstream_read_paused_ = false;
  respond_error(type, detail);
}

void DownstreamConnection::close_upstream() {
  if (!active_ || active_->upstream == nullptr) return;
  UpstreamConnection* conn = std::exchange(active_->upstream, nullptr);
  upstream_read_paused_ = false;
  conn->close();
}

void DownstreamConnection::response_done() {
  finish_request();
  if (active_->close_after || !active_->request_complete) {
    close_after_flush();
    return;
  }
  // Continue on the next loop iteration: this may run inside the upstream's parser callback.
  uv_idle_start(&next_request_, [](uv_idle_t* idle) { self(idle)->continue_after_response(); });
}

void DownstreamConnection::continue_after_response() {
  uv_idle_stop(&next_request_);
  active_.reset();
  if (draining_ || worker_.draining()) {
    close_after_flush();
    return;
  }
  llhttp_resume(&parser_);
  arm_timer(static_cast<uint64_t>(worker_.config().timeouts.downstream_header.count()),
            [](uv_timer_t* t) { self(t)->on_head_timeout(); });
  resume_reading();
  if (!pipelined_.empty()) {
    std::string pending = std::move(pipelined_);
    pipelined_.clear();
    parse(pending.data(), pending.size());
  }
}

void DownstreamConnection::respond_error(ErrorType type, const std::string& message,
                                         std::optional<RetryAdvice> retry) {
  if (!active_) begin_request();
  Active& a = *active_;
  if (a.finished) return;
  a.ctx.error = type;
  a.ctx.error_detail = scrub(message, {});
  close_upstream();
  if (a.response_started) {
    // Too late for an error response: end the connection so the truncation is visible.
    finish_request();
    close_after_flush();
    return;
  }
  int status = error_status(type);
  a.ctx.status = status;
  bool keep_alive = a.request_complete && a.client_keep_alive && !draining_ &&
                    !worker_.draining() && status != 400 && status != 408;
  a.close_after = !keep_alive;
  a.response_started = true;
  const ProxyError error{
      .type = type, .message = a.ctx.error_detail, .request_id = a.ctx.request_id, .retry = retry};
  write_client(error_response(error, error_shape(a.ctx.route, a.ctx.method, a.ctx.path),
                              a.config->request_id_header, keep_alive, a.head_request));
  response_done();
}

void DownstreamConnection::finish_request() {
  Active& a = *active_;
  if (a.finished) return;
  a.finished = true;
  std::string().swap(a.body);  // whatever is still buffered is not needed any more
  a.body_reservation.reset();
  a.ctx.end = Clock::now();
  if (a.ctx.status == 0) a.ctx.status = error_status(a.ctx.error);
  if (a.observer) a.observer->on_complete(a.ctx);
  // Core counters first, then the sinks: a reader who saw the log line sees the counters moved.
  worker_.metrics().request(a.ctx.route ? a.ctx.route->name : "none", a.ctx.status).Increment();
  worker_.metrics().core().inflight.Decrement();
  a.ctx.wall_end = std::chrono::system_clock::now();
  for (const std::unique_ptr<CompletionSink>& sink : worker_.pipeline().sinks) {
    sink->on_request_end(a.ctx);
  }
}

bool DownstreamConnection::request_arrived() const {
  return active_ && (active_->headers_done || !active_->target.empty() || active_->head_bytes > 0);
}

void DownstreamConnection::abandon_request(ErrorType type, std::string detail) {
  if (!active_ || active_->finished) return;
  Active& a = *active_;
  close_upstream();
  if (!request_arrived()) {
    // Nothing of a request arrived: not a request, just a closed keep-alive connection.
    a.finished = true;
    worker_.metrics().core().inflight.Decrement();
    return;
  }
  a.ctx.error = type;
  a.ctx.error_detail = std::move(detail);
  if (!a.response_started) a.ctx.status = 0;  // the error's status, not one nobody received
  finish_request();
}

void DownstreamConnection::client_gone(std::string detail) {
  abandon_request(ErrorType::client_cancelled, std::move(detail));
  close_now();
}

void DownstreamConnection::on_head_timeout() {
  if (closing_) return;
  if (!request_arrived()) {
    close_now();  // an idle keep-alive connection: close quietly
    return;
  }
  if (active_->headers_done) {
    respond_error(ErrorType::header_timeout, "request body not received within timeouts.idle");
  } else {
    respond_error(ErrorType::header_timeout,
                  "request headers not received within timeouts.downstream_header");
  }
}

// ---- writing and closing ----

void DownstreamConnection::hold_client(std::string data) {
  if (closing_ || data.empty()) return;
  queued_to_client_ += data.size();
  if (held_.empty()) {
    held_ = std::move(data);
  } else {
    held_ += data;
  }
}

void DownstreamConnection::write_client(std::string data) {
  hold_client(std::move(data));
  flush_client();
}

void DownstreamConnection::flush_client() {
  if (closing_ || held_.empty()) return;
  size_t size = held_.size();
  ssize_t queued = write_owned<DownstreamConnection, &DownstreamConnection::on_write_done>(
      stream(), this, std::move(held_));
  held_.clear();
  if (queued < 0) {
    queued_to_client_ -= size;
    client_gone(std::string("write to client failed: ") + uv_strerror(static_cast<int>(queued)));
    return;
  }
  queued_to_client_ -= size - static_cast<size_t>(queued);
  // Written at once: the progress on_write_done() would have noted.
  if (upstream_read_paused_ && queued_to_client_ <= kLowWatermark && active_ && active_->upstream) {
    upstream_read_paused_ = false;
    active_->upstream->resume_reading();
  }
}

void DownstreamConnection::on_write_done(size_t bytes, int status) {
  queued_to_client_ -= bytes;
  if (closing_) return;
  if (status != 0) {
    client_gone(std::string("write to client failed: ") + uv_strerror(status));
    return;
  }
  if (active_ && active_->upstream) {
    active_->upstream->touch();
    if (upstream_read_paused_ && queued_to_client_ <= kLowWatermark) {
      upstream_read_paused_ = false;
      active_->upstream->resume_reading();
    }
  }
}

void DownstreamConnection::arm_timer(uint64_t ms, uv_timer_cb cb) {
  // Once closing after a flush, the timer guards that close; nothing may re-purpose it.
  if (shutting_down_write_) return;
  uv_timer_start(&timer_, cb, ms, 0);
}

void DownstreamConnection::drain() {
  draining_ = true;
  bool idle = !request_arrived() || (active_->finished && !active_->response_started);
  if (idle && pipelined_.empty()) close_now();
}

void DownstreamConnection::force_close() {
  abandon_request(ErrorType::shutting_down, "drain deadline reached");
  close_now();
}

void DownstreamConnection::close_after_flush() {
  if (closing_ || shutting_down_write_) return;
  flush_client();
  if (closing_) return;
  shutting_down_write_ = true;
  pause_reading();
  // A client that never reads would hold the shutdown forever; cap the wait.
  uv_timer_start(
      &timer_, [](uv_timer_t* t) { self(t)->close_now(); },
      static_cast<uint64_t>(worker_.config().timeouts.downstream_header.count()), 0);
  auto* req = new uv_shutdown_t;
  req->data = this;
  int rc = uv_shutdown(req, stream(), [](uv_shutdown_t* r, int) {
    DownstreamConnection* conn = self(r);
    delete r;
    conn->close_now();
  });
  if (rc != 0) {
    delete req;
    close_now();
  }
}

void DownstreamConnection::close_now() {
  if (closing_) return;
  closing_ = true;
  queued_to_client_ -= held_.size();
  held_.clear();
  close_upstream();
  // Every caller has ended the request already; this only guards against a new path that
  // forgets to (the request would otherwise never be counted or logged).
  abandon_request(ErrorType::client_cancelled, {});
  auto on_closed = [](uv_handle_t* h) {
    DownstreamConnection* conn = self(h);
    if (--conn->open_handles_ == 0) {
      conn->worker_.connection_closed(conn);
      delete conn;
    }
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), on_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&next_request_), on_closed);
  worker_.metrics().core().downstream_connections.Decrement();
}

}  // namespace tokentap
