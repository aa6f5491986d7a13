#include "proxy/request_context.h"

#include <charconv>
#include <cmath>
#include <ctime>
#include <iterator>

#include <nlohmann/json.hpp>

#include "pricing/cost.h"
#include "proxy/access_log.h"
#include "proxy/http.h"

namespace tokentap {

const std::string* find_header(const HeaderList& headers, std::string_view lower_name) {
  for (const Header& h : headers) {
    if (iequals(h.name, lower_name)) return &h.value;
  }
  return nullptr;
}

namespace {

using S = ErrorStage;

// One row per ErrorType, in enum order.
constexpr ErrorTypeInfo kErrorTable[] = {
    {ErrorType::none, "none", 200, "none", S::none},
    {ErrorType::bad_request, "bad_request", 400, "invalid_request", S::downstream},
    {ErrorType::header_timeout, "header_timeout", 408, "timeout", S::downstream},
    {ErrorType::request_too_large, "request_too_large", 413, "request_too_large", S::downstream},
    {ErrorType::headers_too_large, "headers_too_large", 431, "request_too_large", S::downstream},
    {ErrorType::overloaded, "overloaded", 503, "overloaded", S::proxy},
    {ErrorType::request_buffer_full, "request_buffer_full", 503, "overloaded", S::proxy},
    {ErrorType::no_route, "no_route", 404, "not_found", S::downstream},
    {ErrorType::upstream_connect_error, "upstream_connect_error", 502, "connect_error",
     S::upstream},
    {ErrorType::upstream_tls_error, "upstream_tls_error", 502, "tls_error", S::upstream},
    {ErrorType::upstream_protocol_error, "upstream_protocol_error", 502, "protocol_error",
     S::upstream},
    {ErrorType::upstream_reset, "upstream_reset", 502, "upstream_error", S::upstream},
    {ErrorType::timeout, "timeout", 504, "timeout", S::upstream},
    {ErrorType::client_cancelled, "client_cancelled", 499, "client_cancelled", S::downstream},
    {ErrorType::shutting_down, "shutting_down", 503, "shutting_down", S::proxy},
    {ErrorType::budget_exceeded, "budget_exceeded", 429, "budget_exceeded", S::proxy},
    {ErrorType::runaway_session, "runaway_session", 429, "runaway_session", S::proxy},
    {ErrorType::internal, "internal", 500, "internal", S::proxy},
};

constexpr bool error_table_complete() {
  if (std::size(kErrorTable) != kErrorTypeCount) return false;
  for (size_t i = 0; i < std::size(kErrorTable); ++i) {
    if (static_cast<size_t>(kErrorTable[i].type) != i || kErrorTable[i].name == nullptr) {
      return false;
    }
  }
  return true;
}
static_assert(error_table_complete(), "kErrorTable needs one row per ErrorType, in enum order");

}  // namespace

const ErrorTypeInfo& error_info(ErrorType e) {
  size_t i = static_cast<size_t>(e);
  return i < std::size(kErrorTable) ? kErrorTable[i] : kErrorTable[kErrorTypeCount - 1];
}

const char* error_stage_name(ErrorStage s) {
  switch (s) {
    case ErrorStage::none: return "none";
    case ErrorStage::downstream: return "downstream";
    case ErrorStage::proxy: return "proxy";
    case ErrorStage::upstream: return "upstream";
    case ErrorStage::provider: return "provider";
  }
  return "none";
}

ErrorOutcome request_outcome(ErrorType proxy_error, int status, ErrorClass provider_class) {
  if (proxy_error != ErrorType::none) {
    const ErrorTypeInfo& info = error_info(proxy_error);
    return {info.error_type, info.stage};
  }
  if (provider_class == ErrorClass::none && status >= 400) {
    provider_class = classify_provider_error(status, ProviderError{});
  }
  if (provider_class != ErrorClass::none) {
    return {error_class_name(provider_class), ErrorStage::provider};
  }
  return {};
}

namespace {

double millis_between(Clock::time_point from, Clock::time_point to) {
  if (from == Clock::time_point{} || to == Clock::time_point{}) return -1;
  return std::chrono::duration<double, std::milli>(to - from).count();
}

}  // namespace

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
  }
  if (!ctx.log_fields.empty()) {
    std::string fields =
        ctx.log_fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    // "{...}" of the observer's fields, spliced in after the core ones.
    line += ',';
    line.append(fields, 1, fields.size() - 2);
  }
  line += '}';
  return line;
}

}  // namespace tokentap
