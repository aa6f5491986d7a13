#include "proxy/http/forwarding.h"

#include <algorithm>
#include <vector>

#include "common/text.h"
#include "proxy/http/http1.h"

namespace tokentap {

namespace {

// `listed`: lower-case Connection tokens (usually none).
bool listed_in(const std::vector<std::string>& listed, std::string_view name) {
  return std::any_of(listed.begin(), listed.end(),
                     [&](const std::string& token) { return iequals(name, token); });
}

bool dropped(std::span<const std::string> drop, std::string_view name) {
  return std::any_of(drop.begin(), drop.end(),
                     [&](const std::string& d) { return iequals(name, d); });
}

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

}  // namespace

std::string upstream_request_head(const ForwardedRequest& request, const Route& route,
                                  const Config& config) {
  std::vector<std::string> listed = connection_tokens(request.headers);
  std::string head;
  size_t received = 0;
  for (const Header& h : request.headers) received += h.name.size() + h.value.size();
  head.reserve(request.target.size() + received + 256);
  head += request.method;
  head += ' ';
  head += upstream_target(route, request.target);
  head += " HTTP/1.1\r\nhost: ";
  head += route.upstream.authority;
  head += "\r\n";
  for (const Header& h : request.headers) {
    if (is_hop_by_hop(h.name) || iequals(h.name, "host") || iequals(h.name, "expect") ||
        iequals(h.name, "content-length") || iequals(h.name, config.request_id_header) ||
        iequals(h.name, config.agent.header) || iequals(h.name, config.session_header) ||
        (request.identity_encoding && iequals(h.name, "accept-encoding"))) {
      continue;
    }
    if (listed_in(listed, h.name) || dropped(request.drop, h.name)) continue;
    append_header(head, h.name, h.value);
  }
  head += request.added_lines;
  append_header(head, config.request_id_header, request.request_id);
  if (request.identity_encoding) head += "accept-encoding: identity\r\n";
  if (request.has_content_length) {
    head += "content-length: " + std::to_string(request.content_length) + "\r\n";
  } else if (request.chunked) {
    head += "transfer-encoding: chunked\r\n";
  }
  head += "\r\n";
  return head;
}

std::string client_response_head(const ForwardedResponse& response) {
  std::vector<std::string> listed = connection_tokens(response.headers);
  std::string out;
  out.reserve(1024);
  out += "HTTP/1.1 " + std::to_string(response.status) + " ";
  out += response.reason.empty() ? status_reason(response.status) : response.reason;
  out += "\r\n";
  bool has_request_id = false;
  for (const Header& h : response.headers) {
    if (is_hop_by_hop(h.name) || listed_in(listed, h.name)) continue;
    if (iequals(h.name, response.request_id_header)) has_request_id = true;
    if (response.drop_content_length && iequals(h.name, "content-length")) continue;
    if (dropped(response.drop, h.name)) continue;
    append_header(out, h.name, h.value);
  }
  out += response.added_lines;
  if (!has_request_id) append_header(out, response.request_id_header, response.request_id);
  if (response.chunked) out += "transfer-encoding: chunked\r\n";
  if (response.close) out += "connection: close\r\n";
  out += "\r\n";
  return out;
}

}  // namespace tokentap
