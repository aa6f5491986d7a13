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
std::string to_lower(std::string_view s);

// Length of the valid UTF-8 sequence starting at s[i], or 0 when the bytes there are not one.
size_t utf8_sequence_length(std::string_view s, size_t i);

// Appends `s` to `out` as a JSON string literal (with the quotes). Control characters are
// escaped and invalid UTF-8 bytes become U+FFFD, so the result is always valid JSON.
void append_json_string(std::string& out, std::string_view s);

}  // namespace tokentap
