#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <prometheus/counter.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <thread>

#include "proxy/admin/admin_server.h"

namespace tokentap {
namespace {

// An AdminServer on its own loop, run by a background thread; stop() closes it from the loop
// thread through an async handle and joins.
class TestServer {
 public:
  explicit TestServer(AdminOptions options = {},
                      const std::function<void(AdminServer&)>& setup = {},
                      const std::string& host = "127.0.0.1") {
    std::signal(SIGPIPE, SIG_IGN);
    REQUIRE(uv_loop_init(&loop_) == 0);
    server_ = std::make_unique<AdminServer>(
        &loop_, registry_, [this] { return ready.load(); }, options);
    if (setup) setup(*server_);
    server_->listen({host, 0});
    REQUIRE(uv_async_init(&loop_, &stop_, on_stop) == 0);
    stop_.data = this;
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }
  ~TestServer() { stop(); }

  // Closes the server and returns uv_loop_close()'s result: 0 when every handle was released.
  int stop() {
    if (!thread_.joinable()) return 0;
    uv_async_send(&stop_);
    thread_.join();
    return uv_loop_close(&loop_);
  }

  uint16_t port() const { return server_->bound_address().port; }
  prometheus::Registry& registry() { return *registry_; }

  std::atomic<bool> ready{true};

 private:
  static void on_stop(uv_async_t* async) {
    static_cast<TestServer*>(async->data)->server_->close();
    uv_close(reinterpret_cast<uv_handle_t*>(async), nullptr);
  }

  uv_loop_t loop_{};
  uv_async_t stop_{};
  std::shared_ptr<prometheus::Registry> registry_ = std::make_shared<prometheus::Registry>();
  std::unique_ptr<AdminServer> server_;
  std::thread thread_;
};

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// A blocking HTTP/1.1 client. The socket timeouts only keep a broken test from hanging forever.
class Client {
 public:
  explicit Client(uint16_t port, const std::string& host = "127.0.0.1") {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    timeval timeout{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    REQUIRE(inet_pton(AF_INET, host.c_str(), &addr.sin_addr) == 1);
    REQUIRE(connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void send(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::runtime_error(std::string("send: ") + std::strerror(errno));
      data.remove_prefix(static_cast<size_t>(n));
    }
  }

  Response read_response(bool head_only = false) {
    size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) throw std::runtime_error("connection closed before the response head");
    }
    Response response;
    std::string head = buffer_.substr(0, end + 2);
    buffer_.erase(0, end + 4);
    size_t line_end = head.find("\r\n");
    std::string status_line = head.substr(0, line_end);
    REQUIRE(status_line.rfind("HTTP/1.1 ", 0) == 0);
    response.status = std::stoi(status_line.substr(9, 3));
    size_t pos = line_end + 2;
    while (pos < head.size()) {
      size_t next = head.find("\r\n", pos);
      std::string line = head.substr(pos, next - pos);
      size_t colon = line.find(':');
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      response.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
      pos = next + 2;
    }
    size_t length = std::stoul(response.headers.at("content-length"));
    if (head_only) return response;
    while (buffer_.size() < length) {
      if (!fill()) throw std::runtime_error("connection closed before the response body");
    }
    response.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    return response;
  }

  void shutdown_write() { REQUIRE(::shutdown(fd_, SHUT_WR) == 0); }

  // True when the server closed the connection with nothing left unread.
  bool closed_by_server() { return buffer_.empty() && !fill(); }

  Response fetch(const std::string& method, const std::string& target,
                 const std::string& extra_headers = "") {
    send(method + " " + target + " HTTP/1.1\r\nHost: admin\r\n" + extra_headers + "\r\n");
    return read_response(method == "HEAD");
  }

