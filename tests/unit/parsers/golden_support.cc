#include "tests/unit/parsers/golden_support.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace tokentap::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::string_view kSidecarSuffix = ".expect.json";

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::optional<ApiProvider> provider_from_name(const std::string& name) {
  for (ApiProvider p :
       {ApiProvider::openai, ApiProvider::azure_openai, ApiProvider::openai_compatible,
        ApiProvider::anthropic, ApiProvider::gemini}) {
    if (name == api_provider_name(p)) return p;
  }
  throw std::runtime_error("unknown provider " + name);
}

ContentEncoding encoding_from_name(const std::string& name) {
  for (ContentEncoding e : {ContentEncoding::identity, ContentEncoding::gzip,
                            ContentEncoding::deflate, ContentEncoding::br}) {
    if (name == content_encoding_name(e)) return e;
  }
  throw std::runtime_error("unknown encoding " + name);
}

std::vector<TestHeader> headers_from(const json& object) {
  std::vector<TestHeader> headers;
  if (object.is_null()) return headers;
  for (const auto& [name, value] : object.items()) {
    headers.push_back({name, value.get<std::string>()});
  }
  return headers;
}

Recording load_one(const fs::path& dir, const std::string& stem) {
  const json sidecar = json::parse(read_file(dir / (stem + std::string(kSidecarSuffix))));
  Recording rec;
  rec.name = dir.filename().string() + "/" + stem;
  if (sidecar.contains("route_provider")) {
    rec.route_provider = provider_from_name(sidecar.at("route_provider").get<std::string>());
  }
  rec.method = sidecar.value("method", "POST");
  rec.target = sidecar.at("target").get<std::string>();
  rec.request_headers = headers_from(sidecar.value("request_headers", json()));
  rec.status = sidecar.at("status").get<int>();
  rec.response_headers = headers_from(sidecar.value("response_headers", json()));
  if (sidecar.contains("encodings")) {
    for (const json& e : sidecar.at("encodings")) {
      rec.encodings.push_back(encoding_from_name(e.get<std::string>()));
    }
  } else {
    rec.encodings = {ContentEncoding::identity, ContentEncoding::gzip, ContentEncoding::deflate,
                     ContentEncoding::br};
  }
  rec.expected_facts = sidecar.at("facts");
  rec.expected_pricing = sidecar.value("pricing", json());

  const fs::path request = dir / (stem + ".request.json");
  if (fs::exists(request)) rec.request_body = read_file(request);
  int responses = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    const std::string file = entry.path().filename().string();
    if (file.rfind(stem + ".response.", 0) == 0) {
      rec.response_body = read_file(entry.path());
      ++responses;
    }
  }
  if (responses != 1) throw std::runtime_error(rec.name + ": expected one response file");
  return rec;
}

}  // namespace

std::vector<Recording> load_recordings(const std::string& dir_name) {
  const fs::path dir = fs::path(TOKENTAP_GOLDEN_DIR) / dir_name;
  std::vector<std::string> stems;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    const std::string file = entry.path().filename().string();
    if (file.size() > kSidecarSuffix.size() &&
        file.compare(file.size() - kSidecarSuffix.size(), kSidecarSuffix.size(), kSidecarSuffix) ==
            0) {
      stems.push_back(file.substr(0, file.size() - kSidecarSuffix.size()));
    }
  }
  std::sort(stems.begin(), stems.end());
  std::vector<Recording> recordings;
  for (const std::string& stem : stems) recordings.push_back(load_one(dir, stem));
  return recordings;
}

