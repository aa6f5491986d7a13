// The provider side of a real worker (UpstreamConnection and what the client gets of it),
// driven through the in-process harness: the test writes the upstream's bytes itself.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "proxy/http/errors.h"
#include "tests/support/http_reference.h"
#include "tests/support/proxy_harness.h"

namespace tokentap {
namespace {

using fuzz::HttpMessage;
using fuzz::HttpReader;
using fuzz::ProxyHarness;
using fuzz::ProxyResult;

constexpr std::string_view kChatBody =
    R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]})";

constexpr std::string_view kJsonResponse =
    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-request-id: up-7\r\n"
    "content-length: 55\r\n\r\n"
    R"({"id":"c1","model":"gpt-4o-mini","usage":{"total":1}}  )";

// Chunk sizes 0x1f and 0x10: the payload is 47 bytes.
constexpr std::string_view kChunkedResponse =
    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
    "1f\r\nthe first chunk, 31 bytes long.\r\n10\r\nsecond, 16 bytes\r\n0\r\n\r\n";
constexpr std::string_view kChunkedPayload = "the first chunk, 31 bytes long.second, 16 bytes";

// A request with a fixed request id, so that every run gives the client the same bytes.
std::string request(std::string_view method = "POST") {
  std::string out = std::string(method) +
                    " /v1/chat/completions HTTP/1.1\r\nhost: tokentap\r\n"
                    "x-request-id: up-test\r\n";
  if (method == "POST") {
    out += "content-type: application/json\r\ncontent-length: " + std::to_string(kChatBody.size()) +
           "\r\n\r\n" + std::string(kChatBody);
  } else {
    out += "\r\n";
  }
  return out;
}

// Sends `request` and then the upstream's bytes in writes split at `cuts`.
ProxyResult run_exchange(std::string_view upstream, const std::vector<size_t>& cuts = {},
                         bool close_after = false, std::string_view method = "POST") {
  ProxyHarness& h = ProxyHarness::get();
  h.start_client(std::nullopt);
  h.client_send(request(method));
  REQUIRE(h.upstream_requests_seen() == 1);
  size_t at = 0;
  for (size_t cut : cuts) {
    h.upstream_send(upstream.substr(at, cut - at));
    at = cut;
  }
  h.upstream_send(upstream.substr(at));
  if (close_after) h.upstream_close();
  h.client_half_close();
  return h.finish();
}

std::vector<HttpMessage> responses(const ProxyResult& r, bool head = false) {
  HttpReader reader(HTTP_RESPONSE, [head](size_t) { return head; });
  reader.feed(r.client_received);
  if (r.client_saw_eof) reader.finish();
  INFO("client read: " << r.client_received);
  REQUIRE(reader.error == HPE_OK);
  return reader.messages;
}

const RequestContext& only_request(const ProxyResult& r) {
  REQUIRE(r.completed.size() == 1);
  REQUIRE(r.access_log.size() == 1);
  return r.completed[0];
}

TEST_CASE("a response split at any byte offset reaches the client the same", "[upstream]") {
  SECTION("Content-Length: byte for byte the same") {
    const ProxyResult whole = run_exchange(kJsonResponse);
    const std::vector<HttpMessage> got = responses(whole);
    REQUIRE(got.size() == 1);
    REQUIRE(got[0].complete);
    for (size_t cut = 1; cut < kJsonResponse.size(); ++cut) {
      INFO("split at " << cut);
      REQUIRE(run_exchange(kJsonResponse, {cut}).client_received == whole.client_received);
    }
    std::vector<size_t> every;
    for (size_t cut = 1; cut < kJsonResponse.size(); ++cut) every.push_back(cut);
    CHECK(run_exchange(kJsonResponse, every).client_received == whole.client_received);
  }
  SECTION("chunked: re-chunked as it arrives, the same head and payload") {
    const ProxyResult whole = run_exchange(kChunkedResponse);
    const std::vector<HttpMessage> expected = responses(whole);
    REQUIRE(expected.size() == 1);
    REQUIRE(expected[0].complete);
    REQUIRE(expected[0].body == kChunkedPayload);
    const std::string head =
        whole.client_received.substr(0, whole.client_received.find("\r\n\r\n"));
    for (size_t cut = 1; cut < kChunkedResponse.size(); ++cut) {
      INFO("split at " << cut);
      const ProxyResult split = run_exchange(kChunkedResponse, {cut});
      REQUIRE(split.client_received.substr(0, head.size()) == head);
      const std::vector<HttpMessage> got = responses(split);
      REQUIRE(got.size() == 1);
      REQUIRE(got[0].complete);
      REQUIRE(got[0].body == kChunkedPayload);
      REQUIRE(only_request(split).response_body_bytes == kChunkedPayload.size());
    }
  }
}

