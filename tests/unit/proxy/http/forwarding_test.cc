#include "proxy/http/forwarding.h"

#include <catch2/catch.hpp>

using namespace tokentap;

namespace {

Route test_route() {
  Route route;
  route.name = "openai";
  route.prefix = "/";
  route.upstream.authority = "api.openai.com";
  return route;
}

}  // namespace

TEST_CASE("the upstream request head drops hop-by-hop and tokentap's own headers", "[forwarding]") {
  Config config;
  Route route = test_route();
  HeaderList headers = {{"Host", "localhost:8080"},
                        {"Connection", "keep-alive, X-Trace"},
                        {"X-Trace", "1"},
                        {"Content-Length", "2"},
                        {"Expect", "100-continue"},
                        {config.request_id_header, "client-id"},
                        {config.agent.header, "planner"},
                        {config.session_header, "s1"},
                        {"Accept-Encoding", "gzip"},
                        {"Authorization", "Bearer sk-test"}};
  ForwardedRequest request{.method = "POST",
                           .target = "/v1/chat/completions",
                           .headers = headers,
                           .request_id = "rid-1",
                           .identity_encoding = true,
                           .has_content_length = true,
                           .content_length = 42};
  CHECK(upstream_request_head(request, route, config) ==
        "POST /v1/chat/completions HTTP/1.1\r\n"
        "host: api.openai.com\r\n"
        "Authorization: Bearer sk-test\r\n" +
            config.request_id_header +
            ": rid-1\r\n"
            "accept-encoding: identity\r\n"
            "content-length: 42\r\n\r\n");

  request.identity_encoding = false;
  request.has_content_length = false;
  request.chunked = true;
  std::string chunked = upstream_request_head(request, route, config);
  CHECK(chunked.find("Accept-Encoding: gzip\r\n") != std::string::npos);
  CHECK(chunked.ends_with("transfer-encoding: chunked\r\n\r\n"));
}

TEST_CASE("the client response head adds the request id and its own framing", "[forwarding]") {
  HeaderList headers = {{"Content-Type", "application/json"},
                        {"Content-Length", "10"},
                        {"Transfer-Encoding", "chunked"},
                        {"Connection", "close, X-Hop"},
                        {"X-Hop", "1"}};
  ForwardedResponse response{.status = 200,
                             .reason = "",
                             .headers = headers,
                             .request_id_header = "x-request-id",
                             .request_id = "rid-1",
                             .drop_content_length = true,
                             .chunked = true,
                             .close = true};
  CHECK(client_response_head(response) ==
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: application/json\r\n"
        "x-request-id: rid-1\r\n"
        "transfer-encoding: chunked\r\n"
        "connection: close\r\n\r\n");

  HeaderList upstream_id = {{"X-Request-Id", "upstream"}, {"Content-Length", "10"}};
  ForwardedResponse plain{.status = 418,
                          .reason = "Short",
                          .headers = upstream_id,
                          .request_id_header = "x-request-id",
                          .request_id = "rid-1"};
  CHECK(client_response_head(plain) ==
        "HTTP/1.1 418 Short\r\nX-Request-Id: upstream\r\nContent-Length: 10\r\n\r\n");

  // A configured header name in any case matches the upstream's in any case: not sent twice.
  HeaderList lower_id = {{"x-request-id", "upstream"}};
  ForwardedResponse mixed{.status = 200,
                          .reason = "",
                          .headers = lower_id,
                          .request_id_header = "X-Request-ID",
                          .request_id = "rid-1"};
  CHECK(client_response_head(mixed) == "HTTP/1.1 200 OK\r\nx-request-id: upstream\r\n\r\n");
}

TEST_CASE("header stage edits replace headers in both forwarded heads", "[forwarding]") {
  Config config;
  Route route = test_route();
  HeaderList headers = {{"Host", "localhost"},
                        {"TraceParent", "00-client"},
                        {"tracestate", "a=1"},
                        {"Content-Type", "application/json"}};
  std::vector<std::string> drop = {"traceparent", "tracestate"};
  ForwardedRequest request{.method = "GET",
                           .target = "/v1/models",
                           .headers = headers,
                           .request_id = "rid-1",
                           .drop = drop,
                           .added_lines = "traceparent: 00-ours\r\n"};
  CHECK(upstream_request_head(request, route, config) ==
        "GET /v1/models HTTP/1.1\r\nhost: api.openai.com\r\n"
        "Content-Type: application/json\r\n"
        "traceparent: 00-ours\r\n" +
            config.request_id_header + ": rid-1\r\n\r\n");

  HeaderList upstream = {{"Traceparent", "00-provider"}, {"Content-Length", "0"}};
  std::vector<std::string> response_drop = {"traceparent"};
  ForwardedResponse response{.status = 200,
                             .reason = "",
                             .headers = upstream,
                             .request_id_header = "x-request-id",
                             .request_id = "rid-1",
                             .drop = response_drop,
                             .added_lines = "traceparent: 00-ours\r\n"};
  CHECK(client_response_head(response) ==
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\ntraceparent: 00-ours\r\n"
        "x-request-id: rid-1\r\n\r\n");
}
