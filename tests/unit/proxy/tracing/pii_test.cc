#include "proxy/tracing/pii.h"

#include <catch2/catch.hpp>

using namespace tokentap;

namespace {
std::string run(const PiiScrubber& s, std::string_view text, PiiCounts* out = nullptr) {
  PiiCounts c;
  std::string r = s.scrub(text, c);
  if (out) *out = c;
  return r;
}
uint64_t n(const PiiCounts& c, PiiKind k) { return c.by_kind[static_cast<size_t>(k)]; }
}  // namespace

TEST_CASE("pii: each kind gets its placeholder and count") {
  PiiScrubber s;
  PiiCounts c;
  CHECK(run(s, "mail jane.doe+x@example.co.uk now.", &c) == "mail <EMAIL> now.");
  CHECK(n(c, PiiKind::email) == 1);
  CHECK(run(s, "call +1 415 555 0100 today", &c) == "call <PHONE> today");
  CHECK(n(c, PiiKind::phone) == 1);
  CHECK(run(s, "or (415) 555-0100.", &c) == "or <PHONE>.");
  CHECK(run(s, "card 4111 1111 1111 1111 ok", &c) == "card <CREDIT_CARD> ok");
  CHECK(n(c, PiiKind::credit_card) == 1);
  CHECK(run(s, "card 4111-1111-1111-1111", &c) == "card <CREDIT_CARD>");
  CHECK(run(s, "from 192.168.1.20, to 10.0.0.1", &c) == "from <IP>, to <IP>");
  CHECK(n(c, PiiKind::ip) == 2);
  CHECK(run(s, "v6 2001:db8::8a2e:370:7334 and ::1 done", &c) == "v6 <IP> and <IP> done");
  CHECK(run(s, "key sk-abcdefghijklmnopqrstuvwxyz012345 end", &c) == "key <API_KEY> end");
  CHECK(n(c, PiiKind::api_key) == 1);
}

TEST_CASE("pii: Luhn negatives and ordinary text are left alone") {
  CHECK(luhn_valid("4111111111111111"));
  CHECK(luhn_valid("79927398713"));
  CHECK_FALSE(luhn_valid("4111111111111112"));
  CHECK_FALSE(luhn_valid("79927398710"));
  PiiScrubber s;
  PiiCounts c;
  const char* plain[] = {
      "card 4111 1111 1111 1112 is not valid",
      "model gpt-4o-2024-08-06 and claude-3-5-sonnet-20241022",
      "version 1.2.3.4.5 and 999.1.1.1 and 1.2.3",
      "order 1234567890123 shipped",  // 13 digits, fails Luhn, no separators: not a phone
      "ratio 12:30:45 at noon",
      "user@localhost and @handle",
      "gemini-1.5-pro-002 at 2024-10-01 10:00",
      "café ünïcödé text",
  };
  for (const char* t : plain) {
    INFO(t);
    CHECK(run(s, t, &c) == t);
  }
  CHECK(c.total() == 0);
}

TEST_CASE("pii: custom patterns, truncation at the bound") {
  PiiScrubber s({"EMP-[0-9]{6}", "project (apollo|gemini)"});
  PiiCounts c;
  CHECK(run(s, "EMP-123456 on project apollo, EMP-000001", &c) ==
        "<REDACTED> on <REDACTED>, <REDACTED>");
  CHECK(n(c, PiiKind::custom) == 3);
  CHECK_THROWS(PiiScrubber({"(unclosed"}));

  std::string big(kMaxScrubInput + 100, 'x');
  std::string out = s.scrub(big, c);
  CHECK(out.size() == kMaxScrubInput + kTruncatedMark.size());
  CHECK(out.ends_with(kTruncatedMark));
  // Cut at a UTF-8 boundary: "é" is two bytes.
  std::string e = "aé";
  CHECK(s.scrub(e, c, 2) == std::string("a") + std::string(kTruncatedMark));
}
