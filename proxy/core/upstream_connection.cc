#include "proxy/core/upstream_connection.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "proxy/core/worker.h"
#include "proxy/http/http1.h"
#include "proxy/net/stream_write.h"

namespace tokentap {

namespace {

template <typename T>
UpstreamConnection* self(T* handle) {
  return static_cast<UpstreamConnection*>(handle->data);
}

UpstreamConnection* from_parser(llhttp_t* p) { return static_cast<UpstreamConnection*>(p->data); }

// A response head larger than this is a protocol error; providers send a few KiB at most.
constexpr size_t kMaxResponseHeadBytes = size_t{256} * 1024;

// RFC 9112's reason-phrase without obs-text: llhttp 8 lets NUL, other control bytes and bytes
// over 0x7f through, and a reason phrase is echoed to the client (found by fuzzing).
bool plain_reason(std::string_view reason) {
  return std::all_of(reason.begin(), reason.end(),
                     [](char c) { return c == '\t' || (c >= ' ' && c <= '~'); });
}

}  // namespace

const llhttp_settings_t UpstreamConnection::kParserSettings = {
    .on_message_begin = nullptr,
    .on_url = nullptr,
    .on_status = [](llhttp_t* p, const char* at,
                    size_t n) { return from_parser(p)->on_status(at, n); },
    .on_method = nullptr,
    .on_version = nullptr,
    .on_header_field = [](llhttp_t* p, const char* at,
                          size_t n) { return from_parser(p)->on_header_field(at, n); },
    .on_header_value = [](llhttp_t* p, const char* at,
                          size_t n) { return from_parser(p)->on_header_value(at, n); },
    .on_chunk_extension_name = nullptr,
    .on_chunk_extension_value = nullptr,
    .on_headers_complete = [](llhttp_t* p) { return from_parser(p)->on_headers_complete(); },
    .on_body = [](llhttp_t* p, const char* at, size_t n) { return from_parser(p)->on_body(at, n); },
    .on_message_complete = [](llhttp_t* p) { return from_parser(p)->on_message_complete(); },
    .on_url_complete = nullptr,
    .on_status_complete = nullptr,
    .on_method_complete = nullptr,
    .on_version_complete = nullptr,
    .on_header_field_complete = nullptr,
    .on_header_value_complete = nullptr,
    .on_chunk_extension_name_complete = nullptr,
    .on_chunk_extension_value_complete = nullptr,
    .on_chunk_header = nullptr,
    .on_chunk_complete = nullptr,
    .on_reset = nullptr,
};

UpstreamConnection::UpstreamConnection(Worker& worker, UpstreamTarget target)
    : worker_(worker), target_(std::move(target)) {
  uv_timer_init(worker_.loop(), &timer_);
  timer_.data = this;
  worker_.metrics().core().upstream_connections.Increment();
  worker_.track_upstream(this, true);
}

void UpstreamConnection::start() {
  arm_timer(timeouts_.connect);
  dns_req_.data = this;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  std::string port = std::to_string(target_.port);
  int rc = uv_getaddrinfo(
      worker_.loop(), &dns_req_,
      [](uv_getaddrinfo_t* req, int status, addrinfo* res) { self(req)->on_resolved(status, res); },
      target_.host.c_str(), port.c_str(), &hints);
  if (rc != 0) {
    fail(ErrorType::upstream_connect_error,
         "cannot resolve " + target_.host + ": " + uv_strerror(rc), "dns");
    return;
  }
  owe_callback();  // a cancelled lookup may still call back after the handles closed
  dns_pending_ = true;
}

void UpstreamConnection::on_resolved(int status, addrinfo* res) {
  dns_pending_ = false;
  if (!callback_ran()) {
    if (res) uv_freeaddrinfo(res);
    return;
  }
  if (status != 0) {
    fail(ErrorType::upstream_connect_error,
         "cannot resolve " + target_.host + ": " + uv_strerror(status), "dns");
    return;
  }
  addresses_ = res;
  next_address_ = res;
  state_ = State::connecting;
  connect_next();
}

void UpstreamConnection::connect_next() {
  if (next_address_ == nullptr) {
    fail(ErrorType::upstream_connect_error,
         "cannot connect to " + target_.host + ":" + std::to_string(target_.port) + ": " +
             last_connect_error_,
         "connect");
    return;
  }
  addrinfo* addr = next_address_;
  next_address_ = next_address_->ai_next;
  tcp_ = new uv_tcp_t;
  uv_tcp_init(worker_.loop(), tcp_);
  tcp_->data = this;
  uv_tcp_nodelay(tcp_, 1);
  connect_req_.data = this;
  int rc = uv_tcp_connect(&connect_req_, tcp_, addr->ai_addr, [](uv_connect_t* req, int status) {
    self(req)->on_tcp_connected(status);
  });
  if (rc != 0) {
    last_connect_error_ = uv_strerror(rc);
    close_tcp();
    connect_next();
    return;
  }
}

void UpstreamConnection::on_tcp_connected(int status) {
  if (state_ == State::closed) return;  // cancelled by close_tcp()
  if (status != 0) {
    last_connect_error_ = uv_strerror(status);
    close_tcp();
    connect_next();
    return;
  }
  uv_freeaddrinfo(addresses_);
  addresses_ = next_address_ = nullptr;
  start_reading();
  if (!target_.tls) {
    became_ready();
    return;
  }
  state_ = State::handshaking;
  tls_ = std::make_unique<TlsTransform>(*target_.tls, target_.sni, target_.host);
  if (tls_->handshake() == TlsTransform::Status::error) {
    fail(ErrorType::upstream_tls_error, tls_->error_message(), "tls");
    return;
  }
  std::string out;
  if (tls_->take_ciphertext(out) > 0) send_raw(std::move(out));
}

void UpstreamConnection::start_reading() {
  reading_ = true;
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(tcp_),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        buf->base = self(h)->worker_.read_buffer();
        buf->len = Worker::kReadBufferSize;
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) { self(s)->on_read(nread, buf); });
}

