// bench_load: the load generator of the proxy benchmark (see README.md).
//
//   bench_load chat   --target=HOST:PORT [--rate=R] [--connections=C] [--duration=S] ...
//   bench_load stream --target=HOST:PORT --streams=N [--events=E] [--interval-ms=I] [--hold] ...
//
// chat: POSTs a ~1 KiB chat/completions request (or --body-bytes of conversation history).
// With --rate=R it is open-loop: request i is due at start + i/R (a timerfd wakes the loop at
// that instant), goes out on the first idle keep-alive connection, and its latency is measured
// from when it was due, so a stalled server is charged for every request it delayed (no
// coordinated omission). Without --rate it is closed-loop on --connections connections.
// stream: keeps --streams SSE requests open against bench_upstream-style events ("t=<ns>" in
// each content event) and measures time to first event, each event's delivery latency (arrival
// minus the upstream's stamp, same clock) and inter-event gaps; events that arrive in the same
// read as their predecessor although paced apart are counted as merged. --hold opens the streams
// once, samples --rss-pid when all are open, and exits.
// --requests=N (closed loop only): sends exactly N requests, measures all of them, ignores
// --duration and --warmup, and exits when the last has answered: a fixed amount of work, for
// counting a proxy's instructions per request (scripts/bench.sh --instructions).
// --lockstep=FIFO (stream, one stream): asks bench_upstream (started with the same FIFO) for a
// lockstep stream and writes one byte to FIFO when the response head and each event arrive;
// the upstream sends the next piece only then.
//
// Prints one JSON object on stdout. Latencies are exact percentiles of all samples after
// --warmup. --cpu-pid reports the CPU time that process used during the measured window (sum
// of its threads' /proc schedstat run time), --rss-pid the peak VmRSS seen (sampled every
// 100 ms and at the end).
#include <fcntl.h>
#include <llhttp.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct Options {
  std::string mode;
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path = "/v1/chat/completions";
  double rate = 0;
  int connections = 1;
  double duration_s = 5;
  double warmup_s = 1;
  int body_bytes = 0;
  uint64_t requests = 0;
  std::string lockstep_fifo;
  int lockstep_fd = -1;
  int streams = 1;
  int events = 20;
  int interval_ms = 50;
  int event_bytes = 64;
  bool hold = false;
  int cpu_pid = 0;
  std::vector<int> rss_pids;
  std::vector<std::string> headers;
};

Options g_opt;

uint64_t now_ns() { return uv_hrtime(); }

// Lockstep: tells the upstream the previous piece of the stream arrived.
void lockstep_ack() {
  if (g_opt.lockstep_fd < 0) return;
  while (write(g_opt.lockstep_fd, "+", 1) < 0 && errno == EINTR) {
  }
}

// Sum of every thread's run time in ns, from /proc/PID/task/*/schedstat (first field).
uint64_t cpu_ns(int pid) {
  if (pid <= 0) return 0;
  uint64_t total = 0;
  std::error_code ec;
  std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/task", ec);
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::ifstream in(it->path() / "schedstat");
    uint64_t run = 0;
    if (in >> run) total += run;
  }
  return total;
}

uint64_t rss_kib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

std::string chat_body(bool stream) {
  std::string filler;
  while (filler.size() < 380) filler += "Summarise the incident timeline and list follow-ups. ";
  std::string messages = R"({"role":"system","content":"You are a careful SRE assistant. )" +
                         filler + R"("},{"role":"user","content":")" + filler + R"("})";
  // --body-bytes: conversation history of alternating turns until the body is that large.
  for (int turn = 0; static_cast<int>(messages.size()) < g_opt.body_bytes - 200; ++turn) {
    messages +=
        turn % 2 == 0 ? R"(,{"role":"assistant","content":")" : R"(,{"role":"user","content":")";
    messages += filler + filler + R"("})";
  }
  std::string body = R"({"model":"gpt-4o-mini","messages":[)" + messages +
                     R"(],"max_tokens":256,"temperature":0.2)";
  body += stream ? R"(,"stream":true})" : "}";
  return body;
}

