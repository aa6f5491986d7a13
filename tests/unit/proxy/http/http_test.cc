#include <catch2/catch.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "proxy/http/http1.h"

using namespace tokentap;

TEST_CASE("hop-by-hop headers are recognised case-insensitively", "[http]") {
  for (const char* name :
       {"Connection", "keep-alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding",
        "UPGRADE", "proxy-authorization", "Proxy-Authenticate"}) {
    CHECK(is_hop_by_hop(name));
  }
  for (const char* name : {"Authorization", "Content-Type", "Content-Length", "x-api-key", "Host",
                           "Accept-Encoding"}) {
    CHECK_FALSE(is_hop_by_hop(name));
  }
}

TEST_CASE("connection tokens are split, trimmed and lower-cased", "[http]") {
  HeaderList headers = {{"Connection", " Keep-Alive , X-Custom-Hop"},
                        {"content-type", "application/json"},
                        {"connection", "close"}};
  auto tokens = connection_tokens(headers);
  CHECK(tokens == std::vector<std::string>{"keep-alive", "x-custom-hop", "close"});
}

TEST_CASE("list tokens cover every header of that name and skip empty elements", "[http]") {
  HeaderList headers = {{"Transfer-Encoding", "gzip,, Chunked"},
                        {"x-other", "chunked"},
                        {"transfer-encoding", " , chunked "}};
  CHECK(list_tokens(headers, "transfer-encoding") ==
        std::vector<std::string>{"gzip", "chunked", "chunked"});
  CHECK(list_tokens(headers, "te").empty());
}

TEST_CASE("header names must be tokens", "[http]") {
  CHECK(is_token("x-api-key"));
  CHECK(is_token("Content-Type"));
  CHECK_FALSE(is_token(""));
  CHECK_FALSE(is_token("bad name"));
  CHECK_FALSE(is_token("bad\tname"));
  CHECK_FALSE(is_token("colon:"));
  CHECK_FALSE(is_token("quote\""));
}

TEST_CASE("request ids are kept only when sane", "[http]") {
  CHECK(is_sane_request_id("abc-123"));
  CHECK(is_sane_request_id(std::string(128, 'a')));
  CHECK_FALSE(is_sane_request_id(std::string(129, 'a')));
  CHECK_FALSE(is_sane_request_id(""));
  CHECK_FALSE(is_sane_request_id("has space"));
  CHECK_FALSE(is_sane_request_id("tab\there"));
  CHECK_FALSE(is_sane_request_id(std::string("nul\0x", 5)));
  CHECK_FALSE(is_sane_request_id("caf\xc3\xa9"));
}

