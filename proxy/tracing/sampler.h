// The keep-or-drop decision for a finished request's span, taken at the end (tail): every failed
// request is kept; otherwise an incoming sampled flag decides (parent-based); otherwise the
// ratio. Pure.
#pragma once

#include <optional>

namespace tokentap {

// `draw` is uniform in [0, 1) (IdGenerator::unit()).
inline bool keep_span(bool failed, std::optional<bool> parent_sampled, double sample_ratio,
                      double draw) {
  if (failed) return true;
  if (parent_sampled) return *parent_sampled;
  return draw < sample_ratio;
}

}  // namespace tokentap
