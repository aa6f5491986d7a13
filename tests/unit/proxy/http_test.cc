#include "proxy/http.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <set>

using namespace tokentap;

TEST_CASE("hop-by-hop headers are recognised case-insensitively", "[http]") {
  for (const char* name : {"Connection", "keep-alive", "Proxy-Connection", "TE", "Trailer",
                           "Transfer-Encoding", "UPGRADE", "proxy-authorization",
                           "Proxy-Authenticate"}) {
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

TEST_CASE("error bodies are valid JSON with type, message and request id", "[http]") {
  std::string body = error_body("upstream_tls_error", "bad \"cert\"\n", "rid-1");
  CHECK(body.starts_with(R"({"error":{"type":"upstream_tls_error","message":)"));
  auto j = nlohmann::json::parse(body);
  CHECK(j["error"]["type"] == "upstream_tls_error");
  CHECK(j["error"]["message"] == "bad \"cert\"\n");
  CHECK(j["error"]["request_id"] == "rid-1");

  std::string resp = error_response(502, "upstream_connect_error", "refused", "rid-2",
                                    "x-request-id", false);
  CHECK(resp.starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
  CHECK(resp.find("\r\nx-request-id: rid-2\r\n") != std::string::npos);
  CHECK(resp.find("\r\nconnection: close\r\n") != std::string::npos);
  size_t split = resp.find("\r\n\r\n");
  REQUIRE(split != std::string::npos);
  std::string payload = resp.substr(split + 4);
  CHECK(resp.find("content-length: " + std::to_string(payload.size())) != std::string::npos);
  CHECK(nlohmann::json::parse(payload)["error"]["request_id"] == "rid-2");
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
  std::string get = error_response(502, "upstream_connect_error", "refused", "r", "x-request-id",
                                   true);
  std::string head = error_response(502, "upstream_connect_error", "refused", "r",
                                    "x-request-id", true, true);
  REQUIRE(get.size() > head.size());
  CHECK(head.ends_with("\r\n\r\n"));
  CHECK(get.starts_with(head));  // same head, Content-Length included
}