std::string build_request(bool stream) {
  std::string body = chat_body(stream);
  std::string req = "POST " + g_opt.path + " HTTP/1.1\r\nHost: " + g_opt.host + ":" +
                    std::to_string(g_opt.port) +
                    "\r\nContent-Type: application/json\r\nAuthorization: Bearer "
                    "sk-bench-0000000000000000\r\nx-agent-id: bench\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n";
  if (stream) {
    req += "Accept: text/event-stream\r\nx-bench-events: " + std::to_string(g_opt.events) +
           "\r\nx-bench-interval-ms: " + std::to_string(g_opt.interval_ms) +
           "\r\nx-bench-event-bytes: " + std::to_string(g_opt.event_bytes) + "\r\n";
    if (g_opt.lockstep_fd >= 0) req += "x-bench-lockstep: 1\r\n";
  }
  for (const auto& h : g_opt.headers) req += h + "\r\n";
  return req + "\r\n" + body;
}

class Runner;

// One keep-alive client connection: sends whole requests, parses responses with llhttp, finds
// SSE events in the body and reports everything to its Runner.
class Connection {
 public:
  Connection(uv_loop_t* loop, Runner* runner) : loop_(loop), runner_(runner) {}
  void connect();
  void send(const std::string& request, uint64_t due);
  void close_for_good();

  uint64_t due_ = 0;
  uint64_t sent_at_ = 0;
  uint64_t last_event_at_ = 0;
  uint64_t last_event_read_ = 0;
  int events_ = 0;
  int status_ = 0;
  bool busy_ = false;

 private:
  friend class Runner;
  static const llhttp_settings_t& settings();
  void on_read(ssize_t n, const uv_buf_t* buf);
  void on_body(std::string_view data);
  void fail();

  uv_loop_t* loop_;
  Runner* runner_;
  uv_tcp_t* tcp_ = nullptr;
  uv_connect_t connect_req_{};
  llhttp_t parser_{};
  std::string partial_;
  uint64_t read_seq_ = 0;
  bool done_ = false;
};

struct Samples {
  std::vector<uint64_t> ns;
  void add(uint64_t v) { ns.push_back(v); }
  std::string json(const char* name) {
    std::sort(ns.begin(), ns.end());
    auto pct = [&](double q) {
      if (ns.empty()) return 0.0;
      size_t i = std::min(ns.size() - 1, static_cast<size_t>(q * static_cast<double>(ns.size())));
      return static_cast<double>(ns[i]) / 1000.0;
    };
    char out[256];
    std::snprintf(out, sizeof out,
                  "\"%s\":{\"n\":%zu,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
                  "\"p999_us\":%.1f,\"max_us\":%.1f}",
                  name, ns.size(), pct(0.5), pct(0.9), pct(0.99), pct(0.999),
                  ns.empty() ? 0.0 : static_cast<double>(ns.back()) / 1000.0);
    return out;
  }
};

class Runner {
 public:
  explicit Runner(uv_loop_t* loop) : loop_(loop) {
    stream_ = g_opt.mode == "stream";
    request_ = build_request(stream_);
    int n = stream_ ? g_opt.streams : g_opt.connections;
    for (int i = 0; i < n; ++i) conns_.push_back(std::make_unique<Connection>(loop, this));
    uv_timer_init(loop, &rss_timer_);
    uv_timer_init(loop, &deadline_);
    uv_timer_init(loop, &hold_timer_);
    rss_timer_.data = deadline_.data = hold_timer_.data = this;
  }

  void start() {
    for (auto& c : conns_) c->connect();
    uv_timer_start(
        &rss_timer_, [](uv_timer_t* t) { static_cast<Runner*>(t->data)->sample_rss(); }, 100, 100);
  }

  void on_connected(Connection* c) {
    if (started_) return idle(c);
    if (++connected_ == static_cast<int>(conns_.size())) begin();
  }