void UpstreamConnection::became_ready() {
  state_ = State::ready;
  uv_timer_stop(&timer_);
  if (handler_) handler_->on_upstream_connected();
  if (state_ != State::ready) return;
  flush_pending();
  if (exchange_ == Exchange::awaiting_head) arm_timer(timeouts_.first_byte);
  if (exchange_ == Exchange::sending) arm_timer(timeouts_.idle);
}

void UpstreamConnection::attach(UpstreamHandler* handler, const ExchangeSettings& settings) {
  handler_ = handler;
  timeouts_ = settings.timeouts;
  route_label_ = settings.route;
  if (!started_) {
    // Started here, not in the constructor, so that a synchronous failure reaches the handler.
    started_ = true;
    start();
    if (state_ == State::closed) return;
  }
  head_request_ = settings.head_request;
  exchange_ = Exchange::sending;
  request_done_ = false;
  in_pool_ = false;
  llhttp_init(&parser_, HTTP_RESPONSE, &kParserSettings);
  parser_.data = this;
  head_ = ResponseHead{};
  head_bytes_ = 0;
  in_header_value_ = false;
  interim_ = false;
  if (state_ == State::ready) arm_timer(timeouts_.idle);
}

void UpstreamConnection::write(std::string data, std::string more, BufferReservation held) {
  if (state_ == State::closed) return;
  held_.absorb(std::move(held));
  if (state_ == State::ready && !tls_ && pending_.empty()) {
    send_raw(std::move(data), std::move(more));
  } else {
    push_pending(std::move(data));
    push_pending(std::move(more));
    if (state_ == State::ready) flush_pending();
    if (queued_bytes() > kHighWatermark) above_high_ = true;
  }
  release_if_sent();
}

void UpstreamConnection::push_pending(std::string data) {
  if (data.empty()) return;
  pending_bytes_ += data.size();
  // Small pieces (a request head, the chunks of a streamed body) join the last one: an entry
  // per few bytes would cost more than the bytes.
  constexpr size_t kJoinBelow = size_t{16} * 1024;
  if (!pending_.empty() && data.size() < kJoinBelow && pending_.back().size() < kJoinBelow) {
    pending_.back() += data;
    return;
  }
  pending_.push_back(std::move(data));
}

void UpstreamConnection::flush_pending() {
  if (tls_) encrypt_pending();
  while (!tls_ && !pending_.empty() && state_ == State::ready) {
    std::string first = std::move(pending_.front());
    pending_.pop_front();
    std::string second;
    if (!pending_.empty()) {
      second = std::move(pending_.front());
      pending_.pop_front();
    }
    pending_bytes_ -= first.size() + second.size();
    send_raw(std::move(first), std::move(second));
  }
  release_if_sent();
}

