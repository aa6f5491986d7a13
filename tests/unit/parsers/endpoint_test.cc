// Endpoint classification, response headers, error classification and string cleaning.
#include "parsers/endpoint.h"

#include <catch2/catch.hpp>

#include "parsers/json_util.h"
#include "parsers/response_headers.h"

namespace tokentap {
namespace {

TEST_CASE("endpoints: operation, wire format and model from the path", "[endpoint]") {
  struct Case {
    std::optional<ApiProvider> configured;
    const char* target;
    ApiProvider provider;
    WireFormat format;
    Operation operation;
    const char* path_model;
    bool path_stream;
    bool sse;
  };
  const Case cases[] = {
      {std::nullopt, "/v1/chat/completions", ApiProvider::openai, WireFormat::openai,
       Operation::chat_completions, "", false, false},
      {std::nullopt, "/v1/completions", ApiProvider::openai, WireFormat::openai,
       Operation::completions, "", false, false},
      {std::nullopt, "/v1/responses", ApiProvider::openai, WireFormat::openai, Operation::responses,
       "", false, false},
      {std::nullopt, "/v1/embeddings/", ApiProvider::openai, WireFormat::openai,
       Operation::embeddings, "", false, false},
      {std::nullopt, "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21",
       ApiProvider::azure_openai, WireFormat::openai, Operation::chat_completions, "gpt4o-prod",
       false, false},
      {std::nullopt, "/openai/v1/responses?api-version=preview", ApiProvider::azure_openai,
       WireFormat::openai, Operation::responses, "", false, false},
      {std::nullopt, "/v1/messages", ApiProvider::anthropic, WireFormat::anthropic,
       Operation::messages, "", false, false},
      {std::nullopt, "/v1/messages/count_tokens", ApiProvider::anthropic, WireFormat::anthropic,
       Operation::count_tokens, "", false, false},
      {std::nullopt, "/v1/messages/batches", ApiProvider::openai, WireFormat::openai,
       Operation::other, "", false, false},
      {std::nullopt, "/v1beta/models/gemini-2.5-flash:generateContent?key=REDACTED",
       ApiProvider::gemini, WireFormat::gemini, Operation::generate_content, "gemini-2.5-flash",
       false, false},
      {std::nullopt, "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
       ApiProvider::gemini, WireFormat::gemini, Operation::generate_content, "gemini-2.0-flash",
       true, true},
      {std::nullopt, "/v1beta/models/gemini-2.0-flash:streamGenerateContent", ApiProvider::gemini,
       WireFormat::gemini, Operation::generate_content, "gemini-2.0-flash", true, false},
      {std::nullopt,
       "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-1.5-pro:"
       "streamGenerateContent?foo=1&alt=sse",
       ApiProvider::gemini, WireFormat::gemini, Operation::generate_content, "gemini-1.5-pro", true,
       true},
      {std::nullopt, "/v1beta/models/text-embedding-004:batchEmbedContents", ApiProvider::gemini,
       WireFormat::gemini, Operation::embed_content, "text-embedding-004", false, false},
      {std::nullopt, "/v1beta/models/gemini-2.0-flash:countTokens", ApiProvider::gemini,
       WireFormat::gemini, Operation::count_tokens, "gemini-2.0-flash", false, false},
      // Anthropic's and Gemini's OpenAI-compatible endpoints: provider label kept.
      {ApiProvider::anthropic, "/v1/chat/completions", ApiProvider::anthropic, WireFormat::openai,
       Operation::chat_completions, "", false, false},
      {ApiProvider::gemini, "/v1beta/openai/chat/completions", ApiProvider::gemini,
       WireFormat::openai, Operation::chat_completions, "", false, false},
      {ApiProvider::openai_compatible, "/v1/chat/completions", ApiProvider::openai_compatible,
       WireFormat::openai, Operation::chat_completions, "", false, false},
      // Unknown endpoints read bodies in the configured provider's format.
      {ApiProvider::anthropic, "/v1/models", ApiProvider::anthropic, WireFormat::anthropic,
       Operation::other, "", false, false},
      {ApiProvider::gemini, "/v1beta/files", ApiProvider::gemini, WireFormat::gemini,
       Operation::other, "", false, false},
  };
  for (const Case& c : cases) {
    INFO(c.target);
    const Endpoint e = classify_endpoint(c.configured, "POST", c.target);
    CHECK(e.provider == c.provider);
    CHECK(e.format == c.format);
    CHECK(e.operation == c.operation);
    CHECK(e.path_model == c.path_model);
    CHECK(e.path_stream == c.path_stream);
    CHECK(e.sse == c.sse);
  }
  CHECK(classify_endpoint(std::nullopt, "GET", "/v1/responses/resp_1").operation ==
        Operation::other);
  CHECK(classify_endpoint(std::nullopt, "GET", "/v1/chat/completions").operation ==
        Operation::other);
}

TEST_CASE("response headers: request id, rate limits and retry-after", "[headers]") {
  SECTION("request id precedence does not depend on header order") {
    for (bool reversed : {false, true}) {
      LlmFacts facts;
      ResponseHeaderReader reader;
      std::vector<std::pair<std::string, std::string>> headers = {
          {"apim-request-id", "apim"}, {"X-Request-ID", " req_1 "}, {"request-id", "req_2"}};
      if (reversed) std::reverse(headers.begin(), headers.end());
      for (const auto& [n, v] : headers) reader.read(n, v, facts);
      CHECK(facts.upstream_request_id == "req_1");
    }
  }
  SECTION("retry-after-ms beats retry-after") {
    LlmFacts facts;
    ResponseHeaderReader reader;
    reader.read("retry-after-ms", "1500.4", facts);
    reader.read("Retry-After", "20", facts);
    CHECK(facts.retry_after_ms == 1500);
    LlmFacts other;
    ResponseHeaderReader r2;
    r2.read("retry-after", "2.5", other);
    CHECK(other.retry_after_ms == 2500);
    r2.read("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT", other);
    CHECK(other.retry_after_ms == 2500);
  }
  SECTION("malformed numbers are ignored") {
    LlmFacts facts;
    ResponseHeaderReader reader;
    reader.read("x-ratelimit-remaining-tokens", "12k", facts);
    reader.read("x-ratelimit-limit-tokens", "", facts);
    reader.read("anthropic-ratelimit-output-tokens-remaining", "-3", facts);
    reader.read("anthropic-ratelimit-output-tokens-limit", "8000", facts);
    CHECK(facts.rate_limit(RateLimitResource::tokens).remaining == -1);
    CHECK(facts.rate_limit(RateLimitResource::tokens).limit == -1);
    CHECK(facts.rate_limit(RateLimitResource::output_tokens).remaining == -1);
    CHECK(facts.rate_limit(RateLimitResource::output_tokens).limit == 8000);
  }
  SECTION("reset durations") {
    CHECK(parse_reset_duration("20ms") == 20);
    CHECK(parse_reset_duration("1s") == 1000);
    CHECK(parse_reset_duration("6m0s") == 360'000);
    CHECK(parse_reset_duration("1h2m3.5s") == 3'723'500);
    CHECK(parse_reset_duration("0.5s") == 500);
    CHECK_FALSE(parse_reset_duration("").has_value());
    CHECK_FALSE(parse_reset_duration("5").has_value());
    CHECK_FALSE(parse_reset_duration("2025-06-10T12:00:00Z").has_value());
  }
}

TEST_CASE("provider errors map to error_type values", "[errors]") {
  auto classify = [](int status, std::string type, std::string code, std::string message) {
    return classify_provider_error(status, ProviderError{status, type, code, message});
  };
  CHECK(classify(200, "", "", "") == ErrorClass::none);
  CHECK(classify(429, "rate_limit_error", "", "") == ErrorClass::rate_limited);
  CHECK(classify(429, "insufficient_quota", "insufficient_quota", "") == ErrorClass::rate_limited);
  CHECK(classify(429, "RESOURCE_EXHAUSTED", "429", "") == ErrorClass::rate_limited);
  CHECK(classify(529, "overloaded_error", "", "") == ErrorClass::overloaded);
  CHECK(classify(200, "overloaded_error", "", "Overloaded") == ErrorClass::overloaded);
  CHECK(classify(503, "UNAVAILABLE", "503", "") == ErrorClass::overloaded);
  CHECK(classify(400, "invalid_request_error", "context_length_exceeded", "") ==
        ErrorClass::context_length_exceeded);
  CHECK(classify(400, "invalid_request_error", "", "prompt is too long: 215473 tokens > 200000") ==
        ErrorClass::context_length_exceeded);
  CHECK(classify(400, "INVALID_ARGUMENT", "400",
                 "The input token count (1200000) exceeds the maximum number of tokens allowed") ==
        ErrorClass::context_length_exceeded);
  CHECK(classify(401, "invalid_request_error", "invalid_api_key", "") ==
        ErrorClass::authentication);
  CHECK(classify(401, "authentication_error", "", "") == ErrorClass::authentication);
  CHECK(classify(403, "permission_error", "", "") == ErrorClass::permission_denied);
  CHECK(classify(404, "not_found_error", "", "") == ErrorClass::not_found);
  CHECK(classify(413, "request_too_large", "", "") == ErrorClass::request_too_large);
  CHECK(classify(400, "invalid_request_error", "", "bad") == ErrorClass::invalid_request);
  CHECK(classify(500, "api_error", "", "") == ErrorClass::upstream_error);
  CHECK(classify(502, "", "", "") == ErrorClass::upstream_error);
  CHECK(classify(504, "", "", "") == ErrorClass::timeout);
  CHECK(classify(422, "", "", "") == ErrorClass::invalid_request);
  CHECK(classify(200, "", "weird", "") == ErrorClass::upstream_error);
}

TEST_CASE("strings kept from providers are cleaned", "[errors]") {
  using json_util::clean_label;
  using json_util::clean_message;
  CHECK(clean_message("Incorrect API key provided: sk-proj-CANARY123. See docs.") ==
        "Incorrect API key provided: [REDACTED]. See docs.");
  CHECK(clean_message("key AIzaSyCANARY0123456789canary is invalid") ==
        "key [REDACTED] is invalid");
  CHECK(clean_message("got header Authorization: Bearer abcdefghijkl.mnop") ==
        "got header Authorization: Bearer [REDACTED]");
  CHECK(clean_message("task-sk-12 and disk-space are fine") ==
        "task-sk-12 and disk-space are fine");
  CHECK(clean_label("a\nb\tc\x7f") == "a b c ");
  CHECK(clean_label("bad \xff byte") == "bad ? byte");
  CHECK(clean_label("caf\xc3\xa9", 4) == "caf");  // never cuts a character in two
  CHECK(clean_label(std::string(300, 'x')).size() == 128);
  CHECK(clean_message(std::string(300, 'y')).size() == 256);
}

}  // namespace
}  // namespace tokentap
