// add_stream_usage_option (parsers/stream_options.h): a rewritten body is the original with
// exactly `,"stream_options":{"include_usage":true}` inserted after its last member and before
// the closing brace; it is only produced for a JSON object whose "stream" is true and
// that has no "stream_options" (checked with nlohmann::json; bodies that are not valid JSON
// are only held to the insertion rule); and for such an object it is always produced. The rewritten
// body parses as the original object plus that one member.
//
// Input: the request body.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "parsers/stream_options.h"
#include "tests/support/fuzz_support.h"

namespace {

constexpr std::string_view kInsert = R"(,"stream_options":{"include_usage":true})";

bool json_space_then_brace(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  if (i >= s.size() || s[i] != '}') return false;
  ++i;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return i == s.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  using tokentap::fuzz::printable;
  const std::string_view body(reinterpret_cast<const char*>(bytes), size);
  const std::optional<std::string> rewritten = tokentap::add_stream_usage_option(body);

  // nlohmann::json stops at a NUL byte as if the text ended there; JSON never contains one.
  const nlohmann::json parsed = body.find('\0') == std::string_view::npos
                                    ? nlohmann::json::parse(body, nullptr, false)
                                    : nlohmann::json(nlohmann::json::value_t::discarded);
  const bool wants_option = parsed.is_object() && parsed.contains("stream") &&
                            parsed["stream"] == true && !parsed.contains("stream_options");
  if (!rewritten) {
    FUZZ_CHECK(!wants_option,
               "a streaming object without stream_options was left alone: " + printable(body));
    return 0;
  }
  FUZZ_CHECK(rewritten->size() == body.size() + kInsert.size(),
             "the rewrite is not a pure insertion: " + printable(*rewritten));
  // The body itself may hold the inserted text: look for the occurrence that explains it.
  size_t at = std::string::npos;
  for (size_t i = rewritten->find(kInsert); i != std::string::npos;
       i = rewritten->find(kInsert, i + 1)) {
    if (rewritten->compare(0, i, body.substr(0, i)) == 0 &&
        rewritten->compare(i + kInsert.size(), std::string::npos, body.substr(i)) == 0) {
      at = i;
      break;
    }
  }
  FUZZ_CHECK(at != std::string::npos,
             "the rewrite is not the body plus the option: " + printable(*rewritten));
  FUZZ_CHECK(json_space_then_brace(body.substr(at)),
             "not inserted right before the closing brace: " + printable(*rewritten));
  // The splitter behind it checks structure, not the grammar of values: a body that is not
  // valid JSON may be rewritten (the provider rejects it either way), a valid one only when
  // it asks for a stream without options.
  if (parsed.is_discarded()) return 0;
  FUZZ_CHECK(wants_option,
             "rewrote a JSON body that is not a streaming object without "
             "stream_options: " +
                 printable(body));
  nlohmann::json reparsed = nlohmann::json::parse(*rewritten, nullptr, false);
  FUZZ_CHECK(reparsed.is_object(), "the rewritten body is not a JSON object");
  FUZZ_CHECK(reparsed["stream_options"] == nlohmann::json({{"include_usage", true}}),
             "stream_options did not parse as inserted");
  reparsed.erase("stream_options");
  FUZZ_CHECK(reparsed == parsed, "the other members changed meaning");
  return 0;
}
