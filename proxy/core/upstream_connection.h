// Upstream side: one UpstreamConnection per TCP (optionally TLS) connection to a provider,
// and the per-worker keep-alive pool that hands them out.
//
// Lifetime: a connection is created by UpstreamPool::acquire(), used by exactly one
// UpstreamHandler at a time (attach), and either handed back with UpstreamPool::release() or
// closed with close(). Every way out (failure, idle expiry, pool eviction, drain) ends in
// close(), which closes all handles; the object is freed by the last of their close callbacks
// (net/closable.h), never synchronously, so close() is safe from inside any callback,
// including the handler's own. After close() or a failure report the handler is never called
// again.
//
// A pooled connection may serve any route with the same target, under any runtime snapshot:
// what depends on the request (its timeouts, the route its connect errors are counted for)
// comes with each attach(), from the snapshot the request started with.
#pragma once

#include <llhttp.h>
#include <uv.h>

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proxy/core/request_buffers.h"
#include "proxy/core/request_context.h"
#include "proxy/net/closable.h"
#include "proxy/net/tls.h"

namespace tokentap {

class Worker;

// Flow control: past the high mark a side stops reading its peer; it resumes at the low mark.
inline constexpr size_t kHighWatermark = size_t{256} * 1024;
inline constexpr size_t kLowWatermark = size_t{64} * 1024;

// Everything that makes two upstream connections interchangeable (routes may share one).
struct UpstreamTarget {
  std::string pool_key;
  std::string host;
  uint16_t port = 0;
  std::shared_ptr<TlsClientContext> tls;  // null for plain http
  std::string sni;
};

// What one exchange brings from its request's runtime snapshot, for as long as it lasts: a
// reload during the exchange changes none of it.
struct ExchangeSettings {
  bool head_request = false;
  Timeouts timeouts;       // connect (a new connection), first byte and idle
  std::string_view route;  // the request's route name: the label of its connect errors
};

struct ResponseHead {
  int status = 0;
  std::string reason;  // the upstream's, if plain visible ASCII (tabs and spaces too), else empty
  HeaderList headers;
  bool chunked = false;
  bool has_content_length = false;
  uint64_t content_length = 0;
  bool body_expected = true;  // false for HEAD, 1xx, 204, 304
};

class UpstreamHandler {
 public:
  virtual ~UpstreamHandler() = default;
  // TCP (+TLS) is up; queued request bytes are being flushed.
  virtual void on_upstream_connected() = 0;
  virtual void on_upstream_response_head(ResponseHead& head) = 0;
  virtual void on_upstream_body(std::string_view data) = 0;
  // The response ended cleanly. The handler must release() or close() the connection.
  virtual void on_upstream_complete() = 0;
  // The exchange failed; the connection is already closing and detached from the handler.
  virtual void on_upstream_failed(ErrorType type, std::string detail) = 0;
  // Queued bytes fell below the low watermark after having passed the high one.
  virtual void on_upstream_writable() = 0;
  // The bytes of one read were all handed to the callbacks above and the exchange goes on:
  // write out what they produced. Not called after on_upstream_complete or a failure report.
  virtual void on_upstream_read_done() = 0;
};

class UpstreamConnection : private Closable {
 public:
  UpstreamConnection(Worker& worker, UpstreamTarget target);

  // Binds the connection to one exchange. A new connection starts connecting here; a failure
  // may be reported to the handler before attach() returns.
  void attach(UpstreamHandler* handler, const ExchangeSettings& settings);
  // Queues plaintext request bytes, `data` then `more`, taking them over without a copy; sent
  // once connected, with one writev when possible. Over TLS they are encrypted in pieces as the
  // socket drains, so a large body is never held as plaintext and ciphertext at once. `held`
  // (the budget reservation for these bytes) is given back once nothing queued is left in the
  // process, or when the connection closes.
  void write(std::string data, std::string more = {}, BufferReservation held = {});
  size_t queued_bytes() const { return queued_bytes_ + pending_bytes_; }
  // The request is completely written: the first-byte timer starts now.
  void request_finished();
  void pause_reading();
  void resume_reading();
  // Something moved on the exchange (e.g. the client drained a write): restart the idle timer.
  void touch();
  void close();

