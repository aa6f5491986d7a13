#include "proxy/tracing/trace_context.h"

#include <cstring>

namespace tokentap {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // the spec allows lower-case hex only
}

template <size_t N>
bool parse_hex(std::string_view s, std::array<uint8_t, N>& out) {
  if (s.size() != 2 * N) return false;
  for (size_t i = 0; i < N; ++i) {
    int hi = hex_value(s[2 * i]);
    int lo = hex_value(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return true;
}

}  // namespace

std::optional<TraceParent> parse_traceparent(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  // version(2) - trace-id(32) - parent-id(16) - flags(2)
  if (v.size() < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') return std::nullopt;
  std::array<uint8_t, 1> version{};
  if (!parse_hex(v.substr(0, 2), version) || version[0] == 0xff) return std::nullopt;
  if (version[0] == 0 && v.size() != 55) return std::nullopt;
  if (version[0] != 0 && v.size() > 55 && v[55] != '-') return std::nullopt;
  TraceParent tp;
  std::array<uint8_t, 1> flags{};
  if (!parse_hex(v.substr(3, 32), tp.trace_id) || !parse_hex(v.substr(36, 16), tp.parent_id) ||
      !parse_hex(v.substr(53, 2), flags)) {
    return std::nullopt;
  }
  if (is_zero(tp.trace_id) || is_zero(tp.parent_id)) return std::nullopt;
  tp.sampled = (flags[0] & 0x01) != 0;
  return tp;
}

std::string to_hex(const uint8_t* data, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0x0f];
  }
  return out;
}

std::string format_traceparent(const TraceId& trace_id, const SpanId& span_id, bool sampled) {
  std::string out = "00-";
  out += to_hex(trace_id);
  out += '-';
  out += to_hex(span_id);
  out += sampled ? "-01" : "-00";
  return out;
}

std::string bounded_tracestate(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.size() > kMaxTraceState) return {};
  for (char c : v) {
    if (c < 0x20 || c > 0x7e) return {};  // would allow header injection; drop it whole
  }
  return std::string(v);
}

IdGenerator::IdGenerator() {
  std::random_device rd;
  std::seed_seq seq{rd(), rd(), rd(), rd()};
  rng_.seed(seq);
}

TraceId IdGenerator::trace_id() {
  TraceId id{};
  do {
    uint64_t a = rng_();
    uint64_t b = rng_();
    std::memcpy(id.data(), &a, 8);
    std::memcpy(id.data() + 8, &b, 8);
  } while (is_zero(id));
  return id;
}

SpanId IdGenerator::span_id() {
  SpanId id{};
  do {
    uint64_t a = rng_();
    std::memcpy(id.data(), &a, 8);
  } while (is_zero(id));
  return id;
}

double IdGenerator::unit() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

}  // namespace tokentap