json facts_to_json(const LlmFacts& f) {
  json j;
  j["provider"] = api_provider_name(f.provider);
  j["operation"] = operation_name(f.operation);
  if (!f.requested_model.empty()) j["requested_model"] = f.requested_model;
  if (!f.response_model.empty()) j["response_model"] = f.response_model;
  j["stream"] = f.stream;
  if (f.stream_options_present) j["stream_options_present"] = true;
  if (f.include_usage_requested) j["include_usage_requested"] = true;
  const TokenUsage& u = f.usage;
  if (u.present || u.input != 0 || u.output != 0 || u.cache_read != 0 || u.cache_write != 0 ||
      u.reasoning != 0) {
    j["usage"] = {{"present", u.present},         {"input", u.input},
                  {"output", u.output},           {"cache_read", u.cache_read},
                  {"cache_write", u.cache_write}, {"reasoning", u.reasoning}};
    if (u.cache_write_1h != 0) j["usage"]["cache_write_1h"] = u.cache_write_1h;
    for (const auto& [name, count] : {std::pair{"input_audio", u.input_audio},
                                      {"input_image", u.input_image},
                                      {"output_audio", u.output_audio},
                                      {"output_image", u.output_image},
                                      {"tool_use_prompt", u.tool_use_prompt}}) {
      if (count != 0) j["usage"][name] = count;
    }
  }
  if (!u.service_tier.empty()) j["service_tier"] = u.service_tier;
  if (!u.inference_geo.empty()) j["inference_geo"] = u.inference_geo;
  if (f.usage_not_reported_by_api) j["usage_not_reported_by_api"] = true;
  if (!f.finish_reason.empty()) j["finish_reason"] = f.finish_reason;
  // Calls the client is to run under "tool_calls", calls the provider ran under
  // "server_tool_calls".
  for (const ToolCallCount& t : f.tool_calls) {
    const char* key = t.kind == ToolKind::server ? "server_tool_calls" : "tool_calls";
    j[key][t.name] = t.count;
  }
  if (!f.tool_results.empty()) {
    json results = json::array();
    for (const ToolResultCount& r : f.tool_results) {
      results.push_back({{"tool", r.tool}, {"status", tool_result_status(r)}, {"count", r.count}});
    }
    j["tool_results"] = results;
  }
  // The calls the client is to run, as matched later to their results: id, name and the
  // argument hash (hex) that spots a repeated call.
  if (!f.tool_call_refs.empty()) {
    json refs = json::array();
    for (const ToolCallRef& r : f.tool_call_refs) {
      char hash[17];
      std::snprintf(hash, sizeof hash, "%016" PRIx64, r.arguments_hash);
      refs.push_back({{"id", r.call_id}, {"name", r.name}, {"arguments_hash", hash}});
    }
    j["tool_call_refs"] = refs;
  }
  if (!f.tool_result_refs.empty()) {
    json refs = json::array();
    for (const ToolResultRef& r : f.tool_result_refs) {
      refs.push_back(
          {{"id", r.call_id}, {"name", r.name}, {"status", r.is_error ? "error" : "success"}});
    }
    j["tool_result_refs"] = refs;
  }
  j["http_status"] = f.http_status;
  if (f.error.present() || f.error.http_status != 0) {
    json error = {{"http_status", f.error.http_status}};
    if (!f.error.type.empty()) error["type"] = f.error.type;
    if (!f.error.code.empty()) error["code"] = f.error.code;
    if (!f.error.message.empty()) error["message"] = f.error.message;
    j["error"] = error;
  }
  j["error_class"] = error_class_name(f.error_class);
  if (!f.upstream_request_id.empty()) j["upstream_request_id"] = f.upstream_request_id;
  json limits = json::object();
  for (size_t i = 0; i < kRateLimitResourceCount; ++i) {
    const RateLimit& r = f.rate_limits[i];
    json entry = json::object();
    if (r.limit >= 0) entry["limit"] = r.limit;
    if (r.remaining >= 0) entry["remaining"] = r.remaining;
    if (r.reset_ms >= 0) entry["reset_ms"] = r.reset_ms;
    if (!entry.empty()) limits[rate_limit_resource_name(static_cast<RateLimitResource>(i))] = entry;
  }
  if (!limits.empty()) j["rate_limits"] = limits;
  if (f.retry_after_ms >= 0) j["retry_after_ms"] = f.retry_after_ms;
  j["response_complete"] = f.response_complete;
  j["content_events"] = f.content_events;
  if (f.parse_error_count() > 0) {
    json errors = json::object();
    for (size_t i = 0; i < kParseErrorKindCount; ++i) {
      if (f.parse_errors[i] > 0) {
        errors[parse_error_kind_name(static_cast<ParseErrorKind>(i))] = f.parse_errors[i];
      }
    }
    j["parse_errors"] = errors;
  }
  return j;
}

ReplayResult replay(const Recording& rec, ContentEncoding encoding, const std::string& body,
                    const std::vector<size_t>& cuts) {
  std::unique_ptr<LlmParser> parser = LlmParser::create(rec.route_provider, rec.method, rec.target);
  if (parser == nullptr) throw std::runtime_error("no parser for " + rec.name);
  parser->on_request_headers(rec.request_headers);
  if (!rec.request_body.empty()) parser->on_request_body(rec.request_body);
  std::vector<TestHeader> headers = rec.response_headers;
  if (encoding != ContentEncoding::identity) {
    headers.push_back({"Content-Encoding", content_encoding_name(encoding)});
  }
  parser->on_response_headers(rec.status, headers);

  ReplayResult result;
  size_t feeds = 0;
  auto feed = [&](std::string_view chunk) {
    const FeedResult r = parser->feed(chunk);
    if (r.first_content) {
      ++result.first_content_feeds;
      result.first_content_at = std::min(result.first_content_at, feeds);
    }
    if (r.content) ++result.content_feeds;
    ++feeds;
  };
  size_t pos = 0;
  for (size_t cut : cuts) {
    feed(std::string_view(body).substr(pos, cut - pos));
    pos = cut;
  }
  feed(std::string_view(body).substr(pos));
  parser->finish();
  result.raw_facts = parser->facts();
  result.facts = facts_to_json(result.raw_facts);
  return result;
}

}  // namespace tokentap::test
