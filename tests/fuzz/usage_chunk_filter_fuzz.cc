// UsageChunkFilter (parsers/stream_options.h). The stream is cut into events by an independent
// reading of the SSE line rules and fed one event at a time; for each event the filter must
// pass it on unchanged, drop it only if its data is a usage-only chunk (a JSON object with
// "choices": [] and a "usage" object), or remove one `,"usage":null` member from it. An
// unterminated last event comes out unchanged at finish(). Feeding the whole stream at once,
// or at fuzzer-chosen cuts, gives the same bytes.
//
// Input: [4 cuts: 2 bytes each] [the event stream...]
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "parsers/stream_options.h"
#include "tests/support/fuzz_support.h"

namespace tokentap::fuzz {
namespace {

struct Event {
  std::string_view raw;  // every byte of the event, its blank line's terminator included
  std::string data;      // data field values joined with '\n'
  bool terminated = false;
};

// Splits at blank lines. Line ends are LF, CR or CRLF; a BOM may open the first line.
std::vector<Event> split_events(std::string_view stream) {
  std::vector<Event> events;
  size_t start = 0;
  size_t pos = 0;
  bool first_line = true;
  std::string data;
  bool has_data = false;
  while (pos < stream.size()) {
    const size_t eol = stream.find_first_of("\r\n", pos);
    if (eol == std::string_view::npos) break;
    std::string_view line = stream.substr(pos, eol - pos);
    pos = eol + 1;
    if (stream[eol] == '\r' && pos < stream.size() && stream[pos] == '\n') ++pos;
    if (first_line && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);
    first_line = false;
    if (!line.empty()) {
      const size_t colon = line.find(':');
      if (line.substr(0, colon) == "data") {
        std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
        if (value.starts_with(' ')) value.remove_prefix(1);
        if (has_data) data.push_back('\n');
        data.append(value);
        has_data = true;
      }
      continue;
    }
    events.push_back({stream.substr(start, pos - start), data, true});
    start = pos;
    data.clear();
    has_data = false;
  }
  if (start < stream.size()) events.push_back({stream.substr(start), data, false});
  return events;
}

bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// `text` has `"key"` followed by optional white space, a colon, white space and then `value`.
bool has_member_starting(std::string_view text, std::string_view key, std::string_view value) {
  const std::string quoted = "\"" + std::string(key) + "\"";
  for (size_t at = text.find(quoted); at != std::string_view::npos;
       at = text.find(quoted, at + 1)) {
    size_t i = at + quoted.size();
    while (i < text.size() && is_json_space(text[i])) ++i;
    if (i >= text.size() || text[i] != ':') continue;
    ++i;
    while (i < text.size() && is_json_space(text[i])) ++i;
    if (text.substr(i).starts_with(value)) return true;
  }
  return false;
}

// `text` has `"key"`, a colon and `[]`, with optional white space around each.
bool has_empty_array_member(std::string_view text, std::string_view key) {
  const std::string quoted = "\"" + std::string(key) + "\"";
  for (size_t at = text.find(quoted); at != std::string_view::npos;
       at = text.find(quoted, at + 1)) {
    size_t i = at + quoted.size();
    auto skip_space = [&] {
      while (i < text.size() && is_json_space(text[i])) ++i;
    };
    skip_space();
    if (i >= text.size() || text[i] != ':') continue;
    ++i;
    skip_space();
    if (i >= text.size() || text[i] != '[') continue;
    ++i;
    skip_space();
    if (i < text.size() && text[i] == ']') return true;
  }
  return false;
}

// A usage-only chunk: valid JSON with "choices": [] and a "usage" object. The filter reads
// structure without validating values, so data that is not valid JSON counts as one when it
// visibly has both members (it cannot be a chunk with content either).
bool is_usage_only(const std::string& data) {
  const nlohmann::json j = nlohmann::json::parse(data, nullptr, false);
  if (j.is_discarded()) {
    return has_empty_array_member(data, "choices") && has_member_starting(data, "usage", "{");
  }
  if (!j.is_object()) return false;
  const auto choices = j.find("choices");
  const auto usage = j.find("usage");
  return choices != j.end() && choices->is_array() && choices->empty() && usage != j.end() &&
         usage->is_object();
}

// `removed` is `<ws>,<ws>"usage"<ws>:<ws>null` with the key possibly written with escapes.
bool is_null_usage_member(std::string_view removed) {
  size_t i = 0;
  auto skip_space = [&] {
    while (i < removed.size() && is_json_space(removed[i])) ++i;
  };
  skip_space();
  if (i >= removed.size() || removed[i] != ',') return false;
  ++i;
  skip_space();
  if (i >= removed.size() || removed[i] != '"') return false;
  size_t end = i + 1;
  while (end < removed.size() && removed[end] != '"') end += removed[end] == '\\' ? 2 : 1;
  if (end >= removed.size()) return false;
  const nlohmann::json key = nlohmann::json::parse(removed.substr(i, end + 1 - i), nullptr, false);
  if (!key.is_string() || key.get<std::string>() != "usage") return false;
  i = end + 1;
  skip_space();
  if (i >= removed.size() || removed[i] != ':') return false;
  ++i;
  skip_space();
  return removed.substr(i) == "null";
}

// `out` is `raw` with one `,"usage":null` member cut out of it.
bool is_raw_minus_null_usage(std::string_view raw, std::string_view out) {
  if (out.size() >= raw.size()) return false;
  const size_t cut = raw.size() - out.size();
  for (size_t at = 0; at + cut <= raw.size(); ++at) {
    if (raw.substr(0, at) != out.substr(0, at)) break;
    if (raw.substr(at + cut) == out.substr(at) && is_null_usage_member(raw.substr(at, cut))) {
      return true;
    }
  }
  return false;
}

}  // namespace
}  // namespace tokentap::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  using namespace tokentap;
  using namespace tokentap::fuzz;
  ByteReader in(bytes, size);
  ByteReader cut_bytes = in.split_off(8);
  const std::string_view stream = in.rest();
  const std::vector<size_t> cuts = cut_bytes.cuts(4, stream.size());

  UsageChunkFilter by_event;
  std::string expected;
  uint32_t removed = 0;
  for (const Event& event : split_events(stream)) {
    std::string out;
    by_event.feed(event.raw, out);
    if (!event.terminated) {
      FUZZ_CHECK(event.raw.substr(0, out.size()) == out,
                 "an unterminated event was changed: " + printable(out));
      by_event.finish(out);
      FUZZ_CHECK(out == event.raw, "an unterminated event did not come out unchanged at finish: " +
                                       printable(out) + " from " + printable(event.raw));
    } else if (out.empty()) {
      FUZZ_CHECK(is_usage_only(event.data),
                 "an event that is not a usage-only chunk was dropped: " + printable(event.raw));
      ++removed;
    } else if (out != event.raw) {
      FUZZ_CHECK(is_raw_minus_null_usage(event.raw, out),
                 "an event was changed by more than a \"usage\":null member:\n  in:  " +
                     printable(event.raw) + "\n  out: " + printable(out));
    }
    FUZZ_CHECK(by_event.removed_events() == removed, "removed_events() miscounted");
    expected += out;
  }
  std::string tail;
  by_event.finish(tail);
  FUZZ_CHECK(tail.empty(), "finish() produced bytes after every event was passed on");

  UsageChunkFilter whole;
  std::string got;
  whole.feed(stream, got);
  whole.finish(got);
  FUZZ_CHECK(got == expected, "whole stream output differs from event by event:\n  whole: " +
                                  printable(got) + "\n  events: " + printable(expected));
  FUZZ_CHECK(whole.removed_events() == removed, "removed_events() differs for the whole stream");

  UsageChunkFilter split;
  std::string split_out;
  for (std::string_view piece : pieces(stream, cuts)) {
    const size_t before = split_out.size();
    split.feed(piece, split_out);
    FUZZ_CHECK(split_out.size() - before <= piece.size() + UsageChunkFilter::kMaxHeldBytes,
               "one feed produced more than it could have held");
  }
  split.finish(split_out);
  FUZZ_CHECK(split_out == expected,
             "split stream output differs:\n  split: " + printable(split_out) +
                 "\n  events: " + printable(expected));
  return 0;
}
