#include <catch2/catch.hpp>

#include "config/config.h"

using namespace tokentap;

namespace {
std::string error_of(const std::string& yaml) {
  try {
    load_config_string(yaml, "t.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("config: tracing block") {
  Config c = load_config_string(R"(
tracing:
  enabled: true
  endpoint: http://otel-collector:4318/v1/traces
  service_name: gateway
  sample_ratio: 0.25
  capture_content: true
  content_max_bytes: 2048
  pii:
    patterns: ["EMP-[0-9]{6}"]
  propagate_response_traceparent: true
)",
                                "t.yaml");
  CHECK(c.tracing.enabled);
  CHECK(c.tracing.endpoint == "http://otel-collector:4318/v1/traces");
  CHECK(c.tracing.service_name == "gateway");
  CHECK(c.tracing.sample_ratio == 0.25);
  CHECK(c.tracing.capture_content);
  CHECK(c.tracing.content_max_bytes == 2048);
  CHECK(c.tracing.pii_patterns == std::vector<std::string>{"EMP-[0-9]{6}"});
  CHECK(c.tracing.propagate_response_traceparent);
  CHECK_FALSE(default_config().tracing.enabled);
}

TEST_CASE("config: tracing errors name the file and line") {
  CHECK(error_of("tracing:\n  sample_ratio: 1.5\n") ==
        "t.yaml:2: tracing.sample_ratio: expected a ratio from 0 to 1, got \"1.5\"");
  CHECK(error_of("tracing:\n  endpoint: ftp://c:4318/v1/traces\n").starts_with("t.yaml:2: "));
  CHECK(error_of("tracing:\n  pii:\n    patterns:\n      - \"(open\"\n")
            .starts_with("t.yaml:4: tracing.pii.patterns[0]: expected a valid ECMAScript"));
  CHECK(error_of("tracing:\n  enabled: true\n").starts_with("t.yaml:1: tracing.otlp_endpoint"));
  CHECK(error_of("tracing:\n  bogus: 1\n").starts_with("t.yaml:2: "));
}

TEST_CASE("config: tracing keys as the issue names them") {
  Config c = load_config_string(R"(
tracing:
  enabled: true
  otlp_endpoint: http://otel-collector:4318
  protocol: http/json
  sample_ratio: 0.1
  keep_errors: false
  max_queue: 500
  pii_patterns: ["EMP-[0-9]{6}", "ACME-[A-Z]+"]
)",
                                "t.yaml");
  CHECK(c.tracing.endpoint == "http://otel-collector:4318");
  CHECK(c.tracing.protocol == "http/json");
  CHECK_FALSE(c.tracing.keep_errors);
  CHECK(c.tracing.max_queue == 500);
  CHECK(c.tracing.pii_patterns == std::vector<std::string>{"EMP-[0-9]{6}", "ACME-[A-Z]+"});
  CHECK(default_config().tracing.keep_errors);
  CHECK(default_config().tracing.max_queue == 2048);
  CHECK(default_config().tracing.protocol == "http/protobuf");
}

TEST_CASE("config: the new tracing keys are checked with FILE:LINE") {
  CHECK(error_of("tracing:\n  protocol: grpc\n") ==
        "t.yaml:2: tracing.protocol: expected http/protobuf or http/json (grpc is not "
        "supported), got \"grpc\"");
  CHECK(error_of("tracing:\n  max_queue: 0\n") ==
        "t.yaml:2: tracing.max_queue: expected an integer from 1 to 1000000, got \"0\"");
  CHECK(error_of("tracing:\n  keep_errors: maybe\n") ==
        "t.yaml:2: tracing.keep_errors: expected true or false, got \"maybe\"");
  CHECK(error_of("tracing:\n  otlp_endpoint: c:4318\n")
            .starts_with("t.yaml:2: tracing.otlp_endpoint: expected an http:// or https:// OTLP"));
  CHECK(error_of("tracing:\n  pii_patterns:\n    - ok\n    - \"[\"\n")
            .starts_with("t.yaml:4: tracing.pii_patterns[1]: expected a valid ECMAScript"));
  CHECK(error_of("tracing:\n  enabled: true\n")
            .starts_with("t.yaml:1: tracing.otlp_endpoint: expected an OTLP endpoint"));
}
