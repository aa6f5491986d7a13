#include "common/redact.h"

#include <algorithm>

#include "common/text.h"

namespace tokentap {
namespace {

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Characters provider keys are made of.
bool is_key_char(char c) { return is_alnum(c) || c == '-' || c == '_'; }

// Characters of an RFC 6750 token68 (bearer / basic credentials).
bool is_token68_char(char c) {
  return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' ||
         c == '=';
}

// Length of a provider-key-looking run starting at text[i] ("sk-..." or "AIza..."), or 0.
size_t key_pattern_length(std::string_view text, size_t i) {
  if (i > 0 && is_alnum(text[i - 1])) return 0;
  std::string_view rest = text.substr(i);
  size_t prefix_len = 0;
  size_t min_body = 0;
  if (rest.starts_with("sk-")) {
    prefix_len = 3;
    min_body = 20;
  } else if (rest.starts_with("AIza")) {
    prefix_len = 4;
    min_body = 30;
  } else {
    return 0;
  }
  size_t end = prefix_len;
  while (end < rest.size() && is_key_char(rest[end])) ++end;
  return end - prefix_len >= min_body ? end : 0;
}

// For "Bearer <token>" / "Basic <token>" at text[i]: the length of the scheme plus spaces
// (kept) through `scheme_len`, and the total length including the token; 0 when no match.
size_t auth_pattern_length(std::string_view text, size_t i, size_t& scheme_len) {
  if (i > 0 && is_alnum(text[i - 1])) return 0;
  std::string_view rest = text.substr(i);
  size_t end = 0;
  if (istarts_with(rest, "bearer ")) {
    end = 7;
  } else if (istarts_with(rest, "basic ")) {
    end = 6;
  } else {
    return 0;
  }
  while (end < rest.size() && rest[end] == ' ') ++end;
  scheme_len = end;
  size_t token_end = end;
  while (token_end < rest.size() && is_token68_char(rest[token_end])) ++token_end;
  constexpr size_t kMinToken = 8;
  return token_end - end >= kMinToken ? token_end : 0;
}

}  // namespace

std::string scrub(std::string_view text, const std::vector<std::string>& secrets) {
  std::vector<std::string_view> sorted;
  for (const std::string& s : secrets) {
    if (!s.empty()) sorted.emplace_back(s);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](std::string_view a, std::string_view b) { return a.size() > b.size(); });

  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    std::string_view rest = text.substr(i);
    auto secret = std::find_if(sorted.begin(), sorted.end(),
                               [rest](std::string_view s) { return rest.starts_with(s); });
    if (secret != sorted.end()) {
      out.append(kRedacted);
      i += secret->size();
      continue;
    }
    if (size_t len = key_pattern_length(text, i); len > 0) {
      out.append(kRedacted);
      i += len;
      continue;
    }
    size_t scheme_len = 0;
    if (size_t len = auth_pattern_length(text, i, scheme_len); len > 0) {
      out.append(rest.substr(0, scheme_len));
      out.append(kRedacted);
      i += len;
      continue;
    }
    out.push_back(text[i]);
    ++i;
  }
  return out;
}

size_t api_key_length(std::string_view text, size_t i) { return key_pattern_length(text, i); }

}  // namespace tokentap
