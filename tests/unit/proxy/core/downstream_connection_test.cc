// The client side of a real worker (DownstreamConnection), driven through the in-process
// harness: a client socket, a fake upstream, and the access log the requests leave.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "proxy/http/errors.h"
#include "tests/support/http_reference.h"
#include "tests/support/proxy_harness.h"

namespace tokentap {
namespace {

using fuzz::Canned;
using fuzz::HttpMessage;
using fuzz::HttpReader;
using fuzz::ProxyHarness;
using fuzz::ProxyResult;

constexpr std::string_view kChatBody =
    R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]})";

std::string get(std::string_view target, std::string_view request_id,
                std::string_view method = "GET") {
  return std::string(method) + " " + std::string(target) +
         " HTTP/1.1\r\nhost: tokentap\r\nx-request-id: " + std::string(request_id) + "\r\n\r\n";
}

std::string chat_head(std::string_view request_id, size_t content_length) {
  return "POST /v1/chat/completions HTTP/1.1\r\nhost: tokentap\r\n"
         "authorization: Bearer sk-test-0123456789abcdef\r\ncontent-type: application/json\r\n"
         "x-request-id: " +
         std::string(request_id) + "\r\ncontent-length: " + std::to_string(content_length) +
         "\r\n\r\n";
}

// The responses the client read, in order; `heads` says which answer a HEAD request.
std::vector<HttpMessage> responses(const ProxyResult& r, std::vector<bool> heads = {}) {
  HttpReader reader(HTTP_RESPONSE, [heads](size_t i) { return i < heads.size() && heads[i]; });
  reader.feed(r.client_received);
  if (r.client_saw_eof) reader.finish();
  INFO("client read: " << r.client_received);
  REQUIRE(reader.error == HPE_OK);
  return reader.messages;
}

nlohmann::json log_line(const ProxyResult& r, size_t i) {
  REQUIRE(i < r.access_log.size());
  return nlohmann::json::parse(r.access_log[i]);
}

// A response the proxy wrote itself: its status, and an OpenAI-shaped error body that names the
// error and repeats the x-request-id header.
void check_proxy_error(const HttpMessage& m, ErrorType type) {
  CHECK(m.status == error_status(type));
  const std::vector<std::string> ids = m.values("x-request-id");
  REQUIRE(ids.size() == 1);
  CHECK(!ids[0].empty());
  CHECK(m.values("content-type") == std::vector<std::string>{"application/json"});
  const nlohmann::json body = nlohmann::json::parse(m.body);
  CHECK(body["error"]["tokentap_error"] == error_type_name(type));
  CHECK(body["error"]["code"] == error_type_name(type));
  CHECK(body["error"]["request_id"] == ids[0]);
}

TEST_CASE("pipelined requests on one connection are forwarded and answered in order",
          "[downstream]") {
  ProxyHarness& h = ProxyHarness::get();
  // An answer without an x-request-id: the proxy adds the client's, which tells them apart.
  h.start_client(Canned::sse_chunked);
  // One write: the second request arrives while the first is still being answered.
  h.client_send(get("/v1/models?n=1", "pipe-1") + chat_head("pipe-2", kChatBody.size()) +
                std::string(kChatBody) + get("/v1/models?n=3", "pipe-3"));
  h.client_half_close();
  const ProxyResult r = h.finish();

  REQUIRE(r.upstream_requests.size() == 3);
  CHECK(r.upstream_requests[0].url == "/v1/models?n=1");
  CHECK(r.upstream_requests[1].url == "/v1/chat/completions");
  CHECK(r.upstream_requests[1].body == kChatBody);
  CHECK(r.upstream_requests[2].url == "/v1/models?n=3");

  const std::vector<HttpMessage> got = responses(r);
  REQUIRE(got.size() == 3);
  const char* ids[] = {"pipe-1", "pipe-2", "pipe-3"};
  for (size_t i = 0; i < 3; ++i) {
    CHECK(got[i].complete);
    CHECK(got[i].status == 200);
    CHECK(got[i].body == h.canned_payload(Canned::sse_chunked));
    CHECK(got[i].values("x-request-id") == std::vector<std::string>{ids[i]});
  }
  REQUIRE(r.completed.size() == 3);
  REQUIRE(r.access_log.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(r.completed[i].request_id == ids[i]);
    CHECK(log_line(r, i)["request_id"] == ids[i]);
  }
}

TEST_CASE("a keep-alive connection serves the next request after the first is answered",
          "[downstream]") {
  ProxyHarness& h = ProxyHarness::get();
  h.start_client(Canned::json);
  h.client_send(get("/v1/models", "ka-1"));
  REQUIRE(h.upstream_requests_seen() == 1);
  h.client_send(chat_head("ka-2", kChatBody.size()) + std::string(kChatBody));
  REQUIRE(h.upstream_requests_seen() == 2);
  h.client_half_close();
  const ProxyResult r = h.finish();

  const std::vector<HttpMessage> got = responses(r);
  REQUIRE(got.size() == 2);
  CHECK(got[0].values("connection").empty());  // not "close": the connection stayed open
  CHECK(got[1].complete);
  CHECK(got[1].body == h.canned_payload(Canned::json));
  // Both requests went over one upstream connection, the second from the keep-alive pool.
  CHECK(r.upstream_streams.size() == 1);
  REQUIRE(r.completed.size() == 2);
  CHECK_FALSE(r.completed[0].reused_connection);
  CHECK(r.completed[1].reused_connection);
  CHECK(r.completed[1].error == ErrorType::none);
}

