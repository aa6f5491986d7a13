#include "parsers/stream_options.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "common/text.h"
#include "parsers/json_splitter.h"

namespace tokentap {
namespace {

constexpr std::string_view kUsageOption = R"("stream_options":{"include_usage":true})";

// A member name as the provider reads it: escapes such as "stream\u005foptions" decoded. Null
// when the escapes are not valid JSON.
std::optional<std::string> decoded_key(std::string_view raw) {
  if (raw.find('\\') == std::string_view::npos) return std::string(raw);
  std::string quoted;
  quoted.reserve(raw.size() + 2);
  quoted.append(1, '"').append(raw).append(1, '"');
  const nlohmann::json j = nlohmann::json::parse(quoted, nullptr, false);
  if (!j.is_string()) return std::nullopt;
  return j.get<std::string>();
}
constexpr std::string_view kBom = "\xEF\xBB\xBF";

// What one pass over a chunk's data finds: whether it is a usage-only chunk (an empty choices
// array and a usage object), and where a `"usage":null` member sits, to strip it.
struct ChunkShape {
  bool usage_only = false;
  size_t null_usage_from = std::string_view::npos;  // in the data, from the previous value's end
  size_t null_usage_to = std::string_view::npos;
};

ChunkShape chunk_shape(std::string_view json) {
  bool empty_choices = false;
  bool usage = false;
  size_t prev_end = std::string_view::npos;
  ChunkShape shape;
  const bool ok = for_each_member(json, [&](std::string_view key, std::string_view value) {
    const size_t value_end = static_cast<size_t>(value.data() - json.data()) + value.size();
    if (key == "choices") {
      const std::string_view inner = value.size() >= 2 && value.front() == '['
                                         ? trim(value.substr(1, value.size() - 2), kJsonWhitespace)
                                         : std::string_view("x");
      empty_choices = inner.empty();
    } else if (key == "usage") {
      usage = !value.empty() && value.front() == '{';
      if (value == "null" && prev_end != std::string_view::npos) {
        shape.null_usage_from = prev_end;
        shape.null_usage_to = value_end;
      }
    }
    prev_end = value_end;
  });
  if (!ok) return {};
  shape.usage_only = empty_choices && usage;
  return shape;
}

// With include_usage, OpenAI adds "usage":null to every other chunk. Removes that member from a
// single-line data event held in `event` (raw SSE bytes) whose data is `data`, so the client
// sees the chunk it would have seen without the option. Anything unusual is left alone.
void strip_null_usage(std::string& event, std::string_view data, const ChunkShape& shape) {
  if (shape.null_usage_from == std::string_view::npos) return;
  if (data.empty() || data.find('\n') != data.size() - 1) return;
  const std::string_view json = data.substr(0, data.size() - 1);
  const size_t at = event.find(json);
  if (at == std::string::npos) return;
  event.erase(at + shape.null_usage_from, shape.null_usage_to - shape.null_usage_from);
}

// The end of the line content starting at `from`: the first CR or LF, or in.size().
size_t line_end(std::string_view in, size_t from) {
  const char* begin = in.data() + from;
  const size_t rest = in.size() - from;
  const auto* lf = static_cast<const char*>(std::memchr(begin, '\n', rest));
  const size_t limit = lf == nullptr ? rest : static_cast<size_t>(lf - begin);
  const auto* cr = static_cast<const char*>(std::memchr(begin, '\r', limit));
  return from + (cr == nullptr ? limit : static_cast<size_t>(cr - begin));
}

}  // namespace

std::optional<std::string> add_stream_usage_option(std::string_view body) {
  bool stream = false;
  bool has_options = false;
  bool bad_key = false;
  size_t insert_at = std::string_view::npos;
  const bool ok = for_each_member(body, [&](std::string_view raw_key, std::string_view value) {
    // No spelling of "stream_options" is longer than one six-byte escape per letter; a longer
    // key is neither name, and the splitter cuts keys at 256 bytes, maybe inside an escape that
    // would then not decode (found by fuzzing).
    if (raw_key.size() > 6 * std::string_view("stream_options").size()) {
      insert_at = static_cast<size_t>(value.data() - body.data()) + value.size();
      return;
    }
    // A key spelled with escapes ("stream\u005foptions") is the name it decodes to: never send
    // two stream_options. Escapes that do not decode: forward the body as it is.
    const std::optional<std::string> key = decoded_key(raw_key);
    if (!key) {
      bad_key = true;
      return;
    }
    if (*key == "stream") {
      stream = value == "true";
    } else if (*key == "stream_options") {
      has_options = true;
    }
    insert_at = static_cast<size_t>(value.data() - body.data()) + value.size();
  });
  if (!ok || !stream || has_options || bad_key) return std::nullopt;
  std::string out;
  out.reserve(body.size() + kUsageOption.size() + 1);
  out.append(body.substr(0, insert_at));
  out.push_back(',');
  out.append(kUsageOption);
  out.append(body.substr(insert_at));
  return out;
}

void UsageChunkFilter::feed(std::string_view in, std::string& out) {
  size_t i = 0;
  while (i < in.size()) {
    if (after_cr_) {
      after_cr_ = false;
      if (in[i] == '\n') {
        // The LF completes a CRLF whose CR we already routed; it follows the CR.
        if (!drop_lf_) (cr_to_out_ ? out : (passthrough_ ? out : held_)).push_back('\n');
        drop_lf_ = false;
        ++i;
        continue;
      }
      drop_lf_ = false;
    }
    const size_t j = line_end(in, i);
    const std::string_view content = in.substr(i, j - i);
    (passthrough_ ? out : held_).append(content);
    if (line_.size() < kMaxHeldBytes) {
      line_.append(content.substr(0, kMaxHeldBytes - line_.size()));
    }
    if (!passthrough_ && held_.size() > kMaxHeldBytes) {
      out.append(held_);
      held_.clear();
      passthrough_ = true;
    }
    if (j == in.size()) break;
    const char terminator = in[j];
    i = j + 1;
    std::string_view line = line_;
    if (first_line_ && line.substr(0, kBom.size()) == kBom) line.remove_prefix(kBom.size());
    first_line_ = false;
    cr_to_out_ = false;
    if (!line.empty()) {
      (passthrough_ ? out : held_).push_back(terminator);
      const size_t colon = line.find(':');
      if (line.substr(0, colon) == "data" && !passthrough_) {
        std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        data_.append(value);
        data_.push_back('\n');
      }
      line_.clear();
      after_cr_ = terminator == '\r';
      continue;
    }
    // A blank line: the event is complete.
    line_.clear();
    (passthrough_ ? out : held_).push_back(terminator);
    ChunkShape shape;  // data_ ends with the '\n' added after each data line
    if (!passthrough_ && !data_.empty()) {
      shape = chunk_shape(std::string_view(data_).substr(0, data_.size() - 1));
    }
    if (shape.usage_only) {
      ++removed_;
      drop_lf_ = terminator == '\r';
    } else {
      strip_null_usage(held_, data_, shape);
      out.append(held_);
      cr_to_out_ = true;
    }
    held_.clear();
    data_.clear();
    passthrough_ = false;
    after_cr_ = terminator == '\r';
  }
}

void UsageChunkFilter::finish(std::string& out) {
  out.append(held_);
  held_.clear();
  data_.clear();
  line_.clear();
  passthrough_ = false;
}

}  // namespace tokentap
