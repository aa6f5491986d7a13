#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>

#include "config/config.h"
#include "config/value_syntax.h"

// The syntax of single values (URLs, addresses, durations, sizes, provider names), the built-in
// routes and route matching: everything about the config that does not need YAML.
namespace tokentap {
namespace config_detail {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}

}  // namespace

std::optional<uint64_t> parse_unsigned(std::string_view s) {
  if (!all_digits(s)) return std::nullopt;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

namespace {

std::optional<uint16_t> parse_port(std::string_view s, bool allow_zero) {
  auto value = parse_unsigned(s);
  if (!value || *value > 65535 || (*value == 0 && !allow_zero)) return std::nullopt;
  return static_cast<uint16_t>(*value);
}

bool is_ipv6_literal(std::string_view s) {
  if (s.empty() || s.size() >= INET6_ADDRSTRLEN) return false;
  // inet_pton stops at a NUL: "fe80::\0\0001" must not pass as "fe80::" (found by fuzzing).
  for (char c : s) {
    if (!is_digit(c) && !(c >= 'a' && c <= 'f') && !(c >= 'A' && c <= 'F') && c != ':' &&
        c != '.') {
      return false;
    }
  }
  std::string text(s);
  in6_addr addr{};
  return inet_pton(AF_INET6, text.c_str(), &addr) == 1;
}

}  // namespace

bool is_hostname(std::string_view s) {
  if (s.empty() || s.size() > 253 || s.front() == '.' || s.front() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_';
  });
}

bool is_token_char(char c) {
  return is_alpha(c) || is_digit(c) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

UrlParse parse_url(std::string_view s) {
  constexpr const char* kShape = "an http:// or https:// URL like https://api.openai.com";
  size_t scheme_end = s.find("://");
  if (scheme_end == std::string_view::npos) return {std::nullopt, kShape};
  std::string scheme = to_lower(s.substr(0, scheme_end));
  UpstreamUrl url;
  if (scheme == "https") {
    url.tls = true;
    url.port = 443;
  } else if (scheme == "http") {
    url.tls = false;
    url.port = 80;
  } else {
    return {std::nullopt, kShape};
  }
  std::string_view rest = s.substr(scheme_end + 3);
  size_t authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view path =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);

  if (authority.find('@') != std::string_view::npos) {
    return {std::nullopt, "a URL without credentials (API keys belong in request headers)"};
  }
  std::string_view host;
  std::string_view port_text;
  bool bracketed = false;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return {std::nullopt, "a closing ] after an IPv6 host"};
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return {std::nullopt, "a port after ]:"};
    if (!after.empty()) port_text = after.substr(1);
    if (!after.empty() && port_text.empty()) return {std::nullopt, "a port from 1 to 65535"};
    if (!is_ipv6_literal(host)) return {std::nullopt, "a valid IPv6 address inside [ ]"};
    bracketed = true;
  } else {
    size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return {std::nullopt, "a port from 1 to 65535"};
    }
    if (!is_hostname(host)) {
      return {std::nullopt, "a host name, IPv4 address or [IPv6] address after the scheme"};
    }
  }
  if (!port_text.empty()) {
    auto port = parse_port(port_text, /*allow_zero=*/false);
    if (!port) return {std::nullopt, "a port from 1 to 65535"};
    url.port = *port;
  }
  if (path.find_first_of("?#") != std::string_view::npos) {
    return {std::nullopt, "a URL without a query or fragment"};
  }
  if (!std::all_of(path.begin(), path.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
    return {std::nullopt, "a URL path without spaces or control characters"};
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);

  url.host = to_lower(host);
  url.base_path = std::string(path);
  url.authority = bracketed ? "[" + url.host + "]" : url.host;
  if (url.port != (url.tls ? 443 : 80)) url.authority += ":" + std::to_string(url.port);
  return {std::move(url), nullptr};
}

// Upstream URLs are echoed in errors; never echo what might be a credential.
std::string redact_url(std::string_view s) {
  std::string out(s);
  size_t scheme_end = out.find("://");
  size_t authority_start = scheme_end == std::string::npos ? 0 : scheme_end + 3;
  size_t authority_end = out.find_first_of("/?#", authority_start);
  size_t at = out.rfind('@', authority_end == std::string::npos ? out.size() : authority_end);
  if (at != std::string::npos && at >= authority_start) {
    out.replace(authority_start, at - authority_start, "<redacted>");
  }
  size_t query = out.find('?');
  if (query != std::string::npos) out.replace(query + 1, std::string::npos, "<redacted>");
  return out;
}

std::string quote(std::string_view raw) {
  constexpr size_t kMaxShown = 80;
  // Whatever is echoed may hold an upstream URL, even a mistyped one ("upstream:https://u:p@h"
  // as one scalar, or as an unknown key): never echo its credentials (found by fuzzing).
  const std::string redacted =
      raw.find("://") != std::string_view::npos ? redact_url(raw) : std::string();
  const std::string_view s = redacted.empty() ? raw : std::string_view(redacted);
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMaxShown) out += "...";
  return out + "\"";
}

}  // namespace config_detail

using namespace config_detail;

namespace {

Route make_default_route(const char* name, const char* prefix, const char* upstream,
                         Provider provider, std::vector<std::string> path_contains = {}) {
  Route route;
  route.name = name;
  route.prefix = prefix;
  route.path_contains = std::move(path_contains);
  route.upstream = *parse_url(upstream).url;
  route.upstream_text = upstream;
  route.provider = provider;
  return route;
}

}  // namespace

