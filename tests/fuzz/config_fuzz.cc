// Config loading (config/config.h): load_config_string() on arbitrary text either returns a
// configuration that satisfies what the proxy relies on, or throws ConfigError worded
// "NAME:LINE: ..."; nothing else may escape. An upstream URL's credentials or query never
// appear in an error. The scalar parsers (durations, sizes, addresses, URLs) agree with
// references written from their documented grammars.
//
// Input: YAML text; its first line also goes through each scalar parser.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "config/config.h"
#include "tests/support/fuzz_support.h"

namespace tokentap::fuzz {
namespace {

constexpr std::string_view kSource = "fuzz.yaml";
constexpr std::string_view kCanary = "fuzzSECRET";

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Leading decimal digits as a number, or nullopt when there are none or they pass 2^64 - 1.
std::optional<uint64_t> leading_number(std::string_view& s) {
  size_t n = 0;
  uint64_t value = 0;
  while (n < s.size() && is_digit(s[n])) {
    const auto digit = static_cast<uint64_t>(s[n] - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
    ++n;
  }
  if (n == 0) return std::nullopt;
  s.remove_prefix(n);
  return value;
}

// "1h", "2h30m", "250ms": components in the order h, m, s, ms, each at most once.
std::optional<int64_t> reference_duration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  constexpr std::pair<std::string_view, int64_t> kUnits[] = {
      {"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}, {"ms", 1}};
  size_t next_unit = 0;
  int64_t total = 0;
  while (!s.empty()) {
    const std::optional<uint64_t> number = leading_number(s);
    if (!number || *number > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    size_t unit = next_unit;
    while (unit < 4) {
      const std::string_view name = kUnits[unit].first;
      // "m" must not take the "m" of "ms".
      if (s.starts_with(name) && !(name == "m" && s.starts_with("ms"))) break;
      ++unit;
    }
    if (unit == 4) return std::nullopt;
    s.remove_prefix(kUnits[unit].first.size());
    const auto n = static_cast<int64_t>(*number);
    if (n > (INT64_MAX - total) / kUnits[unit].second) return std::nullopt;
    total += n * kUnits[unit].second;
    next_unit = unit + 1;
  }
  return total;
}

std::optional<uint64_t> reference_size(std::string_view s) {
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
  const std::optional<uint64_t> number = leading_number(s);
  if (!number) return std::nullopt;
  for (const auto& [name, multiplier] : kUnits) {
    if (s != name) continue;
    if (*number > UINT64_MAX / multiplier) return std::nullopt;
    return *number * multiplier;
  }
  return std::nullopt;
}

std::string host_port_text(const HostPort& hp) {
  const bool v6 = hp.host.find(':') != std::string::npos;
  return (v6 ? "[" + hp.host + "]" : hp.host) + ":" + std::to_string(hp.port);
}

void check_upstream(const UpstreamUrl& url, std::string_view text) {
  FUZZ_CHECK(!url.host.empty(), "upstream without a host from " + printable(text));
  FUZZ_CHECK(url.port != 0, "upstream port 0 from " + printable(text));
  FUZZ_CHECK(url.base_path.empty() || (url.base_path.front() == '/' && url.base_path.back() != '/'),
             "base_path " + printable(url.base_path) + " from " + printable(text));
  const bool v6 = url.host.find(':') != std::string::npos;
  std::string authority = v6 ? "[" + url.host + "]" : url.host;
  if (url.port != (url.tls ? 443 : 80)) authority += ":" + std::to_string(url.port);
  FUZZ_CHECK(url.authority == authority,
             "authority " + printable(url.authority) + " for " + printable(text));
  for (char c : url.authority + url.base_path) {
    FUZZ_CHECK(c > 0x20 && c < 0x7f, "a URL part that cannot go into a request head");
  }
  const std::string again = (url.tls ? "https://" : "http://") + url.authority + url.base_path;
  const std::optional<UpstreamUrl> reparsed = parse_upstream_url(again);
  FUZZ_CHECK(reparsed && reparsed->host == url.host && reparsed->port == url.port &&
                 reparsed->base_path == url.base_path && reparsed->tls == url.tls,
             "upstream does not round-trip: " + printable(again));
}

void check_scalars(std::string_view s) {
  const std::optional<std::chrono::milliseconds> duration = parse_duration(s);
  const std::optional<int64_t> want_duration = reference_duration(s);
  FUZZ_CHECK(duration.has_value() == want_duration.has_value() &&
                 (!duration || duration->count() == *want_duration),
             "parse_duration(" + printable(s) + ") disagrees with the reference");

  const std::optional<uint64_t> size = parse_size(s);
  const std::optional<uint64_t> want_size = reference_size(s);
  FUZZ_CHECK(size == want_size, "parse_size(" + printable(s) + ") disagrees with the reference");

  if (const std::optional<HostPort> hp = parse_host_port(s)) {
    FUZZ_CHECK(!hp->host.empty(), "empty listen host from " + printable(s));
    const std::optional<HostPort> again = parse_host_port(host_port_text(*hp));
    FUZZ_CHECK(again && again->host == hp->host && again->port == hp->port,
               "listen address does not round-trip: " + printable(s));
  }
  if (const std::optional<UpstreamUrl> url = parse_upstream_url(s)) check_upstream(*url, s);
  if (const std::optional<Provider> p = parse_provider(s)) {
    FUZZ_CHECK(s == provider_name(*p), "provider " + printable(s));
  }
}

void check_config(const Config& config) {
  FUZZ_CHECK(!config.routes.empty(), "a config without routes");
  FUZZ_CHECK(config.workers >= 1 && config.workers <= 256, "workers out of range");
  FUZZ_CHECK(config.limits.max_headers >= 1 && config.limits.max_header_bytes >= 1 &&
                 config.limits.max_request_body >= 1 && config.limits.max_connections >= 1,
             "a zero limit");
  FUZZ_CHECK(config.timeouts.connect.count() > 0 && config.timeouts.first_byte.count() > 0 &&
                 config.timeouts.idle.count() > 0 &&
                 config.timeouts.downstream_header.count() > 0 &&
                 config.timeouts.drain.count() >= 0,
             "a timeout that is not positive");
  FUZZ_CHECK(config.listen.port == 0 || config.listen.port != config.admin_listen.port ||
                 config.listen.host != config.admin_listen.host,
             "listen and admin_listen are the same address");
  std::set<std::string> names;
  for (const Route& route : config.routes) {
    FUZZ_CHECK(!route.prefix.empty() && route.prefix.front() == '/',
               "route prefix " + printable(route.prefix));
    FUZZ_CHECK(!route.name.empty(), "a route without a name");
    FUZZ_CHECK(names.insert(route.name).second, "two routes named " + printable(route.name));
    check_upstream(route.upstream, route.upstream_text);
    // A path equal to the prefix finds this route or one that is at least as specific.
    if (route.path_contains.empty()) {
      const Route* found = match_route(config.routes, route.prefix);
      FUZZ_CHECK(found != nullptr && found->prefix.size() >= route.prefix.size(),
                 "no route for the prefix " + printable(route.prefix));
    }
  }
  for (const std::string& header :
       {config.agent.header, config.session_header, config.request_id_header}) {
    FUZZ_CHECK(!header.empty(), "an empty header name");
    for (char c : header) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'), "a header name not lower-cased");
  }
}

// The canary stands for a credential when it is in the userinfo or query of an upstream URL.
bool canary_is_url_secret(std::string_view text) {
  const size_t at = text.find(kCanary);
  if (at == std::string_view::npos || text.find(kCanary, at + 1) != std::string_view::npos) {
    return false;
  }
  const size_t line_start =
      text.rfind('\n', at) == std::string_view::npos ? 0 : text.rfind('\n', at) + 1;
  std::string_view line = text.substr(line_start, text.find('\n', at) - line_start);
  while (!line.empty() && (line.front() == ' ' || line.front() == '-')) line.remove_prefix(1);
  if (!line.starts_with("upstream:")) return false;
  const std::string_view url = line.substr(9);
  const size_t scheme = url.find("://");
  const size_t canary = url.find(kCanary);
  if (scheme == std::string_view::npos || canary < scheme) return false;
  const std::string_view after_scheme = url.substr(scheme + 3);
  const size_t authority_end = after_scheme.find_first_of("/?#");
  const size_t in_after = canary - scheme - 3;
  const bool in_userinfo = after_scheme.find('@') != std::string_view::npos &&
                           after_scheme.find('@') < authority_end &&
                           in_after < after_scheme.find('@');
  const bool in_query =
      after_scheme.find('?') != std::string_view::npos && in_after > after_scheme.find('?');
  return in_userinfo || in_query;
}

}  // namespace
}  // namespace tokentap::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  using namespace tokentap;
  using namespace tokentap::fuzz;
  const std::string text(reinterpret_cast<const char*>(bytes), size);
  check_scalars(std::string_view(text).substr(0, std::min(text.find('\n'), size_t{96})));
  try {
    const Config config = load_config_string(text, std::string(kSource));
    check_config(config);
  } catch (const ConfigError& e) {
    const std::string_view what = e.what();
    const std::string prefix = std::string(kSource) + ":";
    size_t digits = 0;
    while (prefix.size() + digits < what.size() && is_digit(what[prefix.size() + digits])) ++digits;
    FUZZ_CHECK(
        what.starts_with(prefix) && digits > 0 && what.substr(prefix.size() + digits, 2) == ": ",
        "a ConfigError not worded NAME:LINE: ...: " + printable(what));
    FUZZ_CHECK(!canary_is_url_secret(text) || what.find(kCanary) == std::string_view::npos,
               "an error echoes an upstream URL's credentials: " + printable(what));
  }
  return 0;
}
