// The one place metering changes bytes on the wire, as a pair: an OpenAI chat/completions
// streaming request without stream_options gets "stream_options":{"include_usage":true}, so the
// provider reports exact usage in a final chunk, and UsageChunkFilter takes that usage-only
// chunk back out of the stream the client receives. The client sees the stream it asked for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tokentap {

// For a request body that is a JSON object with "stream": true and no "stream_options" member,
// returns the body with ,"stream_options":{"include_usage":true} inserted right after the last
// member (every other byte unchanged). Returns nullopt, meaning "forward the body as is", for
// anything else: not a complete JSON object, not streaming, stream_options already present.
std::optional<std::string> add_stream_usage_option(std::string_view body);

// Removes the usage-only chunk (`"choices": []` with a `usage` object) from an OpenAI
// chat/completions SSE stream, and the `"usage":null` member OpenAI adds to every other chunk
// when include_usage is on; every other byte passes through unchanged and in order.
// The stream must be identity-encoded (the proxy applies this only to such responses).
// Bytes are held back only while the event they belong to is incomplete, and at most
// kMaxHeldBytes of one event: an event larger than that cannot be the usage chunk and is passed
// through as it arrives.
class UsageChunkFilter {
 public:
  static constexpr size_t kMaxHeldBytes = 64u << 10;

  // Appends to `out` the bytes of `in` the client should receive now.
  void feed(std::string_view in, std::string& out);
  // End of stream: appends whatever is still held (an unterminated event is passed on as is).
  void finish(std::string& out);

  uint32_t removed_events() const { return removed_; }

 private:
  std::string held_;          // raw bytes of the current event that have not been passed on
  std::string line_;          // the current line, without its terminator, up to kMaxHeldBytes
  std::string data_;          // the event's data field values, joined with '\n'
  bool passthrough_ = false;  // the current event outgrew the limit
  bool first_line_ = true;
  bool after_cr_ = false;   // the last byte seen was a CR ending a line
  bool cr_to_out_ = false;  // ... which ended a passed-on event: an LF right after follows it
  bool drop_lf_ = false;    // ... which ended a removed event: an LF right after goes too
  uint32_t removed_ = 0;
};

}  // namespace tokentap
