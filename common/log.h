// Line-oriented log output that never blocks the proxy's event loops on I/O, plus the
// process-wide diagnostic logger (one JSON object per line on stderr).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace tokentap {

enum class LogLevel { debug, info, warn, error };

// Writes whole lines to a destination from one background thread.
//
// The destination is "stdout", "stderr", "off" (everything is discarded) or a file path, opened
// for append and created when missing; the constructor throws std::runtime_error naming the path
// and the reason when the file cannot be opened. write() is thread-safe and only copies the line
// into a queue bounded by `capacity_bytes` (lines being written count against it too); when the
// line does not fit it is dropped and counted. Lines lost to write errors (disk full, closed pipe)
// are counted as dropped too. The destructor writes everything queued, then joins the thread.
class LineWriter {
 public:
  static constexpr size_t kDefaultCapacity = 8u << 20;
  // Lines are written in batches of up to kBatchBytes or kBatchLinger after the first line.
  static constexpr size_t kBatchBytes = 64u << 10;
  static constexpr std::chrono::milliseconds kBatchLinger{10};

  explicit LineWriter(const std::string& destination, size_t capacity_bytes = kDefaultCapacity);
  ~LineWriter();
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;

  // Queues `line`, adding '\n' when missing. Returns false when it was dropped for lack of room.
  bool write(std::string line);
  // Blocks until every line queued before the call has been handed to the destination.
  void flush();
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  bool enabled() const { return fd_ >= 0; }

 private:
  void run();
  // Writes `batch` fully; returns the number of lines that could not be written.
  uint64_t write_all(const std::string& batch);

  int fd_ = -1;
  bool owns_fd_ = false;
  size_t capacity_;
  std::atomic<uint64_t> dropped_{0};

  std::mutex mu_;
  std::condition_variable wake_;     // the writer thread: work or stop
  std::condition_variable drained_;  // flush(): queue empty and nothing in flight
  std::string pending_;              // lines queued, not yet taken by the writer thread
  size_t in_flight_ = 0;             // bytes taken by the writer thread, not yet written
  uint64_t accepted_bytes_ = 0;      // total ever queued; flush() waits for done_bytes_ to reach it
  uint64_t done_bytes_ = 0;          // total written or lost to write errors
  bool stop_ = false;
  int flushers_ = 0;  // flush() calls waiting: write now, do not linger for a batch
  std::thread thread_;
};

// Current UTC time as "2026-01-02T03:04:05.678Z".
std::string utc_timestamp(
    std::chrono::system_clock::time_point t = std::chrono::system_clock::now());

const char* log_level_name(LogLevel level);

// Sets the minimum level of the diagnostic log. Before any call the level is info.
void init_diag_log(LogLevel min_level);
// True when a line at `level` would be written: check it before building expensive fields.
bool diag_enabled(LogLevel level);
// Writes {"time":"...Z","level":"info","msg":"...",<fields>} as one line to stderr. Message and
// field values pass through scrub() for provider-key patterns; callers still scrub known keys.
// A field named time, level or msg is written as _time, _level, _msg. Safe from any thread at any
// time, including before init_diag_log(); never blocks on I/O.
void diag(LogLevel level, std::string_view msg,
          std::initializer_list<std::pair<std::string_view, std::string_view>> fields = {});
// Blocks until every diagnostic line so far is written (also run automatically at exit()).
void flush_diag_log();

}  // namespace tokentap
