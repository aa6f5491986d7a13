#include "proxy/request_context.h"

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
    case ErrorType::overloaded: return 503;
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
  nlohmann::ordered_json line;
  line["time"] = utc_timestamp(wall_end);
  line["request_id"] = ctx.request_id;
  line["upstream_request_id"] = ctx.upstream_request_id;
  line["agent"] = ctx.agent;
  line["session"] = ctx.session;
  line["method"] = ctx.method;
  line["path"] = ctx.path;
  line["route"] = ctx.route ? ctx.route->name : "";
  line["upstream"] = ctx.route ? ctx.route->upstream_text : "";
  line["status"] = ctx.status;
  line["upstream_status"] = ctx.upstream_status;
  line["error_type"] = error_type_name(ctx.error);
  if (!ctx.error_detail.empty()) line["error_detail"] = ctx.error_detail;
  line["duration_ms"] = std::round(millis_between(ctx.start, ctx.end) * 1000) / 1000;
  double first_byte = millis_between(ctx.start, ctx.first_response_byte);
  if (first_byte >= 0) line["upstream_first_byte_ms"] = std::round(first_byte * 1000) / 1000;
  line["bytes_in"] = ctx.request_body_bytes;
  line["bytes_out"] = ctx.response_body_bytes;
  line["client"] = ctx.client_address;
  line["key_id"] = ctx.key_id;
  line["upstream_connection_reused"] = ctx.reused_connection;
  for (const auto& [key, value] : ctx.log_fields.items()) line[key] = value;
  return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace tokentap
