#include "proxy/telemetry/usage_store.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <tuple>

namespace tokentap {

namespace {

constexpr char kSep = '\x1f';

}  // namespace

double SparseLatencyHistogram::bucket_middle(int bucket) {
  return bucket == 0 ? 0.001 : 0.001 * std::exp2((bucket + 0.5) / kBucketsPerDoubling);
}

void SparseLatencyHistogram::add_to_bucket(uint8_t bucket, uint32_t count) {
  auto it = std::lower_bound(buckets_.begin(), buckets_.end(), bucket,
                             [](const auto& b, uint8_t v) { return b.first < v; });
  if (it != buckets_.end() && it->first == bucket) {
    it->second += count;
  } else {
    buckets_.insert(it, {bucket, count});
  }
  total_ += count;
}

void SparseLatencyHistogram::add(double seconds, uint32_t count) {
  int bucket = 0;
  if (seconds > 0.001) {
    bucket = static_cast<int>(std::floor(std::log2(seconds / 0.001) * kBucketsPerDoubling));
    bucket = std::clamp(bucket, 0, kBuckets - 1);
  }
  add_to_bucket(static_cast<uint8_t>(bucket), count);
}

void SparseLatencyHistogram::merge(const SparseLatencyHistogram& other) {
  for (const auto& [bucket, count] : other.buckets_) add_to_bucket(bucket, count);
}

double SparseLatencyHistogram::quantile(double q) const {
  if (total_ == 0) return 0;
  const uint64_t rank =
      std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * static_cast<double>(total_))));
  uint64_t seen = 0;
  for (const auto& [bucket, count] : buckets_) {
    seen += count;
    if (seen >= rank) return bucket_middle(bucket);
  }
  return bucket_middle(buckets_.back().first);
}

void UsageTotals::add(const UsageTotals& other) {
  requests += other.requests;
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] += other.tokens[i];
  nano_usd += other.nano_usd;
  unpriced += other.unpriced;
  for (const auto& error : other.errors) {
    auto it = std::find_if(errors.begin(), errors.end(),
                           [&](const auto& e) { return e.first == error.first; });
    if (it == errors.end()) {
      errors.push_back(error);
    } else {
      it->second += error.second;
    }
  }
  latency.merge(other.latency);
  ttft.merge(other.ttft);
}

uint64_t UsageTotals::error_count() const {
  uint64_t count = 0;
  for (const auto& [type, n] : errors) count += n;
  return count;
}

int64_t UsageStore::wall_minute() {
  using namespace std::chrono;
  return duration_cast<minutes>(system_clock::now().time_since_epoch()).count();
}

UsageStore::UsageStore(MinuteClock clock) : clock_(std::move(clock)), ring_(kMinutes) {}

void UsageStore::record(const UsageSample& s) {
  const int64_t now = clock_();
  std::string key;
  key.reserve(s.agent.size() + s.provider.size() + s.model.size() + 2);
  key.append(s.agent).append(1, kSep).append(s.provider).append(1, kSep).append(s.model);

  std::lock_guard<std::mutex> lock(mu_);
  Minute& m = ring_[static_cast<size_t>(((now % kMinutes) + kMinutes) % kMinutes)];
  if (m.minute != now) {
    if (m.cells && !m.shared) {
      m.cells->clear();
    } else {
      m.cells = std::make_shared<Cells>();
    }
    m.minute = now;
    m.shared = false;
  } else if (m.shared) {
    // A snapshot still reads this minute: change a copy (at most once per query).
    m.cells = std::make_shared<Cells>(*m.cells);
    m.shared = false;
  }
  Cells& cells = *m.cells;
  auto it = cells.find(key);
  if (it == cells.end()) {
    if (cells.size() >= kMaxSeriesPerMinute) {
      key = std::string("other") + kSep + std::string(s.provider) + kSep + "other";
    }
    it = cells.try_emplace(std::move(key)).first;
  }
  Cell& c = it->second;
  ++c.requests;
  const uint64_t tokens[5] = {s.input, s.output, s.cache_read, s.cache_write, s.reasoning};
  for (size_t i = 0; i < 5; ++i) c.tokens[i] += tokens[i];
  c.nano_usd += s.nano_usd;
  if (s.unpriced) ++c.unpriced;
  if (s.error_type != "none") {
    auto e = std::find_if(c.errors.begin(), c.errors.end(),
                          [&](const auto& x) { return x.first == s.error_type; });
    if (e == c.errors.end()) {
      c.errors.emplace_back(std::string(s.error_type), 1);
    } else {
      ++e->second;
    }
  }
  c.latency.add(s.duration_seconds);
  if (s.ttft_seconds >= 0) c.ttft.add(s.ttft_seconds);
}

UsageReport UsageStore::query(const Query& q) const { return summarize(snapshot(q)); }

UsageStore::Snapshot UsageStore::snapshot(const Query& q) const {
  Snapshot snap;
  snap.query_ = q;
  snap.query_.hours = std::clamp(q.hours, 1, 24);
  snap.now_ = clock_();
  const int64_t first = snap.now_ - static_cast<int64_t>(snap.query_.hours) * 60 + 1;
  snap.minutes_.reserve(static_cast<size_t>(snap.now_ - first + 1));
  std::lock_guard<std::mutex> lock(mu_);
  for (int64_t minute = first; minute <= snap.now_; ++minute) {
    Minute& m = ring_[static_cast<size_t>(((minute % kMinutes) + kMinutes) % kMinutes)];
    if (m.minute != minute || !m.cells || m.cells->empty()) continue;
    m.shared = true;
    snap.minutes_.emplace_back(minute, m.cells);
  }
  return snap;
}

UsageReport UsageStore::summarize(const Snapshot& snapshot) {
  const Query& q = snapshot.query_;
  UsageReport report;
  report.hours = q.hours;
  report.last_minute = snapshot.now_;
  report.first_minute = snapshot.now_ - static_cast<int64_t>(q.hours) * 60 + 1;
  report.agent = q.agent;
  report.model = q.model;
  report.per_minute = q.per_minute;

  using SeriesKey = std::tuple<std::string, std::string, std::string>;  // agent, provider, model
  struct Group {
    Cell total;
    std::map<int64_t, Cell> minutes;
  };
  std::map<SeriesKey, Group> groups;
  for (const auto& [minute, cells] : snapshot.minutes_) {
    for (const auto& [key, cell] : *cells) {
      const size_t a = key.find(kSep);
      const size_t b = key.find(kSep, a + 1);
      SeriesKey g{key.substr(0, a), key.substr(a + 1, b - a - 1), key.substr(b + 1)};
      if (!q.agent.empty() && std::get<0>(g) != q.agent) continue;
      if (!q.model.empty() && std::get<2>(g) != q.model) continue;
      Group& group = groups[g];
      group.total.add(cell);
      if (q.per_minute) group.minutes[minute].add(cell);
      report.totals.add(cell);
    }
  }
  report.series.reserve(groups.size());
  for (auto& [key, group] : groups) {
    UsageReport::Series& series = report.series.emplace_back();
    std::tie(series.agent, series.provider, series.model) = key;
    series.totals = std::move(group.total);
    series.minutes.reserve(group.minutes.size());
    for (auto& [minute, totals] : group.minutes)
      series.minutes.emplace_back(minute, std::move(totals));
  }
  return report;
}

}  // namespace tokentap