TEST_CASE("a malformed request is answered 400 with a JSON error naming its request id",
          "[downstream]") {
  ProxyHarness& h = ProxyHarness::get();
  h.start_client(Canned::json);
  h.client_send("GET /v1/models HTTP/1.1\r\nhost: tokentap\r\nno colon here\r\n\r\n");
  h.client_half_close();
  const ProxyResult r = h.finish();

  CHECK(r.upstream_requests.empty());
  CHECK(r.client_saw_eof);
  const std::vector<HttpMessage> got = responses(r);
  REQUIRE(got.size() == 1);
  check_proxy_error(got[0], ErrorType::bad_request);
  CHECK(got[0].values("connection") == std::vector<std::string>{"close"});
  REQUIRE(r.access_log.size() == 1);
  const nlohmann::json line = log_line(r, 0);
  CHECK(line["status"] == 400);
  CHECK(line["error_type"] == "invalid_request");
  CHECK(line["request_id"] == got[0].values("x-request-id")[0]);
}

TEST_CASE("request headers over the limits are answered 431", "[downstream]") {
  ProxyHarness& h = ProxyHarness::get();
  std::string request;
  SECTION("more header bytes than limits.max_header_bytes (4 KiB here)") {
    request = "GET /v1/models HTTP/1.1\r\nhost: tokentap\r\nx-big: " + std::string(5000, 'a') +
              "\r\n\r\n";
  }
  SECTION("more headers than limits.max_headers (24 here)") {
    request = "GET /v1/models HTTP/1.1\r\nhost: tokentap\r\n";
    for (int i = 0; i < 30; ++i) request += "x-h" + std::to_string(i) + ": v\r\n";
    request += "\r\n";
  }
  h.start_client(Canned::json);
  h.client_send(request);
  h.client_half_close();
  const ProxyResult r = h.finish();

  CHECK(r.upstream_requests.empty());
  const std::vector<HttpMessage> got = responses(r);
  REQUIRE(got.size() == 1);
  check_proxy_error(got[0], ErrorType::headers_too_large);
  REQUIRE(r.access_log.size() == 1);
  CHECK(log_line(r, 0)["status"] == 431);
}

TEST_CASE("a client that goes away mid-body ends its request once, as client_cancelled",
          "[downstream]") {
  ProxyHarness& h = ProxyHarness::get();
  h.start_client(Canned::json);
  const std::string body(kChatBody);
  h.client_send(chat_head("gone-1", body.size()) + body.substr(0, body.size() / 2));
  h.client_half_close();
  const ProxyResult r = h.finish();

  // A buffered JSON body that never completed is never forwarded.
  CHECK(r.upstream_requests.empty());
  CHECK(r.client_received.empty());
  // The harness's observer aborts on a second on_complete; `completed` has one entry per call.
  REQUIRE(r.observers == 1);
  REQUIRE(r.completed.size() == 1);
  CHECK(r.completed[0].request_id == "gone-1");
  CHECK(r.completed[0].error == ErrorType::client_cancelled);
  CHECK(r.completed[0].llm.metered);
  REQUIRE(r.access_log.size() == 1);
  const nlohmann::json line = log_line(r, 0);
  CHECK(line["error_type"] == "client_cancelled");
  CHECK(line["request_id"] == "gone-1");
}

TEST_CASE("a client that goes away mid-response ends its request once, as client_cancelled",
          "[downstream]") {
  ProxyHarness& h = ProxyHarness::get();
  h.start_client(std::nullopt);
  h.client_send(chat_head("gone-2", kChatBody.size()) + std::string(kChatBody));
  REQUIRE(h.upstream_requests_seen() == 1);
  h.upstream_send(
      "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n"
      "\r\n{\"id\":");
  h.client_half_close();
  const ProxyResult r = h.finish();

  REQUIRE(r.completed.size() == 1);
  CHECK(r.completed[0].error == ErrorType::client_cancelled);
  CHECK(r.completed[0].status == 200);
  CHECK(r.completed[0].response_body_bytes == 6);
  REQUIRE(r.access_log.size() == 1);
  CHECK(log_line(r, 0)["error_type"] == "client_cancelled");
}

TEST_CASE("a response to HEAD has the upstream's headers and no body", "[downstream]") {
  ProxyHarness& h = ProxyHarness::get();
  h.start_client(Canned::json);
  // A GET after the HEAD: it is read correctly only if the HEAD response had no body bytes.
  h.client_send(get("/v1/models", "head-1", "HEAD") + get("/v1/models", "head-2"));
  h.client_half_close();
  const ProxyResult r = h.finish();

  REQUIRE(r.upstream_requests.size() == 2);
  CHECK(r.upstream_requests[0].method == "HEAD");
  const std::vector<HttpMessage> got = responses(r, {true, false});
  REQUIRE(got.size() == 2);
  CHECK(got[0].status == 200);
  CHECK(got[0].body.empty());
  CHECK(got[0].values("content-length") ==
        std::vector<std::string>{std::to_string(h.canned_payload(Canned::json).size())});
  CHECK(got[1].status == 200);
  CHECK(got[1].complete);
  CHECK(got[1].body == h.canned_payload(Canned::json));
  // The first response is the head alone: the second starts right after its blank line.
  const size_t head_end = r.client_received.find("\r\n\r\n");
  REQUIRE(head_end != std::string::npos);
  CHECK(r.client_received.compare(head_end + 4, 9, "HTTP/1.1 ") == 0);
}

}  // namespace
}  // namespace tokentap
