#include "proxy/telemetry/access_log.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>
#include <utility>
#include <vector>

#include "common/log.h"
#include "common/text.h"
#include "pricing/cost.h"
#include "proxy/http/http1.h"

namespace tokentap {

namespace {

double millis_between(Clock::time_point from, Clock::time_point to) {
  if (from == Clock::time_point{} || to == Clock::time_point{}) return -1;
  return std::chrono::duration<double, std::milli>(to - from).count();
}

}  // namespace

// The log line's fields in their documented order, one statement each.
// NOLINTNEXTLINE(readability-function-size)
std::string access_log_line(const RequestContext& ctx,
                            std::chrono::system_clock::time_point wall_end) {
  // Written straight into one string (this runs for every request): the same JSON that an
  // nlohmann::ordered_json of these fields would dump, strings escaped by append_json_string.
  std::string line;
  line.reserve(1024);
  auto key = [&](std::string_view name) {
    line += line.empty() ? "{\"" : ",\"";
    line += name;
    line += "\":";
  };
  auto string_field = [&](std::string_view name, std::string_view value) {
    key(name);
    append_json_string(line, value);
  };
  auto integer_field = [&](std::string_view name, auto value) {
    key(name);
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    line.append(buf, end);
  };
  auto millis_field = [&](std::string_view name, double ms) {
    key(name);
    double rounded = std::round(ms * 1000) / 1000;
    if (!std::isfinite(rounded)) {
      line += "null";
      return;
    }
    char buf[64];
    char* end = nlohmann::detail::to_chars(buf, buf + sizeof buf, rounded);  // as dump() prints
    line.append(buf, end);
  };
  string_field("time", utc_timestamp(wall_end));
  string_field("request_id", ctx.request_id);
  string_field("upstream_request_id", ctx.upstream_request_id);
  string_field("agent", ctx.agent);
  string_field("session", ctx.session);
  string_field("method", ctx.method);
  string_field("path", ctx.path);
  string_field("route", ctx.route ? std::string_view(ctx.route->name) : std::string_view());
  string_field("upstream",
               ctx.route ? std::string_view(ctx.route->upstream_text) : std::string_view());
  integer_field("status", ctx.status);
  integer_field("upstream_status", ctx.upstream_status);
  ErrorOutcome outcome = ctx.outcome();
  string_field("error_type", outcome.error_type);
  if (outcome.failed()) string_field("error_stage", error_stage_name(outcome.stage));
  if (ctx.error != ErrorType::none) string_field("proxy_error", error_type_name(ctx.error));
  if (!ctx.error_detail.empty()) string_field("error_detail", ctx.error_detail);
  millis_field("duration_ms", millis_between(ctx.start, ctx.end));
  double first_byte = millis_between(ctx.start, ctx.first_response_byte);
  if (first_byte >= 0) millis_field("upstream_first_byte_ms", first_byte);
  integer_field("bytes_in", ctx.request_body_bytes);
  integer_field("bytes_out", ctx.response_body_bytes);
  string_field("client", ctx.client_address);
  string_field("key_id", ctx.key_id);
  key("upstream_connection_reused");
  line += ctx.reused_connection ? "true" : "false";
  if (ctx.llm.metered) {
    const LlmSummary& llm = ctx.llm;
    string_field("provider", llm.provider);
    string_field("operation", llm.operation);
    string_field("model", llm.model);
    string_field("response_model", llm.response_model);
    key("stream");
    line += llm.stream ? "true" : "false";
    key("tokens");
    size_t tokens_start = line.size();
    integer_field("input", llm.billed.input);
    line[tokens_start] = '{';
    integer_field("output", llm.billed.output);
    integer_field("cache_read", llm.billed.cache_read);
    integer_field("cache_write", llm.billed.cache_write);
    integer_field("reasoning", llm.billed.reasoning);
    if (llm.billed.cache_write_1h != 0) integer_field("cache_write_1h", llm.billed.cache_write_1h);
    line += '}';
    string_field("usage_source", llm.usage_source);
    if (!llm.usage_missing_reason.empty()) {
      string_field("usage_missing_reason", llm.usage_missing_reason);
    }
    if (llm.ttft_seconds >= 0) millis_field("ttft_ms", llm.ttft_seconds * 1000);
    if (!llm.pricing_version.empty()) string_field("pricing_version", llm.pricing_version);
    if (llm.priced) {
      key("cost_usd");
      double usd = static_cast<double>(llm.nano_usd) / static_cast<double>(pricing::kNanoPerUsd);
      char buf[64];
      char* end = nlohmann::detail::to_chars(buf, buf + sizeof buf, usd);
      line.append(buf, end);
      string_field("priced_as", llm.priced_as);
    } else if (llm.unpriced) {
      key("cost_usd");
      line += "null";
      key("unpriced");
      line += "true";
    }
    if (llm.provider_error.present()) {
      key("provider_error");
      size_t start = line.size();
      string_field("type", llm.provider_error.type);
      line[start] = '{';
      string_field("code", llm.provider_error.code);
      string_field("message", llm.provider_error.message);
      line += '}';
    }
    string_field("finish_reason", llm.finish_reason);
    // tool_calls counts every call by name, whoever ran it; server_tool_calls (only when there
    // were any) repeats the ones the provider ran itself.
    auto tool_counts = [&](std::string_view name, bool server_only) {
      std::vector<std::pair<std::string_view, uint64_t>> counts;
      for (const ToolCallCount& t : llm.tool_calls) {
        if (server_only && t.kind != ToolKind::server) continue;
        auto it = std::find_if(counts.begin(), counts.end(),
                               [&](const auto& c) { return c.first == t.name; });
        if (it == counts.end()) {
          counts.emplace_back(t.name, t.count);
        } else {
          it->second = server_only ? t.count : it->second + t.count;
        }
      }
      if (server_only && counts.empty()) return;
      key(name);
      line += '{';
      for (const auto& [tool, count] : counts) {
        if (line.back() != '{') line += ',';
        append_json_string(line, tool);
        line += ':';
        char buf[24];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, count);
        line.append(buf, end);
      }
      line += '}';
    };
    tool_counts("tool_calls", false);
    tool_counts("server_tool_calls", true);
    if (llm.stream_usage_added) {
      key("stream_usage_added");
      line += "true";
    }
    if (llm.parse_error_count > 0) integer_field("parse_errors", llm.parse_error_count);
  }
  line += '}';
  return line;
}

void AccessLogSink::on_request_end(const RequestContext& ctx) {
  log_.write(access_log_line(ctx, ctx.wall_end));
}

}  // namespace tokentap
