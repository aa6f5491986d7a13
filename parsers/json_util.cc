#include "parsers/json_util.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "common/redact.h"
#include "common/text.h"

namespace tokentap::json_util {
namespace {

// Only the start of a provider message is kept (clean_message caps it far lower), so only the
// start is scanned for credentials.
constexpr size_t kMaxRedactScan = 1024;
// Provider JSON nests a few levels deep; a DOM of "[[[[..." costs ~70 bytes per input byte.
constexpr size_t kMaxNesting = 256;
// Provider messages mark what was cut in brackets; the access log and /v1/errors pin this form.
constexpr std::string_view kRedactedInMessage = "[REDACTED]";

// Reads one JSON text into the DOM nlohmann::json::parse(text, nullptr, false) would build,
// accepting and rejecting exactly what it does: RFC 8259 grammar, one leading UTF-8 BOM
// skipped, strings checked for well-formed UTF-8, control characters and surrogate pairs,
// integers typed unsigned (no minus) or integer when they fit and float otherwise, a later
// duplicate key replacing an earlier one, anything after a NUL byte following the value
// ignored. Plus the nesting limit. It exists for speed:
// nlohmann's lexer copies strings a character at a time, and every response body and stream
// event is parsed here.
// ASCII that a JSON string holds as it is: not a control character, quote or backslash.
constexpr std::array<bool, 256> kPlainStringByte = [] {
  std::array<bool, 256> t{};
  for (unsigned c = 0x20; c < 0x80; ++c) t[c] = c != '"' && c != '\\';
  return t;
}();

class Reader {
 public:
  explicit Reader(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  bool read(Json& out) {
    if (end_ - p_ >= 3 && std::string_view(p_, 3) == "\xEF\xBB\xBF") p_ += 3;
    skip_space();
    if (!value(out, 0)) return false;
    skip_space();
    return p_ == end_ || *p_ == '\0';  // nlohmann's lexer reads a NUL byte as end of input
  }

 private:
  void skip_space() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  bool value(Json& out, size_t depth) {
    if (p_ == end_) return false;
    switch (*p_) {
      case '{':
        return object(out, depth + 1);
      case '[':
        return array(out, depth + 1);
      case '"': {
        std::string s;
        if (!string(s)) return false;
        out = std::move(s);
        return true;
      }
      case 't':
        out = true;
        return literal("true");
      case 'f':
        out = false;
        return literal("false");
      case 'n':
        out = nullptr;
        return literal("null");
      default:
        return number(out);
    }
  }

  bool literal(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  bool object(Json& out, size_t depth) {
    if (depth > kMaxNesting) return false;
    ++p_;
    out = Json::object();
    auto& members = out.get_ref<Json::object_t&>();
    skip_space();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
      return true;
    }
    for (;;) {
      if (p_ == end_ || *p_ != '"') return false;
      std::string key;
      if (!string(key)) return false;
      skip_space();
      if (p_ == end_ || *p_ != ':') return false;
      ++p_;
      skip_space();
      // try_emplace keeps an earlier duplicate's node; value() then overwrites it: last wins.
      if (!value(members.try_emplace(std::move(key)).first->second, depth)) return false;
      skip_space();
      if (p_ == end_) return false;
      if (*p_ == '}') {
        ++p_;
        return true;
      }
      if (*p_ != ',') return false;
      ++p_;
      skip_space();
    }
  }

  bool array(Json& out, size_t depth) {
    if (depth > kMaxNesting) return false;
    ++p_;
    out = Json::array();
    auto& elements = out.get_ref<Json::array_t&>();
    skip_space();
    if (p_ < end_ && *p_ == ']') {
      ++p_;
      return true;
    }
    for (;;) {
      if (!value(elements.emplace_back(), depth)) return false;
      skip_space();
      if (p_ == end_) return false;
      if (*p_ == ']') {
        ++p_;
        return true;
      }
      if (*p_ != ',') return false;
      ++p_;
      skip_space();
    }
  }

  // At the opening quote; appends the decoded string to `out`.
  bool string(std::string& out) {
    ++p_;
    const char* run = p_;  // start of the bytes not yet appended
    while (p_ < end_) {
      const auto c = static_cast<unsigned char>(*p_);
      if (kPlainStringByte[c]) {
        ++p_;
        continue;
      }
      if (c == '"') {
        out.append(run, p_);
        ++p_;
        return true;
      }
      if (c == '\\') {
        out.append(run, p_);
        if (!escape(out)) return false;
        run = p_;
        continue;
      }
      if (c < 0x20) return false;
      const size_t len = utf8_sequence_length(std::string_view(p_, end_ - p_), 0);
      if (len == 0) return false;
      p_ += len;
    }
    return false;
  }

  bool escape(std::string& out) {
    ++p_;
    if (p_ == end_) return false;
    const char c = *p_++;
    switch (c) {
      case '"':
        out.push_back('"');
        return true;
      case '\\':
        out.push_back('\\');
        return true;
      case '/':
        out.push_back('/');
        return true;
      case 'b':
        out.push_back('\b');
        return true;
      case 'f':
        out.push_back('\f');
        return true;
      case 'n':
        out.push_back('\n');
        return true;
      case 'r':
        out.push_back('\r');
        return true;
      case 't':
        out.push_back('\t');
        return true;
      case 'u':
        break;
      default:
        return false;
    }
    uint32_t cp = 0;
    if (!hex4(cp)) return false;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // a low surrogate first
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      uint32_t low = 0;
      if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
      p_ += 2;
      if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    return true;
  }

  bool hex4(uint32_t& cp) {
    if (end_ - p_ < 4) return false;
    for (int i = 0; i < 4; ++i) {
      const char c = *p_++;
      uint32_t digit = 0;
      if (c >= '0' && c <= '9') {
        digit = static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        digit = static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        digit = static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
      cp = cp << 4 | digit;
    }
    return true;
  }

  bool number(Json& out) {
    auto digit = [&] { return p_ < end_ && *p_ >= '0' && *p_ <= '9'; };
    const char* start = p_;
    const bool negative = *p_ == '-';
    if (negative) ++p_;
    if (p_ < end_ && *p_ == '0') {
      ++p_;
    } else if (digit()) {
      while (digit()) ++p_;
    } else {
      return false;
    }
    bool integral = true;
    if (p_ < end_ && *p_ == '.') {
      integral = false;
      ++p_;
      if (!digit()) return false;
      while (digit()) ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      integral = false;
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digit()) return false;
      while (digit()) ++p_;
    }
    if (integral) {
      // Out of range falls through to float, as in nlohmann.
      if (negative) {
        Json::number_integer_t v = 0;
        auto [end, ec] = std::from_chars(start, p_, v);
        if (ec == std::errc() && end == p_) {
          out = v;
          return true;
        }
      } else {
        Json::number_unsigned_t v = 0;
        auto [end, ec] = std::from_chars(start, p_, v);
        if (ec == std::errc() && end == p_) {
          out = v;
          return true;
        }
      }
    }
    double d = 0;
    auto [end, ec] = std::from_chars(start, p_, d);
    if (ec != std::errc() || end != p_) {
      // Underflow: the nearest tiny value, as nlohmann stores; overflow is refused below.
      d = std::strtod(std::string(start, p_).c_str(), nullptr);
    }
    if (!std::isfinite(d)) return false;  // nlohmann: "number overflow"
    out = d;
    return true;
  }

  const char* p_;
  const char* end_;
};

}  // namespace

Json parse(std::string_view text) {
  Json out;
  if (!Reader(text).read(out)) return Json(Json::value_t::discarded);
  return out;
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
  // The common case, printable ASCII that fits (model names, tiers, reasons), is a copy.
  if (text.size() <= max_bytes && std::all_of(text.begin(), text.end(), [](char ch) {
        const auto c = static_cast<unsigned char>(ch);
        return c >= 0x20 && c < 0x7F;
      })) {
    return std::string(text);
  }
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
  return clean_label(scrub(text.substr(0, kMaxRedactScan), {}, kRedactedInMessage), max_bytes);
}

}  // namespace tokentap::json_util
