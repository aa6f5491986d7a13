// Usage analytics for GET /v1/usage on the admin port: every metered request of the last 24
// hours, kept in per-minute buckets per agent, provider and model (requests, tokens by type,
// cost, errors by type, latency and time-to-first-token distributions). A query sums the
// minutes of the last N hours, so "what did this agent cost in the last hour" is answered from
// the sidecar itself, with the same numbers as llm_cost_usd_total.
//
// Memory is bounded: a minute holds at most kMaxSeriesPerMinute agent/provider/model series
// (later ones are counted as agent and model "other") and latencies are kept in sparse
// log-scale histograms (4 buckets per doubling, so a percentile is within ~9% of the truth).
// Thread-safe; the clock is injected (minutes since the Unix epoch) so tests can move time.
// A query never holds the lock that record() needs while it aggregates: it takes a snapshot (a
// reference to each minute of the window, which record() copies before changing it again) and
// sums that.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tokentap {

// A distribution of durations in log-scale buckets from 1 ms (below: the first bucket) to
// about 18 hours; only the buckets in use take memory.
class SparseLatencyHistogram {
 public:
  void add(double seconds, uint32_t count = 1);
  void merge(const SparseLatencyHistogram& other);
  uint64_t count() const { return total_; }
  // The q-quantile (0 < q <= 1) in seconds, to the middle of its bucket; 0 when empty.
  double quantile(double q) const;

 private:
  static constexpr int kBucketsPerDoubling = 4;
  static constexpr int kBuckets = 4 * 26;
  static double bucket_middle(int bucket);  // seconds
  void add_to_bucket(uint8_t bucket, uint32_t count);
  std::vector<std::pair<uint8_t, uint32_t>> buckets_;  // (bucket, count), sorted by bucket
  uint64_t total_ = 0;
};

struct UsageSample {
  std::string_view agent;
  std::string_view provider;
  std::string_view model;
  uint64_t input = 0;
  uint64_t output = 0;
  uint64_t cache_read = 0;
  uint64_t cache_write = 0;
  uint64_t reasoning = 0;
  int64_t nano_usd = 0;
  bool unpriced = false;
  std::string_view error_type = "none";  // the llm_requests_total error_type label
  double duration_seconds = 0;
  double ttft_seconds = -1;  // < 0: not a stream with content
};

// Sums over a set of requests: a series, one minute of it, or a whole query window.
struct UsageTotals {
  static constexpr const char* kTokenTypes[5] = {"input", "output", "cache_read", "cache_write",
                                                 "reasoning"};
  uint64_t requests = 0;
  std::array<uint64_t, 5> tokens{};  // in kTokenTypes order
  int64_t nano_usd = 0;
  uint64_t unpriced = 0;                                 // requests without a price
  std::vector<std::pair<std::string, uint64_t>> errors;  // error_type -> count, unordered
  SparseLatencyHistogram latency;
  SparseLatencyHistogram ttft;
  void add(const UsageTotals& other);
  uint64_t error_count() const;
};

// The answer to a UsageStore::Query.
struct UsageReport {
  // The window: whole minutes since the Unix epoch, both ends included.
  int64_t first_minute = 0;
  int64_t last_minute = 0;
  int hours = 1;
  std::string agent;  // the query's filters, "" for none
  std::string model;
  bool per_minute = false;
  UsageTotals totals;  // every request in the window that passes the filters
  struct Series {
    std::string agent, provider, model;
    UsageTotals totals;
    // With per_minute: the minutes that saw a request, oldest first.
    std::vector<std::pair<int64_t, UsageTotals>> minutes;
  };
  std::vector<Series> series;  // sorted by agent, provider, model
};

class UsageStore {
 public:
  static constexpr int64_t kMinutes = int64_t{24} * 60;
  static constexpr size_t kMaxSeriesPerMinute = 200;
  using MinuteClock = std::function<int64_t()>;
  static int64_t wall_minute();

  explicit UsageStore(MinuteClock clock = wall_minute);

  void record(const UsageSample& sample);

  struct Query {
    std::string agent;        // empty: every agent
    std::string model;        // empty: every model
    int hours = 1;            // 1..24
    bool per_minute = false;  // add each group's non-empty minutes
  };
  class Snapshot;
  // Same as summarize(snapshot(q)).
  UsageReport query(const Query& q) const;
  // The minutes of q's window as they are now; later record() calls do not change it. Holds the
  // lock for one reference per minute of the window, nothing more.
  Snapshot snapshot(const Query& q) const;
  // The answer to the snapshot's query, computed without any lock.
  static UsageReport summarize(const Snapshot& snapshot);

 private:
  using Cell = UsageTotals;
  using Cells = std::unordered_map<std::string, Cell>;  // key: agent \x1f provider \x1f model
  struct Minute {
    int64_t minute = -1;
    std::shared_ptr<Cells> cells;  // null until first used
    bool shared = false;  // a snapshot holds `cells`: record() must not change them in place
  };

  MinuteClock clock_;
  mutable std::mutex mu_;
  mutable std::vector<Minute> ring_;  // kMinutes slots, indexed by minute modulo kMinutes

 public:
  class Snapshot {
   private:
    friend class UsageStore;
    Query query_;
    int64_t now_ = 0;
    std::vector<std::pair<int64_t, std::shared_ptr<const Cells>>> minutes_;  // oldest first
  };
};

}  // namespace tokentap
