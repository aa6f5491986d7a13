// LlmParser (parsers/llm_parser.h) for every provider and operation: the facts must not depend
// on how the response body is split, a correctly compressed body must give the facts of its
// plain text, nothing may throw, and every string kept in the facts must respect its documented
// bounds (labels cleaned and capped, error messages redacted).
//
// Input: [provider] [target] [method] [status] [content-type] [encoding] [limits] [flags]
//        [4 cuts: 2 bytes each] request body "\n@@@@\n" response headers "\n@@@@\n" response body
// Response headers are "Name: value" lines.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "parsers/content_decoder.h"
#include "parsers/llm_facts.h"
#include "parsers/llm_parser.h"
#include "tests/support/fuzz_support.h"

namespace tokentap::fuzz {
namespace {

constexpr std::optional<ApiProvider> kProviders[] = {std::nullopt,
                                                     ApiProvider::openai,
                                                     ApiProvider::azure_openai,
                                                     ApiProvider::openai_compatible,
                                                     ApiProvider::anthropic,
                                                     ApiProvider::gemini};

constexpr std::string_view kTargets[] = {
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/responses",
    "/v1/embeddings",
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/v1beta/models/gemini-2.0-flash:generateContent",
    "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
    "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
    "/v1beta/models/text-embedding-004:embedContent",
    "/v1beta/models/text-embedding-004:batchEmbedContents",
    "/v1beta/models/gemini-2.0-flash:countTokens",
    "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21",
    "/openai/v1/chat/completions",
    "/v1/models",
    "/api/v1/chat/completions",
};

constexpr int kStatuses[] = {200, 200, 200, 201, 204, 304, 100, 400, 401, 403,
                             404, 408, 413, 422, 429, 500, 502, 503, 504, 529};

constexpr std::string_view kContentTypes[] = {
    "",
    "application/json",
    "application/json; charset=utf-8",
    "text/event-stream",
    "text/event-stream; charset=utf-8",
    "TEXT/EVENT-STREAM",
    "application/x-ndjson",
    "text/html",
    "text/plain",
};

enum class Body { plain, gzip, zlib, raw_deflate, brotli };
struct EncodingMode {
  std::string_view header;  // Content-Encoding sent, "" for none
  Body body;                // how the fuzzer's body bytes are turned into the wire body
};
constexpr EncodingMode kEncodings[] = {
    {"", Body::plain},      {"identity", Body::plain}, {"gzip", Body::gzip},
    {"x-gzip", Body::gzip}, {"deflate", Body::zlib},   {"deflate", Body::raw_deflate},
    {"br", Body::brotli},   {"gzip", Body::plain},     {"deflate", Body::plain},
    {"br", Body::plain},    {"gzip, br", Body::plain}, {" GZIP ", Body::gzip},
};

constexpr size_t kMaxJsonBytes[] = {4u << 20, 64, 512, 4096};
constexpr size_t kDecodeChunkBytes[] = {64u << 10, 1, 7, 256};

struct TestHeader {
  std::string name;
  std::string value;
};

struct Scenario {
  std::optional<ApiProvider> provider;
  std::string_view method;
  std::string_view target;
  int status = 200;
  ParserLimits limits;
  bool request_encoded = false;
  bool send_request_body = true;
  std::string_view request_body;
  std::vector<TestHeader> response_headers;
};

struct Run {
  std::string facts;  // facts_text() of the final facts
  size_t first_content_feeds = 0;
  size_t content_feeds = 0;
  uint32_t content_events = 0;
};

std::string facts_text(const LlmFacts& f) {
  std::string out;
  auto add = [&out](std::string_view name, const std::string& value) {
    out += name;
    out += '=';
    out += printable(value, 1u << 20);
    out += '\n';
  };
  add("provider", api_provider_name(f.provider));
  add("operation", operation_name(f.operation));
  add("requested_model", f.requested_model);
  add("response_model", f.response_model);
  add("stream", std::to_string(f.stream));
  add("stream_options_present", std::to_string(f.stream_options_present));
  add("include_usage_requested", std::to_string(f.include_usage_requested));
  const TokenUsage& u = f.usage;
  add("usage", std::to_string(u.present) + " " + std::to_string(u.input) + " " +
                   std::to_string(u.output) + " " + std::to_string(u.cache_read) + " " +
                   std::to_string(u.cache_write) + " " + std::to_string(u.reasoning));
  add("usage_not_reported_by_api", std::to_string(f.usage_not_reported_by_api));
  add("finish_reason", f.finish_reason);
  for (const ToolCallCount& t : f.tool_calls)
    add("tool_call", t.name + " " + tool_kind_name(t.kind) + " " + std::to_string(t.count));
  for (const ToolResultCount& r : f.tool_results) {
    add("tool_result", r.tool + " " + tool_result_status(r) + " " + std::to_string(r.count));
  }
  add("http_status", std::to_string(f.http_status));
  add("error", std::to_string(f.error.http_status) + " " + f.error.type + " | " + f.error.code +
                   " | " + f.error.message);
  add("error_class", error_class_name(f.error_class));
  add("upstream_request_id", f.upstream_request_id);
  for (const RateLimit& r : f.rate_limits) {
    add("rate_limit", std::to_string(r.limit) + " " + std::to_string(r.remaining) + " " +
                          std::to_string(r.reset_ms));
  }
  add("retry_after_ms", std::to_string(f.retry_after_ms));
  add("response_complete", std::to_string(f.response_complete));
  add("content_events", std::to_string(f.content_events));
  for (size_t i = 0; i < kParseErrorKindCount; ++i) {
    add(parse_error_kind_name(static_cast<ParseErrorKind>(i)), std::to_string(f.parse_errors[i]));
  }
  return out;
}

void check_facts(const LlmFacts& f);

Run run(const Scenario& s, const std::vector<std::string_view>& chunks) {
  std::unique_ptr<LlmParser> parser = LlmParser::create(s.provider, s.method, s.target, s.limits);
  FUZZ_CHECK(parser != nullptr, "LlmParser::create returned nullptr");
  std::vector<TestHeader> request_headers = {{"Content-Type", "application/json"}};
  if (s.request_encoded) request_headers.push_back({"Content-Encoding", "gzip"});
  parser->on_request_headers(request_headers);
  if (s.send_request_body) parser->on_request_body(s.request_body);
  parser->on_response_headers(s.status, s.response_headers);
  Run r;
  for (std::string_view chunk : chunks) {
    const FeedResult fed = parser->feed(chunk);
    FUZZ_CHECK(!fed.first_content || fed.content, "first_content without content");
    if (fed.first_content) ++r.first_content_feeds;
    if (fed.content) ++r.content_feeds;
  }
  parser->finish();
  parser->finish();  // idempotent
  const LlmFacts& f = parser->facts();
  check_facts(f);
  r.facts = facts_text(f);
  r.content_events = f.content_events;
  return r;
}

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '*';
}

bool is_token68_char(char c) {
  return is_key_char(c) || c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
}

// Where a credential-looking token ("sk-...", "AIza...", "Bearer ...", as json_util::redact
// defines them) starts in `text`, or npos.
size_t find_credential(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (i > 0 && is_key_char(text[i - 1])) continue;
    const std::string_view s = text.substr(i);
    auto run = [&](size_t from, bool (*pred)(char)) {
      size_t n = from;
      while (n < s.size() && pred(s[n])) ++n;
      return n - from;
    };
    if (s.starts_with("sk-") && run(3, is_key_char) >= 8) return i;
    if (s.starts_with("AIza") && run(4, is_key_char) >= 20) return i;
    if (s.size() >= 7) {
      std::string head(s.substr(0, 7));
      for (char& c : head) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
      if (head == "bearer " && run(7, is_token68_char) >= 8) return i;
    }
  }
  return std::string_view::npos;
}

