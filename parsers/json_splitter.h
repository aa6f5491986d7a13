// Incremental splitter for one JSON text into its top-level parts: the elements of a top-level
// array (Gemini's default streamGenerateContent body, "[{...},\n{...}]") or the members of a
// top-level object (a non-streaming response body, a request body). Each part can then be
// parsed on its own, and parts nobody needs are skipped without being parsed or kept.
//
// The splitter checks structure (brackets, strings, commas, colons) but not the grammar of
// the values inside a part: whoever parses a part validates it. Memory is bounded by
// max_part_bytes: a longer value is reported as `oversized` with an empty value, and whether
// a part is oversized depends only on its length, never on how the input was split. A part
// that arrives within a single next() input is returned as a view into that input, without
// copying.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace tokentap {

struct JsonPart {
  std::string_view key;    // member name as written between the quotes; empty for elements
  std::string_view value;  // the complete JSON text of the value; empty when oversized
  bool oversized = false;
};

class JsonSplitter {
 public:
  enum class Shape { unknown, array, object };
  enum class Status {
    part,       // `part` is filled in; its views stay valid until the next call
    need_more,  // `input` is used up
    done,       // the top-level value is closed; only whitespace may follow
    error,      // not a JSON array or object (see error())
  };

  // `keep_member`, when set, is asked about each member name of an object: the values of
  // members it declines are scanned past without being buffered or returned.
  explicit JsonSplitter(size_t max_part_bytes = 4u << 20,
                        std::function<bool(std::string_view)> keep_member = {});

  // Consumes bytes from the front of `input` until one of the statuses above.
  Status next(std::string_view& input, JsonPart& part);

  // End of input: true when the top-level value was complete and nothing but whitespace
  // followed it.
  bool finish() const { return state_ == State::done; }

  Shape shape() const { return shape_; }
  bool started() const { return state_ != State::start; }
  const char* error() const { return error_; }

 private:
  enum class State {
    start,
    object_key_or_end,  // after '{'
    object_key,         // after ','
    key,
    colon,
    value_or_end,  // after '['
    value,         // before a value: whitespace, then its first byte
    in_value,
    after_value,
    done,
    error,
  };

  Status fail(const char* why);
  bool start_byte(char c);
  const char* scan_key(const char* p, const char* end);
  void keep_value_piece(const char* value_begin, const char* end);
  const char* scan_string(const char* p, const char* end);
  // Scans a value from `p`; returns the position after it, or nullptr when it continues.
  const char* scan_value(const char* p, const char* end);
  Status finish_value(const char* value_begin, const char* value_end, JsonPart& part);

  size_t max_part_bytes_;
  std::function<bool(std::string_view)> keep_member_;
  State state_ = State::start;
  Shape shape_ = Shape::unknown;
  const char* error_ = nullptr;
  size_t bom_seen_ = 0;  // bytes of a leading UTF-8 BOM matched so far

  std::string key_;
  bool key_escape_ = false;
  bool skip_value_ = false;  // keep_member_ declined the current member

  // The value being scanned.
  std::string stack_;  // open brackets inside the value
  bool in_string_ = false;
  bool escape_ = false;
  bool scalar_ = false;  // a number or literal: it ends at the first delimiter
  size_t value_size_ = 0;
  std::string buffer_;            // the value so far, when it spans inputs and is not oversized
  bool returned_buffer_ = false;  // the last part viewed buffer_
};

// Calls f(key, value) for each member of `text`, a whole JSON object already in memory (values
// are views into `text`, nothing is copied). Returns false unless `text` is a complete object.
template <class F>
bool for_each_member(std::string_view text, F&& f) {
  JsonSplitter splitter(SIZE_MAX);
  JsonPart part;
  while (splitter.next(text, part) == JsonSplitter::Status::part) {
    if (splitter.shape() != JsonSplitter::Shape::object) return false;
    f(part.key, part.value);
  }
  return splitter.finish() && splitter.shape() == JsonSplitter::Shape::object;
}

// Calls f(value) for each element of `text`, a whole JSON array already in memory.
template <class F>
bool for_each_element(std::string_view text, F&& f) {
  JsonSplitter splitter(SIZE_MAX);
  JsonPart part;
  while (splitter.next(text, part) == JsonSplitter::Status::part) {
    if (splitter.shape() != JsonSplitter::Shape::array) return false;
    f(part.value);
  }
  return splitter.finish() && splitter.shape() == JsonSplitter::Shape::array;
}

}  // namespace tokentap
