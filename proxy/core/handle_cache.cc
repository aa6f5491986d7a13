#include "proxy/core/handle_cache.h"

namespace tokentap {

const std::string& HandleCache::key_of(const void* family, Labels labels) {
  key_.assign(reinterpret_cast<const char*>(&family), sizeof family);
  for (const auto& [name, value] : labels) {
    key_ += '\x1f';
    key_ += value;
  }
  return key_;
}

prometheus::Labels HandleCache::capped(const void* family, Labels labels) {
  prometheus::Labels out;
  for (const auto& [name, value] : labels) {
    std::string_view key = limiter_ != nullptr ? cap_key_(family, name) : std::string_view();
    out.emplace(name, key.empty() ? std::string(value) : limiter_->cap(key, value));
  }
  return out;
}

template <class T>
void HandleCache::bound(std::unordered_map<std::string, T*>& cache) {
  if (cache.size() >= kMaxHandles) cache.clear();
}

prometheus::Counter& HandleCache::counter(prometheus::Family<prometheus::Counter>& family,
                                          Labels labels) {
  const std::string& key = key_of(&family, labels);
  if (auto it = counters_.find(key); it != counters_.end()) return *it->second;
  bound(counters_);
  prometheus::Counter& c = family.Add(capped(&family, labels));
  counters_.emplace(key, &c);
  return c;
}

prometheus::Gauge& HandleCache::gauge(prometheus::Family<prometheus::Gauge>& family,
                                      Labels labels) {
  const std::string& key = key_of(&family, labels);
  if (auto it = gauges_.find(key); it != gauges_.end()) return *it->second;
  bound(gauges_);
  prometheus::Gauge& g = family.Add(capped(&family, labels));
  gauges_.emplace(key, &g);
  return g;
}

prometheus::Histogram& HandleCache::histogram(
    prometheus::Family<prometheus::Histogram>& family, Labels labels,
    const prometheus::Histogram::BucketBoundaries& buckets) {
  const std::string& key = key_of(&family, labels);
  if (auto it = histograms_.find(key); it != histograms_.end()) return *it->second;
  bound(histograms_);
  prometheus::Histogram& h = family.Add(capped(&family, labels), buckets);
  histograms_.emplace(key, &h);
  return h;
}

}  // namespace tokentap
