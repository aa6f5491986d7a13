#include "proxy/tracing/pii.h"

#include <arpa/inet.h>

#include <algorithm>

#include "common/redact.h"

namespace tokentap {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_alnum(char c) { return is_digit(c) || is_alpha(c); }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_local_char(char c) {
  return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}
bool is_domain_char(char c) { return is_alnum(c) || c == '.' || c == '-'; }

// An e-mail whose '@' is at text[at]: sets [begin, end) and returns true.
bool match_email(std::string_view t, size_t at, size_t& begin, size_t& end) {
  size_t b = at;
  while (b > 0 && is_local_char(t[b - 1])) --b;
  while (b < at && !is_alnum(t[b])) ++b;
  if (b == at) return false;
  size_t e = at + 1;
  while (e < t.size() && is_domain_char(t[e])) ++e;
  while (e > at + 1 && !is_alpha(t[e - 1])) --e;  // "a@b.com." ends at "m"
  std::string_view domain = t.substr(at + 1, e - at - 1);
  size_t dot = domain.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || domain.size() - dot - 1 < 2) return false;
  for (size_t i = dot + 1; i < domain.size(); ++i) {
    if (!is_alpha(domain[i])) return false;
  }
  begin = b;
  end = e;
  return true;
}

// A run of digits with single ' ' or '-' separators starting at text[i] (a digit not preceded by
// an alphanumeric); returns its end and the digits.
size_t digit_run(std::string_view t, size_t i, std::string& digits, bool phone_separators) {
  digits.clear();
  size_t e = i;
  size_t last_digit_end = i;
  while (e < t.size()) {
    char c = t[e];
    if (is_digit(c)) {
      digits += c;
      ++e;
      last_digit_end = e;
    } else if ((c == ' ' || c == '-' || (phone_separators && (c == '.' || c == '(' || c == ')'))) &&
               e + 1 < t.size() && (is_digit(t[e + 1]) || (phone_separators && t[e + 1] == '('))) {
      ++e;
    } else if (phone_separators && (c == ')' || c == '(') && e + 1 < t.size() && t[e + 1] == ' ') {
      e += 1;
    } else {
      break;
    }
    if (digits.size() > 19) break;
  }
  // Part of a word, a version, a time or a decimal: not a number of its own.
  if (last_digit_end < t.size()) {
    char next = t[last_digit_end];
    if (is_alnum(next)) return i;
    if ((next == ':' || next == '.' || next == '/') && last_digit_end + 1 < t.size() &&
        is_digit(t[last_digit_end + 1])) {
      return i;
    }
  }
  return last_digit_end;
}

size_t match_ipv4(std::string_view t, size_t i) {
  size_t e = i;
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      if (e >= t.size() || t[e] != '.') return 0;
      ++e;
    }
    size_t s = e;
    int v = 0;
    while (e < t.size() && is_digit(t[e]) && e - s < 3) v = v * 10 + (t[e++] - '0');
    if (e == s || v > 255 || (e - s > 1 && t[s] == '0')) return 0;
  }
  if (e < t.size() && (is_alnum(t[e]) || (t[e] == '.' && e + 1 < t.size() && is_digit(t[e + 1])))) {
    return 0;
  }
  return e;
}

size_t match_ipv6(std::string_view t, size_t i) {
  size_t e = i;
  int colons = 0;
  while (e < t.size() && e - i < 45 && (is_hex(t[e]) || t[e] == ':' || t[e] == '.')) {
    colons += t[e] == ':';
    ++e;
  }
  while (e > i && t[e - 1] == '.') --e;
  if (colons < 2 || (e < t.size() && is_alnum(t[e]))) return 0;
  std::string s(t.substr(i, e - i));
  in6_addr addr{};
  return inet_pton(AF_INET6, s.c_str(), &addr) == 1 ? e : 0;
}

size_t utf8_cut(std::string_view s, size_t n) {
  if (n >= s.size()) return s.size();
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

}  // namespace

const char* pii_kind_name(PiiKind k) {
  static constexpr const char* kNames[] = {"email", "phone",   "credit_card",
                                           "ip",    "api_key", "custom"};
  return kNames[static_cast<size_t>(k)];
}

const char* pii_placeholder(PiiKind k) {
  static constexpr const char* kNames[] = {"<EMAIL>", "<PHONE>",   "<CREDIT_CARD>",
                                           "<IP>",    "<API_KEY>", "<REDACTED>"};
  return kNames[static_cast<size_t>(k)];
}

