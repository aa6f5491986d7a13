// bench_upstream: the fake OpenAI-style upstream the benchmark drives (see README.md).
//
// One libuv loop on 127.0.0.1. POST with "stream":true in the body gets an SSE chat/completions
// stream, one chunked-encoding chunk per event; any other POST gets a fixed ~1 KiB chat
// completion with usage (the same bytes `--print-completion` prints, which the nginx upstream
// serves). GET /stats returns what was served so far, so metering can be checked against it.
// Every content event carries "t=<uv_hrtime ns>" taken just before it is written, so a client on
// the same machine can compute each event's delivery latency.
//
// Per-request stream shape comes from request headers (forwarded unchanged by the proxies):
// x-bench-events, x-bench-interval-ms, x-bench-event-bytes; defaults from the command line.
//
// Lockstep streams (--lockstep=FIFO, and x-bench-lockstep: 1 on the request): each piece of the
// stream (the response head, every event, the final usage event with [DONE]) goes out only
// after the client has written one byte to FIFO for the previous piece, so each piece reaches a
// proxy in a read of its own however fast or slow the proxy runs: a fixed amount of work, for
// counting a proxy's instructions per event (scripts/bench.sh --instructions). Interval pacing
// is ignored; one lockstep stream at a time.
#include <fcntl.h>
#include <llhttp.h>
#include <uv.h>

#include <cctype>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

namespace {

struct Options {
  int port = 0;
  int events = 20;
  int interval_ms = 50;
  int event_bytes = 64;
  int prompt_tokens = 25;
  std::string lockstep_fifo;
};

struct Served {
  uint64_t requests = 0;
  uint64_t streams = 0;
  uint64_t events = 0;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
};

Options g_options;
Served g_served;
class Connection;
// Lockstep: bytes the client wrote to the FIFO and not yet spent, and the stream waiting for one.
uint64_t g_tokens = 0;
Connection* g_lockstep_waiter = nullptr;
constexpr int kCompletionTokens = 180;

std::string completion_body() {
  std::string content;
  while (content.size() < 720) content += "The quick brown fox jumps over the lazy dog. ";
  return R"({"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,)"
         R"("model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":)"
         R"("assistant","content":")" +
         content + R"("},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":)" +
         std::to_string(g_options.prompt_tokens) + R"(,"completion_tokens":)" +
         std::to_string(kCompletionTokens) + R"(,"total_tokens":)" +
         std::to_string(g_options.prompt_tokens + kCompletionTokens) +
         R"(},"system_fingerprint":"fp_bench"})";
}

void write_string(uv_stream_t* stream, std::string data) {
  struct Write {
    uv_write_t req;
    std::string data;
  };
  auto* w = new Write{uv_write_t{}, std::move(data)};
  w->req.data = w;
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, stream, &buf, 1,
                    [](uv_write_t* req, int) { delete static_cast<Write*>(req->data); });
  if (rc != 0) delete w;
}

std::string chunk(std::string_view payload) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", payload.size());
  std::string out = size;
  out += payload;
  out += "\r\n";
  return out;
}

int header_int(const std::string& value, int fallback) {
  if (value.empty()) return fallback;
  char* end = nullptr;
  long v = std::strtol(value.c_str(), &end, 10);
  if (end == value.c_str() || v < 0 || v > 10'000'000) return fallback;
  return static_cast<int>(v);
}

