#include "common/text.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace tokentap {
namespace {

TEST_CASE("iequals and istarts_with compare ASCII case-insensitively", "[text]") {
  CHECK(iequals("Content-Encoding", "content-encoding"));
  CHECK(iequals("content-encoding", "CONTENT-ENCODING"));
  CHECK(iequals("", ""));
  CHECK_FALSE(iequals("content-encoding", "content-encodin"));
  CHECK_FALSE(iequals("identity", "identitx"));
  // Only ASCII letters fold: "\xc3\x80" is U+00C0, "\xc3\xa0" U+00E0.
  CHECK_FALSE(iequals("\xc3\x80", "\xc3\xa0"));
  // '@' + 32 is '`' and '[' + 32 is '{': not letters, so they do not match.
  CHECK_FALSE(iequals("@[", "`{"));
  CHECK(istarts_with("Bearer abc", "bearer "));
  CHECK(istarts_with("BASIC", "basic"));
  CHECK_FALSE(istarts_with("Bear", "bearer"));
}

TEST_CASE("to_lower folds ASCII only and keeps UTF-8 intact", "[text]") {
  CHECK(to_lower("GPT-4o-MINI") == "gpt-4o-mini");
  CHECK(to_lower("Caf\xc3\x89") == "caf\xc3\x89");
  CHECK(to_lower("") == "");
  CHECK(ascii_lower('Z') == 'z');
  CHECK(ascii_lower('[') == '[');
}

TEST_CASE("trim removes HTTP optional whitespace by default", "[text]") {
  CHECK(trim(" \t gzip \t ") == "gzip");
  CHECK(trim("a b") == "a b");
  CHECK(trim(" \t ").empty());
  CHECK(trim("").empty());
  // CR, LF, VT and FF are not HTTP whitespace: they are data and stay.
  CHECK(trim("\r\nkey\v\f") == "\r\nkey\v\f");
  const std::string text = "  value  ";
  const std::string_view trimmed = trim(text);
  CHECK(trimmed.data() == text.data() + 2);  // a view into the argument, not a copy
}

TEST_CASE("trim takes the JSON and C-locale whitespace sets", "[text]") {
  CHECK(trim("\r\n {\"a\":1}\t\n", kJsonWhitespace) == "{\"a\":1}");
  CHECK(trim("\v[]\f", kJsonWhitespace) == "\v[]\f");
  CHECK(trim("\v\f gpt-4o \r\n", kAsciiWhitespace) == "gpt-4o");
}

// The decoder parsers/json_util.cc had before it used this one: decode, then refuse overlong
// forms, surrogates and code points past U+10FFFF. The table-driven version must agree with it.
size_t reference_utf8_length(std::string_view s, size_t i) {
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

TEST_CASE("utf8_sequence_length follows RFC 3629", "[text]") {
  CHECK(utf8_sequence_length("a", 0) == 1);
  CHECK(utf8_sequence_length(std::string_view("\0", 1), 0) == 1);
  CHECK(utf8_sequence_length("\xc3\xa9", 0) == 2);
  CHECK(utf8_sequence_length("\xe2\x82\xac", 0) == 3);
  CHECK(utf8_sequence_length("\xf0\x9f\x98\x80", 0) == 4);
  CHECK(utf8_sequence_length("x\xc3\xa9", 1) == 2);
  CHECK(utf8_sequence_length("\xc0\xaf", 0) == 0);          // overlong '/'
  CHECK(utf8_sequence_length("\xe0\x80\xaf", 0) == 0);      // overlong
  CHECK(utf8_sequence_length("\xed\xa0\x80", 0) == 0);      // surrogate U+D800
  CHECK(utf8_sequence_length("\xf4\x90\x80\x80", 0) == 0);  // past U+10FFFF
  CHECK(utf8_sequence_length("\xe2\x82", 0) == 0);          // cut short
  CHECK(utf8_sequence_length("\x80", 0) == 0);              // a lone continuation byte
  CHECK(utf8_sequence_length("\xff", 0) == 0);
}

TEST_CASE("utf8_sequence_length agrees with a decoding reference", "[text]") {
  // Every lead and second byte; later bytes from each side of every range boundary RFC 3629 uses.
  constexpr unsigned char kLater[] = {0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF};
  size_t mismatches = 0;
  auto check = [&](std::string_view s) {
    if (utf8_sequence_length(s, 0) != reference_utf8_length(s, 0)) ++mismatches;
  };
  for (int b0 = 0; b0 < 256; ++b0) {
    const std::string one(1, static_cast<char>(b0));
    check(one);
    for (int b1 = 0; b1 < 256; ++b1) {
      const std::string two = one + static_cast<char>(b1);
      check(two);
      for (unsigned char b2 : kLater) {
        const std::string three = two + static_cast<char>(b2);
        check(three);
        for (unsigned char b3 : kLater) check(three + static_cast<char>(b3));
      }
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("append_json_string always yields a valid JSON string", "[text]") {
  std::string out;
  append_json_string(out, "a\"b\\c\n\r\t\x01\x1f");
  CHECK(out == R"("a\"b\\c\n\r\t\u0001\u001f")");
  out.clear();
  append_json_string(out, "caf\xc3\xa9 \xff \xed\xa0\x80");
  CHECK(out == "\"caf\xc3\xa9 \\ufffd \\ufffd\\ufffd\\ufffd\"");
  out = "x=";
  append_json_string(out, "");
  CHECK(out == "x=\"\"");
}

}  // namespace
}  // namespace tokentap
