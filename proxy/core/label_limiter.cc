#include "proxy/core/label_limiter.h"

namespace tokentap {

std::string LabelLimiter::cap(std::string_view label, std::string_view value) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& seen = seen_[std::string(label)];
  std::string v(value);
  if (seen.contains(v)) return v;
  if (seen.size() >= max_values_) return "other";
  seen.insert(v);
  return v;
}

const std::string& CappedValues::get(std::string_view label, std::string_view value) {
  std::string key;
  key.reserve(label.size() + value.size() + 1);
  key.append(label).append(1, '\x1f').append(value);
  if (auto it = values_.find(key); it != values_.end()) return it->second;
  if (values_.size() >= kMaxValues) values_.clear();
  return values_.emplace(std::move(key), limiter_.cap(label, value)).first->second;
}

}  // namespace tokentap
