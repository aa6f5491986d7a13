// Replays every golden recording under tests/golden/ through LlmParser: whole, split in two at
// every byte offset, and one byte at a time, identity-encoded and compressed, and requires the
// same facts every time, equal to the recording's sidecar.
#include <catch2/catch.hpp>
#include <numeric>

#include "tests/unit/parsers/golden_support.h"
#include "tests/unit/parsers/test_codecs.h"

namespace tokentap::test {
namespace {

// Whether the first content-bearing event is reported by the first of two feeds split at `k`,
// given the feed index at which one-byte-at-a-time feeding reported it.
size_t expected_first_feed(size_t first_byte, size_t k) { return first_byte < k ? 0 : 1; }

void check_recording(const Recording& rec) {
  for (ContentEncoding encoding : rec.encodings) {
    const std::string body = encode(encoding, rec.response_body);
    INFO(rec.name << " [" << content_encoding_name(encoding) << ", " << body.size() << " bytes]");

    const ReplayResult whole = replay(rec, encoding, body, {});
    INFO("expected: " << rec.expected_facts.dump(2) << "\nactual: " << whole.facts.dump(2));
    REQUIRE(whole.facts == rec.expected_facts);
    const bool has_content = rec.expected_facts.at("content_events").get<int>() > 0;
    CHECK(whole.first_content_feeds == (has_content ? 1u : 0u));

    std::vector<size_t> every_byte(body.empty() ? 0 : body.size() - 1);
    std::iota(every_byte.begin(), every_byte.end(), size_t{1});
    const ReplayResult bytes = replay(rec, encoding, body, every_byte);
    REQUIRE(bytes.facts == whole.facts);
    REQUIRE(bytes.first_content_feeds == whole.first_content_feeds);

    for (size_t k = 0; k <= body.size(); ++k) {
      const ReplayResult split = replay(rec, encoding, body, {k});
      if (split.facts != whole.facts) {
        FAIL_CHECK("split at " << k << " gives " << split.facts.dump(2));
        return;
      }
      if (split.first_content_feeds != whole.first_content_feeds ||
          (has_content &&
           split.first_content_at != expected_first_feed(bytes.first_content_at, k))) {
        FAIL_CHECK("split at " << k << ": first content reported in feed " << split.first_content_at
                               << ", byte by byte at " << bytes.first_content_at);
        return;
      }
    }
  }
}

// Replays the recordings of `dir` whose position modulo `shards` is `shard`, so a large
// directory can be spread over several test cases that ctest runs in parallel.
void check_directory(const std::string& dir, size_t shard = 0, size_t shards = 1) {
  const std::vector<Recording> recordings = load_recordings(dir);
  REQUIRE(recordings.size() >= shards);
  for (size_t i = shard; i < recordings.size(); i += shards) check_recording(recordings[i]);
}

TEST_CASE("golden recordings: openai 1/3", "[golden]") { check_directory("openai", 0, 3); }
TEST_CASE("golden recordings: openai 2/3", "[golden]") { check_directory("openai", 1, 3); }
TEST_CASE("golden recordings: openai 3/3", "[golden]") { check_directory("openai", 2, 3); }
TEST_CASE("golden recordings: azure_openai", "[golden]") { check_directory("azure_openai"); }
TEST_CASE("golden recordings: openai_compatible", "[golden]") {
  check_directory("openai_compatible");
}
TEST_CASE("golden recordings: anthropic", "[golden]") { check_directory("anthropic"); }
TEST_CASE("golden recordings: gemini", "[golden]") { check_directory("gemini"); }

}  // namespace
}  // namespace tokentap::test
