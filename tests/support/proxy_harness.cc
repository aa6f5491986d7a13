#include "tests/support/proxy_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <prometheus/registry.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "config/config.h"
#include "proxy/core/downstream_connection.h"
#include "proxy/core/proxy_metrics.h"
#include "proxy/core/worker.h"
#include "proxy/metering/llm_metrics.h"
#include "proxy/metering/metering_observer.h"
#include "proxy/telemetry/access_log.h"
#include "tests/support/fuzz_support.h"

namespace tokentap::fuzz {
namespace {

// Small enough that the limit guards are reachable by inputs of a few KiB.
constexpr const char* kConfigTemplate = R"(
limits:
  max_header_bytes: 4KiB
  max_headers: 24
  max_request_body: 32KiB
routes:
  - prefix: /v1/messages
    upstream: http://127.0.0.1:PORT
    provider: anthropic
  - prefix: /v1beta/
    upstream: http://127.0.0.1:PORT
    provider: gemini
  - prefix: /
    name: gemini-rpc
    path_contains: [":generateContent", ":streamGenerateContent", ":embedContent", ":countTokens"]
    upstream: http://127.0.0.1:PORT
    provider: gemini
  - prefix: /openai/
    upstream: http://127.0.0.1:PORT
    provider: azure_openai
  - prefix: /strip/
    upstream: http://127.0.0.1:PORT/base
    strip_prefix: true
    provider: openai_compatible
  - prefix: /v1/
    upstream: http://127.0.0.1:PORT
    provider: openai
)";

constexpr std::string_view kChatJson =
    R"({"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini-2024-07-18",)"
    R"("choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},)"
    R"("finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,)"
    R"("total_tokens":6}})";

constexpr std::string_view kChatStream =
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\","
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}],"
    "\"usage\":null}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\","
    "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-mini\","
    "\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}"
    "\n\ndata: [DONE]\n\n";

constexpr std::string_view kAnthropicStream =
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":"
    "\"claude-3-5-haiku-20241022\",\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
    "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n"
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
    "\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

constexpr std::string_view kRateLimitJson =
    R"({"error":{"message":"Rate limit reached for requests","type":"requests",)"
    R"("param":null,"code":"rate_limit_exceeded"}})";

struct CannedReply {
  int status = 200;
  std::string head;
  std::string body;     // as sent
  std::string payload;  // as a client reads it after de-chunking
};

std::string chunked(std::string_view payload) {
  const size_t half = payload.size() / 2;
  std::string out;
  for (std::string_view part : {payload.substr(0, half), payload.substr(half)}) {
    char size[20];
    std::snprintf(size, sizeof size, "%zx\r\n", part.size());
    out += size;
    out += part;
    out += "\r\n";
  }
  return out + "0\r\n\r\n";
}

std::array<CannedReply, kCannedCount> make_canned() {
  std::array<CannedReply, kCannedCount> c;
  auto with_length = [](std::string head, std::string_view body) {
    return head + "content-length: " + std::to_string(body.size()) + "\r\n\r\n";
  };
  c[size_t(Canned::json)] = {
      200,
      with_length("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: up-1\r\n",
                  kChatJson),
      std::string(kChatJson), std::string(kChatJson)};
  c[size_t(Canned::sse_chunked)] = {
      200,
      "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n",
      chunked(kChatStream), std::string(kChatStream)};
  c[size_t(Canned::sse_close)] = {
      200, "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
      std::string(kAnthropicStream), std::string(kAnthropicStream)};
  c[size_t(Canned::no_content)] = {204, "HTTP/1.1 204 No Content\r\nx-request-id: up-2\r\n\r\n", "",
                                   ""};
  c[size_t(Canned::interim_json)] = c[size_t(Canned::json)];
  c[size_t(Canned::interim_json)].head = "HTTP/1.1 100 Continue\r\n\r\n" + c[0].head;
  c[size_t(Canned::rate_limited)] = {
      429,
      with_length("HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n"
                  "retry-after: 7\r\nx-ratelimit-remaining-requests: 0\r\n",
                  kRateLimitJson),
      std::string(kRateLimitJson), std::string(kRateLimitJson)};
  const std::string gzipped = gzip_encode(kChatJson, 6);
  c[size_t(Canned::gzip_json)] = {
      200,
      with_length("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\n",
                  gzipped),
      gzipped, gzipped};
  c[size_t(Canned::reset)] = {0, "", "", ""};
  return c;
}

struct OwnedWrite {
  uv_write_t req;
  std::string data;
};

