#include "parsers/sse.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace tokentap {
namespace {

struct Event {
  std::string type;
  std::string data;
  std::string id;
  bool oversized = false;
  bool operator==(const Event& o) const {
    return type == o.type && data == o.data && id == o.id && oversized == o.oversized;
  }
};

struct Decoded {
  std::vector<Event> events;
  bool clean = false;
};

Decoded decode(const std::vector<std::string>& chunks, size_t max_event_bytes = 4u << 20) {
  SseDecoder decoder(max_event_bytes);
  Decoded out;
  SseEvent e;
  for (const std::string& chunk : chunks) {
    std::string_view in = chunk;
    while (decoder.next(in, e)) {
      out.events.push_back(
          {std::string(e.type), std::string(e.data), std::string(e.id), e.oversized});
    }
    CHECK(in.empty());
  }
  out.clean = decoder.finish();
  return out;
}

Decoded decode_whole(const std::string& s, size_t max = 4u << 20) { return decode({s}, max); }

// Decodes `s` whole, split in two at every offset and one byte at a time; all must agree.
Decoded decode_every_way(const std::string& s, size_t max = 4u << 20) {
  const Decoded whole = decode_whole(s, max);
  for (size_t k = 0; k <= s.size(); ++k) {
    const Decoded split = decode({s.substr(0, k), s.substr(k)}, max);
    INFO("split at " << k);
    REQUIRE(split.events == whole.events);
    REQUIRE(split.clean == whole.clean);
  }
  std::vector<std::string> bytes;
  for (char c : s) bytes.emplace_back(1, c);
  const Decoded one_by_one = decode(bytes, max);
  REQUIRE(one_by_one.events == whole.events);
  REQUIRE(one_by_one.clean == whole.clean);
  return whole;
}

TEST_CASE("sse: LF, CR and CRLF line ends decode the same events", "[sse]") {
  const std::string lf = "event: a\ndata: one\n\ndata: two\ndata: three\n\n";
  std::string cr = lf;
  for (char& c : cr) c = c == '\n' ? '\r' : c;
  std::string crlf;
  for (char c : lf) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
  const std::vector<Event> expected = {{"a", "one", "", false},
                                       {"message", "two\nthree", "", false}};
  CHECK(decode_every_way(lf).events == expected);
  CHECK(decode_every_way(cr).events == expected);
  CHECK(decode_every_way(crlf).events == expected);
  CHECK(decode_every_way("data: one\r\n\ndata: two\r\r").events ==
        std::vector<Event>{{"message", "one", "", false}, {"message", "two", "", false}});
}

TEST_CASE("sse: a CR ending one chunk and an LF starting the next are one line end", "[sse]") {
  // Were the LF taken as a second line end, "a" would be dispatched on its own.
  const Decoded d = decode({"data: a\r", "\ndata: b\r\n\r\n"});
  CHECK(d.events == std::vector<Event>{{"message", "a\nb", "", false}});
  CHECK(d.clean);
}

TEST_CASE("sse: field parsing follows the spec", "[sse]") {
  SECTION("one leading space is removed from the value, no more") {
    CHECK(decode_every_way("data:x\n\ndata:  y\n\n").events ==
          std::vector<Event>{{"message", "x", "", false}, {"message", " y", "", false}});
  }
  SECTION("a line without a colon is a field with an empty value") {
    CHECK(decode_every_way("data\ndata\n\n").events ==
          std::vector<Event>{{"message", "\n", "", false}});
  }
  SECTION("data with an empty value is still an event") {
    CHECK(decode_every_way("data:\n\n").events == std::vector<Event>{{"message", "", "", false}});
  }
  SECTION("comments and unknown fields are ignored") {
    CHECK(decode_every_way(": hello\nfoo: bar\ndata: x\n: bye\n\n").events ==
          std::vector<Event>{{"message", "x", "", false}});
  }
  SECTION("an event without data is not dispatched, and its type does not leak") {
    CHECK(decode_every_way("event: ping\n\ndata: x\n\n").events ==
          std::vector<Event>{{"message", "x", "", false}});
  }
  SECTION("the event type applies to one event only") {
    CHECK(decode_every_way("event: a\ndata: 1\n\ndata: 2\n\n").events ==
          std::vector<Event>{{"a", "1", "", false}, {"message", "2", "", false}});
  }
  SECTION("colons after the first belong to the value") {
    CHECK(decode_every_way("data: a: b\n\n").events ==
          std::vector<Event>{{"message", "a: b", "", false}});
  }
}

TEST_CASE("sse: the last event id persists, retry takes digits only", "[sse]") {
  using namespace std::string_literals;
  SseDecoder decoder;
  const std::string whole = "id: 7\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\nid\ndata: d\n\n"s;
  std::string_view view = whole;
  SseEvent e;
  std::vector<std::string> ids;
  while (decoder.next(view, e)) ids.emplace_back(e.id);
  CHECK(ids == std::vector<std::string>{"7", "7", "7", ""});

  SseDecoder retry;
  std::string_view r = "retry: 3000\n\nretry: 12a\n\nretry: \n\n";
  while (retry.next(r, e)) {
  }
  REQUIRE(retry.retry_ms().has_value());
  CHECK(*retry.retry_ms() == 3000);
}

TEST_CASE("sse: a leading byte order mark is skipped, a later one is not", "[sse]") {
  CHECK(decode_every_way("\xEF\xBB\xBF"
                         "data: x\n\n")
            .events == std::vector<Event>{{"message", "x", "", false}});
  CHECK(decode_every_way("data: x\n\n\xEF\xBB\xBF"
                         "data: y\n\n")
            .events == std::vector<Event>{{"message", "x", "", false}});
}

TEST_CASE("sse: finish reports a partial line or an undispatched event", "[sse]") {
  CHECK(decode_whole("data: x\n\n").clean);
  CHECK(decode_whole("").clean);
  CHECK(decode_whole(": comment only\n").clean);
  const Decoded partial_line = decode_whole("data: x\n\ndata: {\"a\":");
  CHECK(partial_line.events.size() == 1);
  CHECK_FALSE(partial_line.clean);
  const Decoded no_blank_line = decode_whole("data: x\n");
  CHECK(no_blank_line.events.empty());  // discarded, as the spec says
  CHECK_FALSE(no_blank_line.clean);
}

TEST_CASE("sse: events over the limit are flagged, not buffered", "[sse]") {
  const std::string big(100, 'x');
  SECTION("one long data line") {
    const Decoded d = decode_every_way("data: " + big + "\n\ndata: ok\n\n", 64);
    CHECK(d.events == std::vector<Event>{{"message", "", "", true}, {"message", "ok", "", false}});
  }
  SECTION("many short data lines adding up") {
    std::string s;
    for (int i = 0; i < 10; ++i) s += "data: " + std::string(10, 'y') + "\n";
    const Decoded d = decode_every_way(s + "\nevent: e\ndata: ok\n\n", 64);
    CHECK(d.events == std::vector<Event>{{"message", "", "", true}, {"e", "ok", "", false}});
  }
  SECTION("a long comment is simply skipped") {
    const Decoded d = decode_every_way(": " + big + "\ndata: ok\n\n", 64);
    CHECK(d.events == std::vector<Event>{{"message", "ok", "", false}});
  }
  SECTION("exactly at the limit still fits") {
    const Decoded d = decode_every_way("data: " + std::string(63, 'z') + "\n\n", 64);
    CHECK(d.events == std::vector<Event>{{"message", std::string(63, 'z'), "", false}});
  }
}

TEST_CASE("sse: a realistic stream survives every split", "[sse]") {
  const std::string s =
      ": keep-alive\r\n\r\nevent: message_start\r\ndata: {\"type\":\"message_start\"}\r\n\r\n"
      "id: 1\nretry: 10\nevent: content_block_delta\ndata: {\"a\":\n"
      "data: 1}\n\n\rdata: [DONE]\r\r";
  const Decoded d = decode_every_way(s);
  CHECK(d.events == std::vector<Event>{{"message_start", "{\"type\":\"message_start\"}", "", false},
                                       {"content_block_delta", "{\"a\":\n1}", "1", false},
                                       {"message", "[DONE]", "1", false}});
  CHECK(d.clean);
}

}  // namespace
}  // namespace tokentap