void check_label(std::string_view what, std::string_view value, size_t max_bytes) {
  FUZZ_CHECK(value.size() <= max_bytes,
             std::string(what) + " is " + std::to_string(value.size()) + " bytes");
  FUZZ_CHECK(is_valid_utf8(value), std::string(what) + " is not UTF-8: " + printable(value));
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    FUZZ_CHECK(u >= 0x20 && u != 0x7f,
               std::string(what) + " has a control character: " + printable(value));
  }
}

void check_facts(const LlmFacts& f) {
  check_label("requested_model", f.requested_model, 128);
  check_label("response_model", f.response_model, 128);
  check_label("finish_reason", f.finish_reason, 64);
  check_label("error.type", f.error.type, 64);
  check_label("error.code", f.error.code, 64);
  check_label("error.message", f.error.message, 256);
  check_label("upstream_request_id", f.upstream_request_id, 128);
  FUZZ_CHECK(f.tool_calls.size() <= 64,
             "tool_calls grew to " + std::to_string(f.tool_calls.size()));
  for (const ToolCallCount& t : f.tool_calls) {
    check_label("tool name", t.name, 128);
    FUZZ_CHECK(t.count > 0, "a tool call counted zero times");
  }
  FUZZ_CHECK(f.tool_results.size() <= 2048, "tool_results unbounded");
  for (const ToolResultCount& r : f.tool_results) check_label("tool result name", r.tool, 128);
  const size_t credential = find_credential(f.error.message);
  FUZZ_CHECK(credential == std::string_view::npos,
             "error.message keeps a credential-looking token at " + std::to_string(credential) +
                 ": " + printable(f.error.message));
  FUZZ_CHECK(f.error_class == classify_provider_error(f.http_status, f.error),
             "error_class is not the classification of the final error");
  if (f.error.present() || f.http_status >= 400) {
    FUZZ_CHECK(f.error.http_status == f.http_status, "error.http_status differs from http_status");
  }
  FUZZ_CHECK(f.parse_errors[static_cast<size_t>(ParseErrorKind::internal)] == 0,
             "an exception was caught inside the parser (parse_errors.internal)");
}

