#include "config/otel_env.h"

#include <cstdlib>
#include <optional>

#include "common/text.h"

namespace tokentap {

namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return std::nullopt;
    int hi = hex_digit(in[i + 1]);
    int lo = hex_digit(in[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// An HTTP field name (RFC 9110 token).
bool is_header_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

[[noreturn]] void env_fail(const char* name, std::string_view expected, std::string_view got) {
  throw ConfigError(std::string(name) + ": expected " + std::string(expected) + ", got " +
                    std::string(got));
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

const char* value_of(const EnvLookup& env, const char* name) {
  const char* v = env(name);
  return v != nullptr && v[0] != '\0' ? v : nullptr;
}

bool is_http_url(std::string_view url) {
  return (url.starts_with("http://") && url.size() > 7 && url[7] != '/') ||
         (url.starts_with("https://") && url.size() > 8 && url[8] != '/');
}

void set_attribute(std::vector<std::pair<std::string, std::string>>& attrs, std::string key,
                   std::string value) {
  for (auto& [k, v] : attrs) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  attrs.emplace_back(std::move(key), std::move(value));
}

double sampler_ratio(const EnvLookup& env) {
  const char* arg = value_of(env, "OTEL_TRACES_SAMPLER_ARG");
  if (arg == nullptr) return 1.0;
  char* end = nullptr;
  double ratio = std::strtod(arg, &end);
  if (end == arg || *end != '\0' || !(ratio >= 0 && ratio <= 1)) {
    env_fail("OTEL_TRACES_SAMPLER_ARG", "a ratio from 0 to 1", quoted(arg));
  }
  return ratio;
}

void apply_sampler(TracingSettings& t, const EnvLookup& env) {
  const char* sampler = value_of(env, "OTEL_TRACES_SAMPLER");
  if (sampler == nullptr) return;
  std::string s = to_lower(trim(sampler));
  // tokentap is always parent-based: an incoming sampled flag decides, then the ratio.
  if (s == "always_on" || s == "parentbased_always_on") {
    t.sample_ratio = 1.0;
  } else if (s == "always_off" || s == "parentbased_always_off") {
    t.sample_ratio = 0.0;
  } else if (s == "traceidratio" || s == "parentbased_traceidratio") {
    t.sample_ratio = sampler_ratio(env);
  } else {
    env_fail("OTEL_TRACES_SAMPLER",
             "always_on, always_off, traceidratio or their parentbased_ forms", quoted(sampler));
  }
}

void apply_endpoint(TracingSettings& t, const EnvLookup& env) {
  if (const char* url = value_of(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) {
    if (!is_http_url(url)) {
      env_fail("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "an http:// or https:// URL", quoted(url));
    }
    t.endpoint = url;
  } else if (const char* base = value_of(env, "OTEL_EXPORTER_OTLP_ENDPOINT")) {
    if (!is_http_url(base))
      env_fail("OTEL_EXPORTER_OTLP_ENDPOINT", "an http:// or https:// URL", quoted(base));
    std::string joined = base;
    while (joined.ends_with('/')) joined.pop_back();
    t.endpoint = joined + "/v1/traces";
  }
  const char* protocol = value_of(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
  const char* name = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
  if (protocol == nullptr) {
    protocol = value_of(env, "OTEL_EXPORTER_OTLP_PROTOCOL");
    name = "OTEL_EXPORTER_OTLP_PROTOCOL";
  }
  if (protocol != nullptr) {
    if (std::string_view(protocol) != "http/protobuf" &&
        std::string_view(protocol) != "http/json") {
      env_fail(name, "http/protobuf or http/json (grpc is not supported)", quoted(protocol));
    }
    t.protocol = protocol;
  }
  if (const char* ca = value_of(env, "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE")) {
    t.ca_file = ca;
  } else if (const char* ca_all = value_of(env, "OTEL_EXPORTER_OTLP_CERTIFICATE")) {
    t.ca_file = ca_all;
  }
}

void apply_headers(TracingSettings& t, const EnvLookup& env) {
  for (const char* name : {"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"}) {
    const char* text = value_of(env, name);
    if (text == nullptr) continue;
    auto headers = parse_otel_key_values(text);
    // The value may hold a credential: the message never repeats it.
    if (!headers) env_fail(name, "comma-separated key=value pairs", "something else");
    for (auto& [key, value] : *headers) {
      if (!is_header_name(key) || value.find_first_of("\r\n") != std::string::npos) {
        env_fail(name, "header names and values", "an invalid header");
      }
      set_attribute(t.export_headers, to_lower(key), std::move(value));
    }
  }
}

void apply_resource(TracingSettings& t, const EnvLookup& env) {
  static constexpr std::pair<const char*, const char*> kDownwardApi[] = {
      {"K8S_POD_NAME", "k8s.pod.name"},
      {"K8S_POD_UID", "k8s.pod.uid"},
      {"K8S_NAMESPACE_NAME", "k8s.namespace.name"},
      {"K8S_NODE_NAME", "k8s.node.name"},
      {"K8S_DEPLOYMENT_NAME", "k8s.deployment.name"},
      {"K8S_CONTAINER_NAME", "k8s.container.name"},
  };
  for (const auto& [var, key] : kDownwardApi) {
    if (const char* v = value_of(env, var)) set_attribute(t.resource_attributes, key, v);
  }
  if (const char* text = value_of(env, "OTEL_RESOURCE_ATTRIBUTES")) {
    auto attrs = parse_otel_key_values(text);
    if (!attrs)
      env_fail("OTEL_RESOURCE_ATTRIBUTES", "comma-separated key=value pairs", quoted(text));
    for (auto& [key, value] : *attrs) {
      if (key == "service.name") {
        t.service_name = value;
      } else {
        set_attribute(t.resource_attributes, std::move(key), std::move(value));
      }
    }
  }
  if (const char* name = value_of(env, "OTEL_SERVICE_NAME")) t.service_name = name;
}

}  // namespace

std::optional<std::vector<std::pair<std::string, std::string>>> parse_otel_key_values(
    std::string_view text) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string_view item =
        text.substr(pos, comma == std::string_view::npos ? text.npos : comma - pos);
    pos = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    item = trim(item);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::string_view key = trim(item.substr(0, eq));
    auto value = percent_decode(trim(item.substr(eq + 1)));
    if (key.empty() || !value) return std::nullopt;
    out.emplace_back(std::string(key), std::move(*value));
  }
  return out;
}

void apply_tracing_environment(TracingSettings& t, const EnvLookup& env) {
  if (const char* exporter = value_of(env, "OTEL_TRACES_EXPORTER")) {
    std::string e = to_lower(trim(exporter));
    if (e == "otlp") {
      t.enabled = true;
    } else if (e == "none") {
      t.enabled = false;
    } else {
      env_fail("OTEL_TRACES_EXPORTER", "otlp or none", quoted(exporter));
    }
  }
  if (const char* disabled = value_of(env, "OTEL_SDK_DISABLED");
      disabled && to_lower(disabled) == "true") {
    t.enabled = false;
  }
  apply_endpoint(t, env);
  apply_headers(t, env);
  apply_resource(t, env);
  apply_sampler(t, env);
  if (t.enabled && t.endpoint.empty()) {
    throw ConfigError(
        "tracing: expected tracing.otlp_endpoint or OTEL_EXPORTER_OTLP_ENDPOINT when tracing is "
        "enabled, got none");
  }
}

}  // namespace tokentap
