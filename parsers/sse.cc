#include "parsers/sse.h"

#include <algorithm>
#include <cstring>

#include "parsers/bounded_append.h"

namespace tokentap {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";
constexpr size_t kMaxIdBytes = 1024;
// Room for the field name, the colon and a space in front of a maximal data value.
constexpr size_t kLineSlack = 64;

// The first CR or LF at or after p, or end. CR is rare, so it is looked for only before the LF.
const char* find_line_end(const char* p, const char* end) {
  const void* lf = std::memchr(p, '\n', static_cast<size_t>(end - p));
  const char* stop = lf != nullptr ? static_cast<const char*>(lf) : end;
  const void* cr = std::memchr(p, '\r', static_cast<size_t>(stop - p));
  return cr != nullptr ? static_cast<const char*>(cr) : stop;
}

}  // namespace

SseDecoder::SseDecoder(size_t max_event_bytes) : max_event_bytes_(max_event_bytes) {}

bool SseDecoder::next(std::string_view& input, SseEvent& event) {
  if (dispatched_) {
    data_.clear();
    has_data_ = false;
    data_oversized_ = false;
    event_type_.clear();
    dispatched_ = false;
  }
  const size_t max_line = max_event_bytes_ + kLineSlack;
  while (!input.empty()) {
    if (skip_lf_) {
      skip_lf_ = false;
      if (input.front() == '\n') {
        input.remove_prefix(1);
        continue;
      }
    }
    const char* begin = input.data();
    const char* end = begin + input.size();
    const char* eol = find_line_end(begin, end);
    const size_t piece = static_cast<size_t>(eol - begin);
    // A line longer than the limit keeps only its field name, and whether it overflows
    // depends on its length alone, never on where the chunks were split.
    if (line_overflow_) {
      // The rest of an overlong line is dropped.
    } else if (line_.size() + piece > max_line) {
      line_.append(begin, std::min(piece, kLineSlack));
      const size_t colon = line_.find(':');
      line_.resize(colon == std::string::npos ? std::min(line_.size(), kLineSlack) : colon);
      line_.shrink_to_fit();
      line_overflow_ = true;
    } else if (eol == end || !line_.empty()) {
      bounded_append(line_, std::string_view(begin, piece), max_line);
    }
    if (eol == end) {
      input = {};
      return false;
    }
    const std::string_view line =
        (line_.empty() && !line_overflow_) ? std::string_view(begin, piece) : line_;
    skip_lf_ = *eol == '\r';
    input.remove_prefix(piece + 1);
    process_line(line);
    line_.clear();
    line_overflow_ = false;
    if (pending_dispatch_) {
      pending_dispatch_ = false;
      if (dispatch(event)) return true;
    }
  }
  return false;
}

void SseDecoder::process_line(std::string_view line) {
  if (first_line_) {
    first_line_ = false;
    if (line.substr(0, kBom.size()) == kBom) line.remove_prefix(kBom.size());
  }
  if (line_overflow_) {
    // `line` is just the field name now.
    if (line == "data") {
      has_data_ = true;
      data_oversized_ = true;
      data_.clear();
      data_.shrink_to_fit();
    }
    return;
  }
  if (line.empty()) {
    pending_dispatch_ = true;
    return;
  }
  if (line.front() == ':') return;
  const size_t colon = line.find(':');
  const std::string_view field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  process_field(field, value);
}

void SseDecoder::process_field(std::string_view field, std::string_view value) {
  if (field == "data") {
    has_data_ = true;
    if (data_oversized_) return;
    if (data_.size() + value.size() + 1 > max_event_bytes_) {
      data_oversized_ = true;
      data_.clear();
      data_.shrink_to_fit();
      return;
    }
    bounded_append(data_, value, max_event_bytes_);
    data_.push_back('\n');
  } else if (field == "event") {
    event_type_.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos && value.size() <= kMaxIdBytes) {
      last_event_id_.assign(value);
    }
  } else if (field == "retry") {
    if (value.empty() || value.size() > 19) return;
    uint64_t ms = 0;
    for (char c : value) {
      if (c < '0' || c > '9') return;
      ms = ms * 10 + static_cast<uint64_t>(c - '0');
    }
    retry_ms_ = ms;
  }
}

bool SseDecoder::dispatch(SseEvent& event) {
  if (!has_data_) {
    event_type_.clear();
    return false;
  }
  event.type = event_type_.empty() ? std::string_view("message") : std::string_view(event_type_);
  event.data = std::string_view(data_);
  if (!event.data.empty()) event.data.remove_suffix(1);  // the LF after the last data line
  event.id = last_event_id_;
  event.oversized = data_oversized_;
  dispatched_ = true;
  return true;
}

bool SseDecoder::finish() {
  if (dispatched_) {
    data_.clear();
    has_data_ = false;
    data_oversized_ = false;
    event_type_.clear();
    dispatched_ = false;
  }
  const bool clean = line_.empty() && !line_overflow_ && !has_data_ && event_type_.empty();
  line_.clear();
  line_overflow_ = false;
  data_.clear();
  has_data_ = false;
  data_oversized_ = false;
  event_type_.clear();
  return clean;
}

}  // namespace tokentap
