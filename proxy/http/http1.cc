#include "proxy/http/http1.h"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

#include "parsers/endpoint.h"

namespace tokentap {

namespace {

bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

}  // namespace

bool is_hop_by_hop(std::string_view name) {
  static constexpr std::array<std::string_view, 9> kHopByHop = {
      "connection",        "keep-alive",        "proxy-connection", "te",
      "trailer",           "transfer-encoding", "upgrade",          "proxy-authorization",
      "proxy-authenticate"};
  return std::any_of(kHopByHop.begin(), kHopByHop.end(),
                     [&](std::string_view h) { return iequals(h, name); });
}

std::vector<std::string> connection_tokens(const HeaderList& headers) {
  return list_tokens(headers, "connection");
}

std::vector<std::string> list_tokens(const HeaderList& headers, std::string_view name) {
  std::vector<std::string> tokens;
  for (const Header& h : headers) {
    if (!iequals(h.name, name)) continue;
    std::string_view rest = h.value;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string_view item = trim(rest.substr(0, comma));
      if (!item.empty()) tokens.push_back(to_lower(item));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return tokens;
}

bool is_token(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return is_tchar(static_cast<unsigned char>(c)); });
}

bool is_sane_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

std::string uuid_v4(std::mt19937_64& rng) {
  uint64_t hi = rng();
  uint64_t lo = rng();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
  // 8-4-4-4-12 hex digits of hi then lo, most significant first (no printf on every request).
  std::string out(36, '-');
  constexpr std::string_view kHexDigits = "0123456789abcdef";
  size_t at = 0;
  for (int nibble = 0; nibble < 32; ++nibble) {
    if (at == 8 || at == 13 || at == 18 || at == 23) ++at;
    const uint64_t word = nibble < 16 ? hi : lo;
    out[at++] = kHexDigits[(word >> (60 - 4 * (nibble % 16))) & 0xf];
  }
  return out;
}

bool is_json_content_type(std::string_view content_type) {
  std::string_view media = trim(content_type.substr(0, content_type.find(';')));
  std::string lower = to_lower(media);
  if (lower == "application/json") return true;
  return lower.starts_with("application/") && lower.ends_with("+json");
}

std::string_view status_reason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 529:
      return "Site Overloaded";
    default:
      return "";
  }
}

std::optional<ApiProvider> api_provider_for(Provider p) {
  switch (p) {
    case Provider::openai:
      return ApiProvider::openai;
    case Provider::anthropic:
      return ApiProvider::anthropic;
    case Provider::gemini:
      return ApiProvider::gemini;
    case Provider::azure_openai:
      return ApiProvider::azure_openai;
    case Provider::openai_compatible:
      return ApiProvider::openai_compatible;
    case Provider::auto_detect:
      return std::nullopt;
  }
  return std::nullopt;
}

ErrorShape error_shape(const Route* route, std::string_view method, std::string_view target) {
  if (route == nullptr) return ErrorShape::openai;
  switch (classify_endpoint(api_provider_for(route->provider), method, target).format) {
    case WireFormat::anthropic:
      return ErrorShape::anthropic;
    case WireFormat::gemini:
      return ErrorShape::gemini;
    case WireFormat::openai:
      return ErrorShape::openai;
  }
  return ErrorShape::openai;
}

RetryAdvice retry_after(int64_t seconds) {
  seconds = std::max<int64_t>(seconds, 1);
  RetryAdvice advice{.after_seconds = seconds, .should_retry = std::nullopt};
  if (seconds > kLongestRetryWait) advice.should_retry = false;
  return advice;
}

namespace {

// The provider's words for an error of this kind and status.
struct ErrorVocabulary {
  std::string_view openai_type;
  std::string_view anthropic_type;
  std::string_view gemini_status;
};

ErrorVocabulary error_vocabulary(ErrorType type, int status) {
  // Clients that read the type do not retry a used-up quota (a spent budget).
  if (error_info(type).spent_quota) {
    return {"insufficient_quota", "rate_limit_error", "RESOURCE_EXHAUSTED"};
  }
  switch (status) {
    case 404:
      return {"invalid_request_error", "not_found_error", "NOT_FOUND"};
    case 408:
      return {"invalid_request_error", "invalid_request_error", "DEADLINE_EXCEEDED"};
    case 413:
      return {"invalid_request_error", "request_too_large", "INVALID_ARGUMENT"};
    case 429:
      return {"rate_limit_error", "rate_limit_error", "RESOURCE_EXHAUSTED"};
    case 499:
      return {"invalid_request_error", "invalid_request_error", "CANCELLED"};
    case 502:
      return {"server_error", "api_error", "UNAVAILABLE"};
    case 503:
      return {"service_unavailable_error", "overloaded_error", "UNAVAILABLE"};
    case 504:
      return {"server_error", "timeout_error", "DEADLINE_EXCEEDED"};
    default:
      break;
  }
  if (status < 500) return {"invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT"};
  return {"server_error", "api_error", "INTERNAL"};
}

RetryAdvice advice_of(const ProxyError& error) {
  return error.retry ? *error.retry : retry_advice(error.type);
}

}  // namespace

