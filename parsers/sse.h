// Incremental decoder for text/event-stream (WHATWG HTML "Server-sent events", section
// 9.2.6 "Interpreting an event stream"): LF, CR and CRLF line ends (also a CR at the end of one
// chunk followed by LF in the next), a leading BOM, comments, multi-line data, and the
// event / id / retry fields. Bytes may be split anywhere between calls.
//
// Memory is bounded by max_event_bytes: an event whose data (or a single line) grows past it
// is still dispatched, with `oversized` set and empty data, so the caller can count it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tokentap {

struct SseEvent {
  std::string_view type;   // the event field, or "message" when the event had none
  std::string_view data;   // data lines joined with '\n'
  std::string_view id;     // the last event id seen so far (it persists across events)
  bool oversized = false;  // the data exceeded max_event_bytes and was dropped
};

class SseDecoder {
 public:
  explicit SseDecoder(size_t max_event_bytes = 4u << 20);

  // Consumes bytes from the front of `input` until an event is dispatched (returns true;
  // `event` views stay valid until the next call) or `input` is used up (returns false).
  // Call again with the rest of `input` after every true.
  bool next(std::string_view& input, SseEvent& event);

  // End of stream. Per the spec an undispatched event is discarded; returns false when a
  // partial line or an event without its terminating blank line was pending (truncation).
  bool finish();

  // The last valid `retry` field, in milliseconds.
  std::optional<uint64_t> retry_ms() const { return retry_ms_; }

 private:
  void process_line(std::string_view line);
  void process_field(std::string_view field, std::string_view value);
  bool dispatch(SseEvent& event);

  size_t max_event_bytes_;
  std::string line_;            // a line split across calls
  bool line_overflow_ = false;  // line_ hit the limit; the rest of the line is dropped
  bool first_line_ = true;      // a BOM may only precede the first line
  bool skip_lf_ = false;        // the previous line ended in CR: a leading LF belongs to it
  bool dispatched_ = false;     // the buffers below still back the event returned last time

  std::string data_;
  bool has_data_ = false;
  bool data_oversized_ = false;
  std::string event_type_;
  std::string last_event_id_;
  std::optional<uint64_t> retry_ms_;
  bool pending_dispatch_ = false;  // process_line() saw a blank line that dispatches
};

}  // namespace tokentap