TEST_CASE("Content-Length and chunked bodies are forwarded with their framing", "[upstream]") {
  SECTION("Content-Length: the same length, the same bytes, no chunking") {
    const ProxyResult r = run_exchange(kJsonResponse);
    const std::vector<HttpMessage> got = responses(r);
    REQUIRE(got.size() == 1);
    CHECK(got[0].complete);
    CHECK_FALSE(got[0].chunked);
    CHECK(got[0].values("content-length") == std::vector<std::string>{"55"});
    CHECK(got[0].body == kJsonResponse.substr(kJsonResponse.find("\r\n\r\n") + 4));
    CHECK(only_request(r).response_body_bytes == 55);
    CHECK(r.pooled_upstream == 1);  // a complete response leaves the connection reusable
  }
  SECTION("chunked: re-chunked to the client, the same payload") {
    const ProxyResult r = run_exchange(kChunkedResponse);
    const std::vector<HttpMessage> got = responses(r);
    REQUIRE(got.size() == 1);
    CHECK(got[0].complete);
    CHECK(got[0].chunked);
    CHECK(got[0].values("content-length").empty());
    CHECK(got[0].body == kChunkedPayload);
    CHECK(only_request(r).response_body_bytes == kChunkedPayload.size());
    CHECK(r.pooled_upstream == 1);
  }
  SECTION("both: an ambiguous framing is refused with a 502 protocol error") {
    const ProxyResult r = run_exchange(
        "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n0\r\n\r\n");
    const std::vector<HttpMessage> got = responses(r);
    REQUIRE(got.size() == 1);
    CHECK(got[0].status == 502);
    CHECK(got[0].body.find("upstream_protocol_error") != std::string::npos);
    CHECK(only_request(r).error == ErrorType::upstream_protocol_error);
    CHECK(r.pooled_upstream == 0);
  }
}

TEST_CASE("an upstream that closes mid-body: the bytes so far reach the client, then the cut",
          "[upstream]") {
  std::string upstream;
  std::string forwarded;
  SECTION("Content-Length") {
    upstream = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n";
    forwarded = R"({"id":"cut","choi)";
    upstream += forwarded;
  }
  SECTION("chunked, inside a chunk") {
    upstream = std::string(kChunkedResponse.substr(0, kChunkedResponse.find("10\r\n") + 10));
    forwarded = "the first chunk, 31 bytes long.second";
  }
  const ProxyResult r = run_exchange(upstream, {}, /*close_after=*/true);

  const std::vector<HttpMessage> got = responses(r);
  REQUIRE(got.size() == 1);
  CHECK(got[0].status == 200);
  CHECK(got[0].body == forwarded);
  CHECK_FALSE(got[0].complete);  // the client sees the truncation: no end of body, then EOF
  CHECK(r.client_saw_eof);
  const RequestContext& ctx = only_request(r);
  CHECK(ctx.error == ErrorType::upstream_reset);
  CHECK(ctx.response_body_bytes == forwarded.size());
  CHECK(nlohmann::json::parse(r.access_log[0])["error_type"] == "upstream_error");
  CHECK(r.pooled_upstream == 0);
}

TEST_CASE("an upstream that closes before responding gets the client a 502 upstream_reset",
          "[upstream]") {
  const ProxyResult r = run_exchange("", {}, /*close_after=*/true);
  const std::vector<HttpMessage> got = responses(r);
  REQUIRE(got.size() == 1);
  CHECK(got[0].status == error_status(ErrorType::upstream_reset));
  CHECK(nlohmann::json::parse(got[0].body)["error"]["tokentap_error"] == "upstream_reset");
  CHECK(only_request(r).error == ErrorType::upstream_reset);
}

TEST_CASE("interim responses are not forwarded; the final one is", "[upstream]") {
  const std::string interim =
      GENERATE(as<std::string>{}, "HTTP/1.1 100 Continue\r\n\r\n",
               "HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n",
               "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n");
  const ProxyResult r = run_exchange(interim + std::string(kJsonResponse), {interim.size()});
  const std::vector<HttpMessage> got = responses(r);
  REQUIRE(got.size() == 1);
  CHECK(got[0].status == 200);
  CHECK(got[0].complete);
  CHECK(got[0].values("link").empty());
  CHECK(r.client_received.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(only_request(r).error == ErrorType::none);
}

TEST_CASE("204 and 304 responses end at their head", "[upstream]") {
  SECTION("204 without a body is forwarded and the connection kept") {
    const ProxyResult r = run_exchange("HTTP/1.1 204 No Content\r\nx-request-id: up-204\r\n\r\n");
    const std::vector<HttpMessage> got = responses(r);
    REQUIRE(got.size() == 1);
    CHECK(got[0].status == 204);
    CHECK(got[0].complete);
    CHECK(got[0].body.empty());
    CHECK(got[0].values("transfer-encoding").empty());
    CHECK(only_request(r).error == ErrorType::none);
    CHECK(r.pooled_upstream == 1);
  }
  SECTION("304 with the Content-Length of the full response is read without a body") {
    const ProxyResult r =
        run_exchange("HTTP/1.1 304 Not Modified\r\ncontent-length: 10\r\n\r\n", {}, false, "GET");
    const std::vector<HttpMessage> got = responses(r);
    REQUIRE(got.size() == 1);
    CHECK(got[0].status == 304);
    CHECK(got[0].body.empty());
    CHECK(only_request(r).error == ErrorType::none);
  }
}

TEST_CASE("a 1xx or 204 that announces a body is a 502 protocol error", "[upstream]") {
  const std::string bad =
      GENERATE(as<std::string>{}, "HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\nhello",
               "HTTP/1.1 204 No Content\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
               "HTTP/1.1 100 Continue\r\ncontent-length: 3\r\n\r\nabc");
  const ProxyResult r = run_exchange(bad);
  const std::vector<HttpMessage> got = responses(r);
  REQUIRE(got.size() == 1);
  CHECK(got[0].status == 502);
  CHECK(got[0].body.find("hello") == std::string::npos);
  CHECK(only_request(r).error == ErrorType::upstream_protocol_error);
  CHECK(r.pooled_upstream == 0);
}

}  // namespace
}  // namespace tokentap