  void on_event(Connection* c, uint64_t stamp, uint64_t read_seq) {
    uint64_t now = now_ns();
    lockstep_ack();
    if (c->events_ == 0) {
      if (measuring(c->sent_at_)) ttfb_.add(now - c->sent_at_);
      if (g_opt.hold && ++first_events_ == g_opt.streams) all_open();
    } else if (measuring(c->sent_at_)) {
      gap_.add(now - c->last_event_at_);
      if (g_opt.interval_ms > 0 && read_seq == c->last_event_read_) ++merged_;
    }
    if (measuring(c->sent_at_) && now >= stamp) delivery_.add(now - stamp);
    ++c->events_;
    c->last_event_at_ = now;
    c->last_event_read_ = read_seq;
  }

  void on_response(Connection* c) {
    uint64_t now = now_ns();
    --outstanding_;
    c->busy_ = false;
    if (c->status_ != 200) {
      ++errors_;
    } else if (measuring(c->due_)) {
      ++completed_;
      if (stream_) {
        if (c->events_ < g_opt.events) dropped_ += static_cast<uint64_t>(g_opt.events - c->events_);
      } else {
        latency_.add(now - c->due_);
      }
    }
    last_done_ = now;
    if (g_opt.hold) return;
    idle(c);
  }

  void on_failure(Connection* c) {
    if (c->busy_) {
      --outstanding_;
      ++errors_;
      c->busy_ = false;
    }
    if (finished_ || g_opt.hold || now_ns() >= end_) return maybe_finish();
    // Bounded: a target that keeps refusing ends the run instead of spinning.
    if (++reconnects_ > 10'000) {
      std::fprintf(stderr, "bench_load: too many reconnects to %s:%d\n", g_opt.host.c_str(),
                   g_opt.port);
      std::_Exit(1);
    }
    c->connect();
  }

 private:
  bool measuring(uint64_t t) const { return started_ && t >= measure_start_ && t < end_; }

  void begin() {
    started_ = true;
    start_ = now_ns();
    measure_start_ = start_ + static_cast<uint64_t>(g_opt.warmup_s * 1e9);
    end_ = measure_start_ + static_cast<uint64_t>(g_opt.duration_s * 1e9);
    if (g_opt.hold || g_opt.requests > 0) {
      measure_start_ = start_;
      end_ = UINT64_MAX;
      cpu_started_ = true;
      cpu_start_ = cpu_ns(g_opt.cpu_pid);
    }
    uv_timer_start(
        &deadline_, [](uv_timer_t* t) { static_cast<Runner*>(t->data)->on_tick(); },
        static_cast<uint64_t>(g_opt.warmup_s * 1000), 50);
    if (g_opt.rate > 0) {
      timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
      uv_poll_init(loop_, &timer_poll_, timer_fd_);
      timer_poll_.data = this;
      uv_poll_start(&timer_poll_, UV_READABLE,
                    [](uv_poll_t* p, int, int) { static_cast<Runner*>(p->data)->schedule(); });
      schedule();
    }
    for (auto& c : conns_) idle(c.get());
  }

