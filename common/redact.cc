#include "common/redact.h"

#include <algorithm>

#include "common/text.h"

namespace tokentap {
namespace {

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Bytes of provider keys, with the '*' providers mask them with when they echo one.
bool is_key_char(char c) { return is_alnum(c) || c == '-' || c == '_' || c == '*'; }

// Bytes of an RFC 9110 token68 (bearer / basic credentials), or a masking '*'.
bool is_credential_char(char c) {
  return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' ||
         c == '=' || c == '*';
}

bool at_word_start(std::string_view text, size_t i) { return i == 0 || !is_alnum(text[i - 1]); }

size_t run_end(std::string_view s, size_t from, bool (*pred)(char)) {
  while (from < s.size() && pred(s[from])) ++from;
  return from;
}

// Length of a provider-key-looking run at the start of `rest` ("sk-..." or "AIza..."), or 0.
size_t key_pattern_length(std::string_view rest) {
  constexpr size_t kMinOpenAiBody = 8;
  constexpr size_t kMinGoogleBody = 20;
  size_t prefix_len = 0;
  size_t min_body = 0;
  if (rest.starts_with("sk-")) {
    prefix_len = 3;
    min_body = kMinOpenAiBody;
  } else if (rest.starts_with("AIza")) {
    prefix_len = 4;
    min_body = kMinGoogleBody;
  } else {
    return 0;
  }
  const size_t end = run_end(rest, prefix_len, is_key_char);
  return end - prefix_len >= min_body ? end : 0;
}

// For "Bearer <credential>" / "Basic <credential>" at the start of `rest`: the length of the
// scheme plus spaces (kept) through `scheme_len`, and the total length including the credential;
// 0 when no match.
size_t auth_pattern_length(std::string_view rest, size_t& scheme_len) {
  constexpr size_t kMinCredential = 8;
  size_t end = 0;
  if (istarts_with(rest, "bearer ")) {
    end = 7;
  } else if (istarts_with(rest, "basic ")) {
    end = 6;
  } else {
    return 0;
  }
  end = run_end(rest, end, [](char c) { return c == ' '; });
  scheme_len = end;
  const size_t credential_end = run_end(rest, end, is_credential_char);
  return credential_end - end >= kMinCredential ? credential_end : 0;
}

}  // namespace

std::string scrub(std::string_view text, const std::vector<std::string>& secrets,
                  std::string_view marker) {
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
      out.append(marker);
      i += secret->size();
      continue;
    }
    if (at_word_start(text, i)) {
      if (size_t len = key_pattern_length(rest); len > 0) {
        out.append(marker);
        i += len;
        continue;
      }
      size_t scheme_len = 0;
      if (size_t len = auth_pattern_length(rest, scheme_len); len > 0) {
        out.append(rest.substr(0, scheme_len));
        out.append(marker);
        i += len;
        continue;
      }
    }
    out.push_back(text[i]);
    ++i;
  }
  return out;
}

size_t api_key_length(std::string_view text, size_t i) {
  return i < text.size() && at_word_start(text, i) ? key_pattern_length(text.substr(i)) : 0;
}

}  // namespace tokentap
