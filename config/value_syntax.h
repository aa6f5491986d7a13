// The value syntax shared by the YAML schema (config.cc) and the single-value parsers
// (values.cc). Internal to config/: other folders use config.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/text.h"
#include "config/config.h"

namespace tokentap::config_detail {

// Decimal digits only (no sign, no spaces) that fit in 64 bits.
std::optional<uint64_t> parse_unsigned(std::string_view s);

// Host names as they appear in DNS and in Kubernetes service names; IPv4 literals fit too.
bool is_hostname(std::string_view s);

// An RFC 9110 token character (header names).
bool is_token_char(char c);

// A parsed upstream URL, or the reason it was rejected phrased as what was expected instead.
struct UrlParse {
  std::optional<UpstreamUrl> url;
  const char* expected = nullptr;
};

// http:// or https:// with a host, optional port and path; no credentials, query or fragment.
UrlParse parse_url(std::string_view s);

// `s` with URL credentials and any query replaced by <redacted>.
std::string redact_url(std::string_view s);

// `raw` in double quotes for an error message: escaped, cut at 80 bytes, URL credentials and
// queries redacted.
std::string quote(std::string_view raw);

}  // namespace tokentap::config_detail