void UpstreamConnection::encrypt_pending() {
  // Ciphertext leaves in pieces of about 64 KiB (four TLS records): small requests still go
  // out in one write, and a large body never exists as ciphertext in full.
  constexpr size_t kPiece = size_t{64} * 1024;
  std::string out;
  while (!pending_.empty() && state_ == State::ready &&
         queued_bytes_ + out.size() < kHighWatermark) {
    std::string_view front = pending_.front();
    std::string_view piece = front.substr(pending_offset_, kPiece);
    if (tls_->write_plaintext(piece) == TlsTransform::Status::error) {
      fail(ErrorType::upstream_tls_error, tls_->error_message(), "tls");
      return;
    }
    pending_offset_ += piece.size();
    pending_bytes_ -= piece.size();
    if (pending_offset_ == front.size()) {
      pending_.pop_front();  // frees the plaintext as soon as it is encrypted
      pending_offset_ = 0;
    }
    tls_->take_ciphertext(out);
    if (out.size() >= kPiece) {
      send_raw(std::move(out));
      out.clear();
    }
  }
  if (!out.empty() && state_ == State::ready) send_raw(std::move(out));
}

void UpstreamConnection::release_if_sent() {
  if (pending_bytes_ == 0 && queued_bytes_ == 0) held_.reset();
}

void UpstreamConnection::send_raw(std::string bytes, std::string more) {
  if ((bytes.empty() && more.empty()) || tcp_ == nullptr) return;
  ssize_t queued = write_owned<UpstreamConnection, &UpstreamConnection::on_write_done>(
      reinterpret_cast<uv_stream_t*>(tcp_), this, std::move(bytes), std::move(more));
  if (queued < 0) {
    fail(ErrorType::upstream_connect_error,
         std::string("write failed: ") + uv_strerror(static_cast<int>(queued)));
    return;
  }
  if (queued == 0) {
    // Written at once: the progress on_write_done() would have noted.
    if (state_ == State::ready && exchange_ == Exchange::sending) {
      arm_timer(timeouts_.idle);
    }
    if (above_high_ && queued_bytes() <= kLowWatermark) {  // e.g. pending_ just flushed
      above_high_ = false;
      if (handler_) handler_->on_upstream_writable();
    }
    return;
  }
  queued_bytes_ += static_cast<size_t>(queued);
  if (queued_bytes_ > kHighWatermark) above_high_ = true;
}

void UpstreamConnection::on_write_done(size_t bytes, int status) {
  queued_bytes_ -= bytes;
  if (state_ == State::closed) return;  // cancelled by close_tcp()
  if (status != 0) {
    fail(exchange_ == Exchange::receiving ? ErrorType::upstream_reset
                                          : ErrorType::upstream_connect_error,
         std::string("write to upstream failed: ") + uv_strerror(status));
    return;
  }
  // A request body still being sent is progress: a slow upload is not an idle exchange. (A
  // handshake write is not: the connect timeout covers the handshake.)
  if (state_ == State::ready && exchange_ == Exchange::sending) arm_timer(timeouts_.idle);
  if (tls_ && !pending_.empty() && state_ == State::ready) {
    encrypt_pending();
    if (state_ == State::closed) return;
  }
  release_if_sent();
  if (above_high_ && queued_bytes() <= kLowWatermark) {
    above_high_ = false;
    if (handler_) handler_->on_upstream_writable();
  }
}

void UpstreamConnection::request_finished() {
  request_done_ = true;
  if (exchange_ == Exchange::sending) exchange_ = Exchange::awaiting_head;
  if (state_ == State::ready) arm_timer(timeouts_.first_byte);
}

void UpstreamConnection::pause_reading() {
  if (read_paused_ || tcp_ == nullptr) return;
  read_paused_ = true;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp_));
}

void UpstreamConnection::resume_reading() {
  if (!read_paused_ || state_ == State::closed) return;
  read_paused_ = false;
  start_reading();
}

void UpstreamConnection::touch() {
  if (exchange_ == Exchange::receiving || exchange_ == Exchange::sending) {
    arm_timer(timeouts_.idle);
  }
}

void UpstreamConnection::arm_timer(std::chrono::milliseconds timeout) {
  uv_timer_start(
      &timer_, [](uv_timer_t* t) { self(t)->on_timer(); }, static_cast<uint64_t>(timeout.count()),
      0);
}

