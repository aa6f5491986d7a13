// The PII scrubber for captured prompt/completion content: e-mail addresses, phone numbers,
// Luhn-valid card numbers, IPv4/IPv6 addresses, API-key shapes and user patterns become typed
// placeholders. Pure; a PiiScrubber is immutable after construction and safe from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace tokentap {

enum class PiiKind : uint8_t { email, phone, credit_card, ip, api_key, custom };
inline constexpr size_t kPiiKindCount = 6;
const char* pii_kind_name(PiiKind k);    // "email", ... (the metric label)
const char* pii_placeholder(PiiKind k);  // "<EMAIL>", ..., "<REDACTED>" for custom

// Input per field is cut to this many bytes (at a UTF-8 boundary) before scanning.
inline constexpr size_t kMaxScrubInput = size_t{16} << 10;
inline constexpr std::string_view kTruncatedMark = "...<TRUNCATED>";

struct PiiCounts {
  std::array<uint64_t, kPiiKindCount> by_kind{};
  uint64_t total() const;
};

bool luhn_valid(std::string_view digits);

class PiiScrubber {
 public:
  // Throws std::regex_error on an invalid user pattern (config load reports it with FILE:LINE).
  explicit PiiScrubber(const std::vector<std::string>& custom_patterns = {});
  // `text` with every match replaced, bounded to max_bytes (<= kMaxScrubInput) with a mark when
  // cut; adds what it replaced to `counts`.
  std::string scrub(std::string_view text, PiiCounts& counts,
                    size_t max_bytes = kMaxScrubInput) const;

 private:
  std::vector<std::regex> custom_;
};

}  // namespace tokentap