const char* provider_name(Provider p) {
  switch (p) {
    case Provider::openai:
      return "openai";
    case Provider::anthropic:
      return "anthropic";
    case Provider::gemini:
      return "gemini";
    case Provider::azure_openai:
      return "azure_openai";
    case Provider::openai_compatible:
      return "openai_compatible";
    case Provider::auto_detect:
      return "auto";
  }
  return "auto";
}

std::optional<Provider> parse_provider(std::string_view s) {
  for (Provider p : {Provider::openai, Provider::anthropic, Provider::gemini,
                     Provider::azure_openai, Provider::openai_compatible, Provider::auto_detect}) {
    if (s == provider_name(p)) return p;
  }
  return std::nullopt;
}

std::optional<HostPort> parse_host_port(std::string_view s) {
  HostPort out;
  std::string_view port_text;
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return std::nullopt;
    }
    std::string_view host = s.substr(1, close - 1);
    if (!is_ipv6_literal(host)) return std::nullopt;
    out.host = to_lower(host);
    port_text = s.substr(close + 2);
  } else {
    size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    std::string_view host = s.substr(0, colon);
    if (host.empty()) {
      out.host = "0.0.0.0";
    } else if (is_hostname(host)) {
      out.host = to_lower(host);
    } else {
      return std::nullopt;
    }
    port_text = s.substr(colon + 1);
  }
  auto port = parse_port(port_text, /*allow_zero=*/true);
  if (!port) return std::nullopt;
  out.port = *port;
  return out;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
  struct Unit {
    std::string_view suffix;
    int64_t ms;
  };
  // Longest suffix first so "ms" is not read as "m"; components must come in this order.
  constexpr Unit kUnits[] = {{"h", 3'600'000}, {"ms", 1}, {"m", 60'000}, {"s", 1'000}};
  constexpr int kRank[] = {0, 3, 1, 2};
  if (s.empty()) return std::nullopt;
  int64_t total = 0;
  int last_rank = -1;
  while (!s.empty()) {
    size_t digits = 0;
    while (digits < s.size() && is_digit(s[digits])) ++digits;
    auto number = parse_unsigned(s.substr(0, digits));
    if (!number || *number > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return std::nullopt;
    }
    s.remove_prefix(digits);
    int unit = -1;
    for (int i = 0; i < 4; ++i) {
      if (s.starts_with(kUnits[i].suffix)) {
        unit = i;
        break;
      }
    }
    if (unit < 0 || kRank[unit] <= last_rank) return std::nullopt;
    last_rank = kRank[unit];
    s.remove_prefix(kUnits[unit].suffix.size());
    int64_t part = 0;
    if (__builtin_mul_overflow(static_cast<int64_t>(*number), kUnits[unit].ms, &part) ||
        __builtin_add_overflow(total, part, &total)) {
      return std::nullopt;
    }
  }
  return std::chrono::milliseconds(total);
}

std::optional<uint64_t> parse_size(std::string_view s) {
  constexpr std::pair<std::string_view, uint64_t> kUnits[] = {{"", 1},
                                                              {"B", 1},
                                                              {"KB", 1'000},
                                                              {"MB", 1'000'000},
                                                              {"GB", 1'000'000'000},
                                                              {"TB", 1'000'000'000'000},
                                                              {"KiB", 1ull << 10},
                                                              {"MiB", 1ull << 20},
                                                              {"GiB", 1ull << 30},
                                                              {"TiB", 1ull << 40}};
  size_t digits = 0;
  while (digits < s.size() && is_digit(s[digits])) ++digits;
  auto number = parse_unsigned(s.substr(0, digits));
  if (!number) return std::nullopt;
  std::string_view suffix = s.substr(digits);
  for (const auto& [name, multiplier] : kUnits) {
    if (suffix != name) continue;
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(*number, multiplier, &bytes)) return std::nullopt;
    return bytes;
  }
  return std::nullopt;
}

std::optional<UpstreamUrl> parse_upstream_url(std::string_view s) { return parse_url(s).url; }

Config default_config() {
  Config config;
  config.routes.push_back(make_default_route("anthropic", "/v1/messages",
                                             "https://api.anthropic.com", Provider::anthropic));
  config.routes.push_back(make_default_route(
      "gemini", "/v1beta/", "https://generativelanguage.googleapis.com", Provider::gemini));
  config.routes.push_back(make_default_route(
      "gemini-rpc", "/", "https://generativelanguage.googleapis.com", Provider::gemini,
      {":generateContent", ":streamGenerateContent", ":embedContent", ":batchEmbedContents",
       ":countTokens"}));
  config.routes.push_back(
      make_default_route("openai", "/", "https://api.openai.com", Provider::openai));
  return config;
}

const Route* match_route(const std::vector<Route>& routes, std::string_view path) {
  path = path.substr(0, path.find('?'));
  const Route* best = nullptr;
  for (const Route& route : routes) {
    if (!path.starts_with(route.prefix)) continue;
    if (!route.path_contains.empty() &&
        std::none_of(route.path_contains.begin(), route.path_contains.end(),
                     [path](const std::string& needle) {
                       return path.find(needle) != std::string_view::npos;
                     })) {
      continue;
    }
    if (best == nullptr || route.prefix.size() > best->prefix.size() ||
        (route.prefix.size() == best->prefix.size() && !route.path_contains.empty() &&
         best->path_contains.empty())) {
      best = &route;
    }
  }
  return best;
}

}  // namespace tokentap