void UpstreamConnection::on_timer() {
  if (state_ == State::closed) return;
  if (in_pool_) {
    close();
    return;
  }
  const Timeouts& t = timeouts_;
  switch (state_) {
    case State::resolving:
    case State::connecting:
      fail(ErrorType::upstream_connect_error,
           "connect to " + target_.host + ":" + std::to_string(target_.port) + " timed out after " +
               std::to_string(t.connect.count()) + "ms",
           "connect");
      return;
    case State::handshaking:
      fail(ErrorType::upstream_tls_error,
           "tls handshake with " + target_.host + " timed out after " +
               std::to_string(t.connect.count()) + "ms",
           "tls");
      return;
    default:
      break;
  }
  if (exchange_ == Exchange::awaiting_head) {
    fail(ErrorType::timeout,
         "no response from upstream within " + std::to_string(t.first_byte.count()) + "ms");
  } else {
    fail(ErrorType::timeout, "upstream idle for " + std::to_string(t.idle.count()) + "ms");
  }
}

void UpstreamConnection::on_read(ssize_t nread, const uv_buf_t* buf) {
  if (state_ == State::closed) return;
  if (nread == 0) return;
  if (nread < 0) {
    if (in_pool_ || exchange_ == Exchange::none || exchange_ == Exchange::done) {
      close();
      return;
    }
    if (nread == UV_EOF && exchange_ == Exchange::receiving) {
      // A close-delimited body ends here; anything else is a truncation.
      llhttp_finish(&parser_);
      if (state_ == State::closed) return;
      if (exchange_ == Exchange::done) {
        report_complete(false);
        return;
      }
    }
    if (state_ == State::handshaking) {
      fail(ErrorType::upstream_tls_error, "upstream closed the connection during the tls handshake",
           "tls");
    } else if (exchange_ == Exchange::receiving) {
      fail(ErrorType::upstream_reset, "upstream closed the connection mid-response");
    } else {
      fail(ErrorType::upstream_reset,
           std::string("upstream closed the connection before "
                       "responding: ") +
               (nread == UV_EOF ? "eof" : uv_strerror(static_cast<int>(nread))));
    }
    return;
  }
  std::string_view data(buf->base, static_cast<size_t>(nread));
  if (!tls_) {
    on_plaintext(data);
    return;
  }
  tls_->feed_ciphertext(data);
  if (!tls_->handshake_done()) {
    TlsTransform::Status st = tls_->handshake();
    std::string out;
    if (tls_->take_ciphertext(out) > 0) send_raw(std::move(out));
    if (st == TlsTransform::Status::error) {
      fail(ErrorType::upstream_tls_error, tls_->error_message(), "tls");
      return;
    }
    if (st != TlsTransform::Status::ok) return;
    became_ready();
    if (state_ != State::ready) return;
  }
  plaintext_scratch_.clear();
  TlsTransform::Status st = tls_->read_plaintext(plaintext_scratch_);
  std::string out;
  if (tls_->take_ciphertext(out) > 0) send_raw(std::move(out));
  if (!plaintext_scratch_.empty()) {
    std::string data_copy = std::move(plaintext_scratch_);
    plaintext_scratch_.clear();
    on_plaintext(data_copy);
    if (state_ == State::closed) return;
  }
  if (st == TlsTransform::Status::error) {
    fail(exchange_ == Exchange::receiving ? ErrorType::upstream_reset
                                          : ErrorType::upstream_protocol_error,
         tls_->error_message());
  } else if (st == TlsTransform::Status::closed) {
    if (exchange_ == Exchange::receiving) {
      llhttp_finish(&parser_);
      if (state_ == State::closed) return;
      if (exchange_ == Exchange::done) {
        report_complete(false);
        return;
      }
      fail(ErrorType::upstream_reset, "upstream closed the tls session mid-response");
    } else if (in_pool_ || exchange_ == Exchange::none || exchange_ == Exchange::done) {
      close();
    } else {
      fail(ErrorType::upstream_reset, "upstream closed the tls session before responding");
    }
  }
}