 private:
  bool fill() {
    char buf[65536];
    ssize_t n;
    do {
      n = ::recv(fd_, buf, sizeof buf, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == ECONNRESET) return false;  // closed with our bytes still unread
    if (n < 0) throw std::runtime_error(std::string("recv: ") + std::strerror(errno));
    buffer_.append(buf, static_cast<size_t>(n));
    return n > 0;
  }

  int fd_ = -1;
  std::string buffer_;
};

TEST_CASE("admin /healthz answers ok", "[admin]") {
  TestServer server;
  Client client(server.port());
  Response response = client.fetch("GET", "/healthz");
  CHECK(response.status == 200);
  CHECK(response.body == "ok\n");
  CHECK(response.headers["content-type"] == "text/plain; charset=utf-8");
  CHECK(response.headers.count("connection") == 0);
  CHECK(server.stop() == 0);
}

TEST_CASE("admin /readyz follows is_ready", "[admin]") {
  TestServer server;
  Client client(server.port());
  Response ready = client.fetch("GET", "/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.body == "ready\n");
  server.ready = false;
  Response draining = client.fetch("GET", "/readyz");
  CHECK(draining.status == 503);
  CHECK(draining.body == "draining\n");
}

class FixedCollectable : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    prometheus::MetricFamily family;
    family.name = "extra_things";
    family.help = "Things from an added collectable.";
    family.type = prometheus::MetricType::Gauge;
    family.metric.emplace_back();
    family.metric.back().gauge.value = 42;
    return {family};
  }
};

TEST_CASE("admin /metrics serves the registry, process metrics and collectables", "[admin]") {
  TestServer server(
      {}, [](AdminServer& admin) { admin.add_collectable(std::make_shared<FixedCollectable>()); });
  prometheus::BuildCounter()
      .Name("test_hits_total")
      .Help("Hits counted by the test.")
      .Register(server.registry())
      .Add({{"route", "/v1"}})
      .Increment(3);
  Client client(server.port());
  Response response = client.fetch("GET", "/metrics");
  CHECK(response.status == 200);
  CHECK(response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8");
  CHECK_THAT(response.body, Catch::Contains("# TYPE test_hits_total counter"));
  CHECK_THAT(response.body, Catch::Contains("test_hits_total{route=\"/v1\"} 3"));
  CHECK_THAT(response.body, Catch::Contains("# TYPE process_resident_memory_bytes gauge"));
  CHECK_THAT(response.body, Catch::Contains("process_cpu_seconds_total "));
  CHECK_THAT(response.body, Catch::Contains("process_open_fds "));
  CHECK_THAT(response.body, Catch::Contains("extra_things 42"));
}

TEST_CASE("admin answers 404 and 405 with JSON bodies and keeps the connection", "[admin]") {
  TestServer server;
  Client client(server.port());
  Response missing = client.fetch("GET", "/nope");
  CHECK(missing.status == 404);
  CHECK(missing.headers["content-type"] == "application/json");
  CHECK(missing.body == R"({"error":"not found"})");

  client.send("POST /healthz HTTP/1.1\r\nHost: admin\r\nContent-Length: 5\r\n\r\nhello");
  Response post = client.read_response();
  CHECK(post.status == 405);
  CHECK(post.headers["allow"] == "GET, HEAD");
  CHECK(post.body == R"({"error":"method not allowed"})");

  CHECK(client.fetch("DELETE", "/metrics").status == 405);
  CHECK(client.fetch("GET", "/healthz").status == 200);
}

TEST_CASE("admin HEAD sends headers without a body", "[admin]") {
  TestServer server;
  Client client(server.port());
  Response head = client.fetch("HEAD", "/healthz");
  CHECK(head.status == 200);
  CHECK(head.headers["content-length"] == "3");
  // Had a body been sent, it would be read as the start of this response.
  Response next = client.fetch("GET", "/readyz");
  CHECK(next.status == 200);
  CHECK(next.body == "ready\n");
}

TEST_CASE("admin keeps connections alive and answers pipelined requests in order", "[admin]") {
  TestServer server;
  Client client(server.port());
  CHECK(client.fetch("GET", "/healthz").body == "ok\n");
  CHECK(client.fetch("GET", "/readyz").body == "ready\n");

  client.send(
      "GET /readyz HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\n"
      "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
  CHECK(client.read_response().body == "ready\n");
  CHECK(client.read_response().status == 404);
  CHECK(client.read_response().body == "ok\n");
}

TEST_CASE("admin parses a request arriving one byte at a time", "[admin]") {
  TestServer server;
  Client client(server.port());
  for (char c : std::string("GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n")) {
    client.send(std::string_view(&c, 1));
  }
  CHECK(client.read_response().status == 200);
}

TEST_CASE("admin closes after Connection: close and HTTP/1.0", "[admin]") {
  TestServer server;
  {
    Client client(server.port());
    client.send("GET /healthz HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    Response response = client.read_response();
    CHECK(response.status == 200);
    CHECK(response.headers["connection"] == "close");
    CHECK(client.closed_by_server());
  }
  {
    Client client(server.port());
    client.send("GET /healthz HTTP/1.0\r\n\r\n");
    CHECK(client.read_response().status == 200);
    CHECK(client.closed_by_server());
  }
  {
    Client client(server.port());
    client.send("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    Response response = client.read_response();
    CHECK(response.headers["connection"] == "keep-alive");
    CHECK(client.fetch("GET", "/readyz").status == 200);
  }
}

TEST_CASE("admin finishes responses to a client that half-closed", "[admin]") {
  const std::string big(8 << 20, 'y');
  AdminOptions options;
  options.max_queued_response_bytes = 64 << 20;  // keep reading, so the EOF is seen early
  TestServer server(options, [&big](AdminServer& admin) {
    admin.add_handler("/big", [&big](const AdminRequest&) { return AdminResponse{200, "x", big}; });
  });
  Client client(server.port());
  client.send("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /big HTTP/1.1\r\nHost: a\r\n\r\n");
  client.shutdown_write();
  CHECK(client.read_response().body == "ok\n");
  Response response = client.read_response();
  CHECK(response.status == 200);
  CHECK(response.body == big);
  CHECK(client.closed_by_server());
}

TEST_CASE("admin answers upgrade and CONNECT requests, then closes", "[admin]") {
  TestServer server;
  {
    Client client(server.port());
    client.send(
        "GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    Response response = client.read_response();
    CHECK(response.status == 200);
    CHECK(response.headers["connection"] == "close");
    CHECK(client.closed_by_server());
  }
  {
    Client client(server.port());
    client.send("CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n");
    CHECK(client.read_response().status == 404);
    CHECK(client.closed_by_server());
  }
}

TEST_CASE("admin rejects an oversized request head with 431", "[admin]") {
  TestServer server;
  Client client(server.port());
  client.send("GET /healthz HTTP/1.1\r\nHost: admin\r\nX-Big: " + std::string(20'000, 'a') +
              "\r\n\r\n");
  Response response = client.read_response();
  CHECK(response.status == 431);
  CHECK(response.headers["connection"] == "close");
  CHECK(client.closed_by_server());
}

TEST_CASE("admin rejects a malformed request with 400", "[admin]") {
  TestServer server;
  Client client(server.port());
  client.send("THIS IS NOT HTTP\r\n\r\n");
  Response response = client.read_response();
  CHECK(response.status == 400);
  CHECK(response.body == R"({"error":"malformed request"})");
  CHECK(client.closed_by_server());
}

TEST_CASE("admin handlers get the decoded query and may throw", "[admin]") {
  TestServer server({}, [](AdminServer& admin) {
    admin.add_handler("/api/echo", [](const AdminRequest& request) {
      AdminResponse response;
      response.content_type = "application/json";
      response.body = request.method + "|" + request.path + "|" + request.query + "|";
      for (const auto& [name, value] : request.params) response.body += name + "=" + value + ";";
      return response;
    });
    admin.add_handler("/api/broken", [](const AdminRequest&) -> AdminResponse {
      throw std::runtime_error("boom");
    });
  });
  Client client(server.port());
  Response echo = client.fetch("GET", "/api/echo?agent=a%20b&x=1&x=2&flag");
  CHECK(echo.status == 200);
  CHECK(echo.headers["content-type"] == "application/json");
  CHECK(echo.body == "GET|/api/echo|agent=a%20b&x=1&x=2&flag|agent=a b;flag=;x=1;");
  CHECK(client.fetch("GET", "/api/echo").body == "GET|/api/echo||");

  Response broken = client.fetch("GET", "/api/broken");
  CHECK(broken.status == 500);
  CHECK(broken.body == R"({"error":"internal error"})");
  CHECK(client.fetch("GET", "/healthz").status == 200);
}

TEST_CASE("admin stops reading while pipelined responses pile up, then resumes", "[admin]") {
  const std::string big(256 * 1024, 'x');
  AdminOptions options;
  options.max_queued_response_bytes = 64 * 1024;
  TestServer server(options, [&big](AdminServer& admin) {
    admin.add_handler("/big", [&big](const AdminRequest& request) {
      AdminResponse response;
      response.body = request.query + big;
      return response;
    });
  });
  Client client(server.port());
  constexpr int kRequests = 40;
  std::string requests;
  for (int i = 0; i < kRequests; ++i) {
    requests += "GET /big?" + std::to_string(i) + " HTTP/1.1\r\nHost: admin\r\n\r\n";
  }
  client.send(requests);
  for (int i = 0; i < kRequests; ++i) {
    Response response = client.read_response();
    REQUIRE(response.status == 200);
    REQUIRE(response.body == std::to_string(i) + big);
  }
  CHECK(server.stop() == 0);
}

TEST_CASE("admin closes idle connections", "[admin]") {
  AdminOptions options;
  options.idle_timeout = std::chrono::milliseconds(100);
  TestServer server(options);
  Client silent(server.port());
  CHECK(silent.closed_by_server());

  Client used(server.port());
  CHECK(used.fetch("GET", "/healthz").status == 200);
  CHECK(used.closed_by_server());
}

TEST_CASE("admin refuses connections beyond max_connections", "[admin]") {
  AdminOptions options;
  options.max_connections = 1;
  TestServer server(options);
  Client first(server.port());
  CHECK(first.fetch("GET", "/healthz").status == 200);
  Client second(server.port());
  CHECK(second.closed_by_server());
  CHECK(first.fetch("GET", "/healthz").status == 200);
}

TEST_CASE("admin close() closes open connections and lets the loop end", "[admin]") {
  TestServer server;
  Client idle(server.port());
  CHECK(idle.fetch("GET", "/healthz").status == 200);
  Client partial(server.port());
  CHECK(partial.fetch("GET", "/healthz").status == 200);
  partial.send("GET /heal");
  CHECK(server.stop() == 0);
  CHECK(idle.closed_by_server());
  CHECK(partial.closed_by_server());
}

TEST_CASE("admin listen reports the bound address and failures", "[admin]") {
  TestServer server;
  CHECK(server.port() != 0);

  uv_loop_t loop;
  REQUIRE(uv_loop_init(&loop) == 0);
  {
    AdminServer second(&loop, std::make_shared<prometheus::Registry>(), [] { return true; });
    const std::string expected =
        "cannot listen on 127.0.0.1:" + std::to_string(server.port()) + ": address already in use";
    CHECK_THROWS_WITH(second.listen({"127.0.0.1", server.port()}), expected);

    AdminServer third(&loop, nullptr, nullptr);
    third.listen({"127.0.0.1", 0});
    HostPort bound = third.bound_address();
    CHECK(bound.host == "127.0.0.1");
    CHECK(bound.port != 0);
    CHECK(bound.port != server.port());
    CHECK_THROWS_WITH(third.listen({"127.0.0.1", 0}), Catch::Contains("already listening"));
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&loop) == 0);
}

sockaddr_storage address_of(const std::string& text) {
  sockaddr_storage storage{};
  if (text.find(':') == std::string::npos) {
    auto* in4 = reinterpret_cast<sockaddr_in*>(&storage);
    in4->sin_family = AF_INET;
    REQUIRE(inet_pton(AF_INET, text.c_str(), &in4->sin_addr) == 1);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
    in6->sin6_family = AF_INET6;
    REQUIRE(inet_pton(AF_INET6, text.c_str(), &in6->sin6_addr) == 1);
  }
  return storage;
}

bool loopback(const std::string& text) {
  sockaddr_storage storage = address_of(text);
  return is_loopback_address(reinterpret_cast<const sockaddr*>(&storage));
}

TEST_CASE("admin loopback addresses are 127.0.0.0/8, ::1 and their IPv4-mapped form",
          "[admin][auth]") {
  for (const char* address :
       {"127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1", "::ffff:127.1.2.3"}) {
    CHECK(loopback(address));
  }
  for (const char* address : {"10.0.0.1", "192.0.2.2", "128.0.0.1", "0.0.0.0", "::",
                              "::ffff:10.0.0.1", "::127.0.0.1", "fd00::1", "fe80::1", "::2"}) {
    CHECK_FALSE(loopback(address));
  }
  CHECK_FALSE(is_loopback_address(nullptr));
}

// An IPv4 address of this machine outside 127.0.0.0/8: a client connecting to it from here
// is seen by the server as that (non-loopback) address.
std::optional<std::string> non_loopback_address() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return std::nullopt;
  std::optional<std::string> found;
  for (ifaddrs* it = list; it != nullptr && !found; it = it->ifa_next) {
    if (it->ifa_addr == nullptr || it->ifa_addr->sa_family != AF_INET) continue;
    if (is_loopback_address(it->ifa_addr)) continue;
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(it->ifa_addr)->sin_addr, text,
              sizeof text);
    found = text;
  }
  freeifaddrs(list);
  if (!found) WARN("no non-loopback IPv4 address on this machine: remote clients not tested");
  return found;
}

// The handlers of the auth tests: /v1/sessions with `token` set, and an open /public.
void serve_sessions(AdminServer& admin, std::string_view token) {
  admin.add_handler("/v1/sessions", [](const AdminRequest&) {
    return AdminResponse{200, "application/json", R"({"sessions":[]})"};
  });
  admin.add_handler(
      "/public",
      [](const AdminRequest&) {
        return AdminResponse{200, "text/plain", "hi"};
      },
      AdminAccess::open);
  admin.set_token(token);
}

constexpr const char* kToken = "tok-3f9a1c7e55d24b08";

TEST_CASE("admin /v1 paths need the bearer token from clients that are not on loopback",
          "[admin][auth]") {
  std::optional<std::string> host = non_loopback_address();
  if (!host) return;
  TestServer server(
      {}, [](AdminServer& admin) { serve_sessions(admin, kToken); }, *host);
  Client remote(server.port(), *host);

  // Probes and scrapes carry no credentials.
  CHECK(remote.fetch("GET", "/healthz").status == 200);
  CHECK(remote.fetch("GET", "/readyz").status == 200);
  CHECK(remote.fetch("GET", "/metrics").status == 200);

  Response missing = remote.fetch("GET", "/v1/sessions");
  CHECK(missing.status == 401);
  CHECK(missing.headers["www-authenticate"] == "Bearer realm=\"tokentap admin\"");
  CHECK(missing.headers["content-type"] == "application/json");
  CHECK_THAT(missing.body, Catch::StartsWith(R"({"error":")"));
  CHECK(missing.headers.count("connection") == 0);  // the connection stays usable

  const std::string token = kToken;
  for (const std::string& header : std::vector<std::string>{
           "Authorization: Bearer wrong\r\n", "Authorization: Bearer " + token + "x\r\n",
           "Authorization: Bearer " + token.substr(0, token.size() - 1) + "\r\n",
           "Authorization: Basic " + token + "\r\n", "Authorization: " + token + "\r\n",
           "Authorization: Bearer\r\n", "X-Authorization: Bearer " + token + "\r\n",
           "Authorization: Bearer " + token + "\r\nAuthorization: Bearer " + token + "\r\n"}) {
    INFO(header);
    Response refused = remote.fetch("GET", "/v1/sessions", header);
    CHECK(refused.status == 401);
    CHECK_THAT(refused.headers["www-authenticate"], Catch::StartsWith("Bearer realm="));
    CHECK_THAT(refused.body, !Catch::Contains(token));
  }
  CHECK(remote.fetch("GET", "/v1/sessions", "Authorization: Bearer wrong\r\n")
            .headers["www-authenticate"] ==
        "Bearer realm=\"tokentap admin\", error=\"invalid_token\"");

  for (const std::string& header : std::vector<std::string>{
           "Authorization: Bearer " + token + "\r\n", "authorization: bearer  " + token + " \r\n",
           "AUTHORIZATION: BEARER\t" + token + "\r\n"}) {
    INFO(header);
    Response allowed = remote.fetch("GET", "/v1/sessions", header);
    CHECK(allowed.status == 200);
    CHECK(allowed.body == R"({"sessions":[]})");
  }
  // A header arriving in pieces is put together before it is checked.
  for (char c :
       "GET /v1/sessions HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + token + "\r\n\r\n") {
    if (c != '\0') remote.send(std::string_view(&c, 1));
  }
  CHECK(remote.read_response().status == 200);
  // Authorization is checked before the method: a refused client learns nothing more.
  CHECK(remote.fetch("DELETE", "/v1/sessions").status == 401);
  CHECK(remote.fetch("GET", "/v1/nothing-here").status == 404);

  // Loopback clients need no token.
  TestServer local({}, [](AdminServer& admin) { serve_sessions(admin, kToken); });
  Client client(local.port());
  CHECK(client.fetch("GET", "/v1/sessions").status == 200);
}

TEST_CASE("admin /v1 paths without a token are refused to every non-loopback client",
          "[admin][auth]") {
  std::optional<std::string> host = non_loopback_address();
  if (!host) return;
  TestServer server(
      {},
      [](AdminServer& admin) {
        serve_sessions(admin, kToken);
        admin.set_token("");  // a reload that removed admin.token_file
      },
      *host);
  Client remote(server.port(), *host);
  Response refused =
      remote.fetch("GET", "/v1/sessions", "Authorization: Bearer " + std::string(kToken) + "\r\n");
  CHECK(refused.status == 403);
  CHECK(refused.headers["content-type"] == "application/json");
  CHECK_THAT(refused.body, Catch::Contains("admin.token_file"));
  CHECK(remote.fetch("GET", "/public").status == 200);
  CHECK(remote.fetch("GET", "/metrics").status == 200);
}

}  // namespace
}  // namespace tokentap
