#include "proxy/tracing/otlp_exporter.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>

namespace tokentap {
namespace {

using Steady = std::chrono::steady_clock;

int remaining_ms(Steady::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

// A connected non-blocking socket to host:port before `deadline`, or -1.
int connect_before(const std::string& host, uint16_t port, Steady::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) return -1;
  int fd = -1;
  for (addrinfo* ai = res; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      close(fd);
      fd = -1;
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (poll(&p, 1, remaining_ms(deadline)) != 1 ||
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  return fd;
}

bool send_all(int fd, std::string_view data, Steady::time_point deadline) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, remaining_ms(deadline)) != 1) return false;
  }
  return true;
}

// Reads the response head (bounded to 16 KiB; the body is not needed), returns the status.
int read_status(int fd, Steady::time_point deadline, std::optional<std::chrono::seconds>& ra) {
  std::string head;
  char buf[4096];
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < 16384) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, remaining_ms(deadline)) != 1) return 0;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return 0;
    }
    head.append(buf, static_cast<size_t>(n));
  }
  if (head.size() < 12 || !head.starts_with("HTTP/1.")) return 0;
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (head[i] < '0' || head[i] > '9') return 0;
    status = status * 10 + (head[i] - '0');
  }
  std::string lower = head;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (size_t at = lower.find("\r\nretry-after:"); at != std::string::npos) {
    size_t i = at + 14;
    while (i < lower.size() && lower[i] == ' ') ++i;
    int64_t secs = 0;
    size_t digits = 0;
    while (i < lower.size() && lower[i] >= '0' && lower[i] <= '9' && digits < 6) {
      secs = secs * 10 + (lower[i++] - '0');
      ++digits;
    }
    if (digits > 0) ra = std::chrono::seconds(secs);
  }
  return status;
}

bool retryable(int status) {
  return status == 0 || status == 429 || status == 502 || status == 503 || status == 504;
}

}  // namespace

OtlpExporter::OtlpExporter(OtlpExporterOptions options) : options_(std::move(options)) {
  auto url = parse_upstream_url(options_.endpoint);
  if (!url || url->tls || url->host.empty()) {
    throw std::invalid_argument("tracing endpoint must be http://host[:port]/path");
  }
  target_.host = url->host;
  target_.port = url->port;
  target_.path = url->base_path.empty() ? "/v1/traces" : url->base_path;
  thread_ = std::thread([this] { run(); });
}

OtlpExporter::~OtlpExporter() { stop(); }

bool OtlpExporter::enqueue(nlohmann::json span) {
  std::string s = span.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > options_.max_span_bytes) {
    dropped_too_large_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  {
    std::lock_guard lock(mu_);
    if (stopping_ || queue_.size() >= options_.max_queue_spans ||
        queue_bytes_ + s.size() > options_.max_queue_bytes) {
      dropped_queue_full_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    queue_bytes_ += s.size();
    queue_.push_back(std::move(s));
    if (queue_.size() < options_.max_batch_spans) return true;
  }
  cv_.notify_one();
  return true;
}

void OtlpExporter::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

OtlpExporterStats OtlpExporter::stats() const {
  OtlpExporterStats s;
  s.exported = exported_.load();
  s.export_errors = export_errors_.load();
  s.dropped_queue_full = dropped_queue_full_.load();
  s.dropped_too_large = dropped_too_large_.load();
  s.dropped_export_failed = dropped_export_failed_.load();
  s.dropped_shutdown = dropped_shutdown_.load();
  return s;
}

void OtlpExporter::run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait_for(lock, options_.flush_interval,
                 [&] { return stopping_ || queue_.size() >= options_.max_batch_spans; });
    bool final_round = stopping_;
    while (!queue_.empty()) {
      std::deque<std::string> batch;
      while (!queue_.empty() && batch.size() < options_.max_batch_spans) {
        queue_bytes_ -= queue_.front().size();
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      lock.unlock();
      export_batch(batch, final_round);
      lock.lock();
      if (!final_round && queue_.size() < options_.max_batch_spans) break;
    }
    if (final_round) return;
  }
}

void OtlpExporter::export_batch(std::deque<std::string>& batch, bool final_attempt) {
  std::string spans;
  for (const std::string& s : batch) {
    spans += spans.empty() ? "" : ",";
    spans += s;
  }
  std::string body = otlp_request_body({}, options_.service_name, options_.resource_attributes);
  // Splice the already-serialized spans into the empty "spans":[] of the envelope.
  static constexpr std::string_view kEmpty = "\"spans\":[]";
  size_t at = body.find(kEmpty);
  body.insert(at + kEmpty.size() - 1, spans);

  std::chrono::milliseconds backoff = options_.initial_backoff;
  int attempts = final_attempt ? 1 : options_.max_attempts;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    std::optional<std::chrono::seconds> retry_after;
    int status = post(body, retry_after);
    if (status >= 200 && status < 300) {
      exported_.fetch_add(batch.size(), std::memory_order_relaxed);
      return;
    }
    export_errors_.fetch_add(1, std::memory_order_relaxed);
    if (!retryable(status) || attempt == attempts) break;
    std::chrono::milliseconds wait = backoff;
    if (retry_after) wait = std::chrono::duration_cast<std::chrono::milliseconds>(*retry_after);
    wait = std::min(wait, options_.max_backoff);
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, wait, [&] { return stopping_; })) {
        attempts = std::min(attempts, attempt + 1);  // one last try on shutdown
      }
    }
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  (final_attempt ? dropped_shutdown_ : dropped_export_failed_)
      .fetch_add(batch.size(), std::memory_order_relaxed);
}

int OtlpExporter::post(const std::string& body, std::optional<std::chrono::seconds>& ra) {
  Steady::time_point deadline = Steady::now() + options_.timeout;
  int fd = connect_before(target_.host, target_.port, deadline);
  if (fd < 0) return 0;
  std::string head =
      "POST " + target_.path + " HTTP/1.1\r\nHost: " + target_.host + ":" +
      std::to_string(target_.port) +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n";
  for (const auto& [name, value] : options_.headers)
    head.append(name).append(": ").append(value).append("\r\n");
  head += "\r\n";
  int status = 0;
  if (send_all(fd, head, deadline) && send_all(fd, body, deadline)) {
    status = read_status(fd, deadline, ra);
  }
  close(fd);
  return status;
}

}  // namespace tokentap