std::string error_body(const ProxyError& error, ErrorShape shape) {
  using Json = nlohmann::ordered_json;
  const int status = error_status(error.type);
  const std::string_view name = error_type_name(error.type);
  const ErrorVocabulary words = error_vocabulary(error.type, status);
  std::string message = "tokentap ";
  message += name;
  message += ": ";
  message += error.message;
  Json body;
  switch (shape) {
    case ErrorShape::openai:
      body = {{"error",
               {{"message", message},
                {"type", words.openai_type},
                {"param", nullptr},
                {"code", name},
                {"tokentap_error", name},
                {"request_id", error.request_id}}}};
      break;
    case ErrorShape::anthropic:
      body = {{"type", "error"},
              {"error",
               {{"type", words.anthropic_type},
                {"message", message},
                {"tokentap_error", name},
                {"request_id", error.request_id}}},
              {"request_id", error.request_id}};
      break;
    case ErrorShape::gemini: {
      Json inner = {{"code", status},
                    {"message", message},
                    {"status", words.gemini_status},
                    {"tokentap_error", name},
                    {"request_id", error.request_id}};
      if (const RetryAdvice advice = advice_of(error); advice.after_seconds) {
        inner["details"] =
            Json::array({{{"@type", "type.googleapis.com/google.rpc.RetryInfo"},
                          {"retryDelay", std::to_string(*advice.after_seconds) + "s"}}});
      }
      body = {{"error", std::move(inner)}};
      break;
    }
  }
  return body.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string error_response(const ProxyError& error, ErrorShape shape,
                           std::string_view request_id_header, bool keep_alive, bool head_request) {
  const int status = error_status(error.type);
  const RetryAdvice advice = advice_of(error);
  std::string body = error_body(error, shape);
  std::string out;
  out.reserve(320 + body.size());
  out += "HTTP/1.1 " + std::to_string(status) + " ";
  out += status_reason(status);
  out += "\r\ncontent-type: application/json\r\ncontent-length: " + std::to_string(body.size());
  if (advice.after_seconds) out += "\r\nretry-after: " + std::to_string(*advice.after_seconds);
  if (advice.should_retry)
    out += *advice.should_retry ? "\r\nx-should-retry: true" : "\r\nx-should-retry: false";
  if (!error.request_id.empty()) {
    out += "\r\n";
    out += request_id_header;
    out += ": ";
    out += error.request_id;
    // The Anthropic SDK reads a failed request's id from request-id (its API's own header).
    if (shape == ErrorShape::anthropic && !iequals(request_id_header, "request-id")) {
      out += "\r\nrequest-id: ";
      out += error.request_id;
    }
  }
  out += keep_alive ? "\r\n\r\n" : "\r\nconnection: close\r\n\r\n";
  if (!head_request) out += body;
  return out;
}

TargetParts split_target(std::string_view target) {
  TargetParts parts;
  size_t q = target.find('?');
  parts.path = target.substr(0, q);
  if (q != std::string_view::npos) {
    parts.query = target.substr(q + 1);
    parts.has_query = true;
  }
  return parts;
}

std::string upstream_target(const Route& route, std::string_view target) {
  std::string_view rest = target;
  if (route.strip_prefix && rest.starts_with(route.prefix)) {
    rest.remove_prefix(route.prefix.size());
    // Keep the boundary slash when the prefix was given with a trailing slash.
    if (!route.prefix.empty() && route.prefix.back() == '/') {
      std::string out = route.upstream.base_path + "/";
      out += rest;
      return out;
    }
  }
  std::string out = route.upstream.base_path;
  bool starts_path = !rest.empty() && rest.front() == '/';
  bool starts_query = !rest.empty() && rest.front() == '?';
  if (!starts_path && (out.empty() || !starts_query)) out += '/';
  out += rest;
  return out;
}

}  // namespace tokentap
