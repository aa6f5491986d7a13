#include "common/redact.h"

#include <catch2/catch.hpp>
#include <string>

namespace tokentap {
namespace {

constexpr std::string_view kBracketed = "[REDACTED]";

std::string scrub_text(std::string_view text) { return scrub(text, {}); }

TEST_CASE("scrub replaces known secrets anywhere, longest first", "[redact]") {
  CHECK(scrub("bad key abc123 (abc123)", {"abc123"}) == "bad key REDACTED (REDACTED)");
  CHECK(scrub("xabcdefx", {"abc", "abcdef"}) == "xREDACTEDx");
  CHECK(scrub("nothing here", {"", "zzz"}) == "nothing here");
  CHECK(scrub("", {"a"}) == "");
  // A key with no fixed prefix (Azure OpenAI: 32 hex digits) is caught only when known.
  const std::string azure = "0123456789abcdef0123456789abcdef";
  CHECK(scrub("api-key " + azure + " is invalid", {azure}) == "api-key REDACTED is invalid");
  CHECK(scrub_text("api-key " + azure + " is invalid") == "api-key " + azure + " is invalid");
}

TEST_CASE("scrub thresholds: sk- + 8, AIza + 20, credentials of 8", "[redact]") {
  CHECK(scrub_text("k=sk-abcdefgh;") == "k=REDACTED;");
  CHECK(scrub_text("k=sk-abcdefg;") == "k=sk-abcdefg;");
  CHECK(scrub_text("k=AIza01234567890123456789;") == "k=REDACTED;");
  CHECK(scrub_text("k=AIza0123456789012345678;") == "k=AIza0123456789012345678;");
  CHECK(scrub_text("Bearer abcdefg1") == "Bearer REDACTED");
  CHECK(scrub_text("Bearer abcdefg") == "Bearer abcdefg");
  CHECK(scrub_text("BASIC dXNlcjpw") == "BASIC REDACTED");
}

// Each of these came out differently from the two scanners that existed before (the diagnostic
// scrubber in proxy/http/secrets and the provider-message one in parsers/json_util); the
// comment says which one let the secret through.
TEST_CASE("scrub catches what either earlier scanner missed", "[redact]") {
  // A partial key in a provider message (diagnostic scrubber: sk- needed 20 after the prefix).
  CHECK(scrub("Incorrect API key provided: sk-proj-CANARY123. See docs.", {}, kBracketed) ==
        "Incorrect API key provided: [REDACTED]. See docs.");
  // A Google key of 24 after AIza (diagnostic scrubber: needed 30).
  CHECK(scrub_text("key AIzaSyCANARY0123456789canary is invalid") == "key REDACTED is invalid");
  // OpenAI's own masked echo (diagnostic scrubber: stopped at the first '*', kept the key).
  CHECK(scrub_text("provided: sk-proj-******************************h3Qa. You can") ==
        "provided: REDACTED. You can");
  CHECK(scrub_text("Bearer sk-proj-abc*************wxyz") == "Bearer REDACTED");
  // Basic credentials (provider-message scanner: knew only Bearer).
  CHECK(scrub_text("authorization: basic dXNlcjpwYXNzd29yZA==") == "authorization: basic REDACTED");
  // More than one space after the scheme (provider-message scanner: exactly one).
  CHECK(scrub_text("Authorization: Bearer   abcdefghijkl") == "Authorization: Bearer   REDACTED");
  // A key glued to an identifier by '_' or '-' (provider-message scanner: not a word start).
  CHECK(scrub_text("OPENAI_API_KEY_sk-abcdefghijklmnop") == "OPENAI_API_KEY_REDACTED");
  CHECK(scrub_text("x-sk-ant-api03-abcdefgh") == "x-REDACTED");
}

TEST_CASE("scrub keeps the scheme in front of a credential", "[redact]") {
  // The provider-message scanner used to blank the scheme too; now both forms keep it.
  CHECK(scrub("got header Authorization: Bearer abcdefghijkl.mnop", {}, kBracketed) ==
        "got header Authorization: Bearer [REDACTED]");
  CHECK(scrub_text("Authorization: Bearer abcdefghijkl.mnop") == "Authorization: Bearer REDACTED");
}

TEST_CASE("scrub leaves ordinary text alone", "[redact]") {
  for (const char* text : {
           "model gpt-4o-mini not found",
           "claude-sonnet-4-5-20250929 is overloaded",
           "gemini-2.5-flash-preview-05-20",
           "deepseek-reasoner",
           "request req_e4da3b7fbbce2345d7772b0674a318d5 failed",
           "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
           "msg_01XFDUDYJgAACzvnptvVoYEL",
           "trace 4bf92f3577b34da6a3ce929d0e0e4736",
           "task-sk-12 and disk-space are fine",
           "task-abcdefghijklmnopqrstuvwxyz",
           "risk-adjusted-abcdefghijklmnop",
           "xsk-abcdefghijklmnop",
           "sk-short",
           "AIzaShort",
           "Bearer short",
           "Use Bearer auth",
           "Basic tier",
           "unbearer abcdefghijklmnop",
           "a normal error message: model not found",
       }) {
    INFO(text);
    CHECK(scrub_text(text) == text);
  }
}

TEST_CASE("scrub writes the marker it is given", "[redact]") {
  CHECK(scrub("sk-abcdefghij and k", {"k"}, kBracketed) == "[REDACTED] and [REDACTED]");
  CHECK(scrub("Basic dXNlcjpwYXNz", {}, "***") == "Basic ***");
}

}  // namespace
}  // namespace tokentap
