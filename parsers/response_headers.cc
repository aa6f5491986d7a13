#include "parsers/response_headers.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "common/text.h"
#include "parsers/json_util.h"

namespace tokentap {
namespace {

constexpr size_t kMaxRequestIdBytes = 128;

std::optional<int64_t> parse_integer(std::string_view s) {
  s = trim(s);
  if (s.empty() || s.size() > 18) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

// A non-negative decimal number such as "2", "0.5" or "1.25".
std::optional<double> parse_decimal(std::string_view s) {
  s = trim(s);
  if (s.empty() || s.size() > 24) return std::nullopt;
  double v = 0;
  double scale = 0;
  bool digits = false;
  for (char c : s) {
    if (c == '.' && scale == 0) {
      scale = 1;
    } else if (c >= '0' && c <= '9') {
      digits = true;
      if (scale == 0) {
        v = v * 10 + (c - '0');
      } else {
        scale /= 10;
        v += (c - '0') * scale;
      }
    } else {
      return std::nullopt;
    }
  }
  if (!digits) return std::nullopt;
  return v;
}

// Rank of a request-id header: lower wins when a response carries several.
int request_id_rank(std::string_view lower_name) {
  if (lower_name == "x-request-id") return 1;
  if (lower_name == "request-id") return 2;
  if (lower_name == "apim-request-id") return 3;
  return 0;
}

struct RateLimitHeader {
  std::string_view name;
  RateLimitResource resource;
  int field;  // 0 limit, 1 remaining, 2 reset
};

constexpr RateLimitHeader kRateLimitHeaders[] = {
    {"x-ratelimit-limit-requests", RateLimitResource::requests, 0},
    {"x-ratelimit-remaining-requests", RateLimitResource::requests, 1},
    {"x-ratelimit-reset-requests", RateLimitResource::requests, 2},
    {"x-ratelimit-limit-tokens", RateLimitResource::tokens, 0},
    {"x-ratelimit-remaining-tokens", RateLimitResource::tokens, 1},
    {"x-ratelimit-reset-tokens", RateLimitResource::tokens, 2},
    {"anthropic-ratelimit-requests-limit", RateLimitResource::requests, 0},
    {"anthropic-ratelimit-requests-remaining", RateLimitResource::requests, 1},
    {"anthropic-ratelimit-tokens-limit", RateLimitResource::tokens, 0},
    {"anthropic-ratelimit-tokens-remaining", RateLimitResource::tokens, 1},
    {"anthropic-ratelimit-input-tokens-limit", RateLimitResource::input_tokens, 0},
    {"anthropic-ratelimit-input-tokens-remaining", RateLimitResource::input_tokens, 1},
    {"anthropic-ratelimit-output-tokens-limit", RateLimitResource::output_tokens, 0},
    {"anthropic-ratelimit-output-tokens-remaining", RateLimitResource::output_tokens, 1},
};

}  // namespace

std::optional<int64_t> parse_reset_duration(std::string_view text) {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  double total_ms = 0;
  while (!text.empty()) {
    size_t n = 0;
    while (n < text.size() && ((text[n] >= '0' && text[n] <= '9') || text[n] == '.')) ++n;
    const std::optional<double> number = parse_decimal(text.substr(0, n));
    if (!number) return std::nullopt;
    text.remove_prefix(n);
    double unit_ms = 0;
    if (text.substr(0, 2) == "ms") {
      unit_ms = 1;
      text.remove_prefix(2);
    } else if (!text.empty() && text.front() == 's') {
      unit_ms = 1000;
      text.remove_prefix(1);
    } else if (!text.empty() && text.front() == 'm') {
      unit_ms = 60'000;
      text.remove_prefix(1);
    } else if (!text.empty() && text.front() == 'h') {
      unit_ms = 3'600'000;
      text.remove_prefix(1);
    } else {
      return std::nullopt;
    }
    total_ms += *number * unit_ms;
  }
  if (total_ms > 9e15) return std::nullopt;
  return static_cast<int64_t>(std::llround(total_ms));
}

void ResponseHeaderReader::read(std::string_view name, std::string_view value, LlmFacts& facts) {
  constexpr size_t kMaxName = 64;
  if (name.size() > kMaxName) return;
  std::array<char, kMaxName> lowered{};  // every response header comes here: no allocation
  std::transform(name.begin(), name.end(), lowered.begin(), ascii_lower);
  const std::string_view lower(lowered.data(), name.size());
  if (const int rank = request_id_rank(lower); rank > 0) {
    // The best-ranked header wins whatever the order the headers came in.
    const std::string id = json_util::clean_label(trim(value), kMaxRequestIdBytes);
    if (id.empty()) return;
    if (request_id_rank_ == 0 || rank < request_id_rank_) {
      facts.upstream_request_id = id;
      request_id_rank_ = rank;
    }
    return;
  }
  if (lower == "retry-after-ms") {
    if (auto ms = parse_decimal(value); ms && *ms < 9e15) {
      facts.retry_after_ms = static_cast<int64_t>(std::llround(*ms));
      retry_after_ms_seen_ = true;
    }
    return;
  }
  if (lower == "retry-after") {
    if (retry_after_ms_seen_) return;
    // The HTTP-date form needs a clock to interpret; providers send seconds.
    if (auto s = parse_decimal(value); s && *s < 9e12) {
      facts.retry_after_ms = static_cast<int64_t>(std::llround(*s * 1000));
    }
    return;
  }
  for (const RateLimitHeader& h : kRateLimitHeaders) {
    if (lower != h.name) continue;
    RateLimit& limit = facts.rate_limits[static_cast<size_t>(h.resource)];
    if (h.field == 2) {
      if (auto ms = parse_reset_duration(value)) limit.reset_ms = *ms;
    } else if (auto n = parse_integer(value)) {
      (h.field == 0 ? limit.limit : limit.remaining) = *n;
    }
    return;
  }
}

}  // namespace tokentap
