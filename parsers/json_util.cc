#include "parsers/json_util.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "common/redact.h"
#include "common/text.h"

namespace tokentap::json_util {
namespace {

// Only the start of a provider message is kept (clean_message caps it far lower), so only the
// start is scanned for credentials.
constexpr size_t kMaxRedactScan = 1024;
// Provider messages mark what was cut in brackets; the access log and /v1/errors pin this form.
constexpr std::string_view kRedactedInMessage = "[REDACTED]";

}  // namespace

Json to_dom(const JsonNode& node) {
  switch (node.type()) {
    case JsonNode::Type::null:
      return nullptr;
    case JsonNode::Type::boolean:
      return node.boolean();
    case JsonNode::Type::number_unsigned:
      return node.unsigned_number();
    case JsonNode::Type::number_integer:
      return node.integer_number();
    case JsonNode::Type::number_float:
      return node.float_number();
    case JsonNode::Type::string:
      return std::string(node.string());
    case JsonNode::Type::array: {
      Json out = Json::array();
      auto& elements = out.get_ref<Json::array_t&>();
      elements.reserve(node.size());
      for (const JsonNode& element : node) elements.push_back(to_dom(element));
      return out;
    }
    case JsonNode::Type::object: {
      Json out = Json::object();
      auto& members = out.get_ref<Json::object_t&>();
      // A later duplicate replaces an earlier one, as in nlohmann.
      for (const JsonNode& m : node) members.insert_or_assign(std::string(m.key()), to_dom(m));
      return out;
    }
  }
  return nullptr;
}

namespace {

std::optional<uint64_t> count_of_float(double d) {
  if (std::isfinite(d) && d >= 0 && d < 9.2e18 && std::floor(d) == d) {
    return static_cast<uint64_t>(d);
  }
  return std::nullopt;
}

}  // namespace

Json parse(std::string_view text) {
  JsonDoc doc;
  const JsonNode* root = doc.parse(text);
  if (root == nullptr) return Json(Json::value_t::discarded);
  return to_dom(*root);
}

std::optional<uint64_t> as_count(const Json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer()) {
    const auto v = value.get<int64_t>();
    if (v >= 0) return static_cast<uint64_t>(v);
    return std::nullopt;
  }
  if (value.is_number_float()) return count_of_float(value.get<double>());
  return std::nullopt;
}

std::optional<uint64_t> as_count(const JsonNode& value) {
  switch (value.type()) {
    case JsonNode::Type::number_unsigned:
      return value.unsigned_number();
    case JsonNode::Type::number_integer:
      if (value.integer_number() >= 0) return static_cast<uint64_t>(value.integer_number());
      return std::nullopt;
    case JsonNode::Type::number_float:
      return count_of_float(value.float_number());
    default:
      return std::nullopt;
  }
}

std::optional<std::string> parse_string_literal(std::string_view raw) {
  if (raw.size() < 2 || raw.front() != '"') return std::nullopt;
  // The common case, no escapes, needs no parser.
  const std::string_view inner = raw.substr(1, raw.size() - 2);
  if (raw.back() == '"' && inner.find_first_of("\\\"") == std::string_view::npos) {
    bool plain = true;
    for (char c : inner) plain = plain && static_cast<unsigned char>(c) >= 0x20;
    if (plain) return std::string(inner);
  }
  Json v = parse(raw);
  if (!v.is_string()) return std::nullopt;
  return v.get<std::string>();
}

std::optional<bool> parse_bool_literal(std::string_view raw) {
  if (raw == "true") return true;
  if (raw == "false") return false;
  return std::nullopt;
}

std::string clean_label(std::string_view text, size_t max_bytes) {
  // The common case, printable ASCII that fits (model names, tiers, reasons), is a copy.
  if (text.size() <= max_bytes && std::all_of(text.begin(), text.end(), [](char ch) {
        const auto c = static_cast<unsigned char>(ch);
        return c >= 0x20 && c < 0x7F;
      })) {
    return std::string(text);
  }
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  size_t i = 0;
  while (i < text.size()) {
    const size_t len = utf8_sequence_length(text, i);
    if (len == 0) {
      if (out.size() + 1 > max_bytes) break;
      out.push_back('?');
      ++i;
      continue;
    }
    if (out.size() + len > max_bytes) break;
    if (len == 1) {
      const auto c = static_cast<unsigned char>(text[i]);
      out.push_back(c < 0x20 || c == 0x7F ? ' ' : text[i]);
    } else {
      out.append(text.substr(i, len));
    }
    i += len;
  }
  return out;
}

std::string clean_message(std::string_view text, size_t max_bytes) {
  return clean_label(scrub(text.substr(0, kMaxRedactScan), {}, kRedactedInMessage), max_bytes);
}

}  // namespace tokentap::json_util
