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

// Writes one JSON object straight into a string (this runs for every request): the same JSON that
// an nlohmann::ordered_json of these fields would dump, strings escaped by append_json_string.
class JsonLine {
 public:
  explicit JsonLine(std::string& out) : line_(out) {}

  void key(std::string_view name) {
    // `,"name":` (no comma after the opening brace: every field is inside an open object),
    // written in one go: a line has ~40 fields.
    const bool first = line_.back() == '{';
    const size_t at = line_.size();
    line_.resize(at + name.size() + (first ? 3 : 4));
    char* p = line_.data() + at;
    if (!first) *p++ = ',';
    *p++ = '"';
    p = std::copy(name.begin(), name.end(), p);
    *p++ = '"';
    *p = ':';
  }
  void string_field(std::string_view name, std::string_view value) {
    key(name);
    append_json_string(line_, value);
  }
  template <typename T>
  void integer_field(std::string_view name, T value) {
    key(name);
    append_integer(value);
  }
  void bool_field(std::string_view name, bool value) {
    key(name);
    line_ += value ? "true" : "false";
  }
  void null_field(std::string_view name) {
    key(name);
    line_ += "null";
  }
  void number_field(std::string_view name, double value) {
    key(name);
    if (!std::isfinite(value)) {
      line_ += "null";
      return;
    }
    char buf[64];
    char* end = nlohmann::detail::to_chars(buf, buf + sizeof buf, value);  // as dump() prints
    line_.append(buf, end);
  }
  void millis_field(std::string_view name, double ms) {
    number_field(name, std::round(ms * 1000) / 1000);
  }
  void open_object(std::string_view name) {
    key(name);
    line_ += '{';
  }
  void close_object() { line_ += '}'; }
  template <typename T>
  void append_integer(T value) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    line_.append(buf, end);
  }
  std::string& text() { return line_; }

 private:
  std::string& line_;
};

void request_fields(JsonLine& w, const RequestContext& ctx,
                    std::chrono::system_clock::time_point wall_end) {
  w.string_field("time", utc_timestamp(wall_end));
  w.string_field("request_id", ctx.request_id);
  w.string_field("upstream_request_id", ctx.upstream_request_id);
  w.string_field("agent", ctx.agent);
  w.string_field("session", ctx.session);
  w.string_field("method", ctx.method);
  w.string_field("path", ctx.path);
  w.string_field("route", ctx.route ? std::string_view(ctx.route->name) : std::string_view());
  w.string_field("upstream",
                 ctx.route ? std::string_view(ctx.route->upstream_text) : std::string_view());
  w.integer_field("status", ctx.status);
  w.integer_field("upstream_status", ctx.upstream_status);
  ErrorOutcome outcome = ctx.outcome();
  w.string_field("error_type", outcome.error_type);
  if (outcome.failed()) w.string_field("error_stage", error_stage_name(outcome.stage));
  if (ctx.error != ErrorType::none) w.string_field("proxy_error", error_type_name(ctx.error));
  if (!ctx.error_detail.empty()) w.string_field("error_detail", ctx.error_detail);
  w.millis_field("duration_ms", millis_between(ctx.start, ctx.end));
  double first_byte = millis_between(ctx.start, ctx.first_response_byte);
  if (first_byte >= 0) w.millis_field("upstream_first_byte_ms", first_byte);
  w.integer_field("bytes_in", ctx.request_body_bytes);
  w.integer_field("bytes_out", ctx.response_body_bytes);
  w.string_field("client", ctx.client_address);
  w.string_field("key_id", ctx.key_id);
  w.bool_field("upstream_connection_reused", ctx.reused_connection);
}

// tool_calls counts every call by name, whoever ran it; server_tool_calls (only when there were
// any) repeats the ones the provider ran itself.
void tool_count_field(JsonLine& w, std::string_view name, const LlmSummary& llm, bool server_only) {
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
  w.open_object(name);
  bool first = true;
  for (const auto& [tool, count] : counts) {
    if (!first) w.text() += ',';
    first = false;
    append_json_string(w.text(), tool);
    w.text() += ':';
    w.append_integer(count);
  }
  w.close_object();
}