  // Open-loop pacing: every request due by now joins the queue, then the timerfd is armed for
  // the next one (absolute CLOCK_MONOTONIC, the clock uv_hrtime reads).
  void schedule() {
    uint64_t expirations;
    while (read(timer_fd_, &expirations, sizeof expirations) > 0) {
    }
    uint64_t now = now_ns();
    double period = 1e9 / g_opt.rate;
    for (;;) {
      uint64_t due = start_ + static_cast<uint64_t>(static_cast<double>(scheduled_) * period);
      if (due >= end_) {
        uv_poll_stop(&timer_poll_);
        break;
      }
      if (due > now) {
        itimerspec spec{};
        spec.it_value.tv_sec = static_cast<time_t>(due / 1'000'000'000);
        spec.it_value.tv_nsec = static_cast<long>(due % 1'000'000'000);
        timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
        break;
      }
      queue_.push_back(due);
      ++scheduled_;
    }
    dispatch();
  }

  void idle(Connection* c) {
    if (!started_ || finished_) return;
    if (g_opt.rate > 0) {
      idle_.push_back(c);
      return dispatch();
    }
    uint64_t now = now_ns();
    if (now >= end_) return maybe_finish();
    if (g_opt.hold && c->events_ > 0) return;
    if (g_opt.requests > 0 && sent_ == g_opt.requests) {
      if (outstanding_ == 0) finish();
      return;
    }
    ++sent_;
    ++outstanding_;
    c->busy_ = true;
    c->send(request_, now);
  }

  void dispatch() {
    while (!queue_.empty() && !idle_.empty()) {
      Connection* c = idle_.back();
      idle_.pop_back();
      ++outstanding_;
      c->busy_ = true;
      c->send(request_, queue_.front());
      queue_.pop_front();
    }
  }

  void on_tick() {
    uint64_t now = now_ns();
    if (!cpu_started_ && now >= measure_start_) {
      cpu_started_ = true;
      cpu_start_ = cpu_ns(g_opt.cpu_pid);
    }
    // Bounded: whatever has not answered 10 s after the end is reported as unfinished.
    if (now >= end_ + 10'000'000'000ull && end_ != UINT64_MAX) return finish();
    if (!g_opt.hold && now >= end_) maybe_finish();
  }

  void all_open() {
    sample_rss();
    rss_all_open_ = rss_peak_;
    uv_timer_start(
        &hold_timer_, [](uv_timer_t* t) { static_cast<Runner*>(t->data)->finish(); }, 1000, 0);
  }

  void maybe_finish() {
    if (!started_ || finished_) return;
    if (now_ns() < end_) return;
    if (outstanding_ == 0 && queue_.empty()) finish();
  }

  void sample_rss() {
    for (int pid : g_opt.rss_pids) {
      uint64_t kib = rss_kib(pid);
      if (kib > rss_peak_) rss_peak_ = kib;
    }
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    sample_rss();
    uint64_t cpu = cpu_ns(g_opt.cpu_pid) - cpu_start_;
    uint64_t window_end = std::max(last_done_, end_ == UINT64_MAX ? now_ns() : end_);
    double window_s = static_cast<double>(window_end - measure_start_) / 1e9;
    std::string out = "{\"mode\":\"" + g_opt.mode + "\"";
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  ",\"completed\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"unfinished\":%" PRIu64
                  ",\"queued\":%zu,\"window_s\":%.3f,\"achieved_rps\":%.1f",
                  completed_, errors_, static_cast<uint64_t>(std::max(0L, outstanding_)),
                  queue_.size(), window_s, static_cast<double>(completed_) / window_s);
    out += buf;
    if (g_opt.cpu_pid > 0) {
      double cpu_s = static_cast<double>(cpu) / 1e9;
      std::snprintf(buf, sizeof buf, ",\"cpu_s\":%.4f,\"cpu_util\":%.3f,\"req_per_cpu_s\":%.0f",
                    cpu_s, cpu_s / window_s,
                    cpu_s > 0 ? static_cast<double>(completed_) / cpu_s : 0.0);
      out += buf;
    }
    if (!g_opt.rss_pids.empty()) {
      std::snprintf(buf, sizeof buf, ",\"rss_peak_kib\":%" PRIu64 ",\"rss_all_open_kib\":%" PRIu64,
                    rss_peak_, rss_all_open_);
      out += buf;
    }
    if (stream_) {
      std::snprintf(buf, sizeof buf,
                    ",\"streams_open\":%d,\"dropped_events\":%" PRIu64 ",\"merged_events\":%" PRIu64
                    ",",
                    first_events_, dropped_, merged_);
      out += buf + ttfb_.json("ttfb") + "," + gap_.json("gap") + "," + delivery_.json("delivery");
    } else {
      out += "," + latency_.json("latency");
    }
    std::printf("%s}\n", out.c_str());
    std::fflush(stdout);
    // Open sockets and handles go with the process: nothing else is left to do.
    std::_Exit(0);
  }

  uv_loop_t* loop_;
  bool stream_ = false;
  std::string request_;
  std::vector<std::unique_ptr<Connection>> conns_;
  std::vector<Connection*> idle_;
  std::deque<uint64_t> queue_;
  uv_timer_t rss_timer_{}, deadline_{}, hold_timer_{};
  uv_poll_t timer_poll_{};
  int timer_fd_ = -1;
  int connected_ = 0, first_events_ = 0;
  bool started_ = false, finished_ = false, cpu_started_ = false;
  uint64_t start_ = 0, measure_start_ = 0, end_ = UINT64_MAX, last_done_ = 0;
  uint64_t scheduled_ = 0, sent_ = 0, completed_ = 0, errors_ = 0, dropped_ = 0, merged_ = 0;
  long outstanding_ = 0;
  uint64_t reconnects_ = 0;
  uint64_t cpu_start_ = 0, rss_peak_ = 0, rss_all_open_ = 0;
  Samples latency_, ttfb_, gap_, delivery_;
};

const llhttp_settings_t& Connection::settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t t;
    llhttp_settings_init(&t);
    t.on_message_begin = [](llhttp_t* p) {
      auto* c = static_cast<Connection*>(p->data);
      c->partial_.clear();
      c->events_ = 0;
      return 0;
    };
    t.on_headers_complete = [](llhttp_t* p) {
      static_cast<Connection*>(p->data)->status_ = p->status_code;
      if (p->status_code == 200) lockstep_ack();
      return 0;
    };
    t.on_body = [](llhttp_t* p, const char* at, size_t n) {
      static_cast<Connection*>(p->data)->on_body(std::string_view(at, n));
      return 0;
    };
    t.on_message_complete = [](llhttp_t* p) {
      auto* c = static_cast<Connection*>(p->data);
      c->runner_->on_response(c);
      return 0;
    };
    return t;
  }();
  return s;
}

