// DownstreamConnection, the request side: head callbacks, preparing and admitting the request,
// the request body towards the upstream.
#include <algorithm>
#include <charconv>
#include <utility>

#include "common/log.h"
#include "proxy/core/downstream_active.h"
#include "proxy/core/downstream_connection.h"
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

constexpr size_t kMaxChunkExtensionBytes = 1024;

// A chunked JSON body of unknown length grows by doubling, and straight to the limit once past
// half of it (copying a buffer of nearly the limit into one of exactly the limit would hold two).
uint64_t next_body_capacity(uint64_t size, uint64_t capacity, uint64_t limit) {
  uint64_t next = std::max<uint64_t>({size, 2 * capacity, uint64_t{16} * 1024});
  return next > limit / 2 ? std::max(size, limit) : next;
}

}  // namespace

bool DownstreamConnection::count_head_bytes(size_t len) {
  active_->head_bytes += len;
  return active_->head_bytes <= active_->config->limits.max_header_bytes;
}

int DownstreamConnection::on_message_begin() {
  begin_request();
  return 0;
}

void DownstreamConnection::begin_request() {
  active_ = std::make_unique<Active>();
  active_->runtime = worker_.runtime();
  active_->config = active_->runtime->config;
  active_->ctx.start = Clock::now();
  active_->ctx.client_address = client_address_;
  active_->ctx.agent = active_->config->agent.name;
  // Every answer, even a 400 for garbage, carries a request id; a sane client one replaces it.
  active_->ctx.request_id = uuid_v4(worker_.rng());
  worker_.metrics().core().inflight.Increment();
}

int DownstreamConnection::on_url(const char* at, size_t len) {
  if (!count_head_bytes(len)) {
    respond_error(ErrorType::headers_too_large,
                  "request line and headers exceed limits.max_header_bytes");
    return -1;
  }
  active_->target.append(at, len);
  return 0;
}

int DownstreamConnection::on_header_field(const char* at, size_t len) {
  if (!count_head_bytes(len)) {
    respond_error(ErrorType::headers_too_large, "request headers exceed limits.max_header_bytes");
    return -1;
  }
  HeaderList& headers = active_->headers;
  if (active_->in_header_value || headers.empty()) {
    if (headers.size() >= active_->config->limits.max_headers) {
      respond_error(ErrorType::headers_too_large, "more request headers than limits.max_headers");
      return -1;
    }
    headers.push_back(Header{});
    active_->in_header_value = false;
  }
  headers.back().name.append(at, len);
  return 0;
}

int DownstreamConnection::on_header_field_complete() {
  // llhttp 8.1 is lenient about some field-name bytes; a name must be a strict token.
  if (!is_token(active_->headers.back().name)) {
    respond_error(ErrorType::bad_request, "invalid header field name");
    return -1;
  }
  return 0;
}

int DownstreamConnection::on_header_value(const char* at, size_t len) {
  if (!count_head_bytes(len)) {
    respond_error(ErrorType::headers_too_large, "request headers exceed limits.max_header_bytes");
    return -1;
  }
  active_->in_header_value = true;
  active_->headers.back().value.append(at, len);
  return 0;
}

int DownstreamConnection::on_chunk_extension(size_t len) {
  active_->chunk_extension_bytes += len;
  if (active_->chunk_extension_bytes > kMaxChunkExtensionBytes) {
    respond_error(ErrorType::bad_request, "chunk extensions too long");
    return -1;
  }
  return 0;
}

int DownstreamConnection::on_headers_complete() {
  active_->headers_done = true;
  uv_timer_stop(&timer_);
  if (!prepare_request()) return -1;
  if (!active_->buffer_body) start_upstream();
  if (closing_) return -1;
  return 0;
}

