#include "config/config.h"

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace tokentap;
using namespace std::chrono_literals;

namespace {

Config load(const std::string& yaml) { return load_config_string(yaml, "t.yaml"); }

// The ConfigError message for `yaml`, or "no error" so a missing throw shows up in the diff.
std::string error_of(const std::string& yaml, const std::string& source = "t.yaml") {
  try {
    load_config_string(yaml, source);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

std::string route_name(const std::vector<Route>& routes, std::string_view path) {
  const Route* route = match_route(routes, path);
  return route == nullptr ? "<none>" : route->name;
}

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ =
        std::filesystem::temp_directory_path() /
        ("tokentap-config-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string write(const std::string& name, const std::string& text) const {
    std::string file = (path_ / name).string();
    std::ofstream(file) << text;
    return file;
  }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace

TEST_CASE("default_config holds the documented defaults", "[config]") {
  Config c = default_config();
  CHECK(c.listen.host == "127.0.0.1");
  CHECK(c.listen.port == 8080);
  CHECK(c.admin_listen.host == "0.0.0.0");
  CHECK(c.admin_listen.port == 9901);
  CHECK(c.admin.token_file.empty());
  CHECK(c.admin.token.empty());
  CHECK(c.workers == 1);
  CHECK(c.agent.name == "unknown");
  CHECK(c.agent.header == "x-agent-id");
  CHECK(c.session_header == "x-session-id");
  CHECK(c.request_id_header == "x-request-id");
  CHECK(c.timeouts.connect == 10s);
  CHECK(c.timeouts.first_byte == 600s);
  CHECK(c.timeouts.idle == 600s);
  CHECK(c.timeouts.downstream_header == 60s);
  CHECK(c.timeouts.drain == 120s);
  CHECK(c.limits.max_request_body == 64ull * 1024 * 1024);
  CHECK(c.limits.max_header_bytes == 64ull * 1024);
  CHECK(c.limits.max_headers == 100);
  CHECK(c.limits.max_connections == 10000);
  CHECK(c.limits.max_buffered_request_bytes == 256ull << 20);
  CHECK(c.log.access == "stdout");
  CHECK(c.log.level == LogLevel::info);

  REQUIRE(c.routes.size() == 4);
  const Route& anthropic = c.routes[0];
  CHECK(anthropic.name == "anthropic");
  CHECK(anthropic.prefix == "/v1/messages");
  CHECK(anthropic.provider == Provider::anthropic);
  CHECK(anthropic.upstream.host == "api.anthropic.com");
  CHECK(anthropic.upstream.tls);
  CHECK(anthropic.upstream.port == 443);
  CHECK(anthropic.upstream_text == "https://api.anthropic.com");
  CHECK_FALSE(anthropic.strip_prefix);
  CHECK(anthropic.tls.verify);

  const Route& gemini = c.routes[1];
  CHECK(gemini.name == "gemini");
  CHECK(gemini.prefix == "/v1beta/");
  CHECK(gemini.provider == Provider::gemini);
  CHECK(gemini.upstream.authority == "generativelanguage.googleapis.com");

  const Route& rpc = c.routes[2];
  CHECK(rpc.name == "gemini-rpc");
  CHECK(rpc.prefix == "/");
  CHECK(rpc.provider == Provider::gemini);
  CHECK(rpc.path_contains == std::vector<std::string>{":generateContent", ":streamGenerateContent",
                                                      ":embedContent", ":batchEmbedContents",
                                                      ":countTokens"});

  const Route& openai = c.routes[3];
  CHECK(openai.name == "openai");
  CHECK(openai.prefix == "/");
  CHECK(openai.provider == Provider::openai);
  CHECK(openai.upstream.authority == "api.openai.com");
  CHECK(openai.upstream.base_path.empty());
}

TEST_CASE("default routes send each SDK's paths to its provider", "[config][routes]") {
  auto routes = default_config().routes;
  CHECK(route_name(routes, "/v1/chat/completions") == "openai");
  CHECK(route_name(routes, "/v1/responses") == "openai");
  CHECK(route_name(routes, "/v1/embeddings") == "openai");
  CHECK(route_name(routes, "/v1/models") == "openai");
  CHECK(route_name(routes, "/v1/messages") == "anthropic");
  CHECK(route_name(routes, "/v1/messages?beta=true") == "anthropic");
  CHECK(route_name(routes, "/v1/messages/count_tokens") == "anthropic");
  CHECK(route_name(routes, "/v1beta/models/gemini-2.0-flash:generateContent") == "gemini");
  CHECK(route_name(routes, "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse") ==
        "gemini");
  CHECK(route_name(routes, "/v1/models/gemini-pro:streamGenerateContent?alt=sse") == "gemini-rpc");
  CHECK(route_name(routes, "/v1/models/text-embedding-004:embedContent") == "gemini-rpc");
  CHECK(route_name(routes, "/v1/models/text-embedding-004:batchEmbedContents") == "gemini-rpc");
  CHECK(route_name(routes, "/v1/models/gemini-pro:countTokens") == "gemini-rpc");
  // The marker only counts in the path, not in the query string.
  CHECK(route_name(routes, "/v1/chat/completions?x=:generateContent") == "openai");
}

TEST_CASE("an empty or comment-only file keeps every default", "[config]") {
  for (const char* text : {"", "# nothing here\n", "---\n"}) {
    Config c = load(text);
    CHECK(c.source == "t.yaml");
    CHECK(c.listen.port == 8080);
    CHECK(c.routes.size() == 4);
  }
  // A section whose keys are all commented out is an empty section.
  Config c = load("timeouts:\n  # connect: 5s\nlog:\n");
  CHECK(c.timeouts.connect == 10s);
  CHECK(c.log.access == "stdout");
}

TEST_CASE("every key is parsed", "[config]") {
  Config c = load(R"(listen: "[::1]:0"
admin_listen: :9902
workers: 4
agent:
  name: claude-code
  header: X-Tokentap-Agent
session_header: X-Session
request_id_header: X-Req-ID
routes:
  - name: azure
    prefix: /openai/
    upstream: https://my-resource.openai.azure.com:8443/base/
    provider: azure_openai
    strip_prefix: true
    tls:
      verify: false
      ca_file: /etc/ssl/extra.pem
      sni: Edge.Example.COM
  - prefix: /v1/
    path_contains: [":generateContent", ":streamGenerateContent"]
    upstream: http://10.0.0.5:8000
    provider: gemini
  - upstream: http://vllm.ns.svc:8000/v1
    provider: openai_compatible
timeouts:
  connect: 250ms
  first_byte: 2h30m
  idle: 5m
  downstream_header: 1h
  drain: 0s
limits:
  max_request_body: 1GiB
  max_header_bytes: 100KB
  max_headers: 50
  max_connections: 20000
  max_buffered_request_bytes: 2GiB
log:
  access: /var/log/tokentap/access.log
  level: debug
)");
  CHECK(c.listen.host == "::1");
  CHECK(c.listen.port == 0);
  CHECK(c.admin_listen.host == "0.0.0.0");
  CHECK(c.admin_listen.port == 9902);
  CHECK(c.workers == 4);
  CHECK(c.agent.name == "claude-code");
  CHECK(c.agent.header == "x-tokentap-agent");
  CHECK(c.session_header == "x-session");
  CHECK(c.request_id_header == "x-req-id");

  REQUIRE(c.routes.size() == 3);
  const Route& azure = c.routes[0];
  CHECK(azure.name == "azure");
  CHECK(azure.prefix == "/openai/");
  CHECK(azure.upstream_text == "https://my-resource.openai.azure.com:8443/base/");
  CHECK(azure.upstream.tls);
  CHECK(azure.upstream.host == "my-resource.openai.azure.com");
  CHECK(azure.upstream.port == 8443);
  CHECK(azure.upstream.base_path == "/base");
  CHECK(azure.upstream.authority == "my-resource.openai.azure.com:8443");
  CHECK(azure.provider == Provider::azure_openai);
  CHECK(azure.strip_prefix);
  CHECK_FALSE(azure.tls.verify);
  CHECK(azure.tls.ca_file == "/etc/ssl/extra.pem");
  CHECK(azure.tls.sni == "edge.example.com");

  const Route& rpc = c.routes[1];
  CHECK(rpc.name == "/v1/+contains");
  CHECK(rpc.path_contains ==
        std::vector<std::string>{":generateContent", ":streamGenerateContent"});
  CHECK_FALSE(rpc.upstream.tls);
  CHECK(rpc.upstream.authority == "10.0.0.5:8000");
  CHECK(rpc.provider == Provider::gemini);
  CHECK_FALSE(rpc.strip_prefix);

  const Route& vllm = c.routes[2];
  CHECK(vllm.name == "/");
  CHECK(vllm.prefix == "/");
  CHECK(vllm.upstream.base_path == "/v1");
  CHECK(vllm.provider == Provider::openai_compatible);
  CHECK(vllm.tls.verify);
  CHECK(vllm.tls.sni.empty());

  CHECK(c.timeouts.connect == 250ms);
  CHECK(c.timeouts.first_byte == 150min);
  CHECK(c.timeouts.idle == 5min);
  CHECK(c.timeouts.downstream_header == 1h);
  CHECK(c.timeouts.drain == 0s);
  CHECK(c.limits.max_request_body == 1ull << 30);
  CHECK(c.limits.max_header_bytes == 100'000);
  CHECK(c.limits.max_headers == 50);
  CHECK(c.limits.max_connections == 20000);
  CHECK(c.limits.max_buffered_request_bytes == 2ull << 30);
  CHECK(c.log.access == "/var/log/tokentap/access.log");
  CHECK(c.log.level == LogLevel::debug);
}

TEST_CASE("keys that are absent keep their defaults", "[config]") {
  Config c = load("timeouts:\n  connect: 3s\nlimits:\n  max_headers: 7\n");
  CHECK(c.timeouts.connect == 3s);
  CHECK(c.timeouts.first_byte == 600s);
  CHECK(c.limits.max_headers == 7);
  CHECK(c.limits.max_request_body == 64ull << 20);
  CHECK(c.routes.size() == 4);
  CHECK(load("log:\n  level: warn\n").log.level == LogLevel::warn);
  CHECK(load("log:\n  level: error\n").log.level == LogLevel::error);
  CHECK(load("routes:\n  - {upstream: 'https://x'}\n").routes.size() == 1);
}

TEST_CASE("unknown keys are errors that list the allowed keys", "[config][errors]") {
  CHECK(error_of("workers: 2\nlisten_addr: :80\n") ==
        "t.yaml:2: expected one of the keys listen, admin_listen, admin, workers, agent, "
        "session_header, request_id_header, routes, timeouts, limits, log, metrics, metering, "
        "pricing, budgets, sessions, tracing, got unknown key \"listen_addr\"");
  CHECK(error_of("metrics:\n  max_labels: 5\n") ==
        "t.yaml:2: metrics: expected one of the keys max_values_per_label, otel_semconv, got "
        "unknown key \"max_labels\"");
  CHECK(error_of("metering:\n  inject: false\n") ==
        "t.yaml:2: metering: expected one of the keys include_stream_usage, got unknown key "
        "\"inject\"");
  CHECK(error_of("timeouts:\n  connect: 1s\n  conect: 2s\n") ==
        "t.yaml:3: timeouts: expected one of the keys connect, first_byte, idle, "
        "downstream_header, drain, got unknown key \"conect\"");
  CHECK(error_of("routes:\n  - upstream: https://x\n    tls:\n      insecure: true\n") ==
        "t.yaml:4: routes[0].tls: expected one of the keys verify, ca_file, sni, got unknown key "
        "\"insecure\"");
  CHECK(error_of("routes:\n  - upstream: https://x\n    stripPrefix: true\n") ==
        "t.yaml:3: routes[0]: expected one of the keys name, prefix, path_contains, upstream, "
        "provider, strip_prefix, tls, circuit_breaker, got unknown key \"stripPrefix\"");
  CHECK(error_of("agent:\n  id: a\n") ==
        "t.yaml:2: agent: expected one of the keys name, header, got unknown key \"id\"");
  CHECK(error_of("log:\n  format: json\n") ==
        "t.yaml:2: log: expected one of the keys access, level, got unknown key \"format\"");
  CHECK(error_of("limits:\n  max_body: 1\n") ==
        "t.yaml:2: limits: expected one of the keys max_request_body, max_header_bytes, "
        "max_headers, max_connections, max_buffered_request_bytes, got unknown key "
        "\"max_body\"");
}

TEST_CASE("duplicate keys are errors", "[config][errors]") {
  CHECK(error_of("workers: 2\nworkers: 3\n") ==
        "t.yaml:2: expected each key once, got a second \"workers\"");
}

TEST_CASE("values of the wrong type are errors", "[config][errors]") {
  CHECK(error_of("- a\n- b\n") == "t.yaml:1: expected a mapping of settings, got a list");
  CHECK(error_of("just text\n") == "t.yaml:1: expected a mapping of settings, got \"just text\"");
  CHECK(error_of("timeouts: [1, 2]\n") == "t.yaml:1: timeouts: expected a mapping, got a list");
  CHECK(error_of("agent: bob\n") == "t.yaml:1: agent: expected a mapping, got \"bob\"");
  CHECK(error_of("\nworkers: many\n") ==
        "t.yaml:2: workers: expected an integer from 1 to 256, got \"many\"");
  CHECK(error_of("workers: 0\n") ==
        "t.yaml:1: workers: expected an integer from 1 to 256, got \"0\"");
  CHECK(error_of("workers: 257\n") ==
        "t.yaml:1: workers: expected an integer from 1 to 256, got \"257\"");
  CHECK(error_of("workers: 2.5\n") ==
        "t.yaml:1: workers: expected an integer from 1 to 256, got \"2.5\"");
  CHECK(error_of("workers:\n") ==
        "t.yaml:1: workers: expected an integer from 1 to 256, got nothing");
  CHECK(error_of("agent:\n  name: [a, b]\n") ==
        "t.yaml:2: agent.name: expected a non-empty string, got a list");
  CHECK(error_of("agent:\n  name: ''\n") ==
        "t.yaml:2: agent.name: expected a non-empty string, got \"\"");
  CHECK(error_of("routes:\n  - upstream: https://x\n    strip_prefix: yes\n") ==
        "t.yaml:3: routes[0].strip_prefix: expected true or false, got \"yes\"");
  CHECK(error_of("routes:\n  - upstream: https://x\n    path_contains: :generateContent\n") ==
        "t.yaml:3: routes[0].path_contains: expected a non-empty list of strings, got "
        "\":generateContent\"");
  CHECK(error_of("routes:\n  - upstream: https://x\n    path_contains: ['a', {b: c}]\n") ==
        "t.yaml:3: routes[0].path_contains[1]: expected a non-empty string, got a mapping");
  CHECK(error_of("limits:\n  max_headers: -1\n") ==
        "t.yaml:2: limits.max_headers: expected an integer from 1 to 4294967295, got \"-1\"");
  CHECK(error_of("log:\n  level: verbose\n") ==
        "t.yaml:2: log.level: expected one of debug, info, warn, error, got \"verbose\"");
  CHECK(error_of("listen: 8080\n") ==
        "t.yaml:1: listen: expected an address like 127.0.0.1:8080, [::1]:8080 or :8080, got "
        "\"8080\"");
}

TEST_CASE("bad durations and sizes name the key and the value", "[config][errors]") {
  std::string yaml =
      "listen: 127.0.0.1:8080\nworkers: 2\nagent:\n  name: a\nroutes:\n"
      "  - upstream: https://x\ntimeouts:\n  connect: ten\n";
  CHECK(error_of(yaml, "tokentap.yaml") ==
        "tokentap.yaml:8: timeouts.connect: expected a duration like 10s or 250ms, got \"ten\"");
  CHECK(error_of("timeouts:\n  idle: 10\n") ==
        "t.yaml:2: timeouts.idle: expected a duration like 10s or 250ms, got \"10\"");
  CHECK(error_of("timeouts:\n  first_byte: 0s\n") ==
        "t.yaml:2: timeouts.first_byte: expected a duration greater than 0s, got \"0s\"");
  CHECK(error_of("timeouts:\n  connect: 0ms\n") ==
        "t.yaml:2: timeouts.connect: expected a duration greater than 0s, got \"0ms\"");
  CHECK(load("timeouts:\n  drain: 0s\n").timeouts.drain == 0s);
  CHECK(error_of("limits:\n  max_request_body: 64MB!\n") ==
        "t.yaml:2: limits.max_request_body: expected a size like 64MiB, 512KiB or 4096, got "
        "\"64MB!\"");
  CHECK(error_of("limits:\n  max_request_body: 0\n") ==
        "t.yaml:2: limits.max_request_body: expected a size from 1 to 18446744073709551615 bytes, "
        "got \"0\"");
  CHECK(error_of("limits:\n  max_header_bytes: 8GiB\n") ==
        "t.yaml:2: limits.max_header_bytes: expected a size from 1 to 4294967295 bytes, got "
        "\"8GiB\"");
}

TEST_CASE("the request buffer budget holds at least one whole body", "[config][errors]") {
  CHECK(load("limits:\n  max_buffered_request_bytes: 64MiB\n").limits.max_buffered_request_bytes ==
        64ull << 20);
  CHECK(error_of("limits:\n  max_request_body: 8MiB\n  max_buffered_request_bytes: 4MiB\n") ==
        "t.yaml:3: limits.max_buffered_request_bytes: expected "
        "limits.max_buffered_request_bytes of at least limits.max_request_body, got 4194304 < "
        "8388608 bytes");
  // Unset, the budget is the 256 MiB default: a larger body limit needs it raised too.
  CHECK(error_of("workers: 1\nlimits:\n  max_request_body: 512MiB\n") ==
        "t.yaml:3: limits.max_request_body: expected limits.max_buffered_request_bytes of at "
        "least limits.max_request_body, got 268435456 < 536870912 bytes");
  CHECK(error_of("limits:\n  max_buffered_request_bytes: 0\n") ==
        "t.yaml:2: limits.max_buffered_request_bytes: expected a size from 1 to "
        "18446744073709551615 bytes, got \"0\"");
}

TEST_CASE("bad upstreams and providers are errors, and credentials are not echoed",
          "[config][errors]") {
  auto upstream_error = [](const std::string& url) {
    return error_of("routes:\n  - prefix: /\n    upstream: '" + url + "'\n");
  };
  CHECK(upstream_error("ftp://x") ==
        "t.yaml:3: routes[0].upstream: expected an http:// or https:// URL like "
        "https://api.openai.com, got \"ftp://x\"");
  CHECK(upstream_error("api.openai.com") ==
        "t.yaml:3: routes[0].upstream: expected an http:// or https:// URL like "
        "https://api.openai.com, got \"api.openai.com\"");
  CHECK(upstream_error("https://user:sk-secret@api.openai.com/v1") ==
        "t.yaml:3: routes[0].upstream: expected a URL without credentials (API keys belong in "
        "request headers), got \"https://<redacted>@api.openai.com/v1\"");
  CHECK(upstream_error("https://generativelanguage.googleapis.com/v1?key=AIzaSECRET") ==
        "t.yaml:3: routes[0].upstream: expected a URL without a query or fragment, got "
        "\"https://generativelanguage.googleapis.com/v1?<redacted>\"");
  CHECK(upstream_error("https://x:0") ==
        "t.yaml:3: routes[0].upstream: expected a port from 1 to 65535, got \"https://x:0\"");
  CHECK(upstream_error("https:///v1") ==
        "t.yaml:3: routes[0].upstream: expected a host name, IPv4 address or [IPv6] address after "
        "the scheme, got \"https:///v1\"");
  CHECK(error_of("routes:\n  - upstream: https://x\n    provider: claude\n") ==
        "t.yaml:3: routes[0].provider: expected one of openai, anthropic, gemini, azure_openai, "
        "openai_compatible, auto, got \"claude\"");
  CHECK(error_of("routes:\n  - upstream: http://x\n    tls:\n      verify: false\n") ==
        "t.yaml:3: routes[0].tls: expected an https:// upstream, got \"http://x\"");
  // A mistyped route (no space after the colon) is one scalar, or an unknown key: still no
  // credentials in the message (found by fuzzing).
  for (const std::string& yaml : {std::string("routes:\n  - upstream:https://u:sk-secret@h\n"),
                                  std::string("routes:\n  - upstream:https://u:sk-secret@h: 1\n"),
                                  std::string("upstream: https://u:sk-secret@h x\n")}) {
    const std::string error = error_of(yaml);
    CHECK(error.find("sk-secret") == std::string::npos);
    CHECK((error.find("<redacted>") != std::string::npos || yaml.starts_with("upstream")));
  }
  // inet_pton stops at a NUL; the host must not.
  CHECK(upstream_error(std::string("http://[fe80::") + std::string(3, '\0') + "1]/")
            .starts_with("t.yaml:3: routes[0].upstream: expected a valid IPv6 address inside [ ]"));
}

TEST_CASE("route lists are validated", "[config][errors]") {
  CHECK(error_of("routes: []\n") ==
        "t.yaml:1: routes: expected a non-empty list of routes, got an empty list");
  CHECK(error_of("routes:\n") ==
        "t.yaml:1: routes: expected a non-empty list of routes, got nothing");
  CHECK(
      error_of("routes:\n  - prefix: /v1\n") ==
      "t.yaml:2: routes[0]: expected an upstream URL (key \"upstream\"), got a route without one");
  CHECK(error_of("routes:\n  - https://x\n") ==
        "t.yaml:2: routes[0]: expected a mapping with at least an upstream, got \"https://x\"");
  CHECK(error_of("routes:\n  - upstream: https://x\n    prefix: v1/\n") ==
        "t.yaml:3: routes[0].prefix: expected a path prefix starting with / (no spaces, query or "
        "fragment), got \"v1/\"");
  CHECK(error_of("routes:\n  - upstream: https://x\n    prefix: /v1\n"
                 "  - upstream: https://y\n    name: other\n    prefix: /v1\n") ==
        "t.yaml:6: routes[1]: expected a prefix and path_contains not already used by routes[0] "
        "(line 2), got a duplicate of it");
  CHECK(error_of("routes:\n  - upstream: https://x\n    name: a\n"
                 "  - upstream: https://y\n    prefix: /v2\n    name: a\n") ==
        "t.yaml:6: routes[1].name: expected a route name not already used by routes[0] (line 2) "
        "(set name to tell them apart), got \"a\"");
}

TEST_CASE("header names are lower-cased HTTP tokens", "[config][errors]") {
  CHECK(load("session_header: X-Conversation-ID\n").session_header == "x-conversation-id");
  CHECK(error_of("agent:\n  header: x agent\n") ==
        "t.yaml:2: agent.header: expected an HTTP header name like x-agent-id, got \"x agent\"");
  CHECK(error_of("request_id_header: 'x-id:'\n") ==
        "t.yaml:1: request_id_header: expected an HTTP header name like x-agent-id, got \"x-id:\"");
}

TEST_CASE("listen and admin_listen must differ", "[config][errors]") {
  CHECK(error_of("listen: 0.0.0.0:9901\n") ==
        "t.yaml:1: listen: expected different addresses for listen and admin_listen, got "
        "\"0.0.0.0:9901\" for both");
  CHECK(error_of("workers: 1\nadmin_listen: 127.0.0.1:8080\n") ==
        "t.yaml:2: admin_listen: expected different addresses for listen and admin_listen, got "
        "\"127.0.0.1:8080\" for both");
  CHECK(error_of("listen: '[::1]:80'\nadmin_listen: '[::1]:80'\n") ==
        "t.yaml:2: admin_listen: expected different addresses for listen and admin_listen, got "
        "\"[::1]:80\" for both");
  // Port 0 lets the OS pick, so both may ask for it.
  Config c = load("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\n");
  CHECK(c.listen.port == 0);
  CHECK(c.admin_listen.port == 0);
}

TEST_CASE("YAML syntax errors carry the file and line", "[config][errors]") {
  CHECK(error_of("workers: 1\nlisten: [127.0.0.1:80\n") ==
        "t.yaml:3: expected valid YAML, got a syntax error: end of sequence flow not found");
  CHECK(error_of("workers: 1\ntimeouts:\n  connect: 1s\n bad: x\n") ==
        "t.yaml:4: expected valid YAML, got a syntax error: end of map not found");
  CHECK(error_of("workers: 1\n---\nworkers: 2\n") ==
        "t.yaml:2: expected a single YAML document, got a second document");
  // yaml-cpp's LoadAll never ends on these (found by fuzzing); we stop at the second document.
  CHECK(error_of(",") == "t.yaml:1: expected a single YAML document, got a second document");
  CHECK(error_of("workers: 1\n,\n").starts_with("t.yaml:"));
}

TEST_CASE("load_config_file reads a file and names it in errors", "[config][file]") {
  TempDir dir;
  std::string good = dir.write("good.yaml", "workers: 3\n");
  Config c = load_config_file(good);
  CHECK(c.workers == 3);
  CHECK(c.source == good);

  std::string bad = dir.write("bad.yaml", "workers: 3\nlog:\n  level: loud\n");
  CHECK_THROWS_WITH(load_config_file(bad),
                    bad + ":3: log.level: expected one of debug, info, warn, error, got \"loud\"");

  std::string missing = dir.path() + "/missing.yaml";
  CHECK_THROWS_WITH(load_config_file(missing),
                    missing + ": cannot read config file: No such file or directory");
  CHECK_THROWS_WITH(load_config_file(dir.path()),
                    dir.path() + ": cannot read config file: Is a directory");
}

TEST_CASE("parse_duration accepts unit sequences and rejects the rest", "[config][parse]") {
  CHECK(parse_duration("10s") == std::chrono::milliseconds(10'000));
  CHECK(parse_duration("250ms") == std::chrono::milliseconds(250));
  CHECK(parse_duration("5m") == std::chrono::milliseconds(300'000));
  CHECK(parse_duration("1h") == std::chrono::milliseconds(3'600'000));
  CHECK(parse_duration("2h30m") == std::chrono::milliseconds(9'000'000));
  CHECK(parse_duration("1m30s500ms") == std::chrono::milliseconds(90'500));
  CHECK(parse_duration("0s") == std::chrono::milliseconds(0));
  CHECK(parse_duration("90s") == std::chrono::milliseconds(90'000));
  for (const char* bad :
       {"", "10", "s", "ten", "-1s", "1.5s", " 1s", "1s ", "1 s", "1S", "1d", "30m2h", "1s1s",
        "1msm", "10us", "99999999999999999999s", "9223372036854775807h"}) {
    INFO(bad);
    CHECK_FALSE(parse_duration(bad).has_value());
  }
}

TEST_CASE("parse_size accepts binary and decimal units", "[config][parse]") {
  CHECK(parse_size("64MiB") == 64ull << 20);
  CHECK(parse_size("512KiB") == 512ull << 10);
  CHECK(parse_size("1GiB") == 1ull << 30);
  CHECK(parse_size("2TiB") == 2ull << 40);
  CHECK(parse_size("100KB") == 100'000u);
  CHECK(parse_size("1MB") == 1'000'000u);
  CHECK(parse_size("3GB") == 3'000'000'000u);
  CHECK(parse_size("4096") == 4096u);
  CHECK(parse_size("10B") == 10u);
  CHECK(parse_size("0") == 0u);
  CHECK(parse_size("18446744073709551615") == std::numeric_limits<uint64_t>::max());
  for (const char* bad : {"", "MiB", "64 MiB", "64mib", "64M", "1.5GiB", "-1", "64MiBs",
                          "18446744073709551616", "17179869184GiB"}) {
    INFO(bad);
    CHECK_FALSE(parse_size(bad).has_value());
  }
}

TEST_CASE("parse_host_port handles IPv4, IPv6, names and all interfaces", "[config][parse]") {
  auto hp = parse_host_port("127.0.0.1:8080");
  REQUIRE(hp);
  CHECK(hp->host == "127.0.0.1");
  CHECK(hp->port == 8080);
  hp = parse_host_port("[::1]:9000");
  REQUIRE(hp);
  CHECK(hp->host == "::1");
  CHECK(hp->port == 9000);
  hp = parse_host_port(":8080");
  REQUIRE(hp);
  CHECK(hp->host == "0.0.0.0");
  CHECK(hp->port == 8080);
  hp = parse_host_port("LocalHost:0");
  REQUIRE(hp);
  CHECK(hp->host == "localhost");
  CHECK(hp->port == 0);
  hp = parse_host_port("[::]:65535");
  REQUIRE(hp);
  CHECK(hp->host == "::");
  CHECK(hp->port == 65535);
  for (const char* bad :
       {"", "8080", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:80a",
        "::1:8080", "[::1]", "[::1]8080", "[::1:8080", "[zz::1]:80", "host name:80", "[]:80"}) {
    INFO(bad);
    CHECK_FALSE(parse_host_port(bad).has_value());
  }
}

TEST_CASE("parse_upstream_url splits scheme, host, port and base path", "[config][parse]") {
  auto url = parse_upstream_url("https://api.openai.com");
  REQUIRE(url);
  CHECK(url->tls);
  CHECK(url->host == "api.openai.com");
  CHECK(url->port == 443);
  CHECK(url->base_path.empty());
  CHECK(url->authority == "api.openai.com");

  url = parse_upstream_url("http://vllm.ns.svc:8000/v1/");
  REQUIRE(url);
  CHECK_FALSE(url->tls);
  CHECK(url->host == "vllm.ns.svc");
  CHECK(url->port == 8000);
  CHECK(url->base_path == "/v1");
  CHECK(url->authority == "vllm.ns.svc:8000");

  url = parse_upstream_url("HTTPS://API.Example.com:443/");
  REQUIRE(url);
  CHECK(url->host == "api.example.com");
  CHECK(url->base_path.empty());
  CHECK(url->authority == "api.example.com");

  url = parse_upstream_url("http://[::1]:80/openai/deployments");
  REQUIRE(url);
  CHECK(url->host == "::1");
  CHECK(url->port == 80);
  CHECK(url->authority == "[::1]");
  CHECK(url->base_path == "/openai/deployments");

  url = parse_upstream_url("https://[2001:db8::1]:8443");
  REQUIRE(url);
  CHECK(url->host == "2001:db8::1");
  CHECK(url->authority == "[2001:db8::1]:8443");

  for (const char* bad : {"",
                          "api.openai.com",
                          "ftp://x",
                          "https://",
                          "https://:443",
                          "https://x:",
                          "https://x:0",
                          "https://x:65536",
                          "https://x:44a",
                          "https://user@x",
                          "https://u:p@x/v1",
                          "https://x/v1?a=b",
                          "https://x/v1#frag",
                          "https://x?a",
                          "https://[::1",
                          "https://[::1]x",
                          "https://::1:80",
                          "https://x/a b",
                          "https://bad host",
                          "http://[fe80::1%25eth0]:80"}) {
    INFO(bad);
    CHECK_FALSE(parse_upstream_url(bad).has_value());
  }
}

TEST_CASE("match_route: longest prefix, then path_contains, query ignored", "[config][routes]") {
  Config c = load(R"(routes:
  - name: v1-generic
    prefix: /v1/
    upstream: https://a
  - name: v1-gemini
    prefix: /v1/
    path_contains: [":generateContent"]
    upstream: https://b
  - name: chat
    prefix: /v1/chat/
    upstream: https://c
  - name: exact-messages
    prefix: /v1/messages
    upstream: https://d
)");
  const auto& routes = c.routes;
  CHECK(route_name(routes, "/v1/chat/completions") == "chat");
  CHECK(route_name(routes, "/v1/embeddings") == "v1-generic");
  CHECK(route_name(routes, "/v1/models/x:generateContent") == "v1-gemini");
  CHECK(route_name(routes, "/v1/chat/x:generateContent") == "chat");
  CHECK(route_name(routes, "/v1/messages?x=/v1/chat/") == "exact-messages");
  CHECK(route_name(routes, "/v1/embeddings?q=:generateContent") == "v1-generic");
  CHECK(route_name(routes, "/v1") == "<none>");
  CHECK(route_name(routes, "/v2/chat") == "<none>");
  CHECK(route_name(routes, "") == "<none>");
  CHECK(route_name({}, "/v1/chat/completions") == "<none>");

  // Order in the file does not matter for the path_contains tie-break.
  Config reversed = load(R"(routes:
  - {prefix: /, upstream: https://a, name: plain}
  - {prefix: /, upstream: https://b, name: rpc, path_contains: [":x"]}
)");
  CHECK(route_name(reversed.routes, "/m:x") == "rpc");
  CHECK(route_name(reversed.routes, "/m:y") == "plain");
}

TEST_CASE("provider names round-trip", "[config][parse]") {
  for (Provider p : {Provider::openai, Provider::anthropic, Provider::gemini,
                     Provider::azure_openai, Provider::openai_compatible, Provider::auto_detect}) {
    CHECK(parse_provider(provider_name(p)) == p);
  }
  CHECK(std::string(provider_name(Provider::auto_detect)) == "auto");
  CHECK_FALSE(parse_provider("auto_detect").has_value());
  CHECK_FALSE(parse_provider("OpenAI").has_value());
  CHECK(load("routes:\n  - upstream: https://x\n").routes[0].provider == Provider::auto_detect);
}

TEST_CASE("TOKENTAP_AGENT overrides the agent name when non-empty", "[config][env]") {
  Config c = load("agent:\n  name: from-file\n");
  ::unsetenv("TOKENTAP_AGENT");
  apply_environment(c);
  CHECK(c.agent.name == "from-file");

  ::setenv("TOKENTAP_AGENT", "", 1);
  apply_environment(c);
  CHECK(c.agent.name == "from-file");

  ::setenv("TOKENTAP_AGENT", "pod-agent-7", 1);
  apply_environment(c);
  CHECK(c.agent.name == "pod-agent-7");
  CHECK(c.agent.header == "x-agent-id");
  ::unsetenv("TOKENTAP_AGENT");
}

TEST_CASE("metrics and metering sections", "[config]") {
  Config defaults = default_config();
  CHECK(defaults.metrics.max_values_per_label == 100);
  CHECK_FALSE(defaults.metrics.otel_semconv);
  CHECK(defaults.metering.include_stream_usage);
  Config c = load_config_string(
      "metrics:\n  max_values_per_label: 7\n  otel_semconv: true\n"
      "metering:\n  include_stream_usage: false\n",
      "t.yaml");
  CHECK(c.metrics.max_values_per_label == 7);
  CHECK(c.metrics.otel_semconv);
  CHECK_FALSE(c.metering.include_stream_usage);
  CHECK_THROWS_WITH(load_config_string("metrics:\n  max_values_per_label: 0\n", "t.yaml"),
                    Catch::Contains("t.yaml:2: metrics.max_values_per_label"));
}

TEST_CASE("pricing section", "[config]") {
  Config c = load_config_string(
      "pricing:\n  files: [prices/team.json, /etc/litellm.json]\n"
      "  azure_deployments:\n    prod-chat: gpt-4o\n",
      "/etc/tokentap/tokentap.yaml");
  CHECK(c.pricing.files ==
        std::vector<std::string>{"/etc/tokentap/prices/team.json", "/etc/litellm.json"});
  CHECK(c.pricing.azure_deployments.at("prod-chat") == "gpt-4o");
  CHECK_THROWS_WITH(load_config_string("pricing:\n  files: prices.json\n", "t.yaml"),
                    "t.yaml:2: pricing.files: expected a list of price file paths, got "
                    "\"prices.json\"");
  CHECK_THROWS_WITH(
      load_config_string("pricing:\n  azure_deployments:\n    prod: [a]\n", "t.yaml"),
      "t.yaml:3: pricing.azure_deployments.prod: expected a non-empty string, got a list");
}

TEST_CASE("admin section reads the token file, relative to the config file", "[config][admin]") {
  TempDir dir;
  dir.write("admin-token", "s3cr3t-Token_value\n");
  const std::string config_file = dir.path() + "/tokentap.yaml";
  Config relative = load_config_string("admin:\n  token_file: admin-token\n", config_file);
  CHECK(relative.admin.token_file == dir.path() + "/admin-token");
  CHECK(relative.admin.token == "s3cr3t-Token_value");

  dir.write("crlf", "abc\r\n");
  CHECK(
      load_config_string("admin: {token_file: " + dir.path() + "/crlf}\n", "t.yaml").admin.token ==
      "abc");
  dir.write("bare", "no-newline");
  CHECK(
      load_config_string("admin: {token_file: " + dir.path() + "/bare}\n", "t.yaml").admin.token ==
      "no-newline");
  CHECK(load("admin:\n").admin.token_file.empty());
}

TEST_CASE("admin token file errors name the key's line and never the token", "[config][admin]") {
  TempDir dir;
  const std::string path = dir.path();
  auto admin_error = [](const std::string& file) {
    return error_of("workers: 1\nadmin:\n  token_file: " + file + "\n");
  };
  dir.write("empty", "");
  CHECK(admin_error(path + "/empty") ==
        "t.yaml:3: admin.token_file: expected a readable file holding the admin bearer token, got "
        "an empty file \"" +
            path + "/empty\"");
  dir.write("newline-only", "\n");
  CHECK_THAT(admin_error(path + "/newline-only"), Catch::Contains("got an empty file"));
  CHECK(admin_error(path + "/missing") ==
        "t.yaml:3: admin.token_file: expected a readable file holding the admin bearer token, got "
        "\"" +
            path + "/missing\" (No such file or directory)");
  CHECK(admin_error(path) ==
        "t.yaml:3: admin.token_file: expected a readable file holding the admin bearer token, got "
        "\"" +
            path + "\" (not a regular file)");
  dir.write("huge", std::string(5000, 'a'));
  CHECK_THAT(admin_error(path + "/huge"), Catch::Contains("(larger than 4096 bytes)"));
  dir.write("spaced", "top secret\n");
  const std::string spaced = admin_error(path + "/spaced");
  CHECK(spaced ==
        "t.yaml:3: admin.token_file: expected a token of printable ASCII characters without "
        "spaces, got other characters in \"" +
            path + "/spaced\"");
  CHECK_THAT(spaced, !Catch::Contains("secret"));
  // A FIFO is refused without blocking on open (nobody ever writes to it).
  const std::string fifo = path + "/fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THAT(admin_error(fifo), Catch::Contains("(not a regular file)"));
  CHECK(error_of("admin:\n  token: abc\n") ==
        "t.yaml:2: admin: expected one of the keys token_file, got unknown key \"token\"");
  CHECK(error_of("admin:\n  token_file: \"\"\n") ==
        "t.yaml:2: admin.token_file: expected a non-empty string, got \"\"");
}

TEST_CASE("budgets section", "[config]") {
  Config c = load_config_string(
      "budgets:\n  - agent: planner\n    hourly_usd: 5\n    action: block\n"
      "  - agent: \"*\"\n    daily_usd: 0.25\n",
      "t.yaml");
  REQUIRE(c.budgets.size() == 2);
  CHECK(c.budgets[0].agent == "planner");
  CHECK(c.budgets[0].hourly_usd == 5);
  CHECK(c.budgets[0].action == BudgetAction::block);
  CHECK(c.budgets[1].agent == "*");
  CHECK(c.budgets[1].daily_usd == 0.25);
  CHECK(c.budgets[1].action == BudgetAction::alert);
  CHECK_THROWS_WITH(load_config_string("budgets:\n  - agent: a\n    hourly_usd: lots\n", "t.yaml"),
                    "t.yaml:3: budgets[0].hourly_usd: expected an amount in USD like 5 or 0.25, "
                    "got \"lots\"");
  CHECK_THROWS_WITH(load_config_string("budgets:\n  - agent: a\n    action: stop\n", "t.yaml"),
                    Catch::Contains("t.yaml:3: budgets[0].action: expected alert or block"));
  CHECK_THROWS_WITH(load_config_string("budgets:\n  - agent: a\n", "t.yaml"),
                    Catch::Contains("expected hourly_usd or daily_usd above 0"));
  CHECK_THROWS_WITH(
      load_config_string("budgets:\n  - {agent: a, daily_usd: 1}\n  - {agent: a, daily_usd: 2}\n",
                         "t.yaml"),
      Catch::Contains("t.yaml:3: budgets[1]: expected one budget per agent"));
}

TEST_CASE("sessions section", "[config]") {
  Config defaults = default_config();
  CHECK(defaults.sessions.idle_timeout == std::chrono::minutes(10));
  CHECK(defaults.sessions.max_requests_per_minute == 0);
  Config c = load_config_string(
      "sessions:\n  idle_timeout: 5m\n  max_sessions: 50\n  max_requests_per_minute: 30\n"
      "  max_cost_usd: 2.5\n  max_identical_tool_calls: 4\n  runaway_action: block\n",
      "t.yaml");
  CHECK(c.sessions.idle_timeout == std::chrono::minutes(5));
  CHECK(c.sessions.max_sessions == 50);
  CHECK(c.sessions.max_requests_per_minute == 30);
  CHECK(c.sessions.max_cost_usd == 2.5);
  CHECK(c.sessions.max_identical_tool_calls == 4);
  CHECK(defaults.sessions.max_identical_tool_calls == 0);
  CHECK(c.sessions.runaway_action == BudgetAction::block);
  CHECK_THROWS_WITH(load_config_string("sessions:\n  idle_timeout: soon\n", "t.yaml"),
                    Catch::Contains("t.yaml:2: sessions.idle_timeout: expected a duration"));
  CHECK_THROWS_WITH(load_config_string("sessions:\n  max_identical_tool_calls: -1\n", "t.yaml"),
                    Catch::Contains("t.yaml:2: sessions.max_identical_tool_calls"));
}

TEST_CASE("a route's circuit_breaker is opt-in, with defaults for omitted keys", "[config]") {
  for (const Route& route : default_config().routes) CHECK_FALSE(route.circuit_breaker);
  Config c = load(
      "routes:\n  - upstream: https://x\n    circuit_breaker:\n"
      "      consecutive_failures: 3\n      window: 10s\n      open_for: 2s\n"
      "      half_open_requests: 2\n      trip_on_429: true\n"
      "  - upstream: https://y\n    prefix: /b\n    circuit_breaker: {}\n"
      "  - upstream: https://z\n    prefix: /c\n");
  REQUIRE(c.routes.size() == 3);
  REQUIRE(c.routes[0].circuit_breaker);
  const CircuitBreakerSettings& set = *c.routes[0].circuit_breaker;
  CHECK(set.consecutive_failures == 3);
  CHECK(set.window == 10s);
  CHECK(set.open_for == 2s);
  CHECK(set.half_open_requests == 2);
  CHECK(set.trip_on_429);
  REQUIRE(c.routes[1].circuit_breaker);
  const CircuitBreakerSettings& defaults = *c.routes[1].circuit_breaker;
  CHECK(defaults.consecutive_failures == 5);
  CHECK(defaults.window == 60s);
  CHECK(defaults.open_for == 30s);
  CHECK(defaults.half_open_requests == 1);
  CHECK_FALSE(defaults.trip_on_429);
  CHECK_FALSE(c.routes[2].circuit_breaker);
}

TEST_CASE("circuit_breaker errors name the file, line and key", "[config][errors]") {
  const std::string route = "routes:\n  - upstream: https://x\n    circuit_breaker:\n";
  CHECK(error_of(route + "      consecutive_failures: 0\n") ==
        "t.yaml:4: routes[0].circuit_breaker.consecutive_failures: expected an integer from 1 to "
        "1000000, got \"0\"");
  CHECK(error_of(route + "      open_for: 0s\n") ==
        "t.yaml:4: routes[0].circuit_breaker.open_for: expected a duration greater than 0s, got "
        "\"0s\"");
  CHECK(error_of(route + "      window: soon\n") ==
        "t.yaml:4: routes[0].circuit_breaker.window: expected a duration like 10s or 250ms, got "
        "\"soon\"");
  CHECK(error_of(route + "      half_open_requests: 1001\n") ==
        "t.yaml:4: routes[0].circuit_breaker.half_open_requests: expected an integer from 1 to "
        "1000, got \"1001\"");
  CHECK(error_of(route + "      trip_on_429: maybe\n") ==
        "t.yaml:4: routes[0].circuit_breaker.trip_on_429: expected true or false, got \"maybe\"");
  CHECK(error_of(route + "      failures: 3\n") ==
        "t.yaml:4: routes[0].circuit_breaker: expected one of the keys consecutive_failures, "
        "window, open_for, half_open_requests, trip_on_429, got unknown key \"failures\"");
  CHECK(error_of("routes:\n  - upstream: https://x\n    circuit_breaker: on\n") ==
        "t.yaml:3: routes[0].circuit_breaker: expected a mapping (an empty one for defaults), got "
        "\"on\"");
}
