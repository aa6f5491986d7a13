// Helpers shared by the provider parsers: accessors that read a value of the wrong type as
// absent instead of throwing, and the cleaning applied to every provider string we keep.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "parsers/json_doc.h"

namespace tokentap::json_util {

using Json = nlohmann::json;

// Parses text without throwing; the result is_discarded() when it is not valid JSON or nests
// deeper than 256 levels (whose DOM would cost far more memory than the text). For code that
// needs a DOM to keep or serialise (content capture); the parsers read a JsonDoc.
Json parse(std::string_view text);
Json to_dom(const JsonNode& node);  // the DOM parse() builds for the same text
// nlohmann's compact serialisation of the node (object keys sorted, duplicates dropped).
inline std::string dump(const JsonNode& node) { return to_dom(node).dump(); }

// Accessors for both a nlohmann DOM and a JsonDoc node, reading a value of the wrong type as
// absent instead of throwing.
inline const Json* find_member(const Json& object, std::string_view key) {
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}
inline const JsonNode* find_member(const JsonNode& object, std::string_view key) {
  return object.find(key);
}
inline std::string_view as_string(const Json& value) {
  return value.is_string() ? std::string_view(value.get_ref<const std::string&>())
                           : std::string_view();
}
inline std::string_view as_string(const JsonNode& value) { return value.string(); }
// A non-negative integer (an integral float is accepted too); nullopt otherwise.
std::optional<uint64_t> as_count(const Json& value);
std::optional<uint64_t> as_count(const JsonNode& value);
inline bool is_true(const Json& value) { return value.is_boolean() && value.get<bool>(); }
inline bool is_true(const JsonNode& value) { return value.is_boolean() && value.boolean(); }

// The member `key` of `object`, or nullptr when `object` is not an object, the key is absent,
// or its value is null.
template <class J>
const J* member(const J& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  const J* v = find_member(object, key);
  return v != nullptr && !v->is_null() ? v : nullptr;
}
template <class J>
const J* object_member(const J& object, std::string_view key) {  // only if an object
  const J* v = member(object, key);
  return v != nullptr && v->is_object() ? v : nullptr;
}
template <class J>
const J* array_member(const J& object, std::string_view key) {  // only if an array
  const J* v = member(object, key);
  return v != nullptr && v->is_array() ? v : nullptr;
}
template <class J>
std::string_view string_member(const J& object, std::string_view key) {
  const J* v = member(object, key);
  return v != nullptr ? as_string(*v) : std::string_view();
}
template <class J>
std::optional<uint64_t> count_member(const J& object, std::string_view key) {
  const J* v = member(object, key);
  return v != nullptr ? as_count(*v) : std::nullopt;
}
template <class J>
bool true_member(const J& object, std::string_view key) {  // present and exactly true
  const J* v = member(object, key);
  return v != nullptr && is_true(*v);
}

// Decodes the raw text of a JSON string literal (quotes included); nullopt if it is not one.
std::optional<std::string> parse_string_literal(std::string_view raw);
// "true" / "false" raw literal; nullopt otherwise.
std::optional<bool> parse_bool_literal(std::string_view raw);

// A short identifier-like value fit for a label or log field: valid UTF-8 (invalid bytes
// become '?'), control characters replaced by ' ', cut at a character boundary at max_bytes.
std::string clean_label(std::string_view text, size_t max_bytes = 128);
// Free text from a provider (error messages): cleaned like a label, and anything scrub() in
// common/redact.h takes for a credential ("sk-...", "AIza...", "Bearer ...") replaced by
// "[REDACTED]".
std::string clean_message(std::string_view text, size_t max_bytes = 256);

}  // namespace tokentap::json_util
