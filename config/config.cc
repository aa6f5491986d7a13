#include "config/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <regex>
#include <span>
#include <sstream>

#include "config/otel_env.h"
#include "config/value_syntax.h"

namespace tokentap {

using namespace config_detail;

namespace {

constexpr size_t kMaxConfigFileBytes = 16u << 20;
// The PII scrubber scans at most 16 KiB per field (proxy/tracing/pii.h kMaxScrubInput).
constexpr uint64_t kTracingContentMax = 16u << 10;
constexpr size_t kMaxTokenFileBytes = 4096;

// Reads the file at `path` whole into `out`. Returns 0, or the errno that stopped it (EFBIG past
// `max_bytes`; EINVAL for something other than a regular file when `regular_only`).
int read_whole_file(const std::string& path, size_t max_bytes, bool regular_only,
                    std::string& out) {
  // O_NONBLOCK with regular_only: a FIFO named by mistake must not hang the caller on open.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (regular_only ? O_NONBLOCK : 0));
  if (fd < 0) return errno;
  struct stat st {};
  if (regular_only && (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
    ::close(fd);
    return EINVAL;
  }
  std::array<char, 65536> buffer{};
  int error = 0;
  for (;;) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) error = errno;
    if (n <= 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      error = EFBIG;
      break;
    }
    out.append(buffer.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return error;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return quote(node.Scalar());
    case YAML::NodeType::Sequence:
      return node.size() == 0 ? "an empty list" : "a list";
    case YAML::NodeType::Map:
      return node.size() == 0 ? "an empty mapping" : "a mapping";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

int line_of(const YAML::Node& node, int fallback) {
  YAML::Mark mark = node.Mark();
  return mark.is_null() || mark.line < 0 ? fallback : mark.line + 1;
}

struct Context {
  std::string source;
  // 1-based line of every key seen, by dotted path ("timeouts.connect", "routes[0].tls"), for
  // checks that span several keys.
  std::map<std::string, int, std::less<>> lines;
};

// A value being parsed: the node, its dotted path for messages, and the line to blame.
struct Value {
  YAML::Node node;
  std::string path;
  int line = 1;
};

[[noreturn]] void fail(const Context& ctx, int line, std::string_view path,
                       std::string_view expected, std::string_view got) {
  std::string message = ctx.source + ":" + std::to_string(line) + ": ";
  if (!path.empty()) message.append(path).append(": ");
  message.append("expected ").append(expected).append(", got ").append(got);
  throw ConfigError(message);
}

[[noreturn]] void fail(const Context& ctx, const Value& v, std::string_view expected) {
  fail(ctx, v.line, v.path, expected, describe(v.node));
}

template <typename T>
struct Field {
  std::string_view key;
  void (*parse)(Context&, const Value&, T&);
};

// Checks that `v` is a mapping of known, unique keys and hands each value to its field parser.
// A null value (a section with every key commented out) is an empty mapping.
template <typename T, size_t N>
void parse_mapping(Context& ctx, const Value& v, const Field<T> (&fields)[N], T& out) {
  if (v.node.IsNull()) return;
  if (!v.node.IsMap()) fail(ctx, v, "a mapping");
  std::vector<std::string> seen;
  for (auto it = v.node.begin(); it != v.node.end(); ++it) {
    // it-> yields a proxy temporary, so the nodes are copied (they are cheap handles).
    YAML::Node key_node = it->first;
    int key_line = line_of(key_node, v.line);
    if (!key_node.IsScalar()) fail(ctx, key_line, v.path, "a key name", describe(key_node));
    const std::string& key = key_node.Scalar();
    const Field<T>* field = nullptr;
    for (const Field<T>& f : fields) {
      if (f.key == key) field = &f;
    }
    if (field == nullptr) {
      std::string allowed = "one of the keys ";
      for (size_t i = 0; i < N; ++i) {
        if (i > 0) allowed += ", ";
        allowed += fields[i].key;
      }
      fail(ctx, key_line, v.path, allowed, "unknown key " + quote(key));
    }
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      fail(ctx, key_line, v.path, "each key once", "a second " + quote(key));
    }
    seen.push_back(key);
    // An empty value's mark points past it, at the next line; blame the key's line instead.
    int value_line = it->second.IsNull() ? key_line : line_of(it->second, key_line);
    Value child{it->second, v.path.empty() ? key : v.path + "." + key, value_line};
    ctx.lines[child.path] = key_line;
    field->parse(ctx, child, out);
  }
}

std::string as_string(Context& ctx, const Value& v) {
  if (!v.node.IsScalar() || v.node.Scalar().empty()) fail(ctx, v, "a non-empty string");
  return v.node.Scalar();
}

bool as_bool(Context& ctx, const Value& v) {
  if (v.node.IsScalar()) {
    std::string text = to_lower(v.node.Scalar());
    if (text == "true") return true;
    if (text == "false") return false;
  }
  fail(ctx, v, "true or false");
}

uint64_t as_integer(Context& ctx, const Value& v, uint64_t min, uint64_t max) {
  std::optional<uint64_t> value;
  if (v.node.IsScalar()) value = parse_unsigned(v.node.Scalar());
  if (!value || *value < min || *value > max) {
    fail(ctx, v, "an integer from " + std::to_string(min) + " to " + std::to_string(max));
  }
  return *value;
}

std::chrono::milliseconds as_duration(Context& ctx, const Value& v, bool allow_zero) {
  std::optional<std::chrono::milliseconds> value;
  if (v.node.IsScalar()) value = parse_duration(v.node.Scalar());
  if (!value) fail(ctx, v, "a duration like 10s or 250ms");
  if (value->count() == 0 && !allow_zero) fail(ctx, v, "a duration greater than 0s");
  return *value;
}

uint64_t as_size(Context& ctx, const Value& v, uint64_t max) {
  std::optional<uint64_t> value;
  if (v.node.IsScalar()) value = parse_size(v.node.Scalar());
  if (!value) fail(ctx, v, "a size like 64MiB, 512KiB or 4096");
  if (*value == 0 || *value > max) {
    fail(ctx, v, "a size from 1 to " + std::to_string(max) + " bytes");
  }
  return *value;
}

std::string as_header_name(Context& ctx, const Value& v) {
  if (v.node.IsScalar()) {
    const std::string& text = v.node.Scalar();
    if (!text.empty() && std::all_of(text.begin(), text.end(), is_token_char))
      return to_lower(text);
  }
  fail(ctx, v, "an HTTP header name like x-agent-id");
}

HostPort as_host_port(Context& ctx, const Value& v) {
  std::optional<HostPort> value;
  if (v.node.IsScalar()) value = parse_host_port(v.node.Scalar());
  if (!value) fail(ctx, v, "an address like 127.0.0.1:8080, [::1]:8080 or :8080");
  return *value;
}

void parse_upstream(Context& ctx, const Value& v, Route& route) {
  if (!v.node.IsScalar() || v.node.Scalar().empty()) fail(ctx, v, "an upstream URL");
  const std::string& text = v.node.Scalar();
  UrlParse parsed = parse_url(text);
  if (!parsed.url) fail(ctx, v.line, v.path, parsed.expected, quote(text));
  route.upstream = std::move(*parsed.url);
  route.upstream_text = text;
}

void parse_path_contains(Context& ctx, const Value& v, Route& route) {
  if (!v.node.IsSequence() || v.node.size() == 0) fail(ctx, v, "a non-empty list of strings");
  route.path_contains.clear();
  for (size_t i = 0; i < v.node.size(); ++i) {
    Value item{v.node[i], v.path + "[" + std::to_string(i) + "]", line_of(v.node[i], v.line)};
    route.path_contains.push_back(as_string(ctx, item));
  }
}

void parse_prefix(Context& ctx, const Value& v, Route& route) {
  if (v.node.IsScalar()) {
    const std::string& text = v.node.Scalar();
    bool clean = std::all_of(text.begin(), text.end(),
                             [](char c) { return c > 0x20 && c < 0x7f && c != '?' && c != '#'; });
    if (!text.empty() && text.front() == '/' && clean) {
      route.prefix = text;
      return;
    }
  }
  fail(ctx, v, "a path prefix starting with / (no spaces, query or fragment)");
}

void parse_provider_field(Context& ctx, const Value& v, Route& route) {
  std::optional<Provider> provider;
  if (v.node.IsScalar()) provider = parse_provider(v.node.Scalar());
  if (!provider) {
    fail(ctx, v, "one of openai, anthropic, gemini, azure_openai, openai_compatible, auto");
  }
  route.provider = *provider;
}

constexpr Field<TlsSettings> kTlsFields[] = {
    {"verify", [](Context& c, const Value& v, TlsSettings& t) { t.verify = as_bool(c, v); }},
    {"ca_file", [](Context& c, const Value& v, TlsSettings& t) { t.ca_file = as_string(c, v); }},
    {"sni",
     [](Context& c, const Value& v, TlsSettings& t) {
       if (!v.node.IsScalar() || !is_hostname(v.node.Scalar())) fail(c, v, "a host name");
       t.sni = to_lower(v.node.Scalar());
     }},
};

constexpr Field<CircuitBreakerSettings> kCircuitBreakerFields[] = {
    {"consecutive_failures",
     [](Context& c, const Value& v, CircuitBreakerSettings& b) {
       b.consecutive_failures = static_cast<uint32_t>(as_integer(c, v, 1, 1'000'000));
     }},
    {"window", [](Context& c, const Value& v,
                  CircuitBreakerSettings& b) { b.window = as_duration(c, v, false); }},
    {"open_for", [](Context& c, const Value& v,
                    CircuitBreakerSettings& b) { b.open_for = as_duration(c, v, false); }},
    {"half_open_requests",
     [](Context& c, const Value& v, CircuitBreakerSettings& b) {
       b.half_open_requests = static_cast<uint32_t>(as_integer(c, v, 1, 1000));
     }},
    {"trip_on_429",
     [](Context& c, const Value& v, CircuitBreakerSettings& b) { b.trip_on_429 = as_bool(c, v); }},
};

void parse_circuit_breaker(Context& ctx, const Value& v, Route& route) {
  if (!v.node.IsNull() && !v.node.IsMap()) fail(ctx, v, "a mapping (an empty one for defaults)");
  CircuitBreakerSettings settings;
  parse_mapping(ctx, v, kCircuitBreakerFields, settings);
  route.circuit_breaker = settings;
}

constexpr Field<Route> kRouteFields[] = {
    {"name", [](Context& c, const Value& v, Route& r) { r.name = as_string(c, v); }},
    {"prefix", parse_prefix},
    {"path_contains", parse_path_contains},
    {"upstream", parse_upstream},
    {"provider", parse_provider_field},
    {"strip_prefix", [](Context& c, const Value& v, Route& r) { r.strip_prefix = as_bool(c, v); }},
    {"tls", [](Context& c, const Value& v, Route& r) { parse_mapping(c, v, kTlsFields, r.tls); }},
    {"circuit_breaker", parse_circuit_breaker},
};

int line_or(const Context& ctx, const std::string& path, int fallback) {
  auto it = ctx.lines.find(path);
  return it == ctx.lines.end() ? fallback : it->second;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

void parse_routes(Context& ctx, const Value& v, Config& config) {
  if (!v.node.IsSequence() || v.node.size() == 0) fail(ctx, v, "a non-empty list of routes");
  std::vector<Route> routes;
  std::vector<int> route_lines;
  for (size_t i = 0; i < v.node.size(); ++i) {
    Value item{v.node[i], v.path + "[" + std::to_string(i) + "]", line_of(v.node[i], v.line)};
    if (!item.node.IsMap()) fail(ctx, item, "a mapping with at least an upstream");
    Route route;
    parse_mapping(ctx, item, kRouteFields, route);
    if (route.upstream_text.empty()) {
      fail(ctx, item.line, item.path, "an upstream URL (key \"upstream\")", "a route without one");
    }
    if (!route.upstream.tls && ctx.lines.contains(item.path + ".tls")) {
      fail(ctx, ctx.lines[item.path + ".tls"], item.path + ".tls", "an https:// upstream",
           quote(route.upstream_text));
    }
    if (route.name.empty()) {
      route.name = route.path_contains.empty() ? route.prefix : route.prefix + "+contains";
    }
    for (size_t j = 0; j < routes.size(); ++j) {
      const Route& earlier = routes[j];
      std::string earlier_ref =
          "routes[" + std::to_string(j) + "] (line " + std::to_string(route_lines[j]) + ")";
      if (earlier.prefix == route.prefix &&
          sorted(earlier.path_contains) == sorted(route.path_contains)) {
        fail(ctx, line_or(ctx, item.path + ".prefix", item.line), item.path,
             "a prefix and path_contains not already used by " + earlier_ref, "a duplicate of it");
      }
      if (earlier.name == route.name) {
        fail(ctx, line_or(ctx, item.path + ".name", item.line), item.path + ".name",
             "a route name not already used by " + earlier_ref + " (set name to tell them apart)",
             quote(route.name));
      }
    }
    routes.push_back(std::move(route));
    route_lines.push_back(item.line);
  }
  config.routes = std::move(routes);
}

constexpr Field<AgentSettings> kAgentFields[] = {
    {"name", [](Context& c, const Value& v, AgentSettings& a) { a.name = as_string(c, v); }},
    {"header",
     [](Context& c, const Value& v, AgentSettings& a) { a.header = as_header_name(c, v); }},
};

template <std::chrono::milliseconds Timeouts::*member>
void positive_duration(Context& ctx, const Value& v, Timeouts& t) {
  t.*member = as_duration(ctx, v, /*allow_zero=*/false);
}

constexpr Field<Timeouts> kTimeoutFields[] = {
    {"connect", positive_duration<&Timeouts::connect>},
    {"first_byte", positive_duration<&Timeouts::first_byte>},
    {"idle", positive_duration<&Timeouts::idle>},
    {"downstream_header", positive_duration<&Timeouts::downstream_header>},
    {"drain", [](Context& c, const Value& v, Timeouts& t) { t.drain = as_duration(c, v, true); }},
};

constexpr uint64_t kMaxU32 = std::numeric_limits<uint32_t>::max();

constexpr Field<Limits> kLimitFields[] = {
    {"max_request_body",
     [](Context& c, const Value& v, Limits& l) {
       l.max_request_body = as_size(c, v, std::numeric_limits<uint64_t>::max());
     }},
    {"max_header_bytes",
     [](Context& c, const Value& v, Limits& l) { l.max_header_bytes = as_size(c, v, kMaxU32); }},
    {"max_headers",
     [](Context& c, const Value& v, Limits& l) {
       l.max_headers = static_cast<uint32_t>(as_integer(c, v, 1, kMaxU32));
     }},
    {"max_connections",
     [](Context& c, const Value& v, Limits& l) {
       l.max_connections = static_cast<uint32_t>(as_integer(c, v, 1, kMaxU32));
     }},
    {"max_buffered_request_bytes",
     [](Context& c, const Value& v, Limits& l) {
       l.max_buffered_request_bytes = as_size(c, v, std::numeric_limits<uint64_t>::max());
     }},
};

constexpr Field<LogSettings> kLogFields[] = {
    {"access", [](Context& c, const Value& v, LogSettings& l) { l.access = as_string(c, v); }},
    {"level",
     [](Context& c, const Value& v, LogSettings& l) {
       constexpr std::pair<std::string_view, LogLevel> kLevels[] = {{"debug", LogLevel::debug},
                                                                    {"info", LogLevel::info},
                                                                    {"warn", LogLevel::warn},
                                                                    {"error", LogLevel::error}};
       if (v.node.IsScalar()) {
         for (const auto& [name, level] : kLevels) {
           if (v.node.Scalar() == name) {
             l.level = level;
             return;
           }
         }
       }
       fail(c, v, "one of debug, info, warn, error");
     }},
};

// Top-level sections. Adding one is a parser here plus its field in Config.
constexpr Field<MetricsSettings> kMetricsFields[] = {
    {"max_values_per_label",
     [](Context& c, const Value& v, MetricsSettings& m) {
       m.max_values_per_label = static_cast<uint32_t>(as_integer(c, v, 1, 100000));
     }},
    {"otel_semconv",
     [](Context& c, const Value& v, MetricsSettings& m) { m.otel_semconv = as_bool(c, v); }},
};

constexpr Field<MeteringSettings> kMeteringFields[] = {
    {"include_stream_usage", [](Context& c, const Value& v,
                                MeteringSettings& m) { m.include_stream_usage = as_bool(c, v); }},
};

// A path named in the config, relative to the config file's directory unless absolute.
std::string relative_to_config(const Context& ctx, const std::string& path) {
  if (path.front() == '/') return path;
  size_t slash = ctx.source.rfind('/');
  return slash == std::string::npos ? path : ctx.source.substr(0, slash + 1) + path;
}

void parse_price_files(Context& ctx, const Value& v, PricingSettings& p) {
  if (!v.node.IsSequence()) fail(ctx, v, "a list of price file paths");
  p.files.clear();
  for (size_t i = 0; i < v.node.size(); ++i) {
    Value item{v.node[i], v.path + "[" + std::to_string(i) + "]", line_of(v.node[i], v.line)};
    p.files.push_back(relative_to_config(ctx, as_string(ctx, item)));
  }
}

void parse_azure_deployments(Context& ctx, const Value& v, PricingSettings& p) {
  if (v.node.IsNull()) return;
  if (!v.node.IsMap()) fail(ctx, v, "a mapping of deployment name to model name");
  p.azure_deployments.clear();
  for (auto it = v.node.begin(); it != v.node.end(); ++it) {
    YAML::Node key = it->first;
    int line = line_of(key, v.line);
    if (!key.IsScalar() || key.Scalar().empty()) {
      fail(ctx, line, v.path, "a deployment name", describe(key));
    }
    Value model{it->second, v.path + "." + key.Scalar(), line_of(it->second, line)};
    p.azure_deployments[key.Scalar()] = as_string(ctx, model);
  }
}

constexpr Field<PricingSettings> kPricingFields[] = {
    {"files", parse_price_files},
    {"azure_deployments", parse_azure_deployments},
};

double as_usd(Context& ctx, const Value& v) {
  if (v.node.IsScalar()) {
    const std::string& text = v.node.Scalar();
    char* end = nullptr;
    double value = std::strtod(text.c_str(), &end);
    if (!text.empty() && end == text.c_str() + text.size() && value >= 0 && value < 1e9 &&
        text.find_first_not_of("0123456789.") == std::string::npos) {
      return value;
    }
  }
  fail(ctx, v, "an amount in USD like 5 or 0.25");
}

BudgetAction as_action(Context& ctx, const Value& v) {
  if (v.node.IsScalar() && v.node.Scalar() == "alert") return BudgetAction::alert;
  if (v.node.IsScalar() && v.node.Scalar() == "block") return BudgetAction::block;
  fail(ctx, v, "alert or block");
}

constexpr Field<Budget> kBudgetFields[] = {
    {"agent", [](Context& c, const Value& v, Budget& b) { b.agent = as_string(c, v); }},
    {"hourly_usd", [](Context& c, const Value& v, Budget& b) { b.hourly_usd = as_usd(c, v); }},
    {"daily_usd", [](Context& c, const Value& v, Budget& b) { b.daily_usd = as_usd(c, v); }},
    {"action", [](Context& c, const Value& v, Budget& b) { b.action = as_action(c, v); }},
};

constexpr Field<SessionSettings> kSessionFields[] = {
    {"idle_timeout", [](Context& c, const Value& v,
                        SessionSettings& s) { s.idle_timeout = as_duration(c, v, false); }},
    {"max_sessions",
     [](Context& c, const Value& v, SessionSettings& s) {
       s.max_sessions = static_cast<uint32_t>(as_integer(c, v, 1, 10'000'000));
     }},
    {"max_requests_per_minute",
     [](Context& c, const Value& v, SessionSettings& s) {
       s.max_requests_per_minute = static_cast<uint32_t>(as_integer(c, v, 0, 1'000'000));
     }},
    {"max_cost_usd",
     [](Context& c, const Value& v, SessionSettings& s) { s.max_cost_usd = as_usd(c, v); }},
    {"max_identical_tool_calls",
     [](Context& c, const Value& v, SessionSettings& s) {
       s.max_identical_tool_calls = static_cast<uint32_t>(as_integer(c, v, 0, 1'000'000));
     }},
    {"runaway_action",
     [](Context& c, const Value& v, SessionSettings& s) { s.runaway_action = as_action(c, v); }},
};

void parse_budgets(Context& ctx, const Value& v, Config& config) {
  if (!v.node.IsSequence()) fail(ctx, v, "a list of budgets");
  config.budgets.clear();
  for (size_t i = 0; i < v.node.size(); ++i) {
    Value item{v.node[i], v.path + "[" + std::to_string(i) + "]", line_of(v.node[i], v.line)};
    Budget budget;
    parse_mapping(ctx, item, kBudgetFields, budget);
    if (budget.agent.empty()) fail(ctx, item.line, item.path, "an agent (or \"*\")", "none");
    if (budget.hourly_usd <= 0 && budget.daily_usd <= 0) {
      fail(ctx, item.line, item.path, "hourly_usd or daily_usd above 0", "no limit");
    }
    for (const Budget& other : config.budgets) {
      if (other.agent == budget.agent) {
        fail(ctx, item.line, item.path, "one budget per agent",
             "a second for " + quote(budget.agent));
      }
    }
    config.budgets.push_back(std::move(budget));
  }
}

// Messages name the file, never its content: the token is a secret.
void parse_admin_token_file(Context& ctx, const Value& v, AdminSettings& a) {
  const std::string path = relative_to_config(ctx, as_string(ctx, v));
  constexpr const char* kExpected = "a readable file holding the admin bearer token";
  std::string token;
  if (int error = read_whole_file(path, kMaxTokenFileBytes, /*regular_only=*/true, token)) {
    std::string reason = std::strerror(error);
    if (error == EINVAL) reason = "not a regular file";
    if (error == EFBIG) reason = "larger than " + std::to_string(kMaxTokenFileBytes) + " bytes";
    fail(ctx, v.line, v.path, kExpected, quote(path) + " (" + reason + ")");
  }
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  if (token.empty()) fail(ctx, v.line, v.path, kExpected, "an empty file " + quote(path));
  if (!std::all_of(token.begin(), token.end(), [](char c) { return c > 0x20 && c < 0x7f; })) {
    fail(ctx, v.line, v.path, "a token of printable ASCII characters without spaces",
         "other characters in " + quote(path));
  }
  a.token_file = path;
  a.token = std::move(token);
}

constexpr Field<AdminSettings> kAdminFields[] = {
    {"token_file", parse_admin_token_file},
};

double as_ratio(Context& ctx, const Value& v) {
  if (v.node.IsScalar()) {
    const std::string& text = v.node.Scalar();
    char* end = nullptr;
    double value = std::strtod(text.c_str(), &end);
    if (!text.empty() && end == text.c_str() + text.size() && value >= 0 && value <= 1 &&
        text.find_first_not_of("0123456789.") == std::string::npos) {
      return value;
    }
  }
  fail(ctx, v, "a ratio from 0 to 1");
}

void parse_tracing_endpoint(Context& ctx, const Value& v, TracingSettings& t) {
  t.endpoint = as_string(ctx, v);
  auto url = parse_upstream_url(t.endpoint);
  if (!url) fail(ctx, v, "an http:// or https:// OTLP endpoint like http://otel-collector:4318");
}

void parse_tracing_protocol(Context& ctx, const Value& v, TracingSettings& t) {
  t.protocol = as_string(ctx, v);
  if (t.protocol != "http/protobuf" && t.protocol != "http/json") {
    fail(ctx, v, "http/protobuf or http/json (grpc is not supported)");
  }
}

void parse_pattern_list(Context& ctx, const Value& list, TracingSettings& t) {
  if (!list.node.IsSequence()) fail(ctx, list, "a list of regular expressions");
  t.pii_patterns.clear();
  for (size_t i = 0; i < list.node.size(); ++i) {
    Value item{list.node[i], list.path + "[" + std::to_string(i) + "]",
               line_of(list.node[i], list.line)};
    std::string pattern = as_string(ctx, item);
    try {
      std::regex check(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error&) {
      fail(ctx, item, "a valid ECMAScript regular expression");
    }
    t.pii_patterns.push_back(std::move(pattern));
  }
}

// Each pattern is compiled here so a bad one is a load error with its line, not a crash later.
void parse_pii(Context& ctx, const Value& v, TracingSettings& t) {
  if (!v.node.IsMap()) fail(ctx, v, "a mapping with patterns");
  for (auto it = v.node.begin(); it != v.node.end(); ++it) {
    int line = line_of(it->first, v.line);
    if (it->first.Scalar() != "patterns") {
      fail(ctx, line, v.path, "the key patterns", it->first.Scalar());
    }
    parse_pattern_list(ctx, Value{it->second, v.path + ".patterns", line_of(it->second, line)}, t);
  }
}

constexpr Field<TracingSettings> kTracingFields[] = {
    {"enabled", [](Context& c, const Value& v, TracingSettings& t) { t.enabled = as_bool(c, v); }},
    {"otlp_endpoint", parse_tracing_endpoint},
    {"endpoint", parse_tracing_endpoint},
    {"protocol", parse_tracing_protocol},
    {"ca_file", [](Context& c, const Value& v,
                   TracingSettings& t) { t.ca_file = relative_to_config(c, as_string(c, v)); }},
    {"keep_errors",
     [](Context& c, const Value& v, TracingSettings& t) { t.keep_errors = as_bool(c, v); }},
    {"max_queue",
     [](Context& c, const Value& v, TracingSettings& t) {
       t.max_queue = static_cast<size_t>(as_integer(c, v, 1, 1'000'000));
     }},
    {"pii_patterns", parse_pattern_list},
    {"service_name",
     [](Context& c, const Value& v, TracingSettings& t) { t.service_name = as_string(c, v); }},
    {"sample_ratio",
     [](Context& c, const Value& v, TracingSettings& t) { t.sample_ratio = as_ratio(c, v); }},
    {"session_traces",
     [](Context& c, const Value& v, TracingSettings& t) { t.session_traces = as_bool(c, v); }},
    {"capture_content",
     [](Context& c, const Value& v, TracingSettings& t) { t.capture_content = as_bool(c, v); }},
    {"content_max_bytes",
     [](Context& c, const Value& v, TracingSettings& t) {
       t.content_max_bytes = static_cast<size_t>(as_integer(c, v, 1, kTracingContentMax));
     }},
    {"pii", parse_pii},
    {"propagate_response_traceparent",
     [](Context& c, const Value& v, TracingSettings& t) {
       t.propagate_response_traceparent = as_bool(c, v);
     }},
};

constexpr Field<Config> kSections[] = {
    {"listen", [](Context& c, const Value& v, Config& cfg) { cfg.listen = as_host_port(c, v); }},
    {"admin_listen",
     [](Context& c, const Value& v, Config& cfg) { cfg.admin_listen = as_host_port(c, v); }},
    {"admin",
     [](Context& c, const Value& v, Config& cfg) { parse_mapping(c, v, kAdminFields, cfg.admin); }},
    {"workers", [](Context& c, const Value& v,
                   Config& cfg) { cfg.workers = static_cast<uint32_t>(as_integer(c, v, 1, 256)); }},
    {"agent",
     [](Context& c, const Value& v, Config& cfg) { parse_mapping(c, v, kAgentFields, cfg.agent); }},
    {"session_header",
     [](Context& c, const Value& v, Config& cfg) { cfg.session_header = as_header_name(c, v); }},
    {"request_id_header",
     [](Context& c, const Value& v, Config& cfg) { cfg.request_id_header = as_header_name(c, v); }},
    {"routes", parse_routes},
    {"timeouts", [](Context& c, const Value& v,
                    Config& cfg) { parse_mapping(c, v, kTimeoutFields, cfg.timeouts); }},
    {"limits", [](Context& c, const Value& v,
                  Config& cfg) { parse_mapping(c, v, kLimitFields, cfg.limits); }},
    {"log",
     [](Context& c, const Value& v, Config& cfg) { parse_mapping(c, v, kLogFields, cfg.log); }},
    {"metrics", [](Context& c, const Value& v,
                   Config& cfg) { parse_mapping(c, v, kMetricsFields, cfg.metrics); }},
    {"metering", [](Context& c, const Value& v,
                    Config& cfg) { parse_mapping(c, v, kMeteringFields, cfg.metering); }},
    {"pricing", [](Context& c, const Value& v,
                   Config& cfg) { parse_mapping(c, v, kPricingFields, cfg.pricing); }},
    {"budgets", parse_budgets},
    {"sessions", [](Context& c, const Value& v,
                    Config& cfg) { parse_mapping(c, v, kSessionFields, cfg.sessions); }},
    {"tracing", [](Context& c, const Value& v,
                   Config& cfg) { parse_mapping(c, v, kTracingFields, cfg.tracing); }},
};

std::string host_port_text(const HostPort& hp) {
  bool ipv6 = hp.host.find(':') != std::string::npos;
  return (ipv6 ? "[" + hp.host + "]" : hp.host) + ":" + std::to_string(hp.port);
}

// Checks that need more than one key.
void validate(const Context& ctx, const Config& config) {
  // The environment may still name the collector (config/otel_env.h).
  if (config.tracing.enabled && config.tracing.endpoint.empty() &&
      std::getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == nullptr &&
      std::getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == nullptr) {
    fail(ctx, line_or(ctx, "tracing", 1), "tracing.otlp_endpoint", "an OTLP endpoint when enabled",
         "none");
  }
  const HostPort& a = config.listen;
  const HostPort& b = config.admin_listen;
  if (a.port != 0 && a.port == b.port && a.host == b.host) {
    bool admin_set = ctx.lines.contains("admin_listen");
    int line = line_or(ctx, admin_set ? "admin_listen" : "listen", 1);
    fail(ctx, line, admin_set ? "admin_listen" : "listen",
         "different addresses for listen and admin_listen", quote(host_port_text(a)) + " for both");
  }
  // A body larger than the whole budget could never be buffered: its client would be told to
  // retry forever.
  const Limits& limits = config.limits;
  if (limits.max_buffered_request_bytes < limits.max_request_body) {
    bool budget_set = ctx.lines.contains("limits.max_buffered_request_bytes");
    std::string path = budget_set ? "limits.max_buffered_request_bytes" : "limits.max_request_body";
    fail(ctx, line_or(ctx, path, 1), path,
         "limits.max_buffered_request_bytes of at least limits.max_request_body",
         std::to_string(limits.max_buffered_request_bytes) + " < " +
             std::to_string(limits.max_request_body) + " bytes");
  }
}

}  // namespace

namespace {

// Sees document starts only; every other event is ignored.
class DocumentCounter final : public YAML::EventHandler {
 public:
  std::optional<int> second_line;
  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ == 2) second_line = mark.line < 0 ? 1 : mark.line + 1;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

 private:
  int documents_ = 0;
};

// The line where a second YAML document starts, if the text has one.
std::optional<int> second_document_line(const std::string& yaml_text) {
  std::istringstream in(yaml_text);
  YAML::Parser parser(in);
  DocumentCounter counter;
  for (int i = 0; i < 2 && parser.HandleNextDocument(counter); ++i) {
  }
  return counter.second_line;
}

}  // namespace

Config load_config_string(const std::string& yaml_text, const std::string& source_name) {
  Config config = default_config();
  config.source = source_name;
  Context ctx{source_name, {}};
  try {
    // Count documents without building them: yaml-cpp 0.7's LoadAll produces empty
    // documents without end for a stray top-level ',' (found by fuzzing).
    if (const std::optional<int> second = second_document_line(yaml_text)) {
      fail(ctx, *second, "", "a single YAML document", "a second document");
    }
    const YAML::Node document = YAML::Load(yaml_text);
    if (!document.IsDefined() || document.IsNull()) return config;
    Value root{document, "", line_of(document, 1)};
    if (!root.node.IsMap()) fail(ctx, root, "a mapping of settings");
    parse_mapping(ctx, root, kSections, config);
  } catch (const YAML::Exception& e) {
    int line = e.mark.is_null() || e.mark.line < 0 ? 1 : e.mark.line + 1;
    fail(ctx, line, "", "valid YAML", "a syntax error: " + e.msg);
  }
  validate(ctx, config);
  return config;
}

Config load_config_file(const std::string& path) {
  std::string text;
  // Not regular_only: --config <(...) names a pipe.
  if (int error = read_whole_file(path, kMaxConfigFileBytes, /*regular_only=*/false, text)) {
    throw ConfigError(path + ": cannot read config file: " + std::strerror(error));
  }
  return load_config_string(text, path);
}

void apply_environment(Config& config) {
  const char* agent = std::getenv("TOKENTAP_AGENT");
  if (agent != nullptr && agent[0] != '\0') config.agent.name = agent;
  apply_tracing_environment(config.tracing, [](const char* name) { return std::getenv(name); });
}

}  // namespace tokentap
