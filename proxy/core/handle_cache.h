// Resolves Prometheus label sets to metric handles once per worker. prometheus-cpp's
// Family::Add locks and hashes a label map, so it must not run per request for a label set seen
// before: here that costs one hash lookup, keyed by the family's address and the raw label
// values, built in a reused buffer (no allocation once it has grown).
// Values of capped labels go through a LabelLimiter (past its cap they are reported as
// "other"); raw values past the cap still get entries, so the cache is cleared when it reaches
// kMaxHandles. One instance per worker, used from that worker's loop thread only.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <cstddef>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "proxy/core/label_limiter.h"

namespace tokentap {

class HandleCache {
 public:
  using Labels = std::initializer_list<std::pair<const char*, std::string_view>>;
  // The value set a label of `family` is capped in (e.g. "model" for every model label), or ""
  // when its values are not capped. Called on a cache miss only.
  using CapKey = std::function<std::string_view(const void* family, std::string_view label)>;
  static constexpr size_t kMaxHandles = 20'000;

  HandleCache() = default;  // no label is capped
  HandleCache(LabelLimiter& limiter, CapKey cap_key)
      : limiter_(&limiter), cap_key_(std::move(cap_key)) {}

  prometheus::Counter& counter(prometheus::Family<prometheus::Counter>& family, Labels labels);
  prometheus::Gauge& gauge(prometheus::Family<prometheus::Gauge>& family, Labels labels);
  prometheus::Histogram& histogram(prometheus::Family<prometheus::Histogram>& family, Labels labels,
                                   const prometheus::Histogram::BucketBoundaries& buckets);

 private:
  prometheus::Labels capped(const void* family, Labels labels);
  const std::string& key_of(const void* family, Labels labels);
  template <class T>
  void bound(std::unordered_map<std::string, T*>& cache);

  LabelLimiter* limiter_ = nullptr;
  CapKey cap_key_;
  std::unordered_map<std::string, prometheus::Counter*> counters_;
  std::unordered_map<std::string, prometheus::Gauge*> gauges_;
  std::unordered_map<std::string, prometheus::Histogram*> histograms_;
  std::string key_;
};

}  // namespace tokentap
