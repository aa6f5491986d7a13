#include "proxy/admin/admin_server.h"

#include <llhttp.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <prometheus/text_serializer.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <string_view>

#include "common/log.h"
#include "common/text.h"
#include "proxy/http/secrets.h"
#include "proxy/net/address.h"
#include "proxy/net/listen_socket.h"

namespace tokentap {
namespace {

// After the last response of a connection, how long to keep reading (and discarding) so the
// client sees the response instead of a reset caused by its own unread bytes.
constexpr std::chrono::milliseconds kLingerTimeout{5'000};
constexpr size_t kReadBufferSize = size_t{16} * 1024;
constexpr int kListenBacklog = 128;
constexpr std::string_view kAuthorization = "authorization";
constexpr const char* kRealm = "Bearer realm=\"tokentap admin\"";

const char* reason_phrase(int status) {
  static constexpr std::pair<int, const char*> kPhrases[] = {
      {200, "OK"},
      {201, "Created"},
      {202, "Accepted"},
      {204, "No Content"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {408, "Request Timeout"},
      {409, "Conflict"},
      {413, "Content Too Large"},
      {422, "Unprocessable Content"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {503, "Service Unavailable"},
  };
  for (const auto& [code, phrase] : kPhrases) {
    if (code == status) return phrase;
  }
  return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
}

AdminResponse json_error(int status, std::string_view message) {
  AdminResponse response;
  response.status = status;
  response.content_type = "application/json";
  response.body = "{\"error\":";
  append_json_string(response.body, message);
  response.body += "}";
  return response;
}

AdminResponse text(int status, std::string body) {
  AdminResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> params;
  size_t pos = 0;
  while (pos < query.size()) {
    size_t end = std::min(query.find('&', pos), query.size());
    std::string_view param = query.substr(pos, end - pos);
    size_t eq = param.find('=');
    std::string name = percent_decode(param.substr(0, eq), true);
    std::string value =
        eq == std::string_view::npos ? "" : percent_decode(param.substr(eq + 1), true);
    if (!name.empty()) params.emplace(std::move(name), std::move(value));
    pos = end + 1;
  }
  return params;
}

uv_stream_t* as_stream(uv_tcp_t* tcp) { return reinterpret_cast<uv_stream_t*>(tcp); }
uv_handle_t* as_handle(uv_tcp_t* tcp) { return reinterpret_cast<uv_handle_t*>(tcp); }
uv_handle_t* as_handle(uv_timer_t* timer) { return reinterpret_cast<uv_handle_t*>(timer); }

void delete_tcp(uv_handle_t* handle) { delete reinterpret_cast<uv_tcp_t*>(handle); }

// The token of "Bearer <token>" (scheme case-insensitive, RFC 6750), or "" for anything else.
std::string_view bearer_token(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size() || !istarts_with(authorization, kScheme) ||
      (authorization[kScheme.size()] != ' ' && authorization[kScheme.size()] != '\t')) {
    return {};
  }
  return trim(authorization.substr(kScheme.size()));
}

}  // namespace

bool is_loopback_address(const sockaddr* address) {
  if (address == nullptr) return false;
  if (address->sa_family == AF_INET) {
    const auto* in4 = reinterpret_cast<const sockaddr_in*>(address);
    return (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
  }
  if (address->sa_family == AF_INET6) {
    const in6_addr& in6 = reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(&in6) || (IN6_IS_ADDR_V4MAPPED(&in6) && in6.s6_addr[12] == 127);
  }
  return false;
}

// One accepted connection. Owned by itself: it is deleted only from the close callback of its
// last handle, so no libuv or llhttp callback ever runs on a destroyed connection.
class AdminServer::Connection {
 public:
  explicit Connection(AdminServer* server) : server_(server) {}

  void start(uv_stream_t* listener);
  void close();
  // The server is going away: forget it (the connection is closed right after).
  void detach() { server_ = nullptr; }

 private:
  enum class State { reading, lingering, closing };

  struct WriteRequest {
    uv_write_t req{};
    Connection* connection = nullptr;
    std::string head;
    std::string body;
    size_t size = 0;
  };

  template <int (Connection::*Method)()>
  static int notify(llhttp_t* parser) {
    return (static_cast<Connection*>(parser->data)->*Method)();
  }
  template <int (Connection::*Method)(const char*, size_t)>
  static int data(llhttp_t* parser, const char* at, size_t length) {
    return (static_cast<Connection*>(parser->data)->*Method)(at, length);
  }
  static const llhttp_settings_t kSettings;

  static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_shutdown(uv_shutdown_t* req, int status);
  static void on_timer(uv_timer_t* timer);
  static void on_closed(uv_handle_t* handle);

  int on_message_begin();
  int on_url(const char* at, size_t length);
  int on_header_field(const char* at, size_t length);
  int on_header_field_complete();
  int on_header_value(const char* at, size_t length);
  int on_header_value_complete();
  int on_message_complete();

  int count_head(size_t length);
  void feed(const char* data, size_t length);
  void send(AdminResponse response, bool head_only, bool keep_alive);
  void fail(int status, std::string_view message);
  void linger();
  void maybe_resume();
  void arm_timer(std::chrono::milliseconds timeout);

  AdminServer* server_;
  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  uv_shutdown_t shutdown_req_{};
  llhttp_t parser_{};
  State state_ = State::reading;
  int open_handles_ = 0;
  size_t head_bytes_ = 0;
  int error_status_ = 400;
  std::string url_;
  bool loopback_ = false;  // the peer's address, from accept
  std::string field_;      // the header name being read, up to "authorization"'s length
  bool in_authorization_ = false;
  int authorization_headers_ = 0;
  std::string authorization_;  // bounded by max_head_bytes
  bool paused_ = false;        // parser paused and reading stopped until responses drain
  bool peer_closed_ = false;   // EOF seen while responses were still queued
  std::string leftover_;       // input received after the pause, parsed on resume
  size_t queued_bytes_ = 0;
  std::array<char, kReadBufferSize> read_buffer_{};
};

const llhttp_settings_t AdminServer::Connection::kSettings = {
    .on_message_begin = &notify<&Connection::on_message_begin>,
    .on_url = &data<&Connection::on_url>,
    .on_status = nullptr,
    .on_method = nullptr,
    .on_version = nullptr,
    .on_header_field = &data<&Connection::on_header_field>,
    .on_header_value = &data<&Connection::on_header_value>,
    .on_chunk_extension_name = nullptr,
    .on_chunk_extension_value = nullptr,
    .on_headers_complete = nullptr,
    .on_body = nullptr,
    .on_message_complete = &notify<&Connection::on_message_complete>,
    .on_url_complete = nullptr,
    .on_status_complete = nullptr,
    .on_method_complete = nullptr,
    .on_version_complete = nullptr,
    .on_header_field_complete = &notify<&Connection::on_header_field_complete>,
    .on_header_value_complete = &notify<&Connection::on_header_value_complete>,
    .on_chunk_extension_name_complete = nullptr,
    .on_chunk_extension_value_complete = nullptr,
    .on_chunk_header = nullptr,
    .on_chunk_complete = nullptr,
    .on_reset = nullptr,
};

void AdminServer::Connection::start(uv_stream_t* listener) {
  uv_loop_t* loop = listener->loop;
  uv_tcp_init(loop, &tcp_);
  uv_timer_init(loop, &timer_);
  tcp_.data = this;
  timer_.data = this;
  open_handles_ = 2;
  llhttp_init(&parser_, HTTP_REQUEST, &kSettings);
  parser_.data = this;
  if (uv_accept(listener, as_stream(&tcp_)) != 0 ||
      server_->connections_.size() > server_->options_.max_connections) {
    close();
    return;
  }
  uv_tcp_nodelay(&tcp_, 1);
  sockaddr_storage peer{};
  int peer_length = sizeof peer;
  loopback_ = uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&peer), &peer_length) == 0 &&
              is_loopback_address(reinterpret_cast<const sockaddr*>(&peer));
  if (uv_read_start(as_stream(&tcp_), on_alloc, on_read) != 0) {
    close();
    return;
  }
  arm_timer(server_->options_.idle_timeout);
}

void AdminServer::Connection::close() {
  if (state_ == State::closing) return;
  state_ = State::closing;
  uv_close(as_handle(&tcp_), on_closed);
  uv_close(as_handle(&timer_), on_closed);
}

void AdminServer::Connection::on_alloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(handle->data);
  *buf = uv_buf_init(self->read_buffer_.data(), self->read_buffer_.size());
}

void AdminServer::Connection::on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(stream->data);
  if (nread < 0) {
    if (nread == UV_EOF && self->queued_bytes_ > 0 && self->state_ != State::closing) {
      // A half-closed client still gets the responses it asked for (on_shutdown closes).
      self->peer_closed_ = true;
      if (self->state_ == State::reading) self->linger();
      return;
    }
    self->close();
    return;
  }
  if (nread == 0 || self->state_ != State::reading) return;  // lingering: discard
  self->arm_timer(self->server_->options_.idle_timeout);
  self->feed(buf->base, static_cast<size_t>(nread));
}

