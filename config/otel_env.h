// The OpenTelemetry SDK environment variables tokentap honours for its traces, and the
// Kubernetes downward-API variables that become resource attributes. They override the
// `tracing:` block of the config file (a pod's own identity and its collector beat a ConfigMap
// shared by many pods). Pure: the variables come from a lookup function.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace tokentap {

// Returns the variable's value, or nullptr when it is unset.
using EnvLookup = std::function<const char*(const char* name)>;

// OTEL_TRACES_EXPORTER (otlp: enabled, none: disabled), OTEL_SDK_DISABLED=true (disabled),
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is) or OTEL_EXPORTER_OTLP_ENDPOINT (+ /v1/traces),
// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf, http/json),
// OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE or OTEL_EXPORTER_OTLP_CERTIFICATE (the collector's CA
// bundle), OTEL_EXPORTER_OTLP_HEADERS
// and OTEL_EXPORTER_OTLP_TRACES_HEADERS (key=value,... percent-decoded; secret values),
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG) and K8S_POD_NAME,
// K8S_POD_UID, K8S_NAMESPACE_NAME, K8S_NODE_NAME, K8S_DEPLOYMENT_NAME, K8S_CONTAINER_NAME.
// Throws ConfigError naming the variable and what was expected; a header's value is never in
// the message.
void apply_tracing_environment(TracingSettings& tracing, const EnvLookup& env);

// "k1=v1, k2=v%202" as the OTel specification's W3C-baggage-like lists: trimmed, values
// percent-decoded. nullopt when an entry has no '=' or an empty key, or bad percent escapes.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_otel_key_values(
    std::string_view text);

}  // namespace tokentap
