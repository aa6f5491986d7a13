// Text helpers shared by every layer: pure functions, no I/O.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tokentap {

constexpr char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}
// ASCII case-insensitive comparison (HTTP field names, tokens, schemes).
bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view text, std::string_view prefix);
// ASCII lower case only: bytes >= 0x80 are left alone whatever the locale, so UTF-8 stays valid.
std::string to_lower(std::string_view s);

// Whitespace sets for trim(). The default is HTTP's optional whitespace (RFC 9110 section 5.6.3),
// SP and HTAB: header values, list items, media types and credentials are trimmed of those only,
// since CR and LF never belong to a field value and a VT or FF there is data, not padding.
inline constexpr std::string_view kHttpWhitespace = " \t";
// JSON's insignificant whitespace (RFC 8259 section 2): for raw JSON text such as SSE data.
inline constexpr std::string_view kJsonWhitespace = " \t\n\r";
// What isspace() accepts in the "C" locale: for names typed by people into files.
inline constexpr std::string_view kAsciiWhitespace = " \t\n\v\f\r";

// `s` without leading and trailing bytes from `whitespace`; a view into `s`.
std::string_view trim(std::string_view s, std::string_view whitespace = kHttpWhitespace);

// Length of the valid UTF-8 sequence (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF) starting at s[i]: 1 for ASCII, 2 to 4 otherwise, 0 when the bytes there are not one.
// Requires i < s.size().
size_t utf8_sequence_length(std::string_view s, size_t i);

// Appends `s` to `out` as a JSON string literal (with the quotes). Control characters are
// escaped and invalid UTF-8 bytes become U+FFFD, so the result is always valid JSON.
void append_json_string(std::string& out, std::string_view s);

}  // namespace tokentap