void AdminServer::Connection::feed(const char* data, size_t length) {
  llhttp_errno_t err = llhttp_execute(&parser_, data, length);
  if (state_ != State::reading) return;  // a callback already decided the connection's fate
  switch (err) {
    case HPE_OK:
      return;
    case HPE_PAUSED: {
      const char* stop = llhttp_get_error_pos(&parser_);
      leftover_.assign(stop, static_cast<size_t>(data + length - stop));
      paused_ = true;
      uv_read_stop(as_stream(&tcp_));
      return;
    }
    case HPE_USER:
      fail(error_status_, "request head too large");
      return;
    default:
      fail(400, "malformed request");
      return;
  }
}

int AdminServer::Connection::on_message_begin() {
  url_.clear();
  head_bytes_ = 0;
  field_.clear();
  in_authorization_ = false;
  authorization_headers_ = 0;
  authorization_.clear();
  return HPE_OK;
}

int AdminServer::Connection::count_head(size_t length) {
  head_bytes_ += length;
  if (head_bytes_ <= server_->options_.max_head_bytes) return HPE_OK;
  error_status_ = 431;
  return HPE_USER;
}

int AdminServer::Connection::on_url(const char* at, size_t length) {
  int rc = count_head(length);
  if (rc == HPE_OK) url_.append(at, length);
  return rc;
}

