// The upstream response path of a real tokentap worker (see proxy_harness.h): one well-formed
// request from a menu (streaming and not, every provider, HEAD), then arbitrary upstream bytes
// in up to four writes, optionally followed by the upstream closing the connection.
//
// The oracle is llhttp with its default settings reading the upstream's bytes as a plain client
// would. The client must receive valid HTTP/1.1: the upstream's response with its status, its
// end-to-end headers and its body (or the body the usage filter makes of it) when that reading
// finds a complete response, and otherwise a proxy error or a visibly cut response, never one
// that looks complete. The request is accounted exactly once, in one access log line.
//
// Input: [request] [close after] [3 cuts: 2 bytes each] [upstream bytes...]
#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "parsers/stream_options.h"
#include "tests/support/fuzz_support.h"
#include "tests/support/http_reference.h"
#include "tests/support/proxy_harness.h"

namespace tokentap::fuzz {
namespace {

constexpr size_t kMaxUpstreamBytes = 64 * 1024;

struct MenuRequest {
  std::string_view method;
  std::string_view target;
  std::string_view body;
  bool usage_filtered;  // the proxy adds stream_options and filters the usage chunk out
};

constexpr MenuRequest kRequests[] = {
    {"POST", "/v1/chat/completions",
     R"({"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hi"}]})", true},
    {"POST", "/v1/chat/completions",
     R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]})", false},
    {"POST", "/v1/messages",
     R"({"model":"claude-3-5-haiku-latest","max_tokens":64,"stream":true,)"
     R"("messages":[{"role":"user","content":"Hi"}]})",
     false},
    {"POST", "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
     R"({"contents":[{"role":"user","parts":[{"text":"Hi"}]}]})", false},
    {"POST", "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
     R"({"contents":[{"role":"user","parts":[{"text":"Hi"}]}]})", false},
    {"POST", "/v1/responses", R"({"model":"gpt-4o-mini","stream":true,"input":"Hi"})", false},
    {"HEAD", "/v1/models", "", false},
    {"GET", "/v1/models", "", false},
};

