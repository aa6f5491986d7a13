#include "proxy/http/identity.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>

#include "proxy/core/runtime.h"
#include "proxy/http/secrets.h"
#include "proxy/metering/metering_observer.h"
#include "proxy/policy/sessions.h"
#include "proxy/policy/spend_sinks.h"
#include "proxy/telemetry/recent_errors.h"
#include "proxy/telemetry/usage_sink.h"
#include "proxy/telemetry/usage_store.h"

using namespace tokentap;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

size_t rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

bool is_hashed_form(const std::string& s) {
  return s.size() == 39 && s.rfind("sha256:", 0) == 0 &&
         s.find_first_not_of("0123456789abcdef", 7) == std::string::npos;
}

}  // namespace

TEST_CASE("short identities are kept as they are", "[identity]") {
  CHECK(bounded_identity("planner") == "planner");
  CHECK(bounded_identity("") == "");
  CHECK(bounded_identity("conv 42 / équipe") == "conv 42 / équipe");  // spaces, UTF-8 kept
  std::string limit(kMaxIdentityBytes, 'a');
  CHECK(bounded_identity(limit) == limit);
}

TEST_CASE("long identities are hashed, never truncated into a collision", "[identity]") {
  std::string base(kMaxIdentityBytes, 'a');
  std::string one = bounded_identity(base + "1");
  std::string two = bounded_identity(base + "2");
  CHECK(is_hashed_form(one));
  CHECK(is_hashed_form(two));
  CHECK(one != two);
  CHECK(one == bounded_identity(base + "1"));  // stable: the same session stays one session
  // sha256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
  CHECK(sha256_hex("abc", 64) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("abc", 100).size() == 64);
  CHECK(key_id("abc") == "ba7816bf");
  std::string eight_kib(8192, 'x');
  CHECK(bounded_identity(eight_kib) == "sha256:" + sha256_hex(eight_kib, 32));
}

TEST_CASE("identities with control bytes are hashed", "[identity]") {
  for (std::string bad : {std::string("a\tb"), std::string("a\x01"), std::string("\x7f"),
                          std::string("nul\0byte", 8), std::string("line\nbreak")}) {
    CAPTURE(bad);
    CHECK(is_hashed_form(bounded_identity(bad)));
  }
}

// Issue 11 item 7: a million distinct 8 KiB session ids (and 100,000 distinct 8 KiB agent
// ids), each bounded as the proxy does before storing it, go through the real stores: the
// session table and the usage store for every request, the metering observer (which feeds
// them too, and the per-worker metric caches) and the recent errors for one in ten. The process
// grows by less than kStoreGrowthLimit; unbounded, the session table alone would hold
// 10,000 x 3 x 8 KiB = 240 MiB. Under ASan (whose quarantine keeps freed memory resident)
// 100,000 session ids run and only what the stores hold is checked, not the RSS.
TEST_CASE("a million distinct 8 KiB identities keep the stores within their bound",
          "[identity][memory]") {
  constexpr size_t kStoreGrowthLimit = 32u << 20;
  const size_t requests = kSanitized ? 100'000 : 1'000'000;
  const size_t baseline = rss_bytes();
  {
    Config config = load_config_string(
        "routes:\n  - upstream: http://127.0.0.1:9\n    provider: openai\n", "t.yaml");
    std::shared_ptr<const Runtime> runtime = make_runtime(config, 1);
    const Route* route = &runtime->config->routes[0];
    prometheus::Registry registry;
    Metering metering(registry, runtime->config->metrics, 1);
    std::chrono::milliseconds now{0};
    SessionTracker sessions(runtime->config->sessions, registry, metering.limiter(),
                            [&] { return now; });
    int64_t minute = 29'000'000;
    UsageStore usage([&] { return minute; });
    RecentErrors errors;
    LlmMetricsSink llm_metrics(metering.llm_metrics());
    SessionSink session_sink(sessions);
    UsageSink usage_sink(usage, metering.limiter());

    const HeaderList request_headers = {{"Content-Type", "application/json"}};
    const std::string request_body =
        R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]})";
    const HeaderList response_headers = {{"Content-Type", "application/json"}};
    const std::string response_body =
        R"({"id":"c","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,)"
        R"("message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],)"
        R"("usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}})";
    std::string session_id(8192, 's');
    std::string agent_id(8192, 'a');
    std::string agent;
    for (size_t i = 0; i < requests; ++i) {
      // Distinct in the first bytes: a cut at any length would merge them.
      std::string n = std::to_string(i);
      session_id.replace(0, n.size(), n);
      RequestContext ctx;
      ctx.session = bounded_identity(session_id);
      if (i % 10 == 0) {
        agent_id.replace(0, n.size(), n);
        agent = bounded_identity(agent_id);
      }
      ctx.agent = agent;
      if (ctx.session.size() > kMaxIdentityBytes) FAIL("unbounded session id");
      if (sessions.admit(ctx.session, ctx.agent)) FAIL("session refused");
      if (i % 10 == 0) {
        ctx.route = route;
        ctx.method = "POST";
        ctx.path = "/v1/chat/completions";
        ctx.request_is_json = true;
        std::unique_ptr<RequestObserver> observer = metering.make_observer(0, runtime);
        observer->on_request_headers(ctx, request_headers);
        observer->on_request_body(ctx, request_body);
        ctx.status = i % 20 == 0 ? 500 : 200;  // failures reach the recent errors
        observer->on_response_headers(ctx, ctx.status, response_headers);
        observer->on_response_body(ctx, response_body);
        observer->on_complete(ctx);
        for (CompletionSink* sink :
             std::initializer_list<CompletionSink*>{&llm_metrics, &session_sink, &usage_sink}) {
          sink->on_request_end(ctx);
        }
        errors.record(ctx, "2026-01-01T00:00:00Z");
      } else {
        sessions.record(ctx.session, 10, 1'500);
        usage.record(UsageSample{.agent = ctx.agent,
                                 .provider = "openai",
                                 .model = "gpt-4o-mini",
                                 .input = 9,
                                 .output = 1,
                                 .nano_usd = 1'500,
                                 .duration_seconds = 0.2});
      }
      if (i % 1000 == 999) now += std::chrono::milliseconds(1000);  // 1,000 requests/s
      if (i % 60'000 == 59'999) ++minute;
    }
    size_t growth = rss_bytes() - baseline;
    std::printf("%zu distinct 8 KiB session ids: RSS grew by %.1f MiB\n", requests,
                static_cast<double>(growth) / (1 << 20));
    if (!kSanitized) CHECK(growth < kStoreGrowthLimit);
    CHECK(sessions.open_sessions() == runtime->config->sessions.max_sessions);
    for (const auto& s : sessions.snapshot()) {
      REQUIRE(is_hashed_form(s.id));
      REQUIRE(is_hashed_form(s.agent));
    }
    for (const auto& e : errors.list(RecentErrors::kCapacity, "")) {
      REQUIRE(is_hashed_form(e["session"].get<std::string>()));
      REQUIRE(is_hashed_form(e["agent"].get<std::string>()));
    }
  }
}