void write_owned(uv_stream_t* stream, std::string data) {
  if (data.empty()) return;
  auto* w = new OwnedWrite{{}, std::move(data)};
  w->req.data = w;
  const uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  const int rc = uv_write(&w->req, stream, &buf, 1,
                          [](uv_write_t* r, int) { delete static_cast<OwnedWrite*>(r->data); });
  if (rc != 0) delete w;
}

// Checks the observer contract of proxy/core/request_context.h around the real metering observer.
class CheckingObserver final : public RequestObserver {
 public:
  CheckingObserver(std::unique_ptr<RequestObserver> inner, std::vector<RequestContext>& completed)
      : inner_(std::move(inner)), completed_contexts_(completed) {}
  ~CheckingObserver() override {
    FUZZ_CHECK(completed_ == 1, "an observer was destroyed after " + std::to_string(completed_) +
                                    " on_complete calls");
  }
  void on_request_headers(RequestContext& ctx, const HeaderList& headers) override {
    FUZZ_CHECK(!headers_seen_ && completed_ == 0, "on_request_headers out of order");
    headers_seen_ = true;
    inner_->on_request_headers(ctx, headers);
  }
  void on_request_body(RequestContext& ctx, std::string_view body) override {
    alive("on_request_body");
    inner_->on_request_body(ctx, body);
  }
  void on_response_headers(RequestContext& ctx, int status, const HeaderList& headers) override {
    alive("on_response_headers");
    inner_->on_response_headers(ctx, status, headers);
  }
  void on_response_body(RequestContext& ctx, std::string_view body) override {
    alive("on_response_body");
    inner_->on_response_body(ctx, body);
  }
  void on_complete(RequestContext& ctx) override {
    FUZZ_CHECK(completed_ == 0, "on_complete called twice");
    ++completed_;
    inner_->on_complete(ctx);
    completed_contexts_.push_back(ctx);
  }
  std::optional<std::string> replace_request_body(RequestContext& ctx,
                                                  std::string_view body) override {
    alive("replace_request_body");
    return inner_->replace_request_body(ctx, body);
  }
  bool filters_response() const override { return inner_->filters_response(); }
  void filter_response(std::string_view in, std::string& out) override {
    alive("filter_response");
    inner_->filter_response(in, out);
  }
  void finish_response_filter(std::string& out) override {
    alive("finish_response_filter");
    inner_->finish_response_filter(out);
  }

 private:
  void alive(const char* what) const {
    FUZZ_CHECK(headers_seen_ && completed_ == 0, std::string(what) + " out of order");
  }

  std::unique_ptr<RequestObserver> inner_;
  std::vector<RequestContext>& completed_contexts_;
  bool headers_seen_ = false;
  int completed_ = 0;
};

}  // namespace

struct FakeConn {
  ProxyHarness::Impl* harness = nullptr;
  size_t index = 0;  // into Impl::streams
  uv_tcp_t tcp{};
  std::unique_ptr<HttpReader> reader;
  bool closing = false;
};

struct ProxyHarness::Impl {
  Impl();

  uv_loop_t* loop() { return worker->loop(); }
  void run_until_idle();
  void on_upstream_connection();
  void on_upstream_read(FakeConn* c, ssize_t nread, const uv_buf_t* buf);
  void answer_request(FakeConn* c, const HttpMessage& request);
  void close_conn(FakeConn* c, bool reset);
  FakeConn* newest_conn();
  double gauge(const prometheus::Gauge& g) const { return g.Value(); }

  std::array<CannedReply, kCannedCount> canned = make_canned();
  int log_fd = -1;
  std::shared_ptr<const Config> config;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<CoreMetrics> metrics;
  std::unique_ptr<Metering> metering;
  std::unique_ptr<LineWriter> access_log;
  std::unique_ptr<SharedState> shared;
  std::unique_ptr<Worker> worker;
  uv_tcp_t listener{};
  std::array<char, 64 * 1024> read_buffer{};

  // The current input.
  std::optional<Canned> answer;
  uv_pipe_t* client = nullptr;
  std::string client_received;
  bool client_eof = false;
  std::vector<FakeConn*> conns;  // open upstream connections of this input
  std::vector<std::string> streams;
  std::vector<HttpMessage> upstream_requests;
  std::vector<std::string> upstream_errors;
  size_t observers = 0;
  std::vector<RequestContext> completed;
};