// Fills the context from the request head; answers and returns false when the request
// cannot be proxied.
bool DownstreamConnection::prepare_request() {
  Active& a = *active_;
  RequestContext& ctx = a.ctx;
  const Config& config = *a.config;
  ctx.method = llhttp_method_name(static_cast<llhttp_method_t>(parser_.method));
  ctx.path = redact_target(a.target);
  a.head_request = parser_.method == HTTP_HEAD;
  a.http10 = parser_.http_major == 1 && parser_.http_minor == 0;
  a.client_keep_alive = llhttp_should_keep_alive(&parser_) != 0;
  a.request_chunked = (parser_.flags & F_CHUNKED) != 0;
  a.has_content_length = (parser_.flags & F_CONTENT_LENGTH) != 0;
  a.content_length = a.has_content_length ? parser_.content_length : 0;
  a.request_has_body = a.request_chunked || a.content_length > 0;

  const std::string* rid = find_header(a.headers, config.request_id_header);
  if (rid && is_sane_request_id(*rid)) ctx.request_id = *rid;
  if (const std::string* agent = find_header(a.headers, config.agent.header);
      agent && !agent->empty()) {
    ctx.agent = bounded_identity(*agent);
  }
  if (const std::string* session = find_header(a.headers, config.session_header)) {
    ctx.session = bounded_identity(*session);
  }
  ctx.key_id = key_id(extract_api_key(a.headers, a.target));

  // RFC 9112 §6.3: a request whose Transfer-Encoding does not end in chunked has no knowable
  // length; forwarding it is how requests are smuggled. llhttp 8.1 lets it through.
  if ((parser_.flags & F_TRANSFER_ENCODING) != 0 && (parser_.flags & F_CHUNKED) == 0) {
    respond_error(ErrorType::bad_request, "Transfer-Encoding must end with chunked");
    return false;
  }
  // The body goes upstream re-framed as chunked with Transfer-Encoding dropped, so any other
  // coding ("gzip, chunked") would silently vanish: only chunked alone is accepted.
  if (a.request_chunked &&
      list_tokens(a.headers, "transfer-encoding") != std::vector<std::string>{"chunked"}) {
    respond_error(ErrorType::bad_request, "only the chunked transfer coding is supported");
    return false;
  }
  // RFC 9112 §3.2: an HTTP/1.1 request without Host, or any request with two, is a 400.
  auto hosts = std::count_if(a.headers.begin(), a.headers.end(),
                             [](const Header& h) { return iequals(h.name, "host"); });
  if (hosts > 1 || (hosts == 0 && !a.http10)) {
    respond_error(ErrorType::bad_request, "a request needs exactly one Host header");
    return false;
  }
  if (parser_.http_major != 1) {
    respond_error(ErrorType::bad_request, "only HTTP/1.0 and HTTP/1.1 are supported");
    return false;
  }
  if (parser_.method == HTTP_CONNECT || a.target.empty() || a.target.front() != '/') {
    respond_error(ErrorType::bad_request, "only origin-form request targets are proxied");
    return false;
  }
  ctx.route = match_route(config.routes, split_target(a.target).path);
  if (ctx.route == nullptr) {
    respond_error(ErrorType::no_route, "no route matches this path");
    return false;
  }
  const std::string* content_type = find_header(a.headers, "content-type");
  a.buffer_body = a.request_has_body && content_type && is_json_content_type(*content_type);
  ctx.request_is_json = a.buffer_body;
  ctx.upstream_path = redact_target(upstream_target(*ctx.route, a.target));
  // From here on the observer sees the request whatever its outcome: a request refused below
  // is metered like any other.
  if (a.observer == nullptr && worker_.shared().observer_factory) {
    a.observer = worker_.shared().observer_factory(worker_.index(), a.runtime);
  }
  if (a.observer) a.observer->on_request_headers(ctx, a.headers);
  for (const std::unique_ptr<HeaderStage>& stage : worker_.pipeline().header_stages) {
    stage->on_request_head(ctx, a.headers, a.edits);
  }
  if (a.has_content_length && a.content_length > config.limits.max_request_body) {
    respond_error(ErrorType::request_too_large, "request body of " +
                                                    std::to_string(a.content_length) +
                                                    " bytes exceeds limits.max_request_body");
    return false;
  }
  // A buffered body is admitted once it has arrived, so that a refusal carries its model.
  if (!a.buffer_body && !admit_request()) return false;
  if (a.buffer_body) {
    a.body_reservation = BufferReservation(worker_.shared().request_buffers,
                                           config.limits.max_buffered_request_bytes);
    if (!reserve_body(a.content_length)) return false;
  }

  if (const std::string* expect = find_header(a.headers, "expect");
      expect && iequals(*expect, "100-continue") && a.request_has_body && !a.http10) {
    write_client("HTTP/1.1 100 Continue\r\n\r\n");
  }
  // Body reads are bounded in time by the idle timeout.
  arm_timer(static_cast<uint64_t>(config.timeouts.idle.count()),
            [](uv_timer_t* t) { self(t)->on_head_timeout(); });
  return true;
}

bool DownstreamConnection::admit_request() {
  for (const std::unique_ptr<AdmissionPolicy>& policy : worker_.pipeline().admission) {
    if (std::optional<Rejection> rejection = policy->admit(active_->ctx)) {
      respond_error(rejection->type, rejection->message, rejection->retry);
      return false;
    }
  }
  return true;
}

