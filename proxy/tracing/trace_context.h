// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` header and a
// bounded `tracestate`, plus random trace/span ids. Pure except IdGenerator's RNG state.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace tokentap {

using TraceId = std::array<uint8_t, 16>;
using SpanId = std::array<uint8_t, 8>;

// The spec's limit for a propagated tracestate; a longer one is dropped, not cut mid-entry.
inline constexpr size_t kMaxTraceState = 512;

struct TraceParent {
  TraceId trace_id{};
  SpanId parent_id{};
  bool sampled = false;  // trace-flags bit 0
};

// Parses a traceparent value. Version 00 must be exactly 55 characters; a higher version (not
// ff) is parsed by its first four fields and may carry more after a '-' (forward compatible);
// version ff, all-zero ids, upper-case or invalid hex and wrong lengths are rejected.
std::optional<TraceParent> parse_traceparent(std::string_view value);
// "00-<32 hex>-<16 hex>-<01|00>".
std::string format_traceparent(const TraceId& trace_id, const SpanId& span_id, bool sampled);
// The incoming tracestate to carry on: trimmed, "" when over kMaxTraceState or not printable.
std::string bounded_tracestate(std::string_view value);

std::string to_hex(const uint8_t* data, size_t size);
template <size_t N>
std::string to_hex(const std::array<uint8_t, N>& id) {
  return to_hex(id.data(), N);
}
template <size_t N>
bool is_zero(const std::array<uint8_t, N>& id) {
  for (uint8_t b : id) {
    if (b != 0) return false;
  }
  return true;
}

// Random, never all-zero ids. One per worker (not thread-safe), seeded from std::random_device.
class IdGenerator {
 public:
  IdGenerator();
  explicit IdGenerator(uint64_t seed) : rng_(seed) {}
  TraceId trace_id();
  SpanId span_id();
  // Uniform in [0, 1), for ratio sampling.
  double unit();

 private:
  std::mt19937_64 rng_;
};

}  // namespace tokentap
