// The admin listener: a small HTTP/1.1 server for health checks, Prometheus scrapes and the
// JSON endpoints later added through add_handler().
//
// Access: the built-in paths are open to every client (probes and scrapers carry no
// credentials). A handler added with AdminAccess::token (the default) is served to a client on
// loopback (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104) as is; any other client must send
// "Authorization: Bearer <token>" with the token given to set_token(), else it gets 401 with
// "WWW-Authenticate: Bearer". Without a token every non-loopback client gets 403. The token is
// compared in constant time and kept only as its SHA-256 digest.
//
// It runs on a libuv loop owned by the caller (the main thread's loop, never a proxy worker's),
// and every method must be called on that loop's thread; listen() and add_handler() may also be
// called before the loop runs. Built-in paths: GET /healthz -> 200 "ok"; GET /readyz -> 200
// "ready" or 503 "draining" from is_ready(); GET /metrics -> the Prometheus text format of the
// registry, the process metrics and any added collectables. Only GET and HEAD are served (405
// otherwise); unknown paths get 404 with a JSON error body. Connections are kept alive, requests
// may be pipelined, a request head over max_head_bytes gets 431 and idle connections are closed.
//
// close() stops listening and closes every connection through uv_close, after which the loop
// ends once it has run the close callbacks. The server may be destroyed any time after close()
// (the destructor calls it), but the loop must run afterwards to release the handles.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/registry.h>
#include <sys/socket.h>
#include <uv.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "config/config.h"
#include "proxy/telemetry/process_metrics.h"

namespace tokentap {

struct AdminRequest {
  std::string method;  // "GET" or "HEAD": other methods never reach a handler
  std::string path;    // request-target before '?', as received (not percent-decoded)
  std::string query;   // raw text after '?', "" when absent
  std::map<std::string, std::string> params;  // decoded query; the first occurrence of a name wins
};

struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  // Sent after the standard ones; names and values must be valid header text.
  std::vector<std::pair<std::string, std::string>> headers = {};
};

using AdminHandler = std::function<AdminResponse(const AdminRequest&)>;

// Who may call a path: anyone, or a loopback client or one with the bearer token.
enum class AdminAccess { open, token };

// True for 127.0.0.0/8, ::1 and IPv4-mapped 127.0.0.0/8 (::ffff:127.x.y.z).
bool is_loopback_address(const sockaddr* address);

struct AdminOptions {
  std::chrono::milliseconds idle_timeout{60'000};
  // Approximate: request line, header names and values plus 4 bytes per header.
  size_t max_head_bytes = size_t{16} * 1024;
  size_t max_connections = 64;
  // Response bytes queued on one connection above which it stops reading (pipelining flood).
  size_t max_queued_response_bytes = 1 << 20;
};

class AdminServer {
 public:
  using Handler = AdminHandler;

  AdminServer(uv_loop_t* loop, std::shared_ptr<prometheus::Registry> registry,
              std::function<bool()> is_ready, AdminOptions options = {});
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds and listens (a host name is resolved, blocking, and its first address used). Throws
  // std::runtime_error("cannot listen on HOST:PORT: <reason>").
  void listen(const HostPort& address);
  // The address actually bound (the real port when 0 was asked). Valid after listen().
  HostPort bound_address() const;
  // Serves GET/HEAD `path` (exact match, without query) with `handler` to the clients `access`
  // allows; replaces any previous handler for the path, built-ins included. A handler that
  // throws yields a 500.
  void add_handler(std::string path, Handler handler, AdminAccess access = AdminAccess::token);
  // The bearer token that AdminAccess::token paths require from non-loopback clients; empty:
  // refuse them all. Takes effect for the next request.
  void set_token(std::string_view token);
  // Adds a collectable to what /metrics reports, after the registry and the process metrics.
  void add_collectable(std::shared_ptr<const prometheus::Collectable> collectable);
  // Stops listening and closes all connections. Idempotent.
  void close();
  size_t connection_count() const { return connections_.size(); }

 private:
  class Connection;
  struct Route {
    Handler handler;
    AdminAccess access;
  };
  // What a request carries to be let in: where it came from and its Authorization header.
  struct Credentials {
    bool loopback = false;
    int authorization_headers = 0;
    std::string_view authorization;
  };
  using Digest = std::array<unsigned char, 32>;

  static void on_connection(uv_stream_t* listener, int status);
  AdminResponse respond(const AdminRequest& request, const Credentials& credentials) const;
  std::optional<AdminResponse> refuse(const Credentials& credentials) const;
  AdminResponse metrics() const;

  uv_loop_t* loop_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::function<bool()> is_ready_;
  AdminOptions options_;
  ProcessCollector process_;
  std::vector<std::shared_ptr<const prometheus::Collectable>> collectables_;
  std::map<std::string, Route, std::less<>> handlers_;
  std::optional<Digest> token_digest_;
  uv_tcp_t* listener_ = nullptr;  // heap-allocated: its close callback may outlive the server
  HostPort bound_;
  std::unordered_set<Connection*> connections_;
};

}  // namespace tokentap