ProxyHarness::Impl::Impl() {
  std::signal(SIGPIPE, SIG_IGN);
  init_diag_log(LogLevel::error);

  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  FUZZ_CHECK(fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                 ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0,
             "cannot bind the fake upstream");
  std::string yaml = kConfigTemplate;
  const std::string port = std::to_string(ntohs(addr.sin_port));
  for (size_t at = yaml.find("PORT"); at != std::string::npos; at = yaml.find("PORT", at)) {
    yaml.replace(at, 4, port);
  }
  config = std::make_shared<const Config>(load_config_string(yaml, "fuzz-harness"));

  char log_path[] = "/tmp/tokentap-fuzz-access-XXXXXX";
  log_fd = ::mkstemp(log_path);
  FUZZ_CHECK(log_fd >= 0, "cannot create the access log file");
  access_log = std::make_unique<LineWriter>(log_path);
  ::unlink(log_path);

  metrics = std::make_unique<CoreMetrics>(*registry);
  metering = std::make_unique<Metering>(*registry, config->metrics, 1);
  shared = std::make_unique<SharedState>(make_runtime(*config, 1));
  shared->metrics = metrics.get();
  shared->observer_factory =
      [this](size_t worker_index,
             const std::shared_ptr<const Runtime>& rt) -> std::unique_ptr<RequestObserver> {
    ++observers;
    return std::make_unique<CheckingObserver>(metering->make_observer(worker_index, rt), completed);
  };
  shared->pipeline_factory = [this](size_t) {
    Pipeline p;
    p.sinks.push_back(std::make_unique<LlmMetricsSink>(metering->llm_metrics()));
    p.sinks.push_back(std::make_unique<AccessLogSink>(*access_log));
    return p;
  };
  worker = std::make_unique<Worker>(0, *shared, -1);
  worker->build_pipeline();  // never start()ed: this thread drives the loop

  uv_tcp_init(loop(), &listener);
  listener.data = this;
  FUZZ_CHECK(uv_tcp_open(&listener, fd) == 0 &&
                 uv_listen(reinterpret_cast<uv_stream_t*>(&listener), 128,
                           [](uv_stream_t* s, int status) {
                             if (status == 0) static_cast<Impl*>(s->data)->on_upstream_connection();
                           }) == 0,
             "cannot listen for the fake upstream");
}

void ProxyHarness::Impl::run_until_idle() {
  for (size_t spins = 0;; ++spins) {
    FUZZ_CHECK(spins < 1'000'000, "the event loop never went idle");
    uv_run(loop(), UV_RUN_NOWAIT);
    // Due timers, pending callbacks and closing handles make the timeout zero.
    if (uv_backend_timeout(loop()) == 0) continue;
    // Writes, connects and DNS lookups in flight always finish: wait for them.
    const unsigned pending = loop()->active_reqs.count;
    pollfd p{uv_backend_fd(loop()), POLLIN, 0};
    if (::poll(&p, 1, pending > 0 ? 10'000 : 0) > 0) continue;
    FUZZ_CHECK(pending == 0, std::to_string(pending) + " libuv requests never completed");
    return;
  }
}

void ProxyHarness::Impl::on_upstream_connection() {
  auto* c = new FakeConn;
  c->harness = this;
  c->index = streams.size();
  streams.emplace_back();
  uv_tcp_init(loop(), &c->tcp);
  c->tcp.data = c;
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&listener),
                reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp),
             [](uv_handle_t* h) { delete static_cast<FakeConn*>(h->data); });
    return;
  }
  conns.push_back(c);
  c->reader = std::make_unique<HttpReader>(HTTP_REQUEST);
  c->reader->on_complete = [this, c](const HttpMessage& m) { answer_request(c, m); };
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&c->tcp),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        Impl* self = static_cast<FakeConn*>(h->data)->harness;
        *buf =
            uv_buf_init(self->read_buffer.data(), static_cast<unsigned>(self->read_buffer.size()));
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        auto* conn = static_cast<FakeConn*>(s->data);
        conn->harness->on_upstream_read(conn, nread, buf);
      });
}

void ProxyHarness::Impl::on_upstream_read(FakeConn* c, ssize_t nread, const uv_buf_t* buf) {
  if (nread == 0 || c->closing) return;
  if (nread < 0) {
    // The proxy closed its side; a reset avoids a TIME_WAIT per input.
    close_conn(c, true);
    return;
  }
  const std::string_view data(buf->base, static_cast<size_t>(nread));
  streams[c->index].append(data);
  const bool was_ok = c->reader->error == HPE_OK && !c->reader->upgraded;
  c->reader->feed(data);
  if (was_ok && (c->reader->error != HPE_OK || c->reader->upgraded)) {
    upstream_errors.push_back("upstream connection " + std::to_string(c->index) + ": " +
                              (c->reader->upgraded ? "an upgrade" : c->reader->error_reason) +
                              " in " + printable(streams[c->index], 2000));
  }
}