void check_run(const Run& r, std::string_view how) {
  FUZZ_CHECK(r.first_content_feeds <= 1, std::string(how) + ": first_content reported twice");
  FUZZ_CHECK((r.first_content_feeds == 1) == (r.content_events > 0),
             std::string(how) + ": first_content reported " +
                 std::to_string(r.first_content_feeds) + " times with " +
                 std::to_string(r.content_events) + " content events");
  FUZZ_CHECK(r.content_feeds <= r.content_events,
             std::string(how) + ": more content feeds than content events");
}

std::string encode_body(Body body, std::string_view plain, int level) {
  switch (body) {
    case Body::plain:
      return std::string(plain);
    case Body::gzip:
      return gzip_encode(plain, level);
    case Body::zlib:
      return zlib_encode(plain, level, false);
    case Body::raw_deflate:
      return zlib_encode(plain, level, true);
    case Body::brotli:
      return brotli_encode(plain, level);
  }
  return std::string(plain);
}

}  // namespace
}  // namespace tokentap::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  using namespace tokentap;
  using namespace tokentap::fuzz;
  ByteReader in(bytes, size);
  Scenario s;
  s.provider = in.pick(kProviders);
  s.target = in.pick(kTargets);
  s.method = in.byte() % 8 == 7 ? "GET" : "POST";
  s.status = in.pick(kStatuses);
  const std::string_view content_type = in.pick(kContentTypes);
  const EncodingMode encoding = in.pick(kEncodings);
  const uint8_t limits = in.byte();
  s.limits.max_json_bytes = kMaxJsonBytes[limits % 4];
  s.limits.decode_chunk_bytes = kDecodeChunkBytes[(limits >> 2) % 4];
  const int level = (limits >> 4) % 10;
  const uint8_t flags = in.byte();
  s.request_encoded = (flags & 1) != 0;
  s.send_request_body = (flags & 2) == 0;
  ByteReader cut_bytes = in.split_off(8);
  const std::vector<std::string_view> parts = in.split_rest("\n@@@@\n", 3);
  s.request_body = parts[0];
  if (!content_type.empty())
    s.response_headers.push_back({"Content-Type", std::string(content_type)});
  if (!encoding.header.empty()) {
    s.response_headers.push_back({"Content-Encoding", std::string(encoding.header)});
  }
  std::string_view header_lines = parts[1];
  while (!header_lines.empty()) {
    std::string_view line = header_lines.substr(0, header_lines.find('\n'));
    header_lines.remove_prefix(std::min(header_lines.size(), line.size() + 1));
    if (line.ends_with('\r')) line.remove_suffix(1);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (value.starts_with(' ')) value.remove_prefix(1);
    s.response_headers.push_back({std::string(line.substr(0, colon)), std::string(value)});
  }
  const std::string body = encode_body(encoding.body, parts[2], level);
  const std::vector<size_t> cuts = cut_bytes.cuts(4, body.size());

  const Run whole = run(s, {body});
  check_run(whole, "whole");
  const Run split = run(s, pieces(body, cuts));
  check_run(split, "split");
  FUZZ_CHECK(split.facts == whole.facts, "facts depend on where the body is split\n--- whole\n" +
                                             whole.facts + "--- split\n" + split.facts);
  if (body.size() <= 4096) {
    std::vector<std::string_view> bytewise;
    for (size_t i = 0; i < body.size(); ++i)
      bytewise.push_back(std::string_view(body).substr(i, 1));
    const Run one = run(s, bytewise);
    check_run(one, "bytewise");
    FUZZ_CHECK(one.facts == whole.facts, "facts differ when fed byte by byte\n--- whole\n" +
                                             whole.facts + "--- bytewise\n" + one.facts);
  }
  bool fuzzed_encoding = false;
  for (size_t i = (content_type.empty() ? 0 : 1) + 1; i < s.response_headers.size(); ++i) {
    std::string name = s.response_headers[i].name;
    for (char& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    fuzzed_encoding = fuzzed_encoding || name == "content-encoding";
  }
  if (encoding.body != Body::plain && !fuzzed_encoding) {
    // Content-Encoding is transparent: the plain body without the header gives the same facts.
    Scenario plain = s;
    plain.response_headers.erase(plain.response_headers.begin() + (content_type.empty() ? 0 : 1));
    const Run decoded = run(plain, {parts[2]});
    FUZZ_CHECK(decoded.facts == whole.facts,
               "a compressed body gives other facts than its plain text\n--- compressed\n" +
                   whole.facts + "--- plain\n" + decoded.facts);
  }
  return 0;
}
