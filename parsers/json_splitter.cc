#include "parsers/json_splitter.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "parsers/bounded_append.h"

namespace tokentap {
namespace {

constexpr size_t kMaxKeyBytes = 256;
constexpr size_t kMaxDepth = 512;
constexpr std::string_view kBom = "\xEF\xBB\xBF";

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Bytes that matter while skipping through a container outside strings.
constexpr std::array<bool, 256> kStructural = [] {
  std::array<bool, 256> t{};
  for (unsigned char c : {'"', '{', '}', '[', ']'}) t[c] = true;
  return t;
}();

bool is_structural(char c) { return kStructural[static_cast<unsigned char>(c)]; }

bool ends_scalar(char c) {
  return is_space(c) || c == ',' || c == ']' || c == '}' || c == ':' || c == '"' || c == '[' ||
         c == '{';
}

const char* skip_space(const char* p, const char* end) {
  while (p != end && is_space(*p)) ++p;
  return p;
}

}  // namespace

JsonSplitter::JsonSplitter(size_t max_part_bytes, std::function<bool(std::string_view)> keep_member)
    : max_part_bytes_(max_part_bytes), keep_member_(std::move(keep_member)) {}

JsonSplitter::Status JsonSplitter::fail(const char* why) {
  state_ = State::error;
  error_ = why;
  buffer_.clear();
  return Status::error;
}

// The byte before the document's container: a byte order mark, space, '{' or '['. False (and the
// splitter failed) for anything else.
bool JsonSplitter::start_byte(char c) {
  if (bom_seen_ < kBom.size() && c == kBom[bom_seen_]) {
    ++bom_seen_;
    return true;
  }
  if (bom_seen_ > 0 && bom_seen_ < kBom.size()) {
    fail("broken byte order mark");
    return false;
  }
  bom_seen_ = kBom.size();
  if (c == '{') {
    shape_ = Shape::object;
    state_ = State::object_key_or_end;
  } else if (c == '[') {
    shape_ = Shape::array;
    state_ = State::value_or_end;
  } else if (!is_space(c)) {
    fail("not a JSON array or object");
    return false;
  }
  return true;
}

// A member name up to its closing quote, kept up to kMaxKeyBytes; returns where it stopped.
const char* JsonSplitter::scan_key(const char* p, const char* end) {
  const char* start = p;
  while (p != end) {
    const char c = *p;
    if (key_escape_) {
      key_escape_ = false;
    } else if (c == '\\') {
      key_escape_ = true;
    } else if (c == '"') {
      break;
    }
    ++p;
  }
  const size_t room = kMaxKeyBytes - std::min(kMaxKeyBytes, key_.size());
  key_.append(start, std::min(room, static_cast<size_t>(p - start)));
  if (p != end) {
    state_ = State::colon;
    skip_value_ = keep_member_ && !keep_member_(key_);
    ++p;
  }
  return p;
}

// The piece of a value that continues in the next input, kept while the whole value fits.
void JsonSplitter::keep_value_piece(const char* value_begin, const char* end) {
  const size_t piece = static_cast<size_t>(end - value_begin);
  if (value_size_ + piece <= max_part_bytes_) {
    bounded_append(buffer_, std::string_view(value_begin, piece), max_part_bytes_);
  } else if (!buffer_.empty()) {
    buffer_.clear();
    buffer_.shrink_to_fit();
  }
  value_size_ += piece;
}

JsonSplitter::Status JsonSplitter::next(std::string_view& input, JsonPart& part) {
  if (returned_buffer_) {
    buffer_.clear();
    returned_buffer_ = false;
  }
  const char* p = input.data();
  const char* const end = p + input.size();
  const char* value_begin = p;  // where the current value's bytes in this input start
  auto consumed = [&](Status s) {
    input.remove_prefix(static_cast<size_t>(p - input.data()));
    return s;
  };

  while (p != end) {
    switch (state_) {
      case State::start:
        if (!start_byte(*p)) return consumed(Status::error);
        ++p;
        break;
      case State::object_key_or_end:
      case State::object_key: {
        p = skip_space(p, end);
        if (p == end) break;
        if (*p == '"') {
          key_.clear();
          key_escape_ = false;
          state_ = State::key;
        } else if (*p == '}' && state_ == State::object_key_or_end) {
          state_ = State::done;
        } else {
          return consumed(fail("expected a member name"));
        }
        ++p;
        break;
      }
      case State::key:
        p = scan_key(p, end);
        break;
      case State::colon:
        p = skip_space(p, end);
        if (p == end) break;
        if (*p != ':') return consumed(fail("expected ':'"));
        state_ = State::value;
        ++p;
        break;
      case State::value_or_end:
        p = skip_space(p, end);
        if (p == end) break;
        if (*p == ']') {
          state_ = State::done;
          ++p;
        } else {
          state_ = State::value;
        }
        break;
      case State::value: {
        p = skip_space(p, end);
        if (p == end) break;
        const char c = *p;
        stack_.clear();
        in_string_ = escape_ = scalar_ = false;
        value_size_ = 0;
        buffer_.clear();
        if (c == '{' || c == '[') {
          stack_.push_back(c);
        } else if (c == '"') {
          in_string_ = true;
        } else if (c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n') {
          scalar_ = true;
        } else {
          return consumed(fail("expected a value"));
        }
        value_begin = p;
        ++p;
        state_ = State::in_value;
        break;
      }
      case State::in_value: {
        const char* after = scan_value(p, end);
        if (state_ == State::error) return consumed(Status::error);
        if (after == nullptr) {
          p = end;  // the value continues in the next input
          break;
        }
        p = after;
        state_ = State::after_value;
        if (skip_value_) {
          skip_value_ = false;
          value_size_ = 0;
          break;
        }
        return consumed(finish_value(value_begin, after, part));
      }
      case State::after_value: {
        p = skip_space(p, end);
        if (p == end) break;
        const char c = *p++;
        if (c == ',') {
          state_ = shape_ == Shape::object ? State::object_key : State::value;
        } else if ((c == '}' && shape_ == Shape::object) || (c == ']' && shape_ == Shape::array)) {
          state_ = State::done;
        } else {
          return consumed(fail("expected ',' or the end of the container"));
        }
        break;
      }
      case State::done:
        p = skip_space(p, end);
        if (p != end) return consumed(fail("data after the end of the JSON value"));
        break;
      case State::error:
        return consumed(Status::error);
    }
  }

  if (state_ == State::in_value && !skip_value_) keep_value_piece(value_begin, end);
  return consumed(state_ == State::done ? Status::done : Status::need_more);
}

// Inside a string: memchr to each quote, which is the closing one unless an odd run of
// backslashes precedes it. Returns the position after the closing quote, or nullptr when the
// string continues past `end`; escape_ then says whether the next input starts escaped.
const char* JsonSplitter::scan_string(const char* p, const char* end) {
  if (escape_) {
    if (p == end) return nullptr;
    escape_ = false;
    ++p;
  }
  auto backslashes_before = [&p](const char* at) {
    const char* r = at;
    while (r != p && r[-1] == '\\') --r;
    return static_cast<size_t>(at - r);
  };
  for (;;) {
    const auto* quote = static_cast<const char*>(std::memchr(p, '"', static_cast<size_t>(end - p)));
    if (quote == nullptr) {
      escape_ = backslashes_before(end) % 2 == 1;
      return nullptr;
    }
    if (backslashes_before(quote) % 2 == 0) return quote + 1;
    p = quote + 1;
  }
}

const char* JsonSplitter::scan_value(const char* p, const char* end) {
  while (p != end) {
    if (in_string_) {
      const char* after = scan_string(p, end);
      if (after == nullptr) return nullptr;
      in_string_ = false;
      p = after;
      if (stack_.empty()) return p;
      continue;
    }
    if (scalar_) {
      while (p != end && !ends_scalar(*p)) ++p;
      if (p == end) return nullptr;
      scalar_ = false;
      return p;
    }
    while (p != end && !is_structural(*p)) ++p;
    if (p == end) break;
    const char c = *p++;
    if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      if (stack_.size() >= kMaxDepth) {
        fail("JSON nested too deeply");
        return nullptr;
      }
      stack_.push_back(c);
    } else {
      const char open = c == '}' ? '{' : '[';
      if (stack_.empty() || stack_.back() != open) {
        fail("mismatched bracket");
        return nullptr;
      }
      stack_.pop_back();
      if (stack_.empty()) return p;
    }
  }
  return nullptr;
}

JsonSplitter::Status JsonSplitter::finish_value(const char* value_begin, const char* value_end,
                                                JsonPart& part) {
  const size_t piece = static_cast<size_t>(value_end - value_begin);
  const size_t total = value_size_ + piece;
  part.key = shape_ == Shape::object ? std::string_view(key_) : std::string_view();
  part.oversized = total > max_part_bytes_;
  if (part.oversized) {
    part.value = {};
    if (buffer_.capacity() > 0) {
      buffer_.clear();
      buffer_.shrink_to_fit();
    }
  } else if (value_size_ == 0) {
    part.value = std::string_view(value_begin, piece);
  } else {
    bounded_append(buffer_, std::string_view(value_begin, piece), max_part_bytes_);
    part.value = buffer_;
    returned_buffer_ = true;
  }
  value_size_ = 0;
  return Status::part;
}

}  // namespace tokentap