  bool reused() const { return requests_served_ > 0; }
  bool connected() const { return state_ == State::ready; }
  const UpstreamTarget& target() const { return target_; }

 private:
  friend class UpstreamPool;
  enum class State { resolving, connecting, handshaking, ready, closed };
  enum class Exchange { none, sending, awaiting_head, receiving, done };

  void start();
  void connect_next();
  void on_resolved(int status, addrinfo* res);
  void on_tcp_connected(int status);
  void on_read(ssize_t nread, const uv_buf_t* buf);
  void on_plaintext(std::string_view data);
  void on_write_done(size_t bytes, int status);
  void on_timer();
  void became_ready();
  void push_pending(std::string data);
  void flush_pending();
  // TLS: encrypts pending plaintext while less than kHighWatermark of ciphertext is queued.
  void encrypt_pending();
  void release_if_sent();
  void send_raw(std::string bytes, std::string more = {});
  void fail(ErrorType type, std::string detail, std::string_view metric_kind = {});
  void arm_timer(std::chrono::milliseconds timeout);
  void start_reading();
  void close_tcp();
  // Pool bookkeeping.
  void enter_pool();
  bool alive_for_reuse();

  // llhttp trampolines.
  static const llhttp_settings_t kParserSettings;
  int on_status(const char* at, size_t len);
  int on_header_field(const char* at, size_t len);
  int on_header_value(const char* at, size_t len);
  int on_headers_complete();
  int on_body(const char* at, size_t len);
  int on_message_complete();
  // Tells the handler the response is complete, after the whole read that completed it was
  // parsed (llhttp stops at the end of the response).
  void report_complete(bool bytes_after_response);

  Worker& worker_;
  UpstreamTarget target_;
  UpstreamHandler* handler_ = nullptr;
  Timeouts timeouts_;        // the attached exchange's
  std::string route_label_;  // the attached exchange's route
  State state_ = State::resolving;
  bool started_ = false;
  Exchange exchange_ = Exchange::none;

  uv_getaddrinfo_t dns_req_{};
  bool dns_pending_ = false;
  addrinfo* addresses_ = nullptr;
  addrinfo* next_address_ = nullptr;
  std::string last_connect_error_;
  uv_tcp_t* tcp_ = nullptr;
  uv_connect_t connect_req_{};
  uv_timer_t timer_{};
  bool reading_ = false;
  bool read_paused_ = false;

  std::unique_ptr<TlsTransform> tls_;
  std::string plaintext_scratch_;
  // Plaintext not yet handed to the socket (before the connection is ready, or over TLS not
  // yet encrypted); the front string is consumed from pending_offset_.
  std::deque<std::string> pending_;
  size_t pending_offset_ = 0;
  size_t pending_bytes_ = 0;
  size_t queued_bytes_ = 0;  // bytes handed to uv_write not yet written
  BufferReservation held_;   // see write()
  bool above_high_ = false;

  llhttp_t parser_{};
  ResponseHead head_;
  bool head_request_ = false;
  bool request_done_ = false;
  bool in_header_value_ = false;
  size_t head_bytes_ = 0;
  bool interim_ = false;
  bool keep_alive_ = false;
  uint64_t requests_served_ = 0;
  Clock::time_point idle_since_{};
  bool in_pool_ = false;
};

// Idle keep-alive connections per target, bounded in count and age.
class UpstreamPool {
 public:
  explicit UpstreamPool(Worker& worker) : worker_(worker) {}
  // An idle connection for the target if one is alive, else a new one (connecting).
  UpstreamConnection* acquire(const UpstreamTarget& target);
  // Returns a connection whose exchange completed cleanly; closes it if it cannot be reused.
  void release(UpstreamConnection* conn, bool reusable);
  // Drops a connection that closed while idle.
  void forget(UpstreamConnection* conn);
  void close_all();
  size_t idle_count() const;

  static constexpr size_t kMaxIdlePerTarget = 64;
  static constexpr std::chrono::milliseconds kIdleExpiry{60'000};

 private:
  Worker& worker_;
  std::unordered_map<std::string, std::deque<UpstreamConnection*>> idle_;
};

}  // namespace tokentap
