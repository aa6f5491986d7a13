// Caps the number of distinct values per metric label, so a client cannot grow Prometheus
// without bound; values past the cap are reported as "other".
#pragma once

#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace tokentap {

// Thread-safe cap on distinct values per label name.
class LabelLimiter {
 public:
  explicit LabelLimiter(size_t max_values) : max_values_(max_values) {}
  // Returns `value` if it is already known or there is room for it, else "other".
  std::string cap(std::string_view label, std::string_view value);

 private:
  size_t max_values_;
  std::mutex mu_;
  std::unordered_map<std::string, std::unordered_set<std::string>> seen_;
};

// LabelLimiter::cap remembered per worker, so a value seen before costs a hash lookup, not the
// limiter's lock; bounded like HandleCache. Used from one loop thread only.
class CappedValues {
 public:
  static constexpr size_t kMaxValues = 20'000;
  explicit CappedValues(LabelLimiter& limiter) : limiter_(limiter) {}
  const std::string& get(std::string_view label, std::string_view value);

 private:
  LabelLimiter& limiter_;
  std::unordered_map<std::string, std::string> values_;  // label \x1f value -> capped value
};

}  // namespace tokentap