void UpstreamConnection::on_plaintext(std::string_view data) {
  if (in_pool_ || exchange_ == Exchange::none || exchange_ == Exchange::done) {
    // Bytes nobody asked for: the connection cannot be trusted for another request.
    if (in_pool_) {
      close();
    } else {
      keep_alive_ = false;
    }
    return;
  }
  if (exchange_ == Exchange::sending || exchange_ == Exchange::awaiting_head) {
    exchange_ = Exchange::receiving;
  }
  arm_timer(timeouts_.idle);
  llhttp_errno_t err = llhttp_execute(&parser_, data.data(), data.size());
  if (state_ == State::closed) return;
  if (err == HPE_PAUSED && exchange_ == Exchange::done) {
    const char* pos = llhttp_get_error_pos(&parser_);
    report_complete(pos != nullptr && pos < data.data() + data.size());
    return;
  }
  if (err != HPE_OK) {
    std::string reason = llhttp_get_error_reason(&parser_) ? llhttp_get_error_reason(&parser_) : "";
    fail(ErrorType::upstream_protocol_error,
         "malformed response from upstream: " + std::string(llhttp_errno_name(err)) + " " + reason);
    return;
  }
  if (handler_ != nullptr && exchange_ == Exchange::receiving) handler_->on_upstream_read_done();
}

int UpstreamConnection::on_status(const char* at, size_t len) {
  head_bytes_ += len;
  if (head_bytes_ > kMaxResponseHeadBytes) return -1;
  head_.reason.append(at, len);
  return 0;
}

int UpstreamConnection::on_header_field(const char* at, size_t len) {
  head_bytes_ += len;
  if (head_bytes_ > kMaxResponseHeadBytes) return -1;
  if (in_header_value_ || head_.headers.empty()) {
    head_.headers.push_back(Header{});
    in_header_value_ = false;
  }
  head_.headers.back().name.append(at, len);
  return 0;
}

int UpstreamConnection::on_header_value(const char* at, size_t len) {
  head_bytes_ += len;
  if (head_bytes_ > kMaxResponseHeadBytes) return -1;
  in_header_value_ = true;
  head_.headers.back().value.append(at, len);
  return 0;
}

int UpstreamConnection::on_headers_complete() {
  head_.status = parser_.status_code;
  // llhttp accepts any three characters of digits, so "20" and "099" arrive here; a status
  // outside 100-599 is not HTTP and must not reach the client (found by fuzzing).
  if (head_.status < 100 || head_.status > 599) return -1;
  if (!plain_reason(head_.reason)) head_.reason.clear();
  // 1xx and 204 end at their head, and must not announce a body (RFC 9110 section 8.6, RFC 9112
  // section 6.1); one that does is out of step with us, and a client framing by the headers
  // alone would read one: a protocol error (found by fuzzing). A 304 may carry the Content-Length
  // (and Transfer-Encoding) a 200 would have had: forwarded, and read without a body.
  if ((head_.status < 200 || head_.status == 204) &&
      ((parser_.flags & F_TRANSFER_ENCODING) != 0 ||
       ((parser_.flags & F_CONTENT_LENGTH) != 0 && parser_.content_length != 0))) {
    return -1;
  }
  if (head_.status < 200) {
    // Interim responses (100 Continue, 103 Early Hints) are not forwarded; 101 is never
    // solicited because Upgrade is not forwarded. An interim response has no body, whatever
    // its headers say: 1 makes llhttp skip one (a Content-Length on a 100 made its bytes go to
    // the client before any head, found by fuzzing).
    interim_ = true;
    return 1;
  }
  head_.chunked = (parser_.flags & F_CHUNKED) != 0;
  head_.has_content_length = (parser_.flags & F_CONTENT_LENGTH) != 0;
  head_.content_length = head_.has_content_length ? parser_.content_length : 0;
  head_.body_expected = !(head_request_ || head_.status == 204 || head_.status == 304);
  if (handler_) handler_->on_upstream_response_head(head_);
  if (state_ == State::closed) return HPE_PAUSED;
  // llhttp would read a body announced by Content-Length even on 204/304; 1 means "no body".
  return head_.body_expected ? 0 : 1;
}

int UpstreamConnection::on_body(const char* at, size_t len) {
  if (interim_) return 0;  // never: interim responses are read without a body
  if (handler_) handler_->on_upstream_body(std::string_view(at, len));
  return state_ == State::closed ? HPE_PAUSED : 0;
}

