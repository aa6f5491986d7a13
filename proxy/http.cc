#include "proxy/http.h"

#include <algorithm>
#include <array>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace tokentap {

namespace {

char lower_ascii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower_ascii(a[i]) != lower_ascii(b[i])) return false;
  }
  return true;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower_ascii(c);
  return out;
}

bool is_hop_by_hop(std::string_view name) {
  static constexpr std::array<std::string_view, 9> kHopByHop = {
      "connection", "keep-alive",          "proxy-connection",   "te",      "trailer",
      "transfer-encoding", "upgrade", "proxy-authorization", "proxy-authenticate"};
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
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx",
                static_cast<unsigned>(hi >> 32), static_cast<unsigned>((hi >> 16) & 0xffff),
                static_cast<unsigned>(hi & 0xffff), static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return std::string(buf, 36);
}

bool is_json_content_type(std::string_view content_type) {
  std::string_view media = trim(content_type.substr(0, content_type.find(';')));
  std::string lower = to_lower(media);
  if (lower == "application/json") return true;
  return lower.starts_with("application/") && lower.ends_with("+json");
}

std::string_view status_reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 529: return "Site Overloaded";
    default: return "";
  }
}

std::string error_body(std::string_view type, std::string_view message,
                       std::string_view request_id) {
  nlohmann::ordered_json body = {
      {"error", {{"type", type}, {"message", message}, {"request_id", request_id}}}};
  return body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string error_response(int status, std::string_view type, std::string_view message,
                           std::string_view request_id, std::string_view request_id_header,
                           bool keep_alive, bool head_request) {
  std::string body = error_body(type, message, request_id);
  std::string out;
  out.reserve(256 + body.size());
  out += "HTTP/1.1 " + std::to_string(status) + " ";
  out += status_reason(status);
  out += "\r\ncontent-type: application/json\r\ncontent-length: " + std::to_string(body.size());
  if (!request_id.empty()) {
    out += "\r\n";
    out += request_id_header;
    out += ": ";
    out += request_id;
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
