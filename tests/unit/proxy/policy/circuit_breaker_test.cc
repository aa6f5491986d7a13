#include "proxy/policy/circuit_breaker.h"

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <catch2/catch.hpp>

using namespace tokentap;
using namespace std::chrono_literals;

namespace {

CircuitBreakerSettings settings(uint32_t failures = 3, uint32_t half_open = 1) {
  return CircuitBreakerSettings{.consecutive_failures = failures,
                                .window = 10s,
                                .open_for = 5s,
                                .half_open_requests = half_open,
                                .trip_on_429 = false};
}

constexpr auto F = BreakerOutcome::failure;
constexpr auto S = BreakerOutcome::success;
constexpr auto N = BreakerOutcome::neutral;

std::string metrics_text(prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

}  // namespace

TEST_CASE("consecutive failures within the window open the breaker", "[breaker]") {
  CircuitBreaker b;
  const auto set = settings(3);
  CHECK_FALSE(b.record(set, "r", F, 0ms));
  CHECK_FALSE(b.record(set, "r", F, 1s));
  CHECK(b.state() == BreakerState::closed);
  CHECK(b.record(set, "r", F, 2s) == BreakerState::open);
  CHECK(b.state() == BreakerState::open);
  CircuitBreaker::Admission a = b.admit(set, "x", 3s);
  CHECK_FALSE(a.admitted);
  CHECK(a.retry_after_seconds == 4);  // opened at 2 s, half-opens at 7 s
  CHECK(b.admit(set, "x", 6'001ms).retry_after_seconds == 1);
}

TEST_CASE("a success, a stale first failure or neutral outcomes decide the run", "[breaker]") {
  const auto set = settings(3);
  SECTION("a success in between starts over") {
    CircuitBreaker b;
    b.record(set, "r", F, 0ms);
    b.record(set, "r", F, 1s);
    b.record(set, "r", S, 2s);
    b.record(set, "r", F, 3s);
    CHECK_FALSE(b.record(set, "r", F, 4s));
    CHECK(b.state() == BreakerState::closed);
    CHECK(b.record(set, "r", F, 5s) == BreakerState::open);
  }
  SECTION("a run whose first failure left the window starts over") {
    CircuitBreaker b;
    b.record(set, "r", F, 0ms);
    b.record(set, "r", F, 9s);
    CHECK_FALSE(b.record(set, "r", F, 10'001ms));  // a new run: 10.001 s only
    CHECK_FALSE(b.record(set, "r", F, 11s));
    CHECK(b.record(set, "r", F, 12s) == BreakerState::open);
  }
  SECTION("neutral outcomes (client gone) neither count nor reset") {
    CircuitBreaker b;
    b.record(set, "r", F, 0ms);
    b.record(set, "r", N, 1s);
    b.record(set, "r", F, 2s);
    CHECK(b.record(set, "r", F, 3s) == BreakerState::open);
  }
}

TEST_CASE("half-open lets the configured probes through; success closes", "[breaker]") {
  CircuitBreaker b;
  const auto set = settings(1, 2);
  REQUIRE(b.record(set, "r", F, 0ms) == BreakerState::open);
  CHECK_FALSE(b.admit(set, "early", 4'999ms).admitted);
  CircuitBreaker::Admission first = b.admit(set, "p1", 5s);
  CHECK(first.admitted);
  CHECK(first.transition == BreakerState::half_open);
  CHECK(b.admit(set, "p2", 5s).admitted);
  CircuitBreaker::Admission third = b.admit(set, "p3", 5s);
  CHECK_FALSE(third.admitted);
  CHECK(third.retry_after_seconds == 1);
  // Outcomes of requests that were not probes (forwarded before it opened) are ignored.
  CHECK_FALSE(b.record(set, "old", F, 5s));
  CHECK_FALSE(b.record(set, "p1", S, 6s));
  CHECK(b.state() == BreakerState::half_open);
  CHECK_FALSE(b.admit(set, "p4", 6s).admitted);  // one succeeded, one in flight: no third
  CHECK(b.record(set, "p2", S, 7s) == BreakerState::closed);
  CHECK(b.admit(set, "next", 7s).admitted);
  CHECK_FALSE(b.record(set, "next", S, 7s));
}

TEST_CASE("a failed probe reopens for another open_for; a neutral one frees its slot",
          "[breaker]") {
  CircuitBreaker b;
  const auto set = settings(1, 1);
  REQUIRE(b.record(set, "r", F, 0ms) == BreakerState::open);
  REQUIRE(b.admit(set, "p1", 5s).admitted);
  CHECK_FALSE(b.admit(set, "p2", 5s).admitted);
  CHECK_FALSE(b.record(set, "p1", N, 6s));  // the client went away
  REQUIRE(b.admit(set, "p2", 6s).admitted);
  CHECK(b.record(set, "p2", F, 7s) == BreakerState::open);
  CircuitBreaker::Admission a = b.admit(set, "x", 8s);
  CHECK_FALSE(a.admitted);
  CHECK(a.retry_after_seconds == 4);  // reopened at 7 s
  CHECK(b.admit(set, "p3", 12s).admitted);
}

TEST_CASE("breaker_outcome: upstream failures, 5xx and overloaded fail; 4xx does not",
          "[breaker]") {
  RequestContext ctx;
  auto outcome = [&](ErrorType error, int upstream_status, bool trip_on_429 = false,
                     ErrorClass provider = ErrorClass::none) {
    ctx.error = error;
    ctx.upstream_status = upstream_status;
    ctx.llm.provider_error_class = provider;
    return breaker_outcome(ctx, trip_on_429);
  };
  CHECK(outcome(ErrorType::upstream_connect_error, 0) == F);
  CHECK(outcome(ErrorType::upstream_tls_error, 0) == F);
  CHECK(outcome(ErrorType::timeout, 0) == F);
  CHECK(outcome(ErrorType::upstream_reset, 200) == F);
  CHECK(outcome(ErrorType::none, 500) == F);
  CHECK(outcome(ErrorType::none, 503) == F);
  CHECK(outcome(ErrorType::none, 529, false, ErrorClass::overloaded) == F);
  CHECK(outcome(ErrorType::none, 200, false, ErrorClass::overloaded) == F);  // in-stream event
  CHECK(outcome(ErrorType::none, 200) == S);
  CHECK(outcome(ErrorType::none, 400) == S);
  CHECK(outcome(ErrorType::none, 404) == S);
  CHECK(outcome(ErrorType::none, 429) == S);
  CHECK(outcome(ErrorType::none, 429, true) == F);
  CHECK(outcome(ErrorType::client_cancelled, 0) == N);
  CHECK(outcome(ErrorType::client_cancelled, 200) == S);
  CHECK(outcome(ErrorType::circuit_open, 0) == N);
  CHECK(outcome(ErrorType::budget_exceeded, 0) == N);
  CHECK(outcome(ErrorType::request_too_large, 0) == N);
}

TEST_CASE("CircuitBreakers: admission, sink and metrics per route", "[breaker]") {
  prometheus::Registry registry;
  std::chrono::milliseconds now = 1000s;
  CircuitBreakers breakers(registry, [&] { return now; });
  Route guarded;
  guarded.name = "/v1";
  guarded.circuit_breaker = settings(2, 1);
  Route plain;
  plain.name = "/other";
  breakers.configure({guarded, plain});
  CHECK(metrics_text(registry).find("llm_circuit_breaker_state{route=\"/v1\"} 0") !=
        std::string::npos);
  CHECK_FALSE(breakers.state("/other"));

  CircuitBreakerAdmission admission(breakers);
  CircuitBreakerSink sink(breakers);
  RequestContext ctx;
  ctx.route = &guarded;
  ctx.request_id = "req-1";
  ctx.error = ErrorType::upstream_connect_error;
  for (int i = 0; i < 2; ++i) {
    CHECK_FALSE(admission.admit(ctx));
    sink.on_request_end(ctx);
  }
  CHECK(breakers.state("/v1") == BreakerState::open);
  std::optional<Rejection> refused = admission.admit(ctx);
  REQUIRE(refused);
  CHECK(refused->type == ErrorType::circuit_open);
  CHECK(error_status(refused->type) == 503);
  REQUIRE(refused->retry);
  CHECK(refused->retry->after_seconds == 5);
  CHECK(refused->message.find("route /v1") != std::string::npos);
  // Its own refusal is no outcome.
  RequestContext refusal = ctx;
  refusal.error = ErrorType::circuit_open;
  sink.on_request_end(refusal);

  now += 5s;
  ctx.request_id = "probe";
  CHECK_FALSE(admission.admit(ctx));
  CHECK(breakers.state("/v1") == BreakerState::half_open);
  ctx.error = ErrorType::none;
  ctx.upstream_status = 200;
  sink.on_request_end(ctx);
  CHECK(breakers.state("/v1") == BreakerState::closed);

  std::string text = metrics_text(registry);
  CHECK(text.find("llm_circuit_breaker_state{route=\"/v1\"} 0") != std::string::npos);
  CHECK(text.find("llm_circuit_breaker_transitions_total{route=\"/v1\",to=\"open\"} 1") !=
        std::string::npos);
  CHECK(text.find("llm_circuit_breaker_transitions_total{route=\"/v1\",to=\"half_open\"} 1") !=
        std::string::npos);
  CHECK(text.find("llm_circuit_breaker_transitions_total{route=\"/v1\",to=\"closed\"} 1") !=
        std::string::npos);

  // A plain route is never refused or counted.
  RequestContext other;
  other.route = &plain;
  other.error = ErrorType::upstream_connect_error;
  for (int i = 0; i < 5; ++i) sink.on_request_end(other);
  CHECK_FALSE(admission.admit(other));

  // A reload that drops the breaker forgets it and its gauge; one that keeps it keeps its state.
  guarded.circuit_breaker.reset();
  breakers.configure({guarded, plain});
  CHECK_FALSE(breakers.state("/v1"));
  CHECK(metrics_text(registry).find("llm_circuit_breaker_state{") == std::string::npos);
}