class Connection {
 public:
  explicit Connection(uv_loop_t* loop) {
    uv_tcp_init(loop, &tcp_);
    uv_timer_init(loop, &timer_);
    tcp_.data = this;
    timer_.data = this;
    llhttp_init(&parser_, HTTP_REQUEST, &settings());
    parser_.data = this;
  }

  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&tcp_); }

  void start() {
    uv_tcp_nodelay(&tcp_, 1);
    uv_read_start(
        stream(),
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
          static char storage[65536];
          *buf = uv_buf_init(storage, sizeof storage);
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
          auto* self = static_cast<Connection*>(s->data);
          if (n < 0) return self->close();
          if (n == 0) return;
          if (llhttp_execute(&self->parser_, buf->base, static_cast<size_t>(n)) != HPE_OK) {
            self->close();
          }
        });
  }

  void close() {
    if (closing_) return;
    closing_ = true;
    if (g_lockstep_waiter == this) g_lockstep_waiter = nullptr;
    uv_timer_stop(&timer_);
    auto closed = [](uv_handle_t* h) {
      auto* self = static_cast<Connection*>(h->data);
      if (++self->closed_handles_ == 2) delete self;
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), closed);
  }

 private:
  static const llhttp_settings_t& settings() {
    static const llhttp_settings_t s = [] {
      llhttp_settings_t t;
      llhttp_settings_init(&t);
      t.on_message_begin = [](llhttp_t* p) { return self(p)->on_begin(); };
      t.on_url = [](llhttp_t* p, const char* at, size_t n) {
        self(p)->url_.append(at, n);
        return 0;
      };
      t.on_header_field = [](llhttp_t* p, const char* at, size_t n) {
        auto* c = self(p);
        if (!c->in_field_) c->field_.clear();
        c->in_field_ = true;
        c->field_.append(at, n);
        return 0;
      };
      t.on_header_value = [](llhttp_t* p, const char* at, size_t n) {
        auto* c = self(p);
        if (c->in_field_) c->value_ = c->header_slot();
        c->in_field_ = false;
        if (c->value_ != nullptr) c->value_->append(at, n);
        return 0;
      };
      t.on_body = [](llhttp_t* p, const char* at, size_t n) {
        self(p)->on_body(std::string_view(at, n));
        return 0;
      };
      t.on_message_complete = [](llhttp_t* p) { return self(p)->on_complete(); };
      return t;
    }();
    return s;
  }
  static Connection* self(llhttp_t* p) { return static_cast<Connection*>(p->data); }

  std::string* header_slot() {
    auto lower = field_;
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (lower == "x-bench-events") return &events_header_;
    if (lower == "x-bench-interval-ms") return &interval_header_;
    if (lower == "x-bench-event-bytes") return &bytes_header_;
    if (lower == "x-bench-lockstep") return &lockstep_header_;
    return nullptr;
  }

  int on_begin() {
    url_.clear();
    events_header_.clear();
    interval_header_.clear();
    bytes_header_.clear();
    lockstep_header_.clear();
    in_field_ = false;
    value_ = nullptr;
    stream_requested_ = false;
    body_tail_.clear();
    return 0;
  }

  // Looks for "stream":true without keeping the body: only a tail that could hold a split match.
  void on_body(std::string_view data) {
    if (stream_requested_) return;
    body_tail_.append(data);
    if (body_tail_.find("\"stream\":true") != std::string::npos ||
        body_tail_.find("\"stream\": true") != std::string::npos) {
      stream_requested_ = true;
    }
    if (body_tail_.size() > 32) body_tail_.erase(0, body_tail_.size() - 32);
  }

  int on_complete() {
    if (url_ == "/stats") {
      char body[256];
      int n = std::snprintf(body, sizeof body,
                            "{\"requests\":%llu,\"streams\":%llu,\"events\":%llu,"
                            "\"prompt_tokens\":%llu,\"completion_tokens\":%llu}",
                            static_cast<unsigned long long>(g_served.requests),
                            static_cast<unsigned long long>(g_served.streams),
                            static_cast<unsigned long long>(g_served.events),
                            static_cast<unsigned long long>(g_served.prompt_tokens),
                            static_cast<unsigned long long>(g_served.completion_tokens));
      write_string(stream(),
                   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                       std::to_string(n) + "\r\n\r\n" + std::string(body, size_t(n)));
      return 0;
    }
    ++g_served.requests;
    g_served.prompt_tokens += static_cast<uint64_t>(g_options.prompt_tokens);
    if (!stream_requested_) {
      static const std::string response = [] {
        std::string body = completion_body();
        return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body;
      }();
      g_served.completion_tokens += kCompletionTokens;
      write_string(stream(), response);
      return 0;
    }
    ++g_served.streams;
    remaining_ = header_int(events_header_, g_options.events);
    sent_ = 0;
    interval_ms_ = header_int(interval_header_, g_options.interval_ms);
    event_bytes_ = header_int(bytes_header_, g_options.event_bytes);
    lockstep_ = header_int(lockstep_header_, 0) == 1 && !g_options.lockstep_fifo.empty();
    if (lockstep_) g_tokens = 0;  // the client writes this stream's first one on the head
    write_string(stream(),
                 "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n");
    if (lockstep_) {
      await_token();
    } else {
      send_event();
    }
    return 0;
  }

  // Lockstep: the next piece goes out now if the client has acknowledged the previous one,
  // otherwise when it does (on_token).
  void await_token() {
    if (g_tokens == 0) {
      g_lockstep_waiter = this;
      return;
    }
    --g_tokens;
    send_event();
  }

 public:
  static void on_token(size_t n) {
    g_tokens += n;
    if (Connection* c = std::exchange(g_lockstep_waiter, nullptr)) c->await_token();
  }

 private:
  void send_event() {
    if (closing_) return;
    if (remaining_ == 0) return finish_stream();
    char stamp[48];
    std::snprintf(stamp, sizeof stamp, "t=%llu ", static_cast<unsigned long long>(uv_hrtime()));
    std::string content = stamp;
    if (content.size() < static_cast<size_t>(event_bytes_)) {
      content.append(static_cast<size_t>(event_bytes_) - content.size(), 'x');
    }
    std::string event =
        R"(data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,)"
        R"("model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"content":")" +
        content + R"("},"finish_reason":null}]})" + "\n\n";
    write_string(stream(), chunk(event));
    --remaining_;
    ++sent_;
    ++g_served.events;
    if (lockstep_) return await_token();  // then the next event, or the tail after the last
    if (remaining_ == 0) return finish_stream();
    if (interval_ms_ == 0) {
      // Still one write per event, as a model server flushes them; yield to the loop in between.
      uv_timer_start(
          &timer_, [](uv_timer_t* t) { static_cast<Connection*>(t->data)->send_event(); }, 0, 0);
      return;
    }
    uv_timer_start(
        &timer_, [](uv_timer_t* t) { static_cast<Connection*>(t->data)->send_event(); },
        static_cast<uint64_t>(interval_ms_), 0);
  }

  void finish_stream() {
    g_served.completion_tokens += static_cast<uint64_t>(sent_);
    std::string tail =
        R"(data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,)"
        R"("model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{},)"
        R"("finish_reason":"stop"}]})"
        "\n\n"
        R"(data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,)"
        R"("model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":)" +
        std::to_string(g_options.prompt_tokens) + R"(,"completion_tokens":)" +
        std::to_string(sent_) + R"(,"total_tokens":)" +
        std::to_string(g_options.prompt_tokens + sent_) + "}}\n\ndata: [DONE]\n\n";
    write_string(stream(), chunk(tail) + "0\r\n\r\n");
  }

  uv_tcp_t tcp_{};
  uv_timer_t timer_{};
  llhttp_t parser_{};
  bool closing_ = false;
  int closed_handles_ = 0;
  std::string url_, field_, events_header_, interval_header_, bytes_header_, lockstep_header_;
  std::string body_tail_;
  std::string* value_ = nullptr;
  bool in_field_ = false;
  bool stream_requested_ = false;
  bool lockstep_ = false;
  int remaining_ = 0, sent_ = 0, interval_ms_ = 0, event_bytes_ = 0;
};

