// Helpers shared by the provider parsers: accessors that read a value of the wrong type as
// absent instead of throwing, and the cleaning applied to every provider string we keep.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace tokentap::json_util {

using Json = nlohmann::json;

// Parses text without throwing; the result is_discarded() when it is not valid JSON or nests
// deeper than 256 levels (whose DOM would cost far more memory than the text).
Json parse(std::string_view text);

// The member `key` of `object`, or nullptr when `object` is not an object, the key is absent,
// or its value is null.
const Json* member(const Json& object, std::string_view key);
const Json* object_member(const Json& object, std::string_view key);  // only if an object
const Json* array_member(const Json& object, std::string_view key);   // only if an array

std::string_view as_string(const Json& value);  // "" unless a string
// A non-negative integer (an integral float is accepted too); nullopt otherwise.
std::optional<uint64_t> as_count(const Json& value);

std::string_view string_member(const Json& object, std::string_view key);
std::optional<uint64_t> count_member(const Json& object, std::string_view key);
bool true_member(const Json& object, std::string_view key);  // present and exactly true

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