void ProxyHarness::Impl::answer_request(FakeConn* c, const HttpMessage& request) {
  upstream_requests.push_back(request);
  if (!answer || c->closing) return;
  const CannedReply& reply = canned[static_cast<size_t>(*answer)];
  if (*answer == Canned::reset) {
    close_conn(c, true);
    return;
  }
  std::string bytes = reply.head;
  if (request.method != "HEAD") bytes += reply.body;
  write_owned(reinterpret_cast<uv_stream_t*>(&c->tcp), std::move(bytes));
  if (*answer == Canned::sse_close) close_conn(c, false);
}

void ProxyHarness::Impl::close_conn(FakeConn* c, bool reset) {
  if (c->closing) return;
  c->closing = true;
  std::erase(conns, c);
  auto* handle = reinterpret_cast<uv_handle_t*>(&c->tcp);
  auto on_closed = [](uv_handle_t* h) { delete static_cast<FakeConn*>(h->data); };
  if (reset) {
    uv_os_fd_t fd;
    if (uv_fileno(handle, &fd) == 0) {
      const linger abort_on_close{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
    }
    uv_close(handle, on_closed);
    return;
  }
  auto* req = new uv_shutdown_t;
  req->data = c;
  const int rc =
      uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&c->tcp), [](uv_shutdown_t* r, int) {
        auto* conn = static_cast<FakeConn*>(r->data);
        delete r;
        uv_close(reinterpret_cast<uv_handle_t*>(&conn->tcp),
                 [](uv_handle_t* h) { delete static_cast<FakeConn*>(h->data); });
      });
  if (rc != 0) {
    delete req;
    uv_close(handle, on_closed);
  }
}

FakeConn* ProxyHarness::Impl::newest_conn() { return conns.empty() ? nullptr : conns.back(); }

ProxyHarness& ProxyHarness::get() {
  // Never destroyed: the loop, its handles and the log thread live until the process exits.
  static ProxyHarness* harness = new ProxyHarness();
  return *harness;
}

ProxyHarness::ProxyHarness() : impl_(std::make_unique<Impl>()) {}

std::string_view ProxyHarness::canned_head(Canned kind) const {
  return impl_->canned[static_cast<size_t>(kind)].head;
}
std::string_view ProxyHarness::canned_body(Canned kind) const {
  return impl_->canned[static_cast<size_t>(kind)].body;
}
std::string_view ProxyHarness::canned_payload(Canned kind) const {
  return impl_->canned[static_cast<size_t>(kind)].payload;
}
int ProxyHarness::canned_status(Canned kind) const {
  return impl_->canned[static_cast<size_t>(kind)].status;
}

void ProxyHarness::start_client(std::optional<Canned> answer) {
  Impl& h = *impl_;
  FUZZ_CHECK(h.client == nullptr, "start_client() twice");
  h.answer = answer;
  h.client_received.clear();
  h.client_eof = false;
  h.streams.clear();
  h.upstream_requests.clear();
  h.upstream_errors.clear();
  h.observers = 0;
  h.completed.clear();

  int sv[2];
  FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair failed");
  auto* conn = new DownstreamConnection(*h.worker);
  FUZZ_CHECK(uv_tcp_open(reinterpret_cast<uv_tcp_t*>(conn->stream()), sv[0]) == 0,
             "cannot adopt the client socket");
  conn->start();

  h.client = new uv_pipe_t;
  uv_pipe_init(h.loop(), h.client, 0);
  h.client->data = &h;
  FUZZ_CHECK(uv_pipe_open(h.client, sv[1]) == 0, "cannot open the client end");
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(h.client),
      [](uv_handle_t* handle, size_t, uv_buf_t* buf) {
        Impl* self = static_cast<Impl*>(handle->data);
        *buf =
            uv_buf_init(self->read_buffer.data(), static_cast<unsigned>(self->read_buffer.size()));
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        Impl* self = static_cast<Impl*>(s->data);
        if (nread > 0) self->client_received.append(buf->base, static_cast<size_t>(nread));
        if (nread < 0) {
          self->client_eof = true;
          uv_read_stop(s);
        }
      });
  h.run_until_idle();
}

void ProxyHarness::client_send(std::string_view bytes) {
  Impl& h = *impl_;
  if (h.client_eof) return;  // the proxy closed the connection: nobody would read these
  write_owned(reinterpret_cast<uv_stream_t*>(h.client), std::string(bytes));
  h.run_until_idle();
}