int UpstreamConnection::on_message_complete() {
  if (interim_) {
    interim_ = false;
    head_ = ResponseHead{};
    head_bytes_ = 0;
    in_header_value_ = false;
    return 0;
  }
  keep_alive_ = llhttp_should_keep_alive(&parser_) != 0 && request_done_ && pending_bytes_ == 0;
  exchange_ = Exchange::done;
  ++requests_served_;
  uv_timer_stop(&timer_);
  return HPE_PAUSED;  // reported by report_complete() once the rest of the read is known
}

void UpstreamConnection::report_complete(bool bytes_after_response) {
  // Nothing was asked for after this response: bytes after it mean the upstream is out of step
  // with us, and the pool must not hand the connection to another request.
  if (bytes_after_response) keep_alive_ = false;
  if (handler_) handler_->on_upstream_complete();
}

void UpstreamConnection::fail(ErrorType type, std::string detail, std::string_view metric_kind) {
  if (state_ == State::closed) return;
  if (!metric_kind.empty()) {
    worker_.metrics().connect_error(route_label_, metric_kind).Increment();
  }
  UpstreamHandler* h = handler_;
  handler_ = nullptr;
  close();
  if (h) h->on_upstream_failed(type, std::move(detail));
}

void UpstreamConnection::close_tcp() {
  if (tcp_ == nullptr) return;
  reading_ = false;
  close_and_free(std::exchange(tcp_, nullptr));
}

void UpstreamConnection::close() {
  if (state_ == State::closed) return;
  state_ = State::closed;
  handler_ = nullptr;
  pending_.clear();
  pending_offset_ = pending_bytes_ = 0;
  held_.reset();
  if (in_pool_) worker_.pool().forget(this);
  if (dns_pending_) uv_cancel(reinterpret_cast<uv_req_t*>(&dns_req_));
  close_tcp();
  close_handle(reinterpret_cast<uv_handle_t*>(&timer_));
  if (addresses_) {
    uv_freeaddrinfo(addresses_);
    addresses_ = next_address_ = nullptr;
  }
  worker_.metrics().core().upstream_connections.Decrement();
  worker_.track_upstream(this, false);
  retire();
}

void UpstreamConnection::enter_pool() {
  in_pool_ = true;
  handler_ = nullptr;
  exchange_ = Exchange::none;
  if (read_paused_) resume_reading();
  arm_timer(UpstreamPool::kIdleExpiry);
}

bool UpstreamConnection::alive_for_reuse() {
  if (state_ != State::ready || tcp_ == nullptr) return false;
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(tcp_), &fd) != 0) return false;
  char probe;
  ssize_t n = ::recv(fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
  // 0 is a FIN the loop has not delivered yet; data is an unsolicited response.
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

UpstreamConnection* UpstreamPool::acquire(const UpstreamTarget& target) {
  auto it = idle_.find(target.pool_key);
  if (it != idle_.end()) {
    auto& idle = it->second;
    // A pooled connection found dead before sending is replaced (once per dead connection).
    while (!idle.empty()) {
      UpstreamConnection* conn = idle.back();
      idle.pop_back();
      conn->in_pool_ = false;
      if (conn->alive_for_reuse()) return conn;
      conn->close();
    }
  }
  return new UpstreamConnection(worker_, target);
}

void UpstreamPool::release(UpstreamConnection* conn, bool reusable) {
  if (!reusable || !conn->keep_alive_ || conn->state_ != UpstreamConnection::State::ready ||
      worker_.draining()) {
    conn->close();
    return;
  }
  auto& idle = idle_[conn->target_.pool_key];
  if (idle.size() >= kMaxIdlePerTarget) {
    conn->close();
    return;
  }
  idle.push_back(conn);
  conn->enter_pool();
}

void UpstreamPool::forget(UpstreamConnection* conn) {
  auto it = idle_.find(conn->target_.pool_key);
  if (it == idle_.end()) return;
  auto& idle = it->second;
  for (auto i = idle.begin(); i != idle.end(); ++i) {
    if (*i == conn) {
      idle.erase(i);
      break;
    }
  }
  if (idle.empty()) idle_.erase(it);
}

void UpstreamPool::close_all() {
  auto idle = std::move(idle_);
  idle_.clear();
  for (auto& [key, conns] : idle) {
    for (UpstreamConnection* conn : conns) {
      conn->in_pool_ = false;
      conn->close();
    }
  }
}

size_t UpstreamPool::idle_count() const {
  size_t n = 0;
  for (const auto& [key, conns] : idle_) n += conns.size();
  return n;
}

}  // namespace tokentap