int AdminServer::Connection::on_header_field(const char* at, size_t length) {
  if (field_.size() <= kAuthorization.size()) {
    field_.append(at, std::min(length, kAuthorization.size() + 1 - field_.size()));
  }
  return count_head(length);
}

int AdminServer::Connection::on_header_field_complete() {
  in_authorization_ = iequals(field_, kAuthorization);
  if (in_authorization_) ++authorization_headers_;
  return HPE_OK;
}

int AdminServer::Connection::on_header_value(const char* at, size_t length) {
  int rc = count_head(length);
  if (rc == HPE_OK && in_authorization_) authorization_.append(at, length);
  return rc;
}

int AdminServer::Connection::on_header_value_complete() {
  field_.clear();
  in_authorization_ = false;
  return count_head(4);
}

int AdminServer::Connection::on_message_complete() {
  AdminRequest request;
  request.method = llhttp_method_name(static_cast<llhttp_method_t>(parser_.method));
  std::string_view url = url_;
  size_t q = url.find('?');
  request.path = std::string(url.substr(0, q));
  if (q != std::string_view::npos) {
    request.query = std::string(url.substr(q + 1));
    request.params = parse_query(request.query);
  }
  const bool head_only = parser_.method == HTTP_HEAD;
  const bool keep_alive = llhttp_should_keep_alive(&parser_) != 0 && parser_.upgrade == 0;
  const size_t max_queued = server_->options_.max_queued_response_bytes;

  AdminResponse response =
      server_->respond(request, {loopback_, authorization_headers_, authorization_});
  if (state_ != State::reading) return HPE_PAUSED;  // the handler closed the server
  send(std::move(response), head_only, keep_alive);
  if (state_ != State::reading) return HPE_PAUSED;
  if (!keep_alive) {
    linger();
    return HPE_PAUSED;
  }
  return queued_bytes_ > max_queued ? HPE_PAUSED : HPE_OK;
}

void AdminServer::Connection::send(AdminResponse response, bool head_only, bool keep_alive) {
  auto request = std::make_unique<WriteRequest>();
  request->connection = this;
  request->req.data = request.get();
  if (response.status < 200 || response.status > 599) {
    response = json_error(500, "handler returned an invalid status");
  }
  std::string& head = request->head;
  head = "HTTP/1.1 " + std::to_string(response.status) + " " + reason_phrase(response.status) +
         "\r\nContent-Type: " + response.content_type +
         "\r\nContent-Length: " + std::to_string(response.body.size()) +
         "\r\nCache-Control: no-store\r\n";
  if (response.status == 405) head += "Allow: GET, HEAD\r\n";
  for (const auto& [name, value] : response.headers)
    head.append(name).append(": ").append(value).append("\r\n");
  if (!keep_alive) {
    head += "Connection: close\r\n";
  } else if (llhttp_get_http_minor(&parser_) == 0) {
    head += "Connection: keep-alive\r\n";
  }
  head += "\r\n";
  if (!head_only) request->body = std::move(response.body);

  std::array<uv_buf_t, 2> bufs = {
      uv_buf_init(request->head.data(), static_cast<unsigned>(request->head.size())),
      uv_buf_init(request->body.data(), static_cast<unsigned>(request->body.size()))};
  const unsigned count = request->body.empty() ? 1 : 2;
  request->size = request->head.size() + request->body.size();
  if (uv_write(&request->req, as_stream(&tcp_), bufs.data(), count, on_write) != 0) {
    close();
    return;
  }
  queued_bytes_ += request->size;
  static_cast<void>(request.release());  // owned by libuv until on_write
}