// One entry per tool result the request carried (only when it carried any): the tool, its
// status, and duration_ms, the agent's time running it, when the call that asked for it was
// known.
void tool_results_field(JsonLine& w, const LlmSummary& llm) {
  if (llm.tool_results.empty()) return;
  w.key("tool_results");
  w.text() += '[';
  for (const ToolResultOutcome& r : llm.tool_results) {
    if (w.text().back() != '[') w.text() += ',';
    w.text() += '{';
    w.string_field("tool", r.tool);
    w.string_field("status", tool_result_status(r));
    if (r.seconds >= 0) w.millis_field("duration_ms", r.seconds * 1000);
    w.close_object();
  }
  w.text() += ']';
}

void llm_fields(JsonLine& w, const LlmSummary& llm) {
  w.string_field("provider", llm.provider);
  w.string_field("operation", llm.operation);
  w.string_field("model", llm.model);
  w.string_field("response_model", llm.response_model);
  w.bool_field("stream", llm.stream);
  w.open_object("tokens");
  w.integer_field("input", llm.billed.input);
  w.integer_field("output", llm.billed.output);
  w.integer_field("cache_read", llm.billed.cache_read);
  w.integer_field("cache_write", llm.billed.cache_write);
  w.integer_field("reasoning", llm.billed.reasoning);
  if (llm.billed.cache_write_1h != 0) w.integer_field("cache_write_1h", llm.billed.cache_write_1h);
  w.close_object();
  w.string_field("usage_source", llm.usage_source);
  if (!llm.usage_missing_reason.empty()) {
    w.string_field("usage_missing_reason", llm.usage_missing_reason);
  }
  if (llm.estimated_input + llm.estimated_output > 0) {
    w.open_object("estimated_tokens");
    w.integer_field("input", llm.estimated_input);
    w.integer_field("output", llm.estimated_output);
    w.close_object();
  }
  if (llm.ttft_seconds >= 0) w.millis_field("ttft_ms", llm.ttft_seconds * 1000);
  if (!llm.service_tier.empty()) w.string_field("service_tier", llm.service_tier);
  if (!llm.pricing_version.empty()) w.string_field("pricing_version", llm.pricing_version);
  if (llm.priced) {
    w.number_field("cost_usd",
                   static_cast<double>(llm.nano_usd) / static_cast<double>(pricing::kNanoPerUsd));
    w.string_field("priced_as", llm.priced_as);
    w.string_field("pricing_rule", llm.pricing_rule);
  } else if (llm.unpriced) {
    w.null_field("cost_usd");
    w.bool_field("unpriced", true);
    w.string_field("unpriced_reason", llm.unpriced_reason);
    if (!llm.pricing_rule.empty()) w.string_field("pricing_rule", llm.pricing_rule);
  }
  if (llm.provider_error.present()) {
    w.open_object("provider_error");
    w.string_field("type", llm.provider_error.type);
    w.string_field("code", llm.provider_error.code);
    w.string_field("message", llm.provider_error.message);
    w.close_object();
  }
  w.string_field("finish_reason", llm.finish_reason);
  tool_count_field(w, "tool_calls", llm, false);
  tool_count_field(w, "server_tool_calls", llm, true);
  tool_results_field(w, llm);
  if (llm.stream_usage_added) w.bool_field("stream_usage_added", true);
  if (llm.parse_error_count > 0) w.integer_field("parse_errors", llm.parse_error_count);
}

}  // namespace

std::string access_log_line(const RequestContext& ctx,
                            std::chrono::system_clock::time_point wall_end) {
  std::string line;
  line.reserve(1024);
  line += '{';
  JsonLine w(line);
  request_fields(w, ctx, wall_end);
  if (ctx.llm.metered) llm_fields(w, ctx.llm);
  line += '}';
  return line;
}

void AccessLogSink::on_request_end(const RequestContext& ctx) {
  log_.write(access_log_line(ctx, ctx.wall_end));
}

}  // namespace tokentap
