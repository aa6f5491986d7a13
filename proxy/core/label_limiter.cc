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

}  // namespace tokentap