void AdminServer::Connection::on_write(uv_write_t* req, int status) {
  std::unique_ptr<WriteRequest> request(static_cast<WriteRequest*>(req->data));
  Connection* self = request->connection;
  self->queued_bytes_ -= request->size;
  if (self->state_ == State::closing) return;
  if (status < 0) {
    self->close();
    return;
  }
  // Progress on a slow reader's response counts as activity, lingering or not.
  self->arm_timer(self->server_->options_.idle_timeout);
  if (self->state_ == State::reading) self->maybe_resume();
}

void AdminServer::Connection::maybe_resume() {
  if (!paused_ || queued_bytes_ > server_->options_.max_queued_response_bytes / 2) return;
  paused_ = false;
  llhttp_resume(&parser_);
  std::string input = std::move(leftover_);
  leftover_.clear();
  feed(input.data(), input.size());
  if (state_ == State::reading && !paused_ &&
      uv_read_start(as_stream(&tcp_), on_alloc, on_read) != 0) {
    close();
  }
}

void AdminServer::Connection::fail(int status, std::string_view message) {
  send(json_error(status, message), false, false);
  if (state_ == State::reading) linger();
}

void AdminServer::Connection::linger() {
  state_ = State::lingering;
  leftover_.clear();
  // uv_shutdown waits for queued writes, then sends FIN; reading on lets us see the client's EOF.
  shutdown_req_.data = this;
  if (uv_shutdown(&shutdown_req_, as_stream(&tcp_), on_shutdown) != 0) {
    close();
    return;
  }
  if (paused_) {
    paused_ = false;
    if (uv_read_start(as_stream(&tcp_), on_alloc, on_read) != 0) close();
  }
}

void AdminServer::Connection::on_shutdown(uv_shutdown_t* req, int status) {
  auto* self = static_cast<Connection*>(req->data);
  if (self->state_ == State::closing) return;
  if (status < 0) {
    self->close();
    return;
  }
  if (self->peer_closed_) {
    self->close();
    return;
  }
  self->arm_timer(std::min(kLingerTimeout, self->server_->options_.idle_timeout));
}

void AdminServer::Connection::arm_timer(std::chrono::milliseconds timeout) {
  uv_timer_start(&timer_, on_timer, static_cast<uint64_t>(timeout.count()), 0);
}

void AdminServer::Connection::on_timer(uv_timer_t* timer) {
  static_cast<Connection*>(timer->data)->close();
}

void AdminServer::Connection::on_closed(uv_handle_t* handle) {
  auto* self = static_cast<Connection*>(handle->data);
  if (--self->open_handles_ > 0) return;
  if (self->server_ != nullptr) self->server_->connections_.erase(self);
  delete self;
}

AdminServer::AdminServer(uv_loop_t* loop, std::shared_ptr<prometheus::Registry> registry,
                         std::function<bool()> is_ready, AdminOptions options)
    : loop_(loop),
      registry_(std::move(registry)),
      is_ready_(std::move(is_ready)),
      options_(options) {
  add_handler(
      "/healthz", [](const AdminRequest&) { return text(200, "ok\n"); }, AdminAccess::open);
  add_handler(
      "/readyz",
      [this](const AdminRequest&) {
        return is_ready_ && !is_ready_() ? text(503, "draining\n") : text(200, "ready\n");
      },
      AdminAccess::open);
  add_handler(
      "/metrics", [this](const AdminRequest&) { return metrics(); }, AdminAccess::open);
}

AdminServer::~AdminServer() { close(); }

