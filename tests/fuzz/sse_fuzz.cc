// SseDecoder (parsers/sse.h) against a whole-buffer reference written from the WHATWG
// algorithm, fed whole, at fuzzer-chosen cuts and byte by byte, with a generous and a small
// max_event_bytes.
//
// Input: [small limit: 1 byte] [4 cuts: 2 bytes each] [the event stream...]
#include <optional>
#include <string>
#include <vector>

#include "parsers/sse.h"
#include "tests/support/fuzz_support.h"

namespace tokentap::fuzz {
namespace {

// Deviations the decoder documents in its implementation, mirrored here: an id longer than
// this is ignored, and so is a retry value longer than 19 digits.
constexpr size_t kMaxIdBytes = 1024;
constexpr size_t kMaxRetryDigits = 19;
constexpr size_t kLineSlack = 64;

struct Event {
  std::string type;
  std::string data;
  std::string id;
  bool oversized = false;
  bool operator==(const Event&) const = default;
};

struct Decoded {
  std::vector<Event> events;
  bool clean_end = false;
  std::optional<uint64_t> retry_ms;
  bool operator==(const Decoded&) const = default;
};

std::string describe(const Decoded& d) {
  std::string out = std::to_string(d.events.size()) +
                    " events, clean_end=" + (d.clean_end ? "1" : "0") +
                    ", retry=" + (d.retry_ms ? std::to_string(*d.retry_ms) : "none");
  for (const Event& e : d.events) {
    out += "\n    {type=" + printable(e.type, 40) + " data=" + printable(e.data, 80) +
           " id=" + printable(e.id, 40) + (e.oversized ? " OVERSIZED}" : "}");
  }
  return out;
}

Decoded decode(const std::vector<std::string_view>& chunks, size_t max_event_bytes) {
  SseDecoder decoder(max_event_bytes);
  Decoded out;
  for (std::string_view chunk : chunks) {
    SseEvent event;
    while (decoder.next(chunk, event)) {
      out.events.push_back({std::string(event.type), std::string(event.data), std::string(event.id),
                            event.oversized});
    }
    FUZZ_CHECK(chunk.empty(), "next() returned false with input left");
  }
  out.clean_end = decoder.finish();
  out.retry_ms = decoder.retry_ms();
  return out;
}

// The "interpret an event stream" algorithm over the whole input at once.
Decoded reference(std::string_view stream) {
  Decoded out;
  // Bytes after the last line end, a lone BOM included, are a partial line.
  const bool partial_line = !stream.empty() && stream.back() != '\n' && stream.back() != '\r';
  if (stream.starts_with("\xEF\xBB\xBF")) stream.remove_prefix(3);
  std::string data;
  std::string type;
  std::string last_id;
  size_t pos = 0;
  while (pos < stream.size()) {
    const size_t eol = stream.find_first_of("\r\n", pos);
    if (eol == std::string_view::npos) break;
    const std::string_view line = stream.substr(pos, eol - pos);
    pos = eol + 1;
    if (stream[eol] == '\r' && pos < stream.size() && stream[pos] == '\n') ++pos;

    if (line.empty()) {
      if (!data.empty()) {
        data.pop_back();
        out.events.push_back({type.empty() ? "message" : type, data, last_id, false});
      }
      data.clear();
      type.clear();
      continue;
    }
    if (line.front() == ':') continue;
    const size_t colon = line.find(':');
    const std::string_view field = line.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
      value = line.substr(colon + 1);
      if (value.starts_with(' ')) value.remove_prefix(1);
    }
    if (field == "event") {
      type.assign(value);
    } else if (field == "data") {
      data.append(value);
      data.push_back('\n');
    } else if (field == "id") {
      if (value.find('\0') == std::string_view::npos && value.size() <= kMaxIdBytes) {
        last_id.assign(value);
      }
    } else if (field == "retry") {
      if (!value.empty() && value.size() <= kMaxRetryDigits &&
          value.find_first_not_of("0123456789") == std::string_view::npos) {
        out.retry_ms = std::stoull(std::string(value));
      }
    }
  }
  out.clean_end = !partial_line && data.empty() && type.empty();
  return out;
}

}  // namespace
}  // namespace tokentap::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  using namespace tokentap::fuzz;
  ByteReader in(bytes, size);
  const size_t small_limit = 1 + in.byte() * 2u;
  ByteReader cut_bytes = in.split_off(8);
  const std::string_view stream = in.rest();
  const std::vector<size_t> cut_points = cut_bytes.cuts(4, stream.size());

  std::vector<std::string_view> bytewise;
  if (stream.size() <= 8192) {
    for (size_t i = 0; i < stream.size(); ++i) bytewise.push_back(stream.substr(i, 1));
  }

  // With a limit no event can reach, the decoder is exactly the reference algorithm.
  const size_t big_limit = stream.size() + 1;
  const Decoded expected = reference(stream);
  const Decoded whole = decode({stream}, big_limit);
  FUZZ_CHECK(whole == expected,
             "whole input differs from the reference\n  decoder: " + describe(whole) +
                 "\n  reference: " + describe(expected) + "\n  input: " + printable(stream));
  const Decoded split = decode(pieces(stream, cut_points), big_limit);
  FUZZ_CHECK(split == whole, "split input differs from whole\n  split: " + describe(split) +
                                 "\n  whole: " + describe(whole));
  if (!bytewise.empty()) {
    const Decoded one = decode(bytewise, big_limit);
    FUZZ_CHECK(one == whole, "byte-at-a-time differs from whole\n  bytewise: " + describe(one) +
                                 "\n  whole: " + describe(whole));
  }

  // With a small limit: the same events, oversized exactly when their data would not fit,
  // and never more than the limit held, however the input is split.
  const Decoded small = decode({stream}, small_limit);
  FUZZ_CHECK(small.events.size() == expected.events.size(),
             "small limit changed the number of events\n  small: " + describe(small) +
                 "\n  reference: " + describe(expected));
  for (size_t i = 0; i < small.events.size(); ++i) {
    const Event& got = small.events[i];
    const Event& want = expected.events[i];
    const bool too_big = want.data.size() + 1 > small_limit;
    FUZZ_CHECK(got.oversized == too_big,
               "event " + std::to_string(i) + " oversized=" + std::to_string(got.oversized) +
                   " but its data is " + std::to_string(want.data.size()) + " bytes with limit " +
                   std::to_string(small_limit));
    if (!got.oversized) FUZZ_CHECK(got.data == want.data, "event data differs under a limit");
    if (got.oversized) FUZZ_CHECK(got.data.empty(), "oversized event carries data");
    FUZZ_CHECK(got.type.size() <= small_limit + kLineSlack, "event type exceeds the line limit");
    FUZZ_CHECK(got.id.size() <= kMaxIdBytes, "event id exceeds its limit");
  }
  const Decoded small_split = decode(pieces(stream, cut_points), small_limit);
  FUZZ_CHECK(small_split == small, "split input differs from whole under a limit\n  split: " +
                                       describe(small_split) + "\n  whole: " + describe(small));
  if (!bytewise.empty()) {
    const Decoded small_one = decode(bytewise, small_limit);
    FUZZ_CHECK(small_one == small, "byte-at-a-time differs from whole under a limit\n  one: " +
                                       describe(small_one) + "\n  whole: " + describe(small));
  }
  return 0;
}
