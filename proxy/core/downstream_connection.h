// Downstream side: one DownstreamConnection per accepted client connection. It parses
// requests with llhttp, serves them one at a time in order (pipelined bytes wait, bounded),
// forwards each to an UpstreamConnection and streams the response back.
//
// Lifetime: owned by its Worker; freed from the libuv close callbacks of its handles after
// close_now(), never from inside one of its own callbacks.
#pragma once

#include <llhttp.h>
#include <uv.h>

#include <memory>
#include <optional>
#include <string>

#include "proxy/core/request_context.h"
#include "proxy/core/upstream_connection.h"
#include "proxy/http/http1.h"

namespace tokentap {

class Worker;

class DownstreamConnection final : public UpstreamHandler {
 public:
  explicit DownstreamConnection(Worker& worker);
  DownstreamConnection(const DownstreamConnection&) = delete;
  DownstreamConnection& operator=(const DownstreamConnection&) = delete;

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }
  // After a successful uv_accept: start reading the first request.
  void start();
  // Over limits.max_connections: answer 503 and close.
  void reject_overloaded();
  // Graceful shutdown: close when idle, or after the response in progress.
  void drain();
  // Drain deadline: abort whatever is in progress and close.
  void force_close();

  // UpstreamHandler.
  void on_upstream_connected() override;
  void on_upstream_response_head(ResponseHead& head) override;
  void on_upstream_body(std::string_view data) override;
  void on_upstream_complete() override;
  void on_upstream_failed(ErrorType type, std::string detail) override;
  void on_upstream_writable() override;
  void on_upstream_read_done() override;

 private:
  struct Active;  // the request being served

  static const llhttp_settings_t kParserSettings;
  int on_message_begin();
  int on_url(const char* at, size_t len);
  int on_header_field(const char* at, size_t len);
  int on_header_value(const char* at, size_t len);
  int on_header_field_complete();
  int on_chunk_extension(size_t len);
  int on_headers_complete();
  int on_body(const char* at, size_t len);
  int on_message_complete();

  void on_read(ssize_t nread, const uv_buf_t* buf);
  void parse(const char* data, size_t len);
  bool count_head_bytes(size_t len);
  void begin_request();
  bool prepare_request();
  // Asks the worker's admission policies in order, before any upstream contact: answers the
  // first rejection and returns false.
  bool admit_request();
  void start_upstream();
  std::string upstream_request_head();
  bool reserve_body(uint64_t capacity);
  void send_request_body(std::string_view data);
  void finish_request_body();

  // `retry` overrides retry_advice(type) (see proxy/http/http1.h).
  void respond_error(ErrorType type, const std::string& message,
                     std::optional<RetryAdvice> retry = std::nullopt);
  // Tells the observer, the core counters and then every completion sink that the request
  // ended; once per request.
  void finish_request();
  // Any byte of a request (line, header or body) was read for the active request.
  bool request_arrived() const;
  // The one way a request ends without a complete answer (the client went away, the drain
  // deadline, the connection closing): closes its upstream and finishes it with `type`, or
  // retires it silently when nothing of it arrived (an idle keep-alive connection). No-op
  // when there is no unfinished request.
  void abandon_request(ErrorType type, std::string detail);
  void close_upstream();
  void response_done();
  void continue_after_response();
  void client_gone(std::string detail);
  // Response bytes from the upstream are held while one upstream read is processed and leave
  // together when it is done (head, body and last chunk of a small response in one write).
  void hold_client(std::string data);
  void flush_client();
  // An answer of tokentap's own: written at once, after anything held.
  void write_client(std::string data);
  // Frames response body bytes for the client (chunked or as is) and counts them.
  void send_client_body(std::string_view data);
  void on_write_done(size_t bytes, int status);
  void pause_reading();
  void resume_reading();
  void arm_timer(uint64_t ms, uv_timer_cb cb);
  void on_head_timeout();
  void close_after_flush();
  void close_now();

  Worker& worker_;
  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  uv_idle_t next_request_{};  // runs continue_after_response() on the next loop iteration
  int open_handles_ = 0;
  bool closing_ = false;
  bool shutting_down_write_ = false;
  bool reading_ = false;
  bool draining_ = false;
  std::string client_address_;

  llhttp_t parser_{};
  std::unique_ptr<Active> active_;
  std::string pipelined_;        // bytes of later requests, parsed after the current one ends
  size_t queued_to_client_ = 0;  // held or queued in libuv, not yet written
  std::string held_;             // see hold_client()
  bool upstream_read_paused_ = false;
};

}  // namespace tokentap