void Connection::connect() {
  tcp_ = new uv_tcp_t;
  uv_tcp_init(loop_, tcp_);
  tcp_->data = this;
  llhttp_init(&parser_, HTTP_RESPONSE, &settings());
  parser_.data = this;
  sockaddr_in addr{};
  uv_ip4_addr(g_opt.host.c_str(), g_opt.port, &addr);
  connect_req_.data = this;
  int rc = uv_tcp_connect(&connect_req_, tcp_, reinterpret_cast<const sockaddr*>(&addr),
                          [](uv_connect_t* req, int status) {
                            auto* c = static_cast<Connection*>(req->data);
                            if (status != 0) return c->fail();
                            uv_tcp_nodelay(c->tcp_, 1);
                            uv_read_start(
                                reinterpret_cast<uv_stream_t*>(c->tcp_),
                                [](uv_handle_t*, size_t, uv_buf_t* buf) {
                                  static char storage[65536];
                                  *buf = uv_buf_init(storage, sizeof storage);
                                },
                                [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
                                  static_cast<Connection*>(s->data)->on_read(n, buf);
                                });
                            c->runner_->on_connected(c);
                          });
  if (rc != 0) fail();
}

void Connection::send(const std::string& request, uint64_t due) {
  due_ = due;
  sent_at_ = now_ns();
  auto* req = new uv_write_t;
  uv_buf_t buf =
      uv_buf_init(const_cast<char*>(request.data()), static_cast<unsigned>(request.size()));
  req->data = this;
  int rc = uv_write(req, reinterpret_cast<uv_stream_t*>(tcp_), &buf, 1,
                    [](uv_write_t* w, int) { delete w; });
  if (rc != 0) {
    delete req;
    fail();
  }
}

void Connection::on_read(ssize_t n, const uv_buf_t* buf) {
  if (n == 0) return;
  if (n < 0) return fail();
  ++read_seq_;
  if (llhttp_execute(&parser_, buf->base, static_cast<size_t>(n)) != HPE_OK) fail();
}

void Connection::on_body(std::string_view data) {
  if (runner_ == nullptr || status_ != 200) return;
  partial_.append(data);
  size_t start = 0;
  for (;;) {
    size_t end = partial_.find("\n\n", start);
    if (end == std::string::npos) break;
    std::string_view event(partial_.data() + start, end - start);
    size_t t = event.find("\"t=");
    if (t != std::string_view::npos) {
      uint64_t stamp = std::strtoull(event.data() + t + 3, nullptr, 10);
      runner_->on_event(this, stamp, read_seq_);
    }
    start = end + 2;
  }
  partial_.erase(0, start);
}