void AdminServer::listen(const HostPort& address) {
  if (listener_ != nullptr) {
    throw std::runtime_error("cannot listen on " + format_host_port(address) +
                             ": already listening");
  }
  const int fd = bind_listen_socket(address, PortSharing::exclusive);
  auto fail = [&address](int err) {
    return std::runtime_error("cannot listen on " + format_host_port(address) + ": " +
                              uv_strerror(err));
  };
  auto* tcp = new uv_tcp_t;
  if (int err = uv_tcp_init(loop_, tcp); err != 0) {
    ::close(fd);
    delete tcp;
    throw fail(err);
  }
  tcp->data = this;
  if (int err = uv_tcp_open(tcp, fd); err != 0) {
    ::close(fd);  // not adopted by the handle
    uv_close(as_handle(tcp), delete_tcp);
    throw fail(err);
  }
  if (int err = uv_listen(as_stream(tcp), kListenBacklog, on_connection); err != 0) {
    uv_close(as_handle(tcp), delete_tcp);
    throw fail(err);
  }
  listener_ = tcp;
  bound_ = tokentap::bound_address(fd);
}

HostPort AdminServer::bound_address() const { return bound_; }

void AdminServer::add_handler(std::string path, Handler handler, AdminAccess access) {
  handlers_.insert_or_assign(std::move(path), Route{std::move(handler), access});
}

void AdminServer::set_token(std::string_view token) {
  Digest digest{};
  if (token.empty() || !sha256(token, digest)) {
    token_digest_.reset();
  } else {
    token_digest_ = digest;
  }
}

void AdminServer::add_collectable(std::shared_ptr<const prometheus::Collectable> collectable) {
  collectables_.push_back(std::move(collectable));
}

void AdminServer::close() {
  if (listener_ != nullptr) {
    uv_close(as_handle(listener_), delete_tcp);
    listener_ = nullptr;
  }
  std::unordered_set<Connection*> connections;
  connections.swap(connections_);
  for (Connection* connection : connections) {
    connection->detach();
    connection->close();
  }
}

void AdminServer::on_connection(uv_stream_t* listener, int status) {
  auto* server = static_cast<AdminServer*>(listener->data);
  if (status < 0) {
    diag(LogLevel::warn, "admin listener accept failed", {{"error", uv_strerror(status)}});
    return;
  }
  auto* connection = new Connection(server);
  server->connections_.insert(connection);
  connection->start(listener);
}

std::optional<AdminResponse> AdminServer::refuse(const Credentials& credentials) const {
  if (credentials.loopback) return std::nullopt;
  if (!token_digest_) {
    return json_error(403,
                      "this endpoint answers loopback clients only: set admin.token_file to "
                      "let other clients in with a bearer token");
  }
  // Both sides are hashed first, so the comparison takes the same time whatever the length or
  // content of the token sent.
  std::string_view token =
      credentials.authorization_headers == 1 ? bearer_token(credentials.authorization) : "";
  Digest presented{};
  if (!token.empty() && sha256(token, presented) &&
      CRYPTO_memcmp(presented.data(), token_digest_->data(), presented.size()) == 0) {
    return std::nullopt;
  }
  AdminResponse response = json_error(
      401, token.empty() ? "a bearer token is required (Authorization: Bearer <admin token>)"
                         : "invalid bearer token");
  response.headers.emplace_back(
      "WWW-Authenticate",
      token.empty() ? std::string(kRealm) : std::string(kRealm) + ", error=\"invalid_token\"");
  return response;
}

AdminResponse AdminServer::respond(const AdminRequest& request,
                                   const Credentials& credentials) const {
  auto route = handlers_.find(request.path);
  if (route == handlers_.end()) return json_error(404, "not found");
  if (route->second.access == AdminAccess::token) {
    if (std::optional<AdminResponse> refused = refuse(credentials)) return std::move(*refused);
  }
  if (request.method != "GET" && request.method != "HEAD") {
    return json_error(405, "method not allowed");
  }
  try {
    return route->second.handler(request);
  } catch (const std::exception& e) {
    diag(LogLevel::error, "admin handler failed", {{"path", request.path}, {"error", e.what()}});
  } catch (...) {
    diag(LogLevel::error, "admin handler failed", {{"path", request.path}});
  }
  return json_error(500, "internal error");
}

AdminResponse AdminServer::metrics() const {
  std::vector<prometheus::MetricFamily> families;
  if (registry_) families = registry_->Collect();
  for (prometheus::MetricFamily& family : process_.Collect()) families.push_back(std::move(family));
  for (const auto& collectable : collectables_) {
    for (prometheus::MetricFamily& family : collectable->Collect()) {
      families.push_back(std::move(family));
    }
  }
  AdminResponse response;
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  response.body = prometheus::TextSerializer().Serialize(families);
  return response;
}

}  // namespace tokentap
