// The downstream request path of a real tokentap worker (see proxy_harness.h): arbitrary client
// bytes, delivered in up to four reads, against our limits (4 KiB of head, 24 headers, 32 KiB of
// body), with the fake upstream answering each forwarded request in one of the canned ways.
//
// The oracle is llhttp itself with its default settings, reading the client's bytes as a plain
// server would. The proxy must forward exactly the requests that reading finds, in order, each
// with the same method, target (after the route's prefix rewrite), headers minus the hop-by-hop
// ones plus its own, and body (or the body with stream_options added); it must never send the
// upstream a request head that reading rejects; everything it answers must parse as HTTP/1.1
// responses, one per request, with the upstream's status and body; and no API key a request
// carries may reach the client or the access log.
//
// Input: [answer kind] [3 cuts: 2 bytes each] [client bytes...]
#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "parsers/stream_options.h"
#include "tests/support/fuzz_support.h"
#include "tests/support/http_reference.h"
#include "tests/support/proxy_harness.h"

namespace tokentap::fuzz {
namespace {

constexpr size_t kMaxClientBytes = 64 * 1024;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

const std::set<std::string, std::less<>> kHopByHop = {
    "connection", "keep-alive",          "proxy-connection",  "te", "trailer", "transfer-encoding",
    "upgrade",    "proxy-authorization", "proxy-authenticate"};

using Headers = std::vector<std::pair<std::string, std::string>>;

// RFC 9110 section 7.6.1: what a proxy forwards of the client's headers, given that it sets
// Host, the request id, the framing headers and (for a rewritten body) Accept-Encoding itself
// and consumes the agent and session headers.
Headers forwarded_headers(const HttpMessage& request, bool body_replaced) {
  std::set<std::string, std::less<>> listed;
  for (const std::string& value : request.values("connection")) {
    std::string_view rest = value;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      const std::string_view item = trim(rest.substr(0, comma));
      if (!item.empty()) listed.insert(lower(item));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  Headers out;
  for (const auto& [name, value] : request.headers) {
    const std::string n = lower(name);
    if (kHopByHop.contains(n) || listed.contains(n) || n == "host" || n == "expect" ||
        n == "content-length" || n == "x-request-id" || n == "x-agent-id" || n == "x-session-id" ||
        (body_replaced && n == "accept-encoding")) {
      continue;
    }
    out.emplace_back(name, value);
  }
  return out;
}

std::string upstream_target(std::string_view url) {
  if (url.starts_with("/strip/")) return "/base/" + std::string(url.substr(7));
  return std::string(url);
}

bool is_sane_request_id(std::string_view id) {
  return !id.empty() && id.size() <= 128 &&
         std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

void check_forwarded(const HttpMessage& up, const HttpMessage& client, size_t index) {
  const std::string where = "upstream request " + std::to_string(index);
  FUZZ_CHECK(client.headers_complete,
             where + " was forwarded although the client's head does not parse\n  upstream: " +
                 describe(up) + "\n  client: " + describe(client));
  if (!up.headers_complete) return;
  FUZZ_CHECK(up.method == client.method, where + " method " + up.method + " for " + client.method);
  FUZZ_CHECK(up.url == upstream_target(client.url),
             where + " target " + printable(up.url) + " for " + printable(client.url));

  std::optional<std::string> replaced;
  if (up.complete && up.body != client.body) replaced = add_stream_usage_option(client.body);
  const Headers kept = forwarded_headers(client, replaced.has_value());
  const std::string context = "\n  upstream: " + describe(up) + "\n  client: " + describe(client);
  FUZZ_CHECK(up.headers.size() >= kept.size() + 2, where + " lost headers" + context);
  FUZZ_CHECK(lower(up.headers[0].first) == "host" && up.values("host").size() == 1 &&
                 up.headers[0].second.starts_with("127.0.0.1:"),
             where + " has no single leading Host" + context);
  FUZZ_CHECK(std::equal(kept.begin(), kept.end(), up.headers.begin() + 1),
             where + " did not forward exactly the end-to-end headers" + context);
  size_t at = kept.size() + 1;
  const auto& [id_name, id_value] = up.headers[at++];
  const std::vector<std::string> client_ids = client.values("x-request-id");
  const bool keep_id = !client_ids.empty() && is_sane_request_id(client_ids[0]);
  FUZZ_CHECK(lower(id_name) == "x-request-id" &&
                 (keep_id ? id_value == client_ids[0] : id_value.size() == 36) &&
                 up.values("x-request-id").size() == 1,
             where + " request id header" + context);
  if (replaced) {
    FUZZ_CHECK(at < up.headers.size() && lower(up.headers[at].first) == "accept-encoding" &&
                   up.headers[at].second == "identity" && up.values("accept-encoding").size() == 1,
               where + " has a rewritten body but accepts encodings" + context);
    ++at;
  }
  FUZZ_CHECK(!(up.chunked && up.has_content_length), where + " has two framings" + context);
  if (up.has_content_length || up.chunked) {
    FUZZ_CHECK(at + 1 == up.headers.size(), where + " has extra headers" + context);
    const std::string n = lower(up.headers[at].first);
    FUZZ_CHECK(up.chunked ? n == "transfer-encoding" && up.headers[at].second == "chunked"
                          : n == "content-length",
               where + " framing header" + context);
  } else {
    FUZZ_CHECK(at == up.headers.size(), where + " has extra headers" + context);
  }
  if (!up.complete) return;
  FUZZ_CHECK(client.complete, where + " is complete but the client's is not" + context);
  FUZZ_CHECK(up.body == client.body || (replaced && up.body == *replaced),
             where + " body changed" + context);
  if (replaced) {
    // Only an OpenAI-format streaming chat request gets stream_options added.
    FUZZ_CHECK(client.method == "POST" && client.url.find("chat/completions") != std::string::npos,
               where + " body rewritten for a request that is not a chat completion" + context);
  }
}

// API keys a request carries that look like keys (16 or more key characters, letters and
// digits) and occur once in the whole input, so that they cannot turn up in what the proxy
// writes by chance or by echoing another part of the request.
std::vector<std::string> secrets_of(const std::vector<HttpMessage>& requests,
                                    std::string_view input, const ProxyHarness& h) {
  std::vector<std::string> candidates;
  for (const HttpMessage& m : requests) {
    for (const auto& [name, value] : m.headers) {
      const std::string n = lower(name);
      if (n == "authorization" || n == "proxy-authorization") {
        const size_t space = value.find(' ');
        candidates.push_back(space == std::string::npos ? value : value.substr(space + 1));
      } else if (n == "x-api-key" || n == "api-key" || n == "x-goog-api-key") {
        candidates.push_back(value);
      }
    }
    const size_t q = m.url.find('?');
    std::string_view query = q == std::string::npos ? "" : std::string_view(m.url).substr(q + 1);
    while (!query.empty()) {
      const std::string_view param = query.substr(0, query.find('&'));
      const size_t eq = param.find('=');
      if (eq != std::string_view::npos) {
        const std::string name = lower(param.substr(0, eq));
        if (name == "key" || name == "api_key" || name == "api-key" || name == "access_token") {
          candidates.emplace_back(param.substr(eq + 1));
        }
      }
      if (param.size() == query.size()) break;
      query.remove_prefix(param.size() + 1);
    }
  }
  std::vector<std::string> secrets;
  for (const std::string& s : candidates) {
    size_t letters = 0;
    size_t digits = 0;
    bool key_like = true;
    for (char c : s) {
      const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      const bool digit = c >= '0' && c <= '9';
      letters += letter ? 1 : 0;
      digits += digit ? 1 : 0;
      key_like = key_like &&
                 (letter || digit || std::string_view("-._~+/=").find(c) != std::string_view::npos);
    }
    const size_t first = input.find(s);
    if (s.size() < 16 || !key_like || letters < 4 || digits < 2 ||
        first == std::string_view::npos || input.find(s, first + 1) != std::string_view::npos) {
      continue;
    }
    bool canned = false;
    for (size_t k = 0; k < kCannedCount; ++k) {
      const auto kind = static_cast<Canned>(k);
      canned = canned || h.canned_head(kind).find(s) != std::string_view::npos ||
               h.canned_body(kind).find(s) != std::string_view::npos;
    }
    if (!canned) secrets.push_back(s);
  }
  return secrets;
}

void check_response_head(const HttpMessage& response, size_t index) {
  const std::string where = "response " + std::to_string(index);
  FUZZ_CHECK(response.values("x-request-id").size() == 1,
             where + " does not carry exactly one request id\n  " + describe(response));
  for (const auto& [name, value] : response.headers) {
    const std::string n = lower(name);
    if (n == "transfer-encoding") {
      FUZZ_CHECK(value == "chunked", where + " forwards a transfer-encoding");
    } else if (n == "connection") {
      FUZZ_CHECK(value == "close", where + " forwards a connection header");
    } else {
      FUZZ_CHECK(!kHopByHop.contains(n), where + " forwards the hop-by-hop " + printable(name));
    }
  }
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
  const auto kind = static_cast<Canned>(in.byte() % kCannedCount);
  ByteReader cut_bytes = in.split_off(6);
  const std::string_view input = in.rest().substr(0, kMaxClientBytes);
  const std::vector<size_t> cuts = cut_bytes.cuts(3, input.size());

  ProxyHarness& h = ProxyHarness::get();
  h.start_client(kind);
  for (std::string_view piece : pieces(input, cuts)) {
    if (!piece.empty()) h.client_send(piece);
  }
  h.client_half_close();
  const ProxyResult r = h.finish();

  HttpReader client(HTTP_REQUEST);
  client.feed(input);
  const std::vector<HttpMessage>& sent = client.messages;

  // What reached the upstream, complete or not, in order across its connections.
  std::vector<HttpMessage> forwarded;
  for (const std::string& stream : r.upstream_streams) {
    HttpReader upstream(HTTP_REQUEST);
    upstream.feed(stream);
    forwarded.insert(forwarded.end(), upstream.messages.begin(), upstream.messages.end());
  }
  FUZZ_CHECK(forwarded.size() <= sent.size(),
             std::to_string(forwarded.size()) + " requests reached the upstream for " +
                 std::to_string(sent.size()) + " the client began");
  size_t complete_upstream = 0;
  for (size_t i = 0; i < forwarded.size(); ++i) {
    check_forwarded(forwarded[i], sent[i], i);
    if (forwarded[i].complete) {
      FUZZ_CHECK(complete_upstream == i, "an incomplete upstream request before a complete one");
      ++complete_upstream;
    }
  }
  FUZZ_CHECK(complete_upstream == r.upstream_requests.size(), "upstream request count mismatch");

  HttpReader responses(HTTP_RESPONSE,
                       [&](size_t i) { return i < sent.size() && sent[i].method == "HEAD"; });
  responses.feed(r.client_received);
  if (r.client_saw_eof) responses.finish();
  FUZZ_CHECK(responses.error == HPE_OK && !responses.upgraded,
             "the client received bytes that are not HTTP/1.1 responses: " +
                 responses.error_reason + "\n  " + printable(r.client_received, 3000));
  const std::vector<HttpMessage> finals = responses.final_messages();
  FUZZ_CHECK(finals.size() <= sent.size() + 1, std::to_string(finals.size()) + " responses for " +
                                                   std::to_string(sent.size()) + " requests");
  size_t expects = 0;
  for (const HttpMessage& m : sent) expects += m.values("expect").empty() ? 0 : 1;
  for (const HttpMessage& m : responses.messages) {
    if (m.status < 200) {
      FUZZ_CHECK(m.status == 100 && expects > 0, "an interim response the client did not ask for");
      --expects;
    }
  }
  for (size_t i = 0; i < finals.size(); ++i) {
    check_response_head(finals[i], i);
    if (i >= complete_upstream) continue;
    const HttpMessage& answer = finals[i];
    if (kind == Canned::reset) {
      FUZZ_CHECK(answer.status == 502, "a reset upstream did not give a 502");
      continue;
    }
    FUZZ_CHECK(answer.status == h.canned_status(kind),
               "response " + std::to_string(i) + " status " + std::to_string(answer.status) +
                   ", the upstream said " + std::to_string(h.canned_status(kind)));
    const bool rewritten = forwarded[i].body != sent[i].body;
    if (sent[i].method == "HEAD" || rewritten) continue;
    FUZZ_CHECK(
        answer.body == h.canned_payload(kind),
        "response " + std::to_string(i) + " body is not the upstream's: " + printable(answer.body));
  }
  FUZZ_CHECK(r.access_log.size() >= finals.size() && r.access_log.size() <= finals.size() + 1,
             std::to_string(r.access_log.size()) + " access log lines for " +
                 std::to_string(finals.size()) + " responses");

  for (const std::string& secret : secrets_of(client.complete_messages(), input, h)) {
    FUZZ_CHECK(r.client_received.find(secret) == std::string::npos,
               "an API key reached the client: " + printable(secret));
    for (const std::string& line : r.access_log) {
      FUZZ_CHECK(line.find(secret) == std::string::npos,
                 "an API key reached the access log: " + printable(line));
    }
  }
  return 0;
}
