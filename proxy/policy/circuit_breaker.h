// Circuit breakers, one per route that opts in (routes[].circuit_breaker). Closed, a route's
// requests go upstream and their outcomes are counted; `consecutive_failures` failures in a row,
// the first within `window`, open it. Open, every request is answered 503 circuit_open in the
// provider's error format (retry-after: the seconds until it half-opens) without upstream
// contact. After `open_for` the next requests find it half-open: `half_open_requests` of them
// go upstream as probes (the rest are refused); all probes succeeding closes it, one failing
// reopens it for another `open_for`.
//
// Failures are connect and TLS errors, timeouts, a reset or malformed upstream response, and
// 5xx or overloaded answers (also as an error event inside a 200 stream); 429 only with
// trip_on_429. Other answers (2xx-4xx) are successes. A request that ended for another reason
// (the client went away, the drain deadline) is neither: if it was a probe, its slot is freed.
//
// State is shared by all workers of the process (one mutex; asked only for routes with a
// breaker), so a route trips at the same failure count whatever worker saw the failures.
// Entries are keyed by route name and survive reloads; the settings come from the request's
// own configuration snapshot. The open -> half-open transition happens when a request arrives
// after `open_for`, so llm_circuit_breaker_state reads 1 until then.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "proxy/core/exchange.h"

namespace tokentap {

enum class BreakerState : uint8_t { closed = 0, open = 1, half_open = 2 };
const char* breaker_state_name(BreakerState s);  // "closed", "open", "half_open"

enum class BreakerOutcome : uint8_t { success, failure, neutral };
// What a finished request says about its route's upstream (see the contract above).
BreakerOutcome breaker_outcome(const RequestContext& ctx, bool trip_on_429);

// One route's state machine: no locks, no metrics, time passed in (milliseconds of a steady
// clock). Probes are remembered by request id, at most half_open_requests of them.
class CircuitBreaker {
 public:
  using Ms = std::chrono::milliseconds;
  struct Admission {
    bool admitted = true;
    int64_t retry_after_seconds = 0;         // when refused
    std::optional<BreakerState> transition;  // the state entered on the way (open -> half_open)
  };
  Admission admit(const CircuitBreakerSettings& settings, std::string_view request_id, Ms now);
  // A request admitted earlier ended. Returns the state entered, if the outcome changed it.
  std::optional<BreakerState> record(const CircuitBreakerSettings& settings,
                                     std::string_view request_id, BreakerOutcome outcome, Ms now);
  BreakerState state() const { return state_; }

 private:
  void open(Ms now);

  BreakerState state_ = BreakerState::closed;
  uint32_t failures_ = 0;  // consecutive, while closed
  Ms first_failure_{0};
  Ms opened_at_{0};
  std::vector<std::string> probes_;  // request ids of half-open probes in flight
  uint32_t probes_succeeded_ = 0;
};

// The breakers of all routes, shared by the workers, with their metrics:
// llm_circuit_breaker_state{route} (0 closed, 1 open, 2 half-open) and
// llm_circuit_breaker_transitions_total{route,to}. Thread-safe; the clock is injected.
class CircuitBreakers {
 public:
  using Clock = std::function<std::chrono::milliseconds()>;
  static std::chrono::milliseconds steady_now();

  explicit CircuitBreakers(prometheus::Registry& registry, Clock clock = steady_now);

  // Creates the breakers of `routes` that have one (state 0 in the gauge from the start) and
  // forgets those of routes that no longer do; kept breakers keep their state. At start and
  // on every reload.
  void configure(const std::vector<Route>& routes);
  // nullopt: go ahead; else refused, with the seconds until it is worth trying again.
  std::optional<int64_t> admit(const Route& route, std::string_view request_id);
  void record(const Route& route, std::string_view request_id, BreakerOutcome outcome);
  std::optional<BreakerState> state(std::string_view route_name);

 private:
  struct Entry {
    CircuitBreaker breaker;
    prometheus::Gauge* gauge = nullptr;
  };
  Entry& entry(const std::string& route_name);                             // mu_ held
  void entered(const std::string& route_name, Entry& e, BreakerState to);  // mu_ held

  Clock clock_;
  std::mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;
  prometheus::Family<prometheus::Gauge>& state_;
  prometheus::Family<prometheus::Counter>& transitions_;
};

// Refuses a request of a route whose breaker is open (or half-open with its probes taken):
// circuit_open, 503, retry-after. Registered last among the admission policies, so that a
// request it lets through as a probe is not refused by another policy afterwards.
class CircuitBreakerAdmission final : public AdmissionPolicy {
 public:
  explicit CircuitBreakerAdmission(CircuitBreakers& breakers) : breakers_(breakers) {}
  std::optional<Rejection> admit(const RequestContext& ctx) override;

 private:
  CircuitBreakers& breakers_;
};

// Feeds each finished request of a route with a breaker into it.
class CircuitBreakerSink final : public CompletionSink {
 public:
  explicit CircuitBreakerSink(CircuitBreakers& breakers) : breakers_(breakers) {}
  void on_request_end(const RequestContext& ctx) override;

 private:
  CircuitBreakers& breakers_;
};

}  // namespace tokentap