uint64_t PiiCounts::total() const {
  uint64_t n = 0;
  for (uint64_t c : by_kind) n += c;
  return n;
}

bool luhn_valid(std::string_view digits) {
  int sum = 0;
  bool dbl = false;
  for (size_t i = digits.size(); i-- > 0;) {
    int d = digits[i] - '0';
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return !digits.empty() && sum % 10 == 0;
}

PiiScrubber::PiiScrubber(const std::vector<std::string>& custom_patterns) {
  for (const std::string& p : custom_patterns) {
    custom_.emplace_back(p, std::regex::ECMAScript | std::regex::optimize);
  }
}

std::string PiiScrubber::scrub(std::string_view text, PiiCounts& counts, size_t max_bytes) const {
  max_bytes = std::min(max_bytes, kMaxScrubInput);
  bool truncated = text.size() > max_bytes;
  if (truncated) text = text.substr(0, utf8_cut(text, max_bytes));

  auto add = [&](std::string& out, PiiKind k) {
    out += pii_placeholder(k);
    ++counts.by_kind[static_cast<size_t>(k)];
  };

  std::string out;
  out.reserve(text.size());
  std::string digits;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    bool boundary = i == 0 || !is_alnum(text[i - 1]);
    if (size_t n = api_key_length(text, i); n > 0) {
      add(out, PiiKind::api_key);
      i += n;
      continue;
    }
    if (c == '@' && !out.empty()) {
      size_t b = 0;
      size_t e = 0;
      if (match_email(text, i, b, e)) {
        // The local part was already copied: take it back out.
        size_t local_len = i - b;
        if (out.size() >= local_len) {
          out.resize(out.size() - local_len);
          add(out, PiiKind::email);
          i = e;
          continue;
        }
      }
    }
    if (boundary && (is_hex(c) || c == ':')) {
      if (size_t e = match_ipv6(text, i); e > 0) {
        add(out, PiiKind::ip);
        i = e;
        continue;
      }
    }
    // Numbers start after a space or punctuation, not inside "1.2.3" or "gpt-4".
    bool num_boundary =
        boundary && (i == 0 || (text[i - 1] != '.' && text[i - 1] != '-' && text[i - 1] != '_' &&
                                text[i - 1] != '/' && text[i - 1] != ':'));
    size_t number_end = i;
    if (num_boundary && is_digit(c)) {
      if (size_t e = match_ipv4(text, i); e > 0) {
        add(out, PiiKind::ip);
        i = e;
        continue;
      }
      size_t e = digit_run(text, i, digits, false);
      number_end = e;
      if (e > i && digits.size() >= 13 && digits.size() <= 19 && luhn_valid(digits)) {
        add(out, PiiKind::credit_card);
        i = e;
        continue;
      }
    }
    if (num_boundary && (c == '+' || c == '(' || is_digit(c))) {
      size_t s = c == '+' ? i + 1 : i;
      size_t e = s < text.size() ? digit_run(text, s, digits, true) : s;
      // 10-15 digits with at least one separator or a leading '+': a bare digit run is more
      // often an id or a count than a phone number.
      bool separated = c == '+' || digits.size() + (s - i) != e - i;
      if (e > s && digits.size() >= 10 && digits.size() <= 15 && separated) {
        add(out, PiiKind::phone);
        i = e;
        continue;
      }
      number_end = std::max(number_end, e);
    }
    if (number_end > i) {
      // A number that is none of the kinds stays whole: its tail is not a fresh candidate.
      out.append(text.substr(i, number_end - i));
      i = number_end;
      continue;
    }
    out += c;
    ++i;
  }

  for (const std::regex& re : custom_) {
    std::string replaced;
    size_t n = 0;
    auto begin = std::sregex_iterator(out.begin(), out.end(), re);
    auto last = out.cbegin();
    for (auto it = begin; it != std::sregex_iterator(); ++it) {
      if (it->length(0) == 0) continue;
      replaced.append(last, out.cbegin() + it->position(0));
      replaced += pii_placeholder(PiiKind::custom);
      last = out.cbegin() + it->position(0) + it->length(0);
      ++n;
    }
    if (n > 0) {
      replaced.append(last, out.cend());
      out = std::move(replaced);
      counts.by_kind[static_cast<size_t>(PiiKind::custom)] += n;
    }
  }
  if (truncated) out += kTruncatedMark;
  return out;
}

}  // namespace tokentap