bool parse_flag(const char* arg, const char* name, int& out) {
  size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
  out = std::atoi(arg + n + 1);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  bool print_completion = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--print-completion") == 0) {
      print_completion = true;
    } else if (std::strncmp(argv[i], "--lockstep=", 11) == 0) {
      g_options.lockstep_fifo = argv[i] + 11;
    } else if (!parse_flag(argv[i], "--port", g_options.port) &&
               !parse_flag(argv[i], "--events", g_options.events) &&
               !parse_flag(argv[i], "--interval-ms", g_options.interval_ms) &&
               !parse_flag(argv[i], "--event-bytes", g_options.event_bytes) &&
               !parse_flag(argv[i], "--prompt-tokens", g_options.prompt_tokens)) {
      std::fprintf(stderr,
                   "usage: bench_upstream [--port=N] [--events=N] [--interval-ms=N] "
                   "[--event-bytes=N] [--prompt-tokens=N] [--lockstep=FIFO] "
                   "[--print-completion]\n");
      return 2;
    }
  }
  if (print_completion) {
    std::fputs(completion_body().c_str(), stdout);
    return 0;
  }
  std::signal(SIGPIPE, SIG_IGN);
  uv_loop_t* loop = uv_default_loop();
  uv_tcp_t server;
  uv_tcp_init(loop, &server);
  sockaddr_in addr{};
  uv_ip4_addr("127.0.0.1", g_options.port, &addr);
  int rc = uv_tcp_bind(&server, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&server), 4096, [](uv_stream_t* s, int status) {
      if (status < 0) return;
      auto* conn = new Connection(s->loop);
      if (uv_accept(s, conn->stream()) != 0) return conn->close();
      conn->start();
    });
  }
  if (rc != 0) {
    std::fprintf(stderr, "bench_upstream: cannot listen: %s\n", uv_strerror(rc));
    return 1;
  }
  uv_pipe_t lockstep;
  if (!g_options.lockstep_fifo.empty()) {
    // Read and write, so the FIFO always has a writer: no EOF between clients.
    int fd = open(g_options.lockstep_fifo.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 || uv_pipe_init(loop, &lockstep, 0) != 0 || uv_pipe_open(&lockstep, fd) != 0) {
      std::fprintf(stderr, "bench_upstream: cannot open %s\n", g_options.lockstep_fifo.c_str());
      return 1;
    }
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&lockstep),
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
          static char storage[4096];
          *buf = uv_buf_init(storage, sizeof storage);
        },
        [](uv_stream_t*, ssize_t n, const uv_buf_t*) {
          if (n > 0) Connection::on_token(static_cast<size_t>(n));
        });
  }
  sockaddr_storage bound{};
  int len = sizeof bound;
  uv_tcp_getsockname(&server, reinterpret_cast<sockaddr*>(&bound), &len);
  std::printf("{\"msg\":\"listening\",\"port\":%d}\n",
              ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port));
  std::fflush(stdout);
  uv_signal_t term;
  uv_signal_init(loop, &term);
  uv_signal_start_oneshot(
      &term, [](uv_signal_t* s, int) { uv_stop(s->loop); }, SIGTERM);
  return uv_run(loop, UV_RUN_DEFAULT) >= 0 ? 0 : 1;
}