std::string request_bytes(const MenuRequest& r) {
  std::string out = std::string(r.method) + " " + std::string(r.target) +
                    " HTTP/1.1\r\nhost: tokentap\r\nauthorization: Bearer sk-fuzz-0123456789abcdef"
                    "\r\nx-agent-id: fuzz\r\n";
  if (!r.body.empty()) {
    out += "content-type: application/json\r\ncontent-length: " + std::to_string(r.body.size()) +
           "\r\n";
  }
  return out + "\r\n" + std::string(r.body);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

const std::set<std::string> kHopByHop = {
    "connection", "keep-alive",          "proxy-connection",  "te", "trailer", "transfer-encoding",
    "upgrade",    "proxy-authorization", "proxy-authenticate"};

std::set<std::string> connection_listed(const HttpMessage& m) {
  std::set<std::string> out;
  for (const std::string& value : m.values("connection")) {
    size_t start = 0;
    while (start <= value.size()) {
      const size_t comma = std::min(value.find(',', start), value.size());
      std::string item = lower(value.substr(start, comma - start));
      while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.erase(0, 1);
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.pop_back();
      if (!item.empty()) out.insert(item);
      start = comma + 1;
    }
  }
  return out;
}

// RFC 9110 section 8.6 and RFC 9112 section 6.1: a 1xx or 204 response must not have a
// Transfer-Encoding or a Content-Length other than 0. The proxy refuses one that has.
bool announces_a_body_it_cannot_have(const HttpMessage& m) {
  if (m.status >= 200 && m.status != 204) return false;
  if (!m.values("transfer-encoding").empty()) return true;
  for (const std::string& length : m.values("content-length")) {
    if (length.find_first_not_of('0') != std::string::npos) return true;
  }
  return false;
}

// A response tokentap wrote itself: a 5xx with {"error":{...,"request_id":<its x-request-id>}},
// or, answering HEAD, the same without a body.
bool is_proxy_error(const HttpMessage& m, bool head) {
  const std::vector<std::string> ids = m.values("x-request-id");
  if (m.status < 500 || ids.size() != 1) return false;
  if (head) return m.body.empty();
  const nlohmann::json j = nlohmann::json::parse(m.body, nullptr, false);
  return j.is_object() && j.contains("error") && j["error"].is_object() &&
         j["error"].contains("request_id") && j["error"]["request_id"] == ids[0];
}

}  // namespace
}  // namespace tokentap::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tokentap::fuzz::ProxyHarness::get();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  using namespace tokentap;
  using namespace tokentap::fuzz;
  ByteReader in(bytes, size);
  const MenuRequest& request = in.pick(kRequests);
  const bool close_after = (in.byte() & 1) != 0;
  ByteReader cut_bytes = in.split_off(6);
  const std::string_view upstream = in.rest().substr(0, kMaxUpstreamBytes);
  const std::vector<size_t> cuts = cut_bytes.cuts(3, upstream.size());
  const bool head = request.method == "HEAD";

  ProxyHarness& h = ProxyHarness::get();
  h.start_client(std::nullopt);
  h.client_send(request_bytes(request));
  FUZZ_CHECK(h.upstream_requests_seen() == 1, "the menu request did not reach the upstream");
  for (std::string_view piece : pieces(upstream, cuts)) {
    if (!piece.empty()) h.upstream_send(piece);
  }
  if (close_after) h.upstream_close();
  h.client_half_close();
  const ProxyResult r = h.finish();

  HttpReader reference(HTTP_RESPONSE, [head](size_t) { return head; });
  reference.feed(upstream);
  if (close_after) reference.finish();
  const std::vector<HttpMessage> upstream_finals = reference.final_messages();
  // The first final response, complete or not.
  const HttpMessage* answer = nullptr;
  bool bodiless_with_a_body = false;
  for (const HttpMessage& m : reference.messages) {
    if (!m.headers_complete) break;
    bodiless_with_a_body = bodiless_with_a_body || announces_a_body_it_cannot_have(m);
    if (m.status >= 200) {
      answer = &m;
      break;
    }
  }

  HttpReader client(HTTP_RESPONSE, [head](size_t) { return head; });
  client.feed(r.client_received);
  if (r.client_saw_eof) client.finish();
  const std::string context = "\n  upstream sent: " + printable(upstream, 1500) +
                              "\n  client read: " + printable(r.client_received, 1500);
  FUZZ_CHECK(client.error == HPE_OK && !client.upgraded,
             "the client received bytes that are not an HTTP/1.1 response: " + client.error_reason +
                 context);
  const std::string_view status_line =
      std::string_view(r.client_received).substr(0, r.client_received.find("\r\n"));
  FUZZ_CHECK(std::all_of(status_line.begin(), status_line.end(),
                         [](char c) { return c == '\t' || (c >= ' ' && c <= '~'); }),
             "the client's status line has control or non-ASCII bytes" + context);
  const std::vector<HttpMessage> finals = client.final_messages();
  FUZZ_CHECK(finals.size() <= 1, "more than one response to one request" + context);
  for (const HttpMessage& m : client.messages) {
    FUZZ_CHECK(m.status >= 200, "an interim response reached the client" + context);
  }
  FUZZ_CHECK(r.access_log.size() == 1,
             std::to_string(r.access_log.size()) + " access log lines for one request" + context);
  FUZZ_CHECK(r.observers == 1, "the request was not metered" + context);

  if (finals.empty()) return 0;  // cut short: visible to the client as an incomplete response
  const HttpMessage& got = finals[0];
  // A status outside 100-599 is not HTTP (RFC 9110 §15): the proxy answers 502 instead.
  if (answer == nullptr || !answer->complete || answer->status > 599 || bodiless_with_a_body) {
    FUZZ_CHECK(is_proxy_error(got, head),
               "the upstream's response was incomplete or malformed but the client got a "
               "complete one that is not a proxy error" +
                   context);
    return 0;
  }
  // Nothing was asked for after the answer: a connection that sent more is out of step.
  const bool bytes_after_answer = reference.error != HPE_OK || &reference.messages.back() != answer;
  FUZZ_CHECK(!bytes_after_answer || r.pooled_upstream == 0,
             "the upstream sent bytes after its response, and its connection was kept for "
             "another request" +
                 context);
  FUZZ_CHECK(got.status == answer->status, "status " + std::to_string(got.status) +
                                               ", the upstream said " +
                                               std::to_string(answer->status) + context);
  // Every header the client sees is the upstream's, except the few the proxy adds.
  const std::set<std::string> listed = connection_listed(*answer);
  for (const auto& [name, value] : got.headers) {
    const std::string n = lower(name);
    if (n == "transfer-encoding") {
      FUZZ_CHECK(value == "chunked", "the proxy forwarded a transfer-encoding" + context);
      continue;
    }
    if (n == "connection") {
      FUZZ_CHECK(value == "close", "the proxy forwarded a connection header" + context);
      continue;
    }
    FUZZ_CHECK(!kHopByHop.contains(n) && !listed.contains(n),
               "the hop-by-hop header " + printable(name) + " reached the client" + context);
    if (n == "x-request-id" && answer->values("x-request-id").empty()) continue;
    bool found = false;
    for (const auto& [up_name, up_value] : answer->headers) {
      found = found || (up_name == name && up_value == value);
    }
    FUZZ_CHECK(found,
               "the client got a header the upstream never sent: " + printable(name) + context);
  }
  if (answer->values("x-request-id").empty()) {
    FUZZ_CHECK(got.values("x-request-id").size() == 1,
               "the proxy did not add a request id" + context);
  }
  if (got.body == answer->body) return 0;
  std::string filtered;
  if (request.usage_filtered) {
    UsageChunkFilter filter;
    filter.feed(answer->body, filtered);
    filter.finish(filtered);
  }
  FUZZ_CHECK(request.usage_filtered && got.body == filtered,
             "the client got another body than the upstream sent\n  upstream body: " +
                 printable(answer->body) + "\n  client body: " + printable(got.body) + context);
  return 0;
}
