#include "parsers/json_util.h"

#include <algorithm>
#include <cmath>

namespace tokentap::json_util {
namespace {

constexpr size_t kMaxRedactScan = 1024;
// Provider JSON nests a few levels deep; a DOM of "[[[[..." costs ~70 bytes per input byte.
constexpr size_t kMaxNesting = 256;
constexpr std::string_view kRedacted = "[REDACTED]";

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// Characters of provider keys, including the '*' OpenAI uses to mask them in messages.
bool is_key_char(char c) { return is_alnum(c) || c == '-' || c == '_' || c == '*'; }

bool is_token68_char(char c) {
  return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' ||
         c == '=';
}

bool istarts_with(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

// Length of the UTF-8 sequence starting at s[i], or 0 when it is not a valid one.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return 1;
  size_t len = 0;
  uint32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2;
    min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3;
    min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  uint32_t cp = b0 & (0x7F >> len);
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

// Length of a credential-looking token at the start of `s`, or 0.
size_t credential_length(std::string_view s) {
  auto run = [&](size_t from, bool (*pred)(char)) {
    size_t n = from;
    while (n < s.size() && pred(s[n])) ++n;
    return n;
  };
  if (s.substr(0, 3) == "sk-") {
    const size_t n = run(3, is_key_char);
    return n >= 3 + 8 ? n : 0;
  }
  if (s.substr(0, 4) == "AIza") {
    const size_t n = run(4, is_key_char);
    return n >= 4 + 20 ? n : 0;
  }
  if (istarts_with(s, "bearer ")) {
    const size_t n = run(7, is_token68_char);
    return n >= 7 + 8 ? n : 0;
  }
  return 0;
}

std::string redact(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const bool boundary = i == 0 || !is_key_char(text[i - 1]);
    const size_t n = boundary ? credential_length(text.substr(i)) : 0;
    if (n > 0) {
      out.append(kRedacted);
      i += n;
    } else {
      out.push_back(text[i]);
      ++i;
    }
  }
  return out;
}

bool nesting_within_limit(std::string_view text) {
  size_t depth = 0;
  bool in_string = false;
  bool escape = false;
  for (char c : text) {
    if (in_string) {
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxNesting) return false;
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return true;
}

}  // namespace

Json parse(std::string_view text) {
  if (!nesting_within_limit(text)) return Json(Json::value_t::discarded);
  return Json::parse(text, nullptr, false);
}

const Json* member(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

const Json* object_member(const Json& object, std::string_view key) {
  const Json* v = member(object, key);
  return v != nullptr && v->is_object() ? v : nullptr;
}

const Json* array_member(const Json& object, std::string_view key) {
  const Json* v = member(object, key);
  return v != nullptr && v->is_array() ? v : nullptr;
}

std::string_view as_string(const Json& value) {
  return value.is_string() ? std::string_view(value.get_ref<const std::string&>())
                           : std::string_view();
}

std::optional<uint64_t> as_count(const Json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer()) {
    const auto v = value.get<int64_t>();
    if (v >= 0) return static_cast<uint64_t>(v);
    return std::nullopt;
  }
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (std::isfinite(d) && d >= 0 && d < 9.2e18 && std::floor(d) == d) {
      return static_cast<uint64_t>(d);
    }
  }
  return std::nullopt;
}

std::string_view string_member(const Json& object, std::string_view key) {
  const Json* v = member(object, key);
  return v != nullptr ? as_string(*v) : std::string_view();
}

std::optional<uint64_t> count_member(const Json& object, std::string_view key) {
  const Json* v = member(object, key);
  return v != nullptr ? as_count(*v) : std::nullopt;
}

bool true_member(const Json& object, std::string_view key) {
  const Json* v = member(object, key);
  return v != nullptr && v->is_boolean() && v->get<bool>();
}

std::optional<std::string> parse_string_literal(std::string_view raw) {
  if (raw.size() < 2 || raw.front() != '"') return std::nullopt;
  // The common case, no escapes, needs no parser.
  const std::string_view inner = raw.substr(1, raw.size() - 2);
  if (raw.back() == '"' && inner.find_first_of("\\\"") == std::string_view::npos) {
    bool plain = true;
    for (char c : inner) plain = plain && static_cast<unsigned char>(c) >= 0x20;
    if (plain) return std::string(inner);
  }
  Json v = parse(raw);
  if (!v.is_string()) return std::nullopt;
  return v.get<std::string>();
}

std::optional<bool> parse_bool_literal(std::string_view raw) {
  if (raw == "true") return true;
  if (raw == "false") return false;
  return std::nullopt;
}

std::string clean_label(std::string_view text, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  size_t i = 0;
  while (i < text.size()) {
    const size_t len = utf8_sequence_length(text, i);
    if (len == 0) {
      if (out.size() + 1 > max_bytes) break;
      out.push_back('?');
      ++i;
      continue;
    }
    if (out.size() + len > max_bytes) break;
    if (len == 1) {
      const auto c = static_cast<unsigned char>(text[i]);
      out.push_back(c < 0x20 || c == 0x7F ? ' ' : text[i]);
    } else {
      out.append(text.substr(i, len));
    }
    i += len;
  }
  return out;
}

std::string clean_message(std::string_view text, size_t max_bytes) {
  return clean_label(redact(text.substr(0, kMaxRedactScan)), max_bytes);
}

}  // namespace tokentap::json_util
