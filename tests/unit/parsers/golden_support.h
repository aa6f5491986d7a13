// Golden recordings under tests/golden/<provider>/: for each recording NAME,
//   NAME.expect.json   the sidecar: request, response status and headers, expected facts
//   NAME.request.json  the request body as sent (optional)
//   NAME.response.*    the response body bytes as received (before content encoding)
// and the replay machinery every golden test uses.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "parsers/content_decoder.h"
#include "parsers/llm_facts.h"
#include "parsers/llm_parser.h"

namespace tokentap::test {

struct TestHeader {
  std::string name;
  std::string value;
};

struct Recording {
  std::string name;  // "<provider dir>/<NAME>"
  std::optional<ApiProvider> route_provider;
  std::string method;
  std::string target;
  std::vector<TestHeader> request_headers;
  std::string request_body;
  int status = 0;
  std::vector<TestHeader> response_headers;
  std::string response_body;
  std::vector<ContentEncoding> encodings;  // variants to replay
  nlohmann::json expected_facts;
  // Optional: how the built-in price table prices the response (pricing_rule, nano_usd or
  // unpriced_reason; host: the upstream host, for OpenAI data residency).
  nlohmann::json expected_pricing;
};

// Every recording in tests/golden/<dir>, sorted by name. Throws on a malformed sidecar.
std::vector<Recording> load_recordings(const std::string& dir);

// The facts in a canonical JSON form that leaves out empty and default values.
nlohmann::json facts_to_json(const LlmFacts& facts);

struct ReplayResult {
  nlohmann::json facts;
  LlmFacts raw_facts;
  size_t first_content_feeds = 0;      // feed() calls that returned first_content
  size_t first_content_at = SIZE_MAX;  // index of the first such call
  size_t content_feeds = 0;
};

// Replays `rec` with its body encoded as `encoding`, fed in pieces that end at `cuts` (offsets
// into the encoded body, ascending; the rest goes in a last feed).
ReplayResult replay(const Recording& rec, ContentEncoding encoding, const std::string& body,
                    const std::vector<size_t>& cuts);

}  // namespace tokentap::test
