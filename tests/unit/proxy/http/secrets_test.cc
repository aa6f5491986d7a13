#include "proxy/http/secrets.h"

#include <catch2/catch.hpp>

namespace tokentap {
namespace {

constexpr const char* kGeminiKey = "AIzaSyCANARY_notAkey_0123456789_canary";

TEST_CASE("is_secret_header knows credential headers in any case", "[secrets]") {
  for (const char* name : {"authorization", "Authorization", "PROXY-AUTHORIZATION", "x-api-key",
                           "X-Api-Key", "api-key", "x-goog-api-key", "Cookie", "set-cookie"}) {
    INFO(name);
    CHECK(is_secret_header(name));
  }
  for (const char* name : {"content-type", "x-request-id", "x-api-keys", "authorizatio", ""}) {
    INFO(name);
    CHECK_FALSE(is_secret_header(name));
  }
}

TEST_CASE("is_secret_query_param matches exact names after decoding", "[secrets]") {
  CHECK(is_secret_query_param("key"));
  CHECK(is_secret_query_param("KEY"));
  CHECK(is_secret_query_param("k%65y"));
  CHECK(is_secret_query_param("api_key"));
  CHECK(is_secret_query_param("api-key"));
  CHECK(is_secret_query_param("access_token"));
  CHECK_FALSE(is_secret_query_param("monkey"));
  CHECK_FALSE(is_secret_query_param("keys"));
  CHECK_FALSE(is_secret_query_param("alt"));
}

TEST_CASE("extract_api_key strips the Authorization scheme", "[secrets]") {
  CHECK(extract_api_key({{"Authorization", "Bearer sk-test-123"}}, "/v1/chat") == "sk-test-123");
  CHECK(extract_api_key({{"authorization", "bearer   sk-test-123  "}}, "/") == "sk-test-123");
  CHECK(extract_api_key({{"Authorization", "Basic dXNlcjpwYXNz"}}, "/") == "dXNlcjpwYXNz");
  CHECK(extract_api_key({{"Authorization", "sk-raw"}}, "/") == "sk-raw");
}

TEST_CASE("extract_api_key precedence: authorization, x-api-key, api-key, goog, query",
          "[secrets]") {
  HeaderList all = {{"x-goog-api-key", "goog"},
                    {"api-key", "azure"},
                    {"X-API-Key", "anthropic"},
                    {"Authorization", "Bearer openai"}};
  const char* target = "/v1/x?key=query";
  CHECK(extract_api_key(all, target) == "openai");
  all.pop_back();
  CHECK(extract_api_key(all, target) == "anthropic");
  all.pop_back();
  CHECK(extract_api_key(all, target) == "azure");
  all.pop_back();
  CHECK(extract_api_key(all, target) == "goog");
  all.pop_back();
  CHECK(extract_api_key(all, target) == "query");
  CHECK(extract_api_key(all, "/v1/x") == "");
  CHECK(extract_api_key(all, "/v1/x?alt=sse&key=") == "");
}

TEST_CASE("extract_api_key skips empty header values", "[secrets]") {
  CHECK(extract_api_key({{"Authorization", "Bearer "}, {"x-api-key", "k2"}}, "/") == "k2");
  CHECK(extract_api_key({{"x-api-key", "  "}}, "/?key=k3") == "k3");
}

TEST_CASE("extract_api_key decodes the key query parameter", "[secrets]") {
  CHECK(extract_api_key({}, "/v1beta/models/gemini:streamGenerateContent?alt=sse&key=AIza%2Dabc") ==
        "AIza-abc");
  CHECK(extract_api_key({}, "/x?monkey=no&api_key=yes") == "yes");
}

TEST_CASE("key_id is the first 8 hex digits of SHA-256", "[secrets]") {
  CHECK(key_id("abc") == "ba7816bf");
  CHECK(key_id("sk-test-123") == "e0dbaa0c");
  CHECK(key_id(kGeminiKey) == "1e3e0e33");
  CHECK(key_id("") == "");
  // The last key's id is reused: alternating and repeated keys still get their own ids.
  for (int i = 0; i < 3; ++i) {
    CHECK(key_id("abc") == "ba7816bf");
    CHECK(key_id("abc") == "ba7816bf");
    CHECK(key_id("sk-test-123") == "e0dbaa0c");
    CHECK(key_id("") == "");
  }
  CHECK(key_id("ab") == sha256_hex("ab", 8));
  CHECK(key_id("abcd") == sha256_hex("abcd", 8));
}

TEST_CASE("redact_target replaces secret query values only", "[secrets]") {
  CHECK(redact_target("/v1beta/models/gemini:generateContent?key=AIzaXYZ&alt=sse") ==
        "/v1beta/models/gemini:generateContent?key=REDACTED&alt=sse");
  CHECK(redact_target("/x?alt=sse&key=abc") == "/x?alt=sse&key=REDACTED");
  CHECK(redact_target("/x?key=a&key=b") == "/x?key=REDACTED&key=REDACTED");
  CHECK(redact_target("/x?KEY=a&k%65y=b") == "/x?KEY=REDACTED&k%65y=REDACTED");
  CHECK(redact_target("/x?access_token=t&api_key=u&api-key=v&n=1") ==
        "/x?access_token=REDACTED&api_key=REDACTED&api-key=REDACTED&n=1");
  CHECK(redact_target("/x?a=1&&key=s&") == "/x?a=1&&key=REDACTED&");
  CHECK(redact_target("/x?key=s#frag") == "/x?key=REDACTED#frag");
}

TEST_CASE("redact_target leaves everything else byte-identical", "[secrets]") {
  for (const char* target : {"/v1/chat/completions", "/x?monkey=1&keys=2", "/x?key=", "/x?key",
                             "/x?", "/x?a=%20b+c", "", "*", "/key=abc"}) {
    INFO(target);
    CHECK(redact_target(target) == target);
  }
}

TEST_CASE("scrub replaces known secrets, longest first", "[secrets]") {
  CHECK(scrub("upstream said: bad key abc123 (abc123)", {"abc123"}) ==
        "upstream said: bad key REDACTED (REDACTED)");
  CHECK(scrub("xabcdefx", {"abc", "abcdef"}) == "xREDACTEDx");
  CHECK(scrub("nothing here", {"", "zzz"}) == "nothing here");
  CHECK(scrub("", {"a"}) == "");
}

TEST_CASE("scrub catches provider key patterns without being told", "[secrets]") {
  CHECK(scrub("Incorrect API key provided: sk-proj-CANARY-not-a-real-key-0123456789.", {}) ==
        "Incorrect API key provided: REDACTED.");
  CHECK(scrub("x-api-key sk-ant-api03-CANARY_not_a_real_key_0000-cc invalid", {}) ==
        "x-api-key REDACTED invalid");
  CHECK(scrub(std::string("key=") + kGeminiKey + "&alt=sse", {}) == "key=REDACTED&alt=sse");
  CHECK(scrub("Authorization: Bearer abcdefghijkl.mnop", {}) == "Authorization: Bearer REDACTED");
  CHECK(scrub("authorization: basic dXNlcjpwYXNzd29yZA==", {}) == "authorization: basic REDACTED");
}

TEST_CASE("scrub leaves look-alikes that are not keys", "[secrets]") {
  for (const char* text :
       {"task-abcdefghijklmnopqrstuvwxyz", "sk-short", "AIzaShort", "Bearer short",
        "unbearer abcdefghijklmnop", "a normal error message: model not found"}) {
    INFO(text);
    CHECK(scrub(text, {}) == text);
  }
}

TEST_CASE("percent_decode", "[secrets]") {
  CHECK(percent_decode("%41%2b+b", true) == "A+ b");
  CHECK(percent_decode("%41%2b+b", false) == "A++b");
  CHECK(percent_decode("%zz%4", true) == "%zz%4");
  CHECK(percent_decode("100%", true) == "100%");
  CHECK(percent_decode("", true) == "");
}

}  // namespace
}  // namespace tokentap
