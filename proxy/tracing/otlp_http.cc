#include "proxy/tracing/otlp_http.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <memory>

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

// The socket, with TLS over it when the target asks for it; every call gives up at `deadline`.
class CollectorConnection {
 public:
  CollectorConnection(int fd, const TlsClientContext* ctx, const std::string& host,
                      Steady::time_point deadline)
      : fd_(fd), deadline_(deadline) {
    if (ctx != nullptr) tls_ = std::make_unique<TlsTransform>(*ctx, host, host);
  }
  ~CollectorConnection() { close(fd_); }
  CollectorConnection(const CollectorConnection&) = delete;
  CollectorConnection& operator=(const CollectorConnection&) = delete;

  bool handshake() {
    if (!tls_) return true;
    while (true) {
      TlsTransform::Status st = tls_->handshake();
      if (!flush_tls()) return false;
      if (st == TlsTransform::Status::ok) return true;
      if (st != TlsTransform::Status::want_more || !receive_ciphertext()) return false;
    }
  }

  bool write(std::string_view data) {
    if (!tls_) return send_all(data);
    return tls_->write_plaintext(data) == TlsTransform::Status::ok && flush_tls();
  }

  // Appends what arrives next to `out`; false at the end of the stream, an error or the deadline.
  bool read(std::string& out) {
    if (!tls_) return recv_some(out);
    while (true) {
      size_t before = out.size();
      TlsTransform::Status st = tls_->read_plaintext(out);
      if (!flush_tls()) return false;
      if (out.size() > before) return true;
      if (st == TlsTransform::Status::closed || st == TlsTransform::Status::error) return false;
      if (!receive_ciphertext()) return false;
    }
  }

 private:
  bool send_all(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
      pollfd p{fd_, POLLOUT, 0};
      if (poll(&p, 1, remaining_ms(deadline_)) != 1) return false;
    }
    return true;
  }

  bool recv_some(std::string& out) {
    char buf[16384];
    while (true) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, remaining_ms(deadline_)) != 1) return false;
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        out.append(buf, static_cast<size_t>(n));
        return true;
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) return false;
    }
  }

  bool flush_tls() {
    std::string pending;
    tls_->take_ciphertext(pending);
    return send_all(pending);
  }

  bool receive_ciphertext() {
    std::string in;
    if (!recv_some(in)) return false;
    tls_->feed_ciphertext(in);
    return true;
  }

  int fd_;
  Steady::time_point deadline_;
  std::unique_ptr<TlsTransform> tls_;
};

// Reads the answer's head (bounded to 16 KiB; the body is not needed).
void read_status(CollectorConnection& conn, OtlpPostResult& result) {
  std::string head;
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < 16384) {
    if (!conn.read(head)) break;
  }
  if (head.size() < 12 || !head.starts_with("HTTP/1.")) return;
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (head[i] < '0' || head[i] > '9') return;
    status = status * 10 + (head[i] - '0');
  }
  result.status = status;
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
    if (digits > 0) result.retry_after = std::chrono::seconds(secs);
  }
}

}  // namespace

OtlpPostResult otlp_post(const OtlpTarget& target, const TlsClientContext* tls,
                         std::string_view head, std::string_view body,
                         Steady::time_point deadline) {
  OtlpPostResult result;
  if (target.tls && tls == nullptr) return result;
  int fd = connect_before(target.host, target.port, deadline);
  if (fd < 0) return result;
  CollectorConnection conn(fd, target.tls ? tls : nullptr, target.host, deadline);
  if (!conn.handshake()) {
    result.tls_failed = true;
    return result;
  }
  if (conn.write(head) && conn.write(body)) read_status(conn, result);
  return result;
}

}  // namespace tokentap
