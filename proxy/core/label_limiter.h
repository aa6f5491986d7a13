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

}  // namespace tokentap