void ProxyHarness::client_half_close() {
  Impl& h = *impl_;
  auto* req = new uv_shutdown_t;
  if (uv_shutdown(req, reinterpret_cast<uv_stream_t*>(h.client),
                  [](uv_shutdown_t* r, int) { delete r; }) != 0) {
    delete req;
  }
  h.run_until_idle();
}

void ProxyHarness::upstream_send(std::string_view bytes) {
  Impl& h = *impl_;
  if (FakeConn* c = h.newest_conn()) {
    write_owned(reinterpret_cast<uv_stream_t*>(&c->tcp), std::string(bytes));
  }
  h.run_until_idle();
}

void ProxyHarness::upstream_close() {
  Impl& h = *impl_;
  if (FakeConn* c = h.newest_conn()) h.close_conn(c, false);
  h.run_until_idle();
}

size_t ProxyHarness::upstream_requests_seen() const { return impl_->upstream_requests.size(); }

ProxyResult ProxyHarness::finish() {
  Impl& h = *impl_;
  CoreMetrics& m = *h.metrics;
  FUZZ_CHECK(m.downstream_connections.Value() == 0,
             "the proxy kept the client connection open after the client's EOF, with nothing "
             "left to do\n  client read: " +
                 printable(h.client_received, 2000));

  const size_t pooled_upstream = h.worker->pool().idle_count();
  for (FakeConn* c : std::vector<FakeConn*>(h.conns)) h.close_conn(c, true);
  h.worker->pool().close_all();
  h.run_until_idle();
  uv_close(reinterpret_cast<uv_handle_t*>(h.client),
           [](uv_handle_t* handle) { delete reinterpret_cast<uv_pipe_t*>(handle); });
  h.client = nullptr;
  h.run_until_idle();

  FUZZ_CHECK(m.inflight.Value() == 0,
             "requests left in flight: " + std::to_string(m.inflight.Value()));
  FUZZ_CHECK(m.upstream_connections.Value() == 0,
             "upstream connections left open: " + std::to_string(m.upstream_connections.Value()));
  FUZZ_CHECK(h.conns.empty(), "fake upstream connections left open");
  FUZZ_CHECK(h.upstream_errors.empty(),
             "the proxy sent malformed HTTP upstream: " +
                 (h.upstream_errors.empty() ? "" : h.upstream_errors[0]));

  ProxyResult r;
  r.client_received = std::move(h.client_received);
  r.client_saw_eof = h.client_eof;
  r.upstream_requests = std::move(h.upstream_requests);
  r.upstream_streams = std::move(h.streams);
  r.observers = h.observers;
  r.completed = std::move(h.completed);
  r.pooled_upstream = pooled_upstream;

  h.access_log->flush();
  std::string log;
  char chunk[16384];
  for (off_t at = 0;;) {
    const ssize_t n = ::pread(h.log_fd, chunk, sizeof chunk, at);
    if (n <= 0) break;
    log.append(chunk, static_cast<size_t>(n));
    at += n;
  }
  FUZZ_CHECK(::ftruncate(h.log_fd, 0) == 0, "cannot truncate the access log");
  FUZZ_CHECK(h.access_log->dropped() == 0, "access log lines were dropped");
  for (size_t start = 0; start < log.size();) {
    const size_t end = log.find('\n', start);
    FUZZ_CHECK(end != std::string::npos, "an access log line without its newline");
    r.access_log.push_back(log.substr(start, end - start));
    start = end + 1;
  }
  for (const std::string& line : r.access_log) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    FUZZ_CHECK(j.is_object(), "an access log line is not a JSON object: " + printable(line));
  }
  if (std::getenv("TOKENTAP_FUZZ_TRACE") != nullptr) {
    std::fprintf(stderr, "client read%s: %s\n", r.client_saw_eof ? " (then EOF)" : "",
                 printable(r.client_received, 1u << 16).c_str());
    for (size_t i = 0; i < r.upstream_streams.size(); ++i) {
      std::fprintf(stderr, "upstream connection %zu read: %s\n", i,
                   printable(r.upstream_streams[i], 1u << 16).c_str());
    }
    for (const std::string& line : r.access_log)
      std::fprintf(stderr, "access log: %s\n", line.c_str());
  }
  FUZZ_CHECK(r.access_log.size() >= r.observers,
             std::to_string(r.observers) + " metered requests but " +
                 std::to_string(r.access_log.size()) + " access log lines");
  return r;
}

}  // namespace tokentap::fuzz
