#include "proxy/tracing/content_attributes.h"

#include "proxy/tracing/span.h"

namespace tokentap {
namespace {

using nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }
size_t dumped_size(const json& j) { return dump(j).size(); }

// Bytes `c` takes inside a JSON string as nlohmann::json writes it (UTF-8 kept as is).
size_t escaped_size(unsigned char c) {
  if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') {
    return 2;
  }
  return c < 0x20 ? 6 : 1;
}

// The longest prefix of `s` ending at a UTF-8 boundary that takes at most `room` bytes escaped.
size_t escaped_prefix(std::string_view s, size_t room) {
  size_t n = 0;
  size_t used = 0;
  while (n < s.size() && used + escaped_size(static_cast<unsigned char>(s[n])) <= room) {
    used += escaped_size(static_cast<unsigned char>(s[n]));
    ++n;
  }
  while (n > 0 && n < s.size() && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return n;
}

const char* text_key(const json& part) {
  for (const char* key : {"content", "arguments", "response"}) {
    if (part.contains(key) && part[key].is_string()) return key;
  }
  return nullptr;
}

bool shrink(json& item, size_t room);

// A part: its text cut to fit, with the mark.
bool shrink_part(json& part, size_t room) {
  const char* key = text_key(part);
  if (key == nullptr) return dumped_size(part) <= room;
  std::string text = part[key].get<std::string>();
  part[key] = "";
  const size_t base = dumped_size(part);
  if (base + kTruncatedMark.size() > room) return false;
  text.resize(escaped_prefix(text, room - base - kTruncatedMark.size()));
  text += kTruncatedMark;
  part[key] = std::move(text);
  return true;
}

// A message: as many of its parts as fit.
bool shrink(json& item, size_t room) {
  if (!item.is_object() || !item.contains("parts")) return shrink_part(item, room);
  json parts = std::move(item["parts"]);
  item["parts"] = json::array();
  const size_t base = dumped_size(item);  // with "[]"
  if (base > room) return false;
  fit_json_array(parts, room - base + 2);
  if (parts.empty()) return false;
  item["parts"] = std::move(parts);
  return true;
}

std::string scrubbed(const PiiScrubber& scrubber, std::string_view text, size_t max_bytes,
                     PiiCounts& counts) {
  return text.empty() ? std::string() : scrubber.scrub(text, counts, max_bytes);
}

json part_json(const ContentPart& p, const PiiScrubber& scrubber, size_t max_bytes,
               PiiCounts& counts) {
  json part = {{"type", p.type}};
  if (!p.id.empty()) part["id"] = scrubbed(scrubber, p.id, max_bytes, counts);
  if (!p.name.empty()) part["name"] = scrubbed(scrubber, p.name, max_bytes, counts);
  std::string text = scrubbed(scrubber, p.content, max_bytes, counts);
  if (p.type == "text" || p.type == "reasoning") {
    part["content"] = std::move(text);
  } else if (p.type == "tool_call") {
    part["arguments"] = std::move(text);
  } else if (p.type == "tool_call_response") {
    part["response"] = std::move(text);
  }
  return part;
}

json messages_json(const std::vector<ContentMessage>& messages, std::string_view finish_reason,
                   bool output, const PiiScrubber& scrubber, size_t max_bytes, PiiCounts& counts) {
  json out = json::array();
  for (const ContentMessage& m : messages) {
    if (output && m.parts.empty()) continue;  // a choice that produced nothing
    json parts = json::array();
    for (const ContentPart& p : m.parts) parts.push_back(part_json(p, scrubber, max_bytes, counts));
    json message = {{"role", m.role}, {"parts", std::move(parts)}};
    if (output) {
      message["finish_reason"] = m.finish_reason.empty() ? finish_reason : m.finish_reason;
    }
    out.push_back(std::move(message));
  }
  return out;
}

// Adds `key` as the JSON text of `value` cut to `room`; returns its size (0 when left out).
size_t add_bounded(std::string_view key, json value, size_t room, bool& truncated,
                   json& attributes) {
  if (value.empty()) return 0;
  truncated = fit_json_array(value, room) || truncated;
  std::string text = dump(value);
  if (value.empty() || text.size() > room) {
    truncated = true;
    return 0;
  }
  attributes.push_back(otlp_attr(key, text));
  return text.size();
}

}  // namespace

bool fit_json_array(json& items, size_t room) {
  size_t used = 2;  // []
  for (size_t i = 0; i < items.size(); ++i) {
    const size_t sep = i > 0 ? 1 : 0;
    const size_t n = dumped_size(items[i]);
    if (used + sep + n <= room) {
      used += sep + n;
      continue;
    }
    const bool keep = used + sep < room && shrink(items[i], room - used - sep);
    items.erase(items.begin() + static_cast<std::ptrdiff_t>(keep ? i + 1 : i), items.end());
    return true;
  }
  return false;
}

void add_content_attributes(const CapturedContent& content, std::string_view finish_reason,
                            const PiiScrubber& scrubber, size_t max_bytes, PiiCounts& counts,
                            json& attributes) {
  bool truncated = content.input_truncated || content.output_truncated;
  json system = json::array();
  for (const ContentPart& p : content.system) {
    system.push_back(part_json(p, scrubber, max_bytes, counts));
  }
  const size_t system_size = add_bounded("gen_ai.system_instructions", std::move(system), max_bytes,
                                         truncated, attributes);
  add_bounded("gen_ai.input.messages",
              messages_json(content.input, {}, false, scrubber, max_bytes, counts),
              max_bytes - system_size, truncated, attributes);
  add_bounded("gen_ai.output.messages",
              messages_json(content.output, finish_reason, true, scrubber, max_bytes, counts),
              max_bytes, truncated, attributes);
  if (truncated) attributes.push_back(otlp_attr_bool("tokentap.content.truncated", true));
}

}  // namespace tokentap
