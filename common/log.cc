#include "common/log.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <vector>

#include "common/redact.h"
#include "common/text.h"

namespace tokentap {

LineWriter::LineWriter(const std::string& destination, size_t capacity_bytes)
    : capacity_(capacity_bytes) {
  if (destination == "off") return;
  if (destination == "stdout") {
    fd_ = STDOUT_FILENO;
  } else if (destination == "stderr") {
    fd_ = STDERR_FILENO;
  } else if (destination.empty()) {
    throw std::runtime_error("log destination is empty (use stdout, stderr, off or a file path)");
  } else {
    fd_ = ::open(destination.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      throw std::runtime_error("cannot open log file \"" + destination +
                               "\" for append: " + std::strerror(errno));
    }
    owns_fd_ = true;
  }
  try {
    thread_ = std::thread([this] { run(); });
  } catch (...) {
    if (owns_fd_) ::close(fd_);
    throw;
  }
}

LineWriter::~LineWriter() {
  if (thread_.joinable()) {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  if (owns_fd_) ::close(fd_);
}

bool LineWriter::write(std::string line) {
  if (!enabled()) return true;
  if (line.empty() || line.back() != '\n') line.push_back('\n');
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (pending_.size() + in_flight_ + line.size() > capacity_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    // Wake the writer for the first line of a batch and when a batch is full; in between it
    // lingers (see run()), so a busy proxy pays one wake-up per batch, not one per line.
    wake = pending_.empty() ||
           (pending_.size() < kBatchBytes && pending_.size() + line.size() >= kBatchBytes);
    pending_.append(line);
    accepted_bytes_ += line.size();
  }
  if (wake) wake_.notify_one();
  return true;
}

void LineWriter::flush() {
  if (!enabled()) return;
  std::unique_lock lock(mu_);
  uint64_t target = accepted_bytes_;
  ++flushers_;
  wake_.notify_one();
  drained_.wait(lock, [&] { return done_bytes_ >= target; });
  --flushers_;
}

void LineWriter::run() {
  // Two buffers swap roles so that neither is reallocated on every batch.
  std::string batch;
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return stop_ || !pending_.empty(); });
    if (pending_.empty()) break;  // stop_ with nothing left to write
    // Linger briefly so that lines arriving close together go out in one write.
    wake_.wait_for(lock, kBatchLinger,
                   [this] { return stop_ || flushers_ > 0 || pending_.size() >= kBatchBytes; });
    batch.swap(pending_);
    in_flight_ = batch.size();
    lock.unlock();
    uint64_t lost = write_all(batch);
    if (lost > 0) dropped_.fetch_add(lost, std::memory_order_relaxed);
    lock.lock();
    done_bytes_ += batch.size();
    in_flight_ = 0;
    batch.clear();
    drained_.notify_all();
  }
}

uint64_t LineWriter::write_all(const std::string& batch) {
  // stdout and stderr may be one pipe shared by several writers (access log and diag log, or
  // 2>&1), and pipe writes over PIPE_BUF can interleave: one batch at a time keeps lines whole.
  static std::mutex standard_streams;
  std::unique_lock<std::mutex> exclusive;
  if (!owns_fd_) exclusive = std::unique_lock(standard_streams);
  const char* data = batch.data();
  size_t left = batch.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, data, left);
    if (n >= 0) {
      data += n;
      left -= static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      // Someone made the descriptor non-blocking (a shared terminal or pipe); wait for room.
      pollfd pfd{fd_, POLLOUT, 0};
      ::poll(&pfd, 1, -1);
      continue;
    }
    return static_cast<uint64_t>(std::count(data, data + left, '\n'));
  }
  return 0;
}

namespace {

std::atomic<int> g_diag_level{static_cast<int>(LogLevel::info)};

LineWriter& diag_writer() {
  // Deliberately never destroyed: diag() may run from other threads or static destructors after
  // main() returns. Lines still queued are written by the atexit hook.
  static LineWriter* writer = [] {
    auto* w = new LineWriter("stderr", 1u << 20);
    std::atexit([] { flush_diag_log(); });
    return w;
  }();
  return *writer;
}

}  // namespace

std::string utc_timestamp(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  // Every access-log line has one: the date and time are formatted once per second per thread.
  thread_local std::time_t cached_seconds = -1;
  thread_local char cached[40];
  thread_local size_t cached_len = 0;
  if (seconds != cached_seconds) {
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    cached_len = std::strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
    cached_seconds = seconds;
  }
  auto millis = static_cast<int>(ms % 1000);
  std::string out;
  out.reserve(cached_len + 5);
  out.append(cached, cached_len);
  out.push_back('.');
  out.push_back(static_cast<char>('0' + millis / 100));
  out.push_back(static_cast<char>('0' + millis / 10 % 10));
  out.push_back(static_cast<char>('0' + millis % 10));
  out.push_back('Z');
  return out;
}

const char* log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
  }
  return "unknown";
}

void init_diag_log(LogLevel min_level) {
  g_diag_level.store(static_cast<int>(min_level), std::memory_order_relaxed);
}

bool diag_enabled(LogLevel level) {
  return static_cast<int>(level) >= g_diag_level.load(std::memory_order_relaxed);
}

void diag(LogLevel level, std::string_view msg,
          std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  if (!diag_enabled(level)) return;
  static const std::vector<std::string> no_known_secrets;
  std::string line;
  line.reserve(96 + msg.size());
  line.append("{\"time\":");
  append_json_string(line, utc_timestamp());
  line.append(",\"level\":");
  append_json_string(line, log_level_name(level));
  line.append(",\"msg\":");
  append_json_string(line, scrub(msg, no_known_secrets));
  for (const auto& [name, value] : fields) {
    line.push_back(',');
    if (name == "time" || name == "level" || name == "msg") {
      // Not "_" + std::string(name): a false -Wrestrict from GCC 12 at -O3 (GCC bug 105329).
      std::string renamed(1, '_');
      renamed.append(name);
      append_json_string(line, renamed);
    } else {
      append_json_string(line, name);
    }
    line.push_back(':');
    append_json_string(line, scrub(value, no_known_secrets));
  }
  line.push_back('}');
  diag_writer().write(std::move(line));
}

void flush_diag_log() { diag_writer().flush(); }

}  // namespace tokentap
