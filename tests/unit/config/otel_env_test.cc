#include "config/otel_env.h"

#include <catch2/catch.hpp>
#include <map>

using namespace tokentap;

namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

std::string env_error(std::map<std::string, std::string> vars) {
  TracingSettings t;
  try {
    apply_tracing_environment(t, env_of(std::move(vars)));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("otel env: the standard variables configure the exporter") {
  TracingSettings t;
  t.sample_ratio = 0.5;
  apply_tracing_environment(
      t, env_of({{"OTEL_TRACES_EXPORTER", "otlp"},
                 {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://otel-collector:4318/"},
                 {"OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20abc, x-tenant = t1"},
                 {"OTEL_SERVICE_NAME", "planner-gateway"},
                 {"OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=prod,service.name=x"},
                 {"OTEL_TRACES_SAMPLER", "parentbased_traceidratio"},
                 {"OTEL_TRACES_SAMPLER_ARG", "0.1"},
                 {"K8S_POD_NAME", "planner-7d9f-abcde"},
                 {"K8S_NAMESPACE_NAME", "agents"}}));
  CHECK(t.enabled);
  CHECK(t.endpoint == "http://otel-collector:4318/v1/traces");
  using KV = std::vector<std::pair<std::string, std::string>>;
  CHECK(t.export_headers == KV{{"authorization", "Bearer abc"}, {"x-tenant", "t1"}});
  CHECK(t.service_name == "planner-gateway");  // OTEL_SERVICE_NAME beats service.name
  CHECK(t.resource_attributes == KV{{"k8s.pod.name", "planner-7d9f-abcde"},
                                    {"k8s.namespace.name", "agents"},
                                    {"deployment.environment.name", "prod"}});
  CHECK(t.sample_ratio == 0.1);
}

TEST_CASE("otel env: the traces endpoint is used as is and wins") {
  TracingSettings t;
  apply_tracing_environment(t, env_of({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"},
                                       {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4318/x"}}));
  CHECK(t.endpoint == "http://b:4318/x");
  CHECK_FALSE(t.enabled);  // only OTEL_TRACES_EXPORTER=otlp or the config enables

  TracingSettings off;
  off.enabled = true;
  off.endpoint = "http://c:4318/v1/traces";
  apply_tracing_environment(off, env_of({{"OTEL_SDK_DISABLED", "true"}}));
  CHECK_FALSE(off.enabled);
  apply_tracing_environment(off, env_of({{"OTEL_TRACES_SAMPLER", "always_off"}}));
  CHECK(off.sample_ratio == 0);
}

TEST_CASE("otel env: bad values name the variable and never echo a header") {
  CHECK(env_error({{"OTEL_TRACES_SAMPLER", "traceidratio"}, {"OTEL_TRACES_SAMPLER_ARG", "2"}}) ==
        "OTEL_TRACES_SAMPLER_ARG: expected a ratio from 0 to 1, got \"2\"");
  CHECK(env_error({{"OTEL_TRACES_SAMPLER", "jaeger_remote"}}).starts_with("OTEL_TRACES_SAMPLER: "));
  CHECK(env_error({{"OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://c:4318"}})
            .starts_with("OTEL_EXPORTER_OTLP_ENDPOINT: expected an http:// or https:// URL"));
  CHECK(env_error({{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4318"}}).empty());
  CHECK(env_error({{"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}})
            .starts_with("OTEL_EXPORTER_OTLP_PROTOCOL: expected http/protobuf or http/json"));
  std::string e = env_error({{"OTEL_EXPORTER_OTLP_HEADERS", "Authorization=sk-secret%zz"}});
  CHECK(e.starts_with("OTEL_EXPORTER_OTLP_HEADERS: "));
  CHECK(e.find("sk-secret") == std::string::npos);
  CHECK(env_error({{"OTEL_TRACES_EXPORTER", "otlp"}}).find("OTEL_EXPORTER_OTLP_ENDPOINT") !=
        std::string::npos);
  CHECK(env_error({{"OTEL_TRACES_EXPORTER", "zipkin"}}).starts_with("OTEL_TRACES_EXPORTER: "));
}

TEST_CASE("otel env: key=value lists") {
  auto kv = parse_otel_key_values(" a=1 ,b=x%2Cy,, c = ");
  REQUIRE(kv);
  CHECK(kv->size() == 3);
  CHECK((*kv)[1].second == "x,y");
  CHECK((*kv)[2] == std::pair<std::string, std::string>{"c", ""});
  CHECK_FALSE(parse_otel_key_values("novalue"));
  CHECK_FALSE(parse_otel_key_values("=v"));
  CHECK_FALSE(parse_otel_key_values("k=%4"));
}