TEST_CASE("uuid_v4 prints the digits printf prints for its two random words", "[http]") {
  std::mt19937_64 rng(7);
  std::mt19937_64 words(7);
  for (int i = 0; i < 1000; ++i) {
    const uint64_t hi = (words() & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
    const uint64_t lo = (words() & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
    char want[37];
    std::snprintf(want, sizeof want, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                  static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
                  static_cast<unsigned>(lo >> 48),
                  static_cast<unsigned long long>(lo & 0xffffffffffffULL));
    REQUIRE(uuid_v4(rng) == std::string(want, 36));
  }
}

TEST_CASE("uuid_v4 has the version and variant bits and does not repeat", "[http]") {
  std::mt19937_64 rng(42);
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = uuid_v4(rng);
    REQUIRE(id.size() == 36);
    CHECK(id[8] == '-');
    CHECK(id[13] == '-');
    CHECK(id[14] == '4');
    CHECK(id[18] == '-');
    CHECK(std::string("89ab").find(id[19]) != std::string::npos);
    CHECK(id[23] == '-');
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("JSON content types", "[http]") {
  CHECK(is_json_content_type("application/json"));
  CHECK(is_json_content_type("Application/JSON; charset=utf-8"));
  CHECK(is_json_content_type("application/vnd.api+json"));
  CHECK_FALSE(is_json_content_type("text/plain"));
  CHECK_FALSE(is_json_content_type("multipart/form-data; boundary=x"));
  CHECK_FALSE(is_json_content_type("application/jsonl"));
}

namespace {

nlohmann::json body_json(const ProxyError& error, ErrorShape shape) {
  return nlohmann::json::parse(error_body(error, shape));
}

// The head of a serialized response, and its body.
std::pair<std::string, std::string> split_response(const std::string& response) {
  size_t split = response.find("\r\n\r\n");
  REQUIRE(split != std::string::npos);
  return {response.substr(0, split + 2), response.substr(split + 4)};
}

}  // namespace

TEST_CASE("error bodies in the OpenAI shape carry type, code, name and request id", "[http]") {
  auto j = body_json(
      {.type = ErrorType::upstream_tls_error, .message = "bad \"cert\"\n", .request_id = "rid-1"},
      ErrorShape::openai);
  CHECK(j == nlohmann::json::parse(R"({"error":{
      "message":"tokentap upstream_tls_error: bad \"cert\"\n","type":"server_error","param":null,
      "code":"upstream_tls_error","tokentap_error":"upstream_tls_error","request_id":"rid-1"}})"));
  CHECK(error_body({.type = ErrorType::no_route, .message = "m", .request_id = "r"},
                   ErrorShape::openai)
            .starts_with(R"({"error":{"message":"tokentap no_route: m","type":)"));

  CHECK(body_json({.type = ErrorType::budget_exceeded}, ErrorShape::openai)["error"]["type"] ==
        "insufficient_quota");
  CHECK(body_json({.type = ErrorType::runaway_session}, ErrorShape::openai)["error"]["type"] ==
        "rate_limit_error");
  CHECK(body_json({.type = ErrorType::overloaded}, ErrorShape::openai)["error"]["type"] ==
        "service_unavailable_error");
  for (ErrorType t :
       {ErrorType::bad_request, ErrorType::header_timeout, ErrorType::request_too_large,
        ErrorType::headers_too_large, ErrorType::no_route}) {
    CHECK(body_json({.type = t}, ErrorShape::openai)["error"]["type"] == "invalid_request_error");
  }
  for (ErrorType t : {ErrorType::upstream_connect_error, ErrorType::upstream_protocol_error,
                      ErrorType::timeout, ErrorType::internal}) {
    CHECK(body_json({.type = t}, ErrorShape::openai)["error"]["type"] == "server_error");
  }
}

TEST_CASE("error bodies in the Anthropic shape use its error types", "[http]") {
  auto j = body_json({.type = ErrorType::budget_exceeded,
                      .message = "agent a's hourly budget is used up",
                      .request_id = "rid-7"},
                     ErrorShape::anthropic);
  CHECK(j == nlohmann::json::parse(R"({"type":"error","error":{"type":"rate_limit_error",
      "message":"tokentap budget_exceeded: agent a's hourly budget is used up",
      "tokentap_error":"budget_exceeded","request_id":"rid-7"},"request_id":"rid-7"})"));
  const std::pair<ErrorType, const char*> types[] = {
      {ErrorType::bad_request, "invalid_request_error"},
      {ErrorType::header_timeout, "invalid_request_error"},
      {ErrorType::headers_too_large, "invalid_request_error"},
      {ErrorType::request_too_large, "request_too_large"},
      {ErrorType::no_route, "not_found_error"},
      {ErrorType::runaway_session, "rate_limit_error"},
      {ErrorType::overloaded, "overloaded_error"},
      {ErrorType::upstream_connect_error, "api_error"},
      {ErrorType::upstream_tls_error, "api_error"},
      {ErrorType::upstream_protocol_error, "api_error"},
      {ErrorType::timeout, "timeout_error"},
      {ErrorType::internal, "api_error"},
  };
  for (auto [type, anthropic_type] : types) {
    INFO(error_type_name(type));
    auto e = body_json({.type = type, .message = "m", .request_id = "r"}, ErrorShape::anthropic);
    CHECK(e["type"] == "error");
    CHECK(e["error"]["type"] == anthropic_type);
    CHECK(e["error"]["tokentap_error"] == error_type_name(type));
  }
}

TEST_CASE("error bodies in the Gemini shape use its status names and RetryInfo", "[http]") {
  auto j = body_json({.type = ErrorType::budget_exceeded,
                      .message = "used up",
                      .request_id = "rid-9",
                      .retry = retry_after(42)},
                     ErrorShape::gemini);
  CHECK(j == nlohmann::json::parse(R"({"error":{"code":429,
      "message":"tokentap budget_exceeded: used up","status":"RESOURCE_EXHAUSTED",
      "tokentap_error":"budget_exceeded","request_id":"rid-9","details":[
        {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"42s"}]}})"));
  const std::pair<ErrorType, const char*> statuses[] = {
      {ErrorType::bad_request, "INVALID_ARGUMENT"},
      {ErrorType::header_timeout, "DEADLINE_EXCEEDED"},
      {ErrorType::request_too_large, "INVALID_ARGUMENT"},
      {ErrorType::no_route, "NOT_FOUND"},
      {ErrorType::runaway_session, "RESOURCE_EXHAUSTED"},
      {ErrorType::overloaded, "UNAVAILABLE"},
      {ErrorType::upstream_connect_error, "UNAVAILABLE"},
      {ErrorType::timeout, "DEADLINE_EXCEEDED"},
      {ErrorType::internal, "INTERNAL"},
  };
  for (auto [type, status] : statuses) {
    INFO(error_type_name(type));
    auto e = body_json({.type = type, .message = "m", .request_id = "r"}, ErrorShape::gemini);
    CHECK(e["error"]["status"] == status);
    CHECK(e["error"]["code"] == error_status(type));
  }
  // No wait known, no RetryInfo.
  CHECK_FALSE(body_json({.type = ErrorType::runaway_session}, ErrorShape::gemini)["error"].contains(
      "details"));
}