std::string DownstreamConnection::upstream_request_head() {
  const Active& a = *active_;
  // A buffered body goes as one Content-Length body (maybe rewritten); a streamed one as the
  // client framed it.
  bool length = a.buffer_body || (!a.request_chunked && a.has_content_length);
  return tokentap::upstream_request_head(
      ForwardedRequest{.method = llhttp_method_name(static_cast<llhttp_method_t>(parser_.method)),
                       .target = a.target,
                       .headers = a.headers,
                       .request_id = a.ctx.request_id,
                       .identity_encoding = a.body_replaced,
                       .has_content_length = length,
                       .content_length = a.buffer_body ? a.body.size() : a.content_length,
                       .chunked = !a.buffer_body && a.request_chunked,
                       .drop = a.edits.request_drop,
                       .added_lines = a.edits.request_lines},
      *a.ctx.route, *a.config);
}

void DownstreamConnection::start_upstream() {
  Active& a = *active_;
  UpstreamConnection* conn = worker_.pool().acquire(a.runtime->target_for(*a.ctx.route));
  a.ctx.reused_connection = conn->reused();
  worker_.metrics().upstream_connection(a.ctx.route->name, a.ctx.reused_connection).Increment();
  a.upstream = conn;
  conn->attach(
      this,
      {.head_request = a.head_request, .timeouts = a.config->timeouts, .route = a.ctx.route->name});
  if (a.upstream == nullptr) return;           // failed synchronously; already answered
  std::string head = upstream_request_head();  // reads a.body.size(): before the move below
  if (a.buffer_body) {
    // One writev; the body and its budget reservation move to the connection, no copy.
    conn->write(std::move(head), std::move(a.body), std::move(a.body_reservation));
    a.body.clear();
  } else {
    conn->write(std::move(head));
  }
}

int DownstreamConnection::on_body(const char* at, size_t len) {
  Active& a = *active_;
  if (a.finished || a.response_started) return 0;  // answered early: drain, do not forward
  a.ctx.request_body_bytes += len;
  if (a.ctx.request_body_bytes > a.config->limits.max_request_body) {
    respond_error(ErrorType::request_too_large, "request body exceeds limits.max_request_body");
    return -1;
  }
  arm_timer(static_cast<uint64_t>(a.config->timeouts.idle.count()),
            [](uv_timer_t* t) { self(t)->on_head_timeout(); });
  if (a.buffer_body) {
    if (a.body.size() + len > a.body.capacity() &&
        !reserve_body(next_body_capacity(a.body.size() + len, a.body.capacity(),
                                         a.config->limits.max_request_body))) {
      return -1;
    }
    a.body.append(at, len);
    return 0;
  }
  if (a.observer) a.observer->on_request_body(a.ctx, std::string_view(at, len));
  send_request_body(std::string_view(at, len));
  return closing_ ? -1 : 0;
}

// Grows the buffered body to `capacity` bytes against the process-wide budget of buffered
// request bytes; answers 503 request_buffer_full and returns false when it is used up.
bool DownstreamConnection::reserve_body(uint64_t capacity) {
  Active& a = *active_;
  if (!a.body_reservation.grow_to(capacity)) {
    if (RequestBufferBudget* budget = worker_.shared().request_buffers) budget->count_refusal();
    respond_error(ErrorType::request_buffer_full,
                  "request bodies buffered by tokentap exceed "
                  "limits.max_buffered_request_bytes; retry later");
    return false;
  }
  if (capacity > a.body.capacity()) {
    // Not body.reserve(): libstdc++ rounds a request below twice the capacity up to that.
    std::string grown;
    grown.reserve(capacity);
    grown.append(a.body);
    a.body.swap(grown);
  }
  return true;
}

void DownstreamConnection::send_request_body(std::string_view data) {
  Active& a = *active_;
  if (a.upstream == nullptr) return;
  if (a.request_chunked) {
    std::string framed = hex(data.size());
    framed += "\r\n";
    framed += data;
    framed += "\r\n";
    a.upstream->write(std::move(framed));
  } else {
    a.upstream->write(std::string(data));
  }
  if (a.upstream && a.upstream->queued_bytes() > kHighWatermark) pause_reading();
}

int DownstreamConnection::on_message_complete() {
  Active& a = *active_;
  a.request_complete = true;
  uv_timer_stop(&timer_);
  if (a.finished || a.response_started) return HPE_PAUSED;  // answered early (error)
  if (a.buffer_body) {
    if (a.observer) a.observer->on_request_body(a.ctx, a.body);
    if (!admit_request()) return HPE_PAUSED;
    if (a.observer) {
      if (auto replaced = a.observer->replace_request_body(a.ctx, a.body)) {
        a.body = std::move(*replaced);
        a.body_replaced = true;
        if (!reserve_body(a.body.capacity())) return HPE_PAUSED;
      }
    }
    start_upstream();
    if (closing_ || active_ == nullptr) return HPE_PAUSED;
  } else if (a.request_chunked && a.upstream) {
    a.upstream->write("0\r\n\r\n");
  }
  if (active_ && active_->upstream) active_->upstream->request_finished();
  return HPE_PAUSED;
}

}  // namespace tokentap
