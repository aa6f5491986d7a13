// The only place that knows what a secret is: which headers and query parameters carry
// credentials, how the API key of a request is found, the non-reversible key id that stands in for
// it in logs and metrics, and how text is scrubbed before anyone outside the process sees it.
//
// Secret headers: authorization, proxy-authorization, x-api-key, api-key, x-goog-api-key, and
// cookie / set-cookie (session cookies are credentials too; the proxy never needs to log them).
// Secret query parameters: key, api_key, api-key, access_token (matched case-insensitively after
// percent-decoding the name, so `K%65Y=` is caught as well).
//
// Everything here is pure: no I/O, no globals, safe from any thread.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "common/redact.h"
#include "proxy/http/headers.h"

namespace tokentap {

// True for headers whose value is a credential (case-insensitive name match).
bool is_secret_header(std::string_view name);

// True for query parameter names whose value is a credential (see the list above).
bool is_secret_query_param(std::string_view name);

// The API key a request carries, in order of precedence: Authorization (the scheme such as
// "Bearer " or "Basic " stripped), x-api-key, api-key, x-goog-api-key, then the first secret query
// parameter of `target` (percent-decoded). Empty values are skipped. Returns "" when there is none.
std::string extract_api_key(const HeaderList& headers, std::string_view target);

// SHA-256 of `data` into `digest`; false (digest unspecified) if OpenSSL cannot compute it.
bool sha256(std::string_view data, std::array<unsigned char, 32>& digest);
// The first `hex_chars` (at most 64) lower-case hex characters of SHA-256(`data`); "" if OpenSSL
// cannot compute it.
std::string sha256_hex(std::string_view data, size_t hex_chars);

// The first 8 lower-case hex characters of SHA-256(key): enough to tell keys apart on a dashboard,
// useless for recovering the key. "" for an empty key.
std::string key_id(std::string_view key);

// `target` with the value of every secret query parameter replaced by REDACTED. Everything else,
// including parameter order, separators and an empty value, stays byte-identical.
std::string redact_target(std::string_view target);

// Percent-decodes `s` ("%41" -> "A"); with `plus_as_space`, '+' becomes ' ' as in form-encoded
// query strings. Malformed escapes are kept as written.
std::string percent_decode(std::string_view s, bool plus_as_space);

}  // namespace tokentap