TEST_CASE("error responses carry retry advice, the request id and the body length", "[http]") {
  auto [head, payload] = split_response(error_response(
      {.type = ErrorType::upstream_connect_error, .message = "refused", .request_id = "rid-2"},
      ErrorShape::anthropic, "x-request-id", false));
  CHECK(head.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
  CHECK(head.find("\r\nx-request-id: rid-2\r\n") != std::string::npos);
  CHECK(head.find("\r\nrequest-id: rid-2\r\n") != std::string::npos);  // the Anthropic SDK's
  CHECK(head.find("\r\nconnection: close\r\n") != std::string::npos);
  CHECK(head.find("\r\nx-should-retry: true\r\n") != std::string::npos);
  CHECK(head.find("retry-after") == std::string::npos);
  CHECK(head.find("content-length: " + std::to_string(payload.size()) + "\r\n") !=
        std::string::npos);
  auto j = nlohmann::json::parse(payload);
  CHECK(j["request_id"] == "rid-2");
  CHECK(j["error"]["type"] == "api_error");

  auto header = [](const ProxyError& error) {
    return split_response(error_response(error, ErrorShape::openai, "x-request-id", true)).first;
  };
  std::string budget =
      header({.type = ErrorType::budget_exceeded, .request_id = "b", .retry = retry_after(30)});
  CHECK(budget.starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
  CHECK(budget.find("\r\nretry-after: 30\r\n") != std::string::npos);
  CHECK(budget.find("x-should-retry") == std::string::npos);
  CHECK(budget.find("connection: close") == std::string::npos);

  std::string long_wait = header({.type = ErrorType::budget_exceeded, .retry = retry_after(3585)});
  CHECK(long_wait.find("\r\nretry-after: 3585\r\n") != std::string::npos);
  CHECK(long_wait.find("\r\nx-should-retry: false\r\n") != std::string::npos);

  std::string runaway = header({.type = ErrorType::runaway_session});
  CHECK(runaway.find("\r\nx-should-retry: false\r\n") != std::string::npos);
  CHECK(runaway.find("retry-after") == std::string::npos);

  std::string overloaded = header({.type = ErrorType::overloaded});
  CHECK(overloaded.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
  CHECK(overloaded.find("\r\nretry-after: 1\r\n") != std::string::npos);

  for (ErrorType t : {ErrorType::bad_request, ErrorType::no_route, ErrorType::timeout,
                      ErrorType::upstream_protocol_error}) {
    INFO(error_type_name(t));
    std::string plain = header({.type = t});
    CHECK(plain.find("retry-after") == std::string::npos);
    CHECK(plain.find("x-should-retry") == std::string::npos);
  }
}

TEST_CASE("retry_after waits at least a second and gives up past the longest wait", "[http]") {
  CHECK(retry_after(0).after_seconds == 1);
  CHECK_FALSE(retry_after(0).should_retry.has_value());
  CHECK(retry_after(kLongestRetryWait).after_seconds == kLongestRetryWait);
  CHECK_FALSE(retry_after(kLongestRetryWait).should_retry.has_value());
  CHECK(retry_after(kLongestRetryWait + 1).should_retry == false);
  CHECK(retry_advice(ErrorType::upstream_tls_error).should_retry == true);
  CHECK(retry_advice(ErrorType::budget_exceeded).should_retry == false);
}

TEST_CASE("the error shape follows the route's provider and endpoint", "[http]") {
  Route route;
  CHECK(error_shape(nullptr, "POST", "/v1/messages") == ErrorShape::openai);

  route.provider = Provider::auto_detect;
  CHECK(error_shape(&route, "POST", "/v1/messages") == ErrorShape::anthropic);
  CHECK(error_shape(&route, "POST", "/v1beta/models/gemini-2.0-flash:generateContent?key=x") ==
        ErrorShape::gemini);
  CHECK(error_shape(&route, "POST", "/v1/chat/completions") == ErrorShape::openai);
  CHECK(error_shape(&route, "GET", "/v1/models") == ErrorShape::openai);

  route.provider = Provider::anthropic;
  CHECK(error_shape(&route, "POST", "/v1/messages") == ErrorShape::anthropic);
  CHECK(error_shape(&route, "GET", "/v1/models") == ErrorShape::anthropic);
  CHECK(error_shape(&route, "POST", "/v1/chat/completions") == ErrorShape::openai);

  route.provider = Provider::gemini;
  CHECK(error_shape(&route, "POST", "/v1beta/models/g:streamGenerateContent") ==
        ErrorShape::gemini);
  CHECK(error_shape(&route, "GET", "/v1beta/models") == ErrorShape::gemini);
  CHECK(error_shape(&route, "POST", "/v1beta/openai/chat/completions") == ErrorShape::openai);

  for (Provider p : {Provider::openai, Provider::azure_openai, Provider::openai_compatible}) {
    route.provider = p;
    CHECK(error_shape(&route, "POST", "/v1/chat/completions") == ErrorShape::openai);
    CHECK(error_shape(&route, "GET", "/v1/models") == ErrorShape::openai);
  }
}

TEST_CASE("upstream targets apply the base path and strip_prefix", "[http]") {
  Route route;
  route.prefix = "/openai";
  route.upstream.base_path = "";
  CHECK(upstream_target(route, "/openai/v1/chat/completions?x=1") ==
        "/openai/v1/chat/completions?x=1");

  route.strip_prefix = true;
  CHECK(upstream_target(route, "/openai/v1/chat/completions?x=1") == "/v1/chat/completions?x=1");
  CHECK(upstream_target(route, "/openai") == "/");
  CHECK(upstream_target(route, "/openai?x=1") == "/?x=1");

  route.upstream.base_path = "/base";
  CHECK(upstream_target(route, "/openai/v1/models") == "/base/v1/models");

  route.prefix = "/local/";
  CHECK(upstream_target(route, "/local/v1/models") == "/base/v1/models");

  route.strip_prefix = false;
  route.prefix = "/";
  route.upstream.base_path = "/v1";
  CHECK(upstream_target(route, "/chat/completions") == "/v1/chat/completions");
}

TEST_CASE("split_target separates path and query", "[http]") {
  auto parts = split_target("/v1beta/models/x:streamGenerateContent?alt=sse&key=k");
  CHECK(parts.path == "/v1beta/models/x:streamGenerateContent");
  CHECK(parts.query == "alt=sse&key=k");
  CHECK(parts.has_query);
  auto bare = split_target("/v1/models");
  CHECK(bare.path == "/v1/models");
  CHECK_FALSE(bare.has_query);
}

TEST_CASE("an error response to HEAD has the headers but no body", "[http]") {
  const ProxyError error{.type = ErrorType::budget_exceeded,
                         .message = "used up",
                         .request_id = "r",
                         .retry = retry_after(120)};
  std::string get = error_response(error, ErrorShape::gemini, "x-request-id", true);
  std::string head = error_response(error, ErrorShape::gemini, "x-request-id", true, true);
  REQUIRE(get.size() > head.size());
  CHECK(head.ends_with("\r\n\r\n"));
  CHECK(get.starts_with(head));  // same head, Content-Length and retry advice included
  CHECK(head.find("\r\nretry-after: 120\r\n") != std::string::npos);
}
