// tokentap configuration: the in-memory model, built-in defaults and the YAML loader.
//
// load_config_file() / load_config_string() parse YAML into a Config, starting from the
// built-in defaults (default_config()), and validate it. Any problem throws ConfigError whose
// what() reads "FILE:LINE: what was expected" (LINE is 1-based, from the YAML node's mark).
// Unknown keys are errors. Nothing here does I/O except reading the named file and the admin
// token file it names (admin.token_file).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"

namespace tokentap {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Provider { openai, anthropic, gemini, azure_openai, openai_compatible, auto_detect };

// Returns the config spelling ("openai", ..., "auto").
const char* provider_name(Provider p);
std::optional<Provider> parse_provider(std::string_view s);

struct HostPort {
  std::string host;  // IPv4/IPv6 literal or hostname; IPv6 without brackets
  uint16_t port = 0;
};

// "127.0.0.1:8080", "[::1]:8080", ":8080" (all interfaces: host "0.0.0.0"), "localhost:8080".
// The port is required; 0 is allowed (the OS picks one).
std::optional<HostPort> parse_host_port(std::string_view s);
// "10s", "250ms", "5m", "1h", "2h30m", "0s". Returns nullopt on anything else.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view s);
// "64MiB", "512KiB", "1GiB", "100KB", "1MB", "4096" (bytes), "10B". Returns nullopt otherwise.
std::optional<uint64_t> parse_size(std::string_view s);

struct UpstreamUrl {
  bool tls = true;   // https
  std::string host;  // no brackets
  uint16_t port = 443;
  std::string base_path;  // "" or "/openai/v1" (no trailing slash)
  std::string authority;  // value for the Host header: host[:port], port omitted when default
};

// "https://api.openai.com", "http://vllm.ns.svc:8000/v1". Throws nothing; nullopt when invalid.
std::optional<UpstreamUrl> parse_upstream_url(std::string_view s);

struct TlsSettings {
  bool verify = true;
  std::string ca_file;  // extra CA bundle, in addition to the system store
  std::string sni;      // defaults to the upstream host
};

// A route's circuit breaker (proxy/policy/circuit_breaker.h). Opt-in: a route without the
// `circuit_breaker` key has none.
struct CircuitBreakerSettings {
  // Opens after this many failed requests in a row, the first of them at most `window` ago.
  uint32_t consecutive_failures = 5;
  std::chrono::milliseconds window{60'000};
  // Stays open (answering 503 circuit_open without upstream contact) this long, then half-open.
  std::chrono::milliseconds open_for{30'000};
  // Requests let through while half-open; all of them succeeding closes it, one failing reopens.
  uint32_t half_open_requests = 1;
  bool trip_on_429 = false;  // count the provider's 429 answers as failures
};

struct Route {
  std::string prefix = "/";
  // When non-empty, the route only matches a path that contains one of these strings
  // (used for Gemini's "...:generateContent" under /v1/...).
  std::vector<std::string> path_contains;
  UpstreamUrl upstream;
  std::string upstream_text;  // as written, for logs and labels
  Provider provider = Provider::auto_detect;
  bool strip_prefix = false;
  TlsSettings tls;
  std::string name;  // label value: defaults to the prefix (plus "+contains" marker)
  std::optional<CircuitBreakerSettings> circuit_breaker;
};

struct Timeouts {
  std::chrono::milliseconds connect{10'000};
  std::chrono::milliseconds first_byte{600'000};
  std::chrono::milliseconds idle{600'000};
  std::chrono::milliseconds downstream_header{60'000};
  std::chrono::milliseconds drain{120'000};
};

struct Limits {
  uint64_t max_request_body = 64ull << 20;
  uint64_t max_header_bytes = 64ull << 10;
  uint32_t max_headers = 100;
  uint32_t max_connections = 10'000;
  // Request bodies held in memory at once, all workers together (JSON bodies are read whole
  // before forwarding); a request that would exceed it is answered 503 request_buffer_full.
  // At least max_request_body.
  uint64_t max_buffered_request_bytes = 256ull << 20;
};

struct LogSettings {
  // "stdout" (default), "stderr", "off", or a file path (appended to).
  std::string access = "stdout";
  LogLevel level = LogLevel::info;
};

struct AgentSettings {
  std::string name = "unknown";  // default agent; TOKENTAP_AGENT overrides the built-in default
  std::string header = "x-agent-id";  // lower-case
};

struct MetricsSettings {
  // Distinct values kept per label (agent, model, tool, ...); later values become "other".
  uint32_t max_values_per_label = 100;
  // Also export the OpenTelemetry GenAI metric names and attribute names.
  bool otel_semconv = false;
};

struct MeteringSettings {
  // Add stream_options.include_usage to OpenAI streaming chat/completions requests that lack it
  // and remove the resulting usage-only chunk from what the client receives.
  bool include_stream_usage = true;
};

struct PricingSettings {
  // Price files merged over the built-in table, in order (our JSON format or LiteLLM's
  // model_prices_and_context_window.json). Relative paths are relative to the config file.
  std::vector<std::string> files;
  // Azure OpenAI deployment name -> model name, for pricing.
  std::map<std::string, std::string, std::less<>> azure_deployments;
};

enum class BudgetAction { alert, block };

// Spend limits for one agent, or for all agents together (agent "*"). A limit of 0 is unset.
struct Budget {
  std::string agent;
  double hourly_usd = 0;  // rolling 60 minutes
  double daily_usd = 0;   // rolling 24 hours
  // alert: gauges and a warning log; block: requests are answered 429 budget_exceeded before
  // any upstream contact while the limit is reached.
  BudgetAction action = BudgetAction::alert;
};

struct SessionSettings {
  std::chrono::milliseconds idle_timeout{600'000};
  uint32_t max_sessions = 10'000;  // least recently used sessions beyond this are closed
  // Runaway detection; 0 disables a check.
  uint32_t max_requests_per_minute = 0;
  double max_cost_usd = 0;
  // The same tool with the same arguments requested more than this many times in a session.
  uint32_t max_identical_tool_calls = 0;
  BudgetAction runaway_action = BudgetAction::alert;
};

// OpenTelemetry traces over OTLP/HTTP, protobuf or JSON (proxy/tracing). Off unless enabled. The
// OTEL_* environment variables override these (config/otel_env.h).
struct TracingSettings {
  bool enabled = false;
  // otlp_endpoint (alias endpoint): http://otel-collector:4318 gets /v1/traces appended; a URL
  // with a path is used as is; https:// verifies the collector like an upstream. Required when
  // enabled.
  std::string endpoint;
  std::string protocol = "http/protobuf";  // or "http/json"
  // PEM CA bundle trusted for an https collector besides the system store (relative to the
  // config file; OTEL_EXPORTER_OTLP_CERTIFICATE overrides it).
  std::string ca_file;
  std::string service_name = "tokentap";
  double sample_ratio = 1.0;  // for requests without an incoming sampled flag
  bool keep_errors = true;    // every failed request is exported, whatever the ratio
  size_t max_queue = 2048;    // spans waiting for export; more are dropped (counted)
  bool session_traces = false;
  // Prompts and completions as span attributes (gen_ai.input.messages, ...), PII-scrubbed, at
  // most content_max_bytes per side (at most 16 KiB).
  bool capture_content = false;
  size_t content_max_bytes = size_t{16} << 10;
  std::vector<std::string> pii_patterns;  // ECMAScript regexes, checked at load
  bool propagate_response_traceparent = false;
  // From the environment only: OTEL_EXPORTER_OTLP_HEADERS (secret values, never logged) and
  // OTEL_RESOURCE_ATTRIBUTES with the Kubernetes downward-API variables.
  std::vector<std::pair<std::string, std::string>> export_headers;
  std::vector<std::pair<std::string, std::string>> resource_attributes;
};

struct AdminSettings {
  // A file holding the bearer token that /v1/* on the admin port requires from clients that are
  // not on loopback. Relative to the config file. Read when the config is loaded (start and every
  // reload), never per request. Empty: /v1/* is served to loopback clients only.
  std::string token_file;
  // The file's content without its trailing line break. A secret: never logged or echoed.
  std::string token;
};

struct Config {
  std::string source = "<built-in defaults>";  // file name the config came from
  HostPort listen{"127.0.0.1", 8080};
  HostPort admin_listen{"0.0.0.0", 9901};
  AdminSettings admin;
  uint32_t workers = 1;
  AgentSettings agent;
  std::string session_header = "x-session-id";     // lower-case
  std::string request_id_header = "x-request-id";  // lower-case
  std::vector<Route> routes;
  Timeouts timeouts;
  Limits limits;
  LogSettings log;
  MetricsSettings metrics;
  MeteringSettings metering;
  PricingSettings pricing;
  std::vector<Budget> budgets;
  SessionSettings sessions;
  TracingSettings tracing;
};

// The configuration used when no file is given: routes for OpenAI, Anthropic and Gemini.
Config default_config();

// Parses YAML text; `source_name` is used in error messages. Keys absent from the text keep
// their default_config() values; a `routes` key replaces the default routes entirely.
Config load_config_string(const std::string& yaml_text, const std::string& source_name);
Config load_config_file(const std::string& path);

// Applies environment overrides: a non-empty TOKENTAP_AGENT replaces agent.name (a pod's own
// identity, from the downward API, beats a ConfigMap shared by many agents), and the OTEL_*
// variables the tracing settings (config/otel_env.h). Throws ConfigError for a bad value.
void apply_environment(Config& config);

// Picks the route for a request path: longest prefix wins; among equal prefixes a route with
// path_contains beats one without. Returns nullptr when nothing matches.
const Route* match_route(const std::vector<Route>& routes, std::string_view path);

}  // namespace tokentap
