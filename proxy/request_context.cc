#include "proxy/request_context.h"

#include <charconv>
#include <cmath>
#include <ctime>

#include <nlohmann/json.hpp>

#include "proxy/access_log.h"
#include "proxy/http.h"

namespace tokentap {

const std::string* find_header(const HeaderList& headers, std::string_view lower_name) {
  for (const Header& h : headers) {
    if (iequals(h.name, lower_name)) return &h.value;
  }
  return nullptr;
}

const char* error_type_name(ErrorType e) {
  switch (e) {
    case ErrorType::none: return "none";
    case ErrorType::bad_request: return "bad_request";
    case ErrorType::header_timeout: return "header_timeout";
    case ErrorType::request_too_large: return "request_too_large";
    case ErrorType::headers_too_large: return "headers_too_large";
    case ErrorType::overloaded: return "overloaded";
    case ErrorType::request_buffer_full: return "request_buffer_full";
    case ErrorType::no_route: return "no_route";
    case ErrorType::upstream_connect_error: return "upstream_connect_error";
    case ErrorType::upstream_tls_error: return "upstream_tls_error";
    case ErrorType::upstream_protocol_error: return "upstream_protocol_error";
    case ErrorType::upstream_reset: return "upstream_reset";
    case ErrorType::timeout: return "timeout";
    case ErrorType::client_cancelled: return "client_cancelled";
    case ErrorType::shutting_down: return "shutting_down";
    case ErrorType::budget_exceeded: return "budget_exceeded";
    case ErrorType::runaway_session: return "runaway_session";
    case ErrorType::internal: return "internal";
  }
  return "internal";
}

int error_status(ErrorType e) {
  switch (e) {
    case ErrorType::none: return 200;
    case ErrorType::bad_request: return 400;
    case ErrorType::header_timeout: return 408;
    case ErrorType::request_too_large: return 413;
    case ErrorType::headers_too_large: return 431;
    case ErrorType::overloaded:
    case ErrorType::request_buffer_full: return 503;
    case ErrorType::no_route: return 404;
    case ErrorType::upstream_connect_error:
    case ErrorType::upstream_tls_error:
    case ErrorType::upstream_protocol_error:
    case ErrorType::upstream_reset: return 502;
    case ErrorType::timeout: return 504;
    case ErrorType::client_cancelled: return 499;
    case ErrorType::shutting_down: return 503;
    case ErrorType::budget_exceeded:
    case ErrorType::runaway_session: return 429;
    case ErrorType::internal: return 500;
  }
  return 500;
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
  string_field("error_type", error_type_name(ctx.error));
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