void Connection::fail() {
  if (tcp_ == nullptr) return;
  uv_tcp_t* dead = tcp_;
  tcp_ = nullptr;
  dead->data = nullptr;
  if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(dead))) {
    uv_close(reinterpret_cast<uv_handle_t*>(dead),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  }
  runner_->on_failure(this);
}

bool flag(const char* arg, const char* name, std::string& out) {
  size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
  out = arg + n + 1;
  return true;
}

int parse_args(int argc, char** argv) {
  if (argc < 2) return 2;
  g_opt.mode = argv[1];
  if (g_opt.mode != "chat" && g_opt.mode != "stream") return 2;
  for (int i = 2; i < argc; ++i) {
    std::string v;
    const char* a = argv[i];
    if (std::strcmp(a, "--hold") == 0) {
      g_opt.hold = true;
    } else if (flag(a, "--target", v)) {
      size_t colon = v.rfind(':');
      if (colon == std::string::npos) return 2;
      g_opt.host = v.substr(0, colon);
      g_opt.port = std::atoi(v.c_str() + colon + 1);
    } else if (flag(a, "--path", v)) {
      g_opt.path = v;
    } else if (flag(a, "--rate", v)) {
      g_opt.rate = std::atof(v.c_str());
    } else if (flag(a, "--connections", v)) {
      g_opt.connections = std::max(1, std::atoi(v.c_str()));
    } else if (flag(a, "--duration", v)) {
      g_opt.duration_s = std::atof(v.c_str());
    } else if (flag(a, "--warmup", v)) {
      g_opt.warmup_s = std::atof(v.c_str());
    } else if (flag(a, "--body-bytes", v)) {
      g_opt.body_bytes = std::atoi(v.c_str());
    } else if (flag(a, "--requests", v)) {
      g_opt.requests = std::strtoull(v.c_str(), nullptr, 10);
    } else if (flag(a, "--lockstep", v)) {
      g_opt.lockstep_fifo = v;
    } else if (flag(a, "--streams", v)) {
      g_opt.streams = std::max(1, std::atoi(v.c_str()));
    } else if (flag(a, "--events", v)) {
      g_opt.events = std::atoi(v.c_str());
    } else if (flag(a, "--interval-ms", v)) {
      g_opt.interval_ms = std::atoi(v.c_str());
    } else if (flag(a, "--event-bytes", v)) {
      g_opt.event_bytes = std::atoi(v.c_str());
    } else if (flag(a, "--cpu-pid", v)) {
      g_opt.cpu_pid = std::atoi(v.c_str());
    } else if (flag(a, "--rss-pid", v)) {
      g_opt.rss_pids.push_back(std::atoi(v.c_str()));
    } else if (flag(a, "--header", v)) {
      g_opt.headers.push_back(v);
    } else {
      return 2;
    }
  }
  if (g_opt.requests > 0 && (g_opt.rate > 0 || g_opt.hold)) return 2;
  if (!g_opt.lockstep_fifo.empty()) {
    if (g_opt.mode != "stream" || g_opt.streams != 1) return 2;
    g_opt.lockstep_fd = open(g_opt.lockstep_fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (g_opt.lockstep_fd < 0) return 2;
  }
  return g_opt.port > 0 ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (parse_args(argc, argv) != 0) {
    std::fprintf(stderr,
                 "usage: bench_load chat|stream --target=HOST:PORT [--path=P] [--rate=R] "
                 "[--connections=C] [--duration=S] [--warmup=S] [--body-bytes=N] [--requests=N] "
                 "[--lockstep=FIFO] [--streams=N] [--events=E] [--interval-ms=I] "
                 "[--event-bytes=B] [--hold] [--cpu-pid=PID] [--rss-pid=PID]... "
                 "[--header='K: V']...\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  uv_loop_t* loop = uv_default_loop();
  Runner runner(loop);
  runner.start();
  uv_run(loop, UV_RUN_DEFAULT);
  return 1;  // finish() exits; reaching here means the loop ran dry before the run ended
}
