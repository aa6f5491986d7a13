#include "proxy/policy/circuit_breaker.h"

#include <algorithm>
#include <utility>

#include "common/log.h"
#include "proxy/http/http1.h"

namespace tokentap {

const char* breaker_state_name(BreakerState s) {
  switch (s) {
    case BreakerState::closed:
      return "closed";
    case BreakerState::open:
      return "open";
    case BreakerState::half_open:
      return "half_open";
  }
  return "closed";
}

BreakerOutcome breaker_outcome(const RequestContext& ctx, bool trip_on_429) {
  switch (ctx.error) {
    case ErrorType::upstream_connect_error:
    case ErrorType::upstream_tls_error:
    case ErrorType::upstream_protocol_error:
    case ErrorType::upstream_reset:
    case ErrorType::timeout:
      return BreakerOutcome::failure;
    case ErrorType::none:
    case ErrorType::client_cancelled:
    case ErrorType::shutting_down:
      break;
    default:
      return BreakerOutcome::neutral;  // refused or failed before the upstream answered
  }
  const ErrorClass provider = ctx.llm.provider_error_class;
  if (ctx.upstream_status >= 500 || provider == ErrorClass::overloaded ||
      provider == ErrorClass::upstream_error) {
    return BreakerOutcome::failure;
  }
  if (ctx.upstream_status == 429 || provider == ErrorClass::rate_limited) {
    return trip_on_429 ? BreakerOutcome::failure : BreakerOutcome::success;
  }
  // The upstream answered; a client that went away before the head arrived says nothing.
  return ctx.upstream_status != 0 ? BreakerOutcome::success : BreakerOutcome::neutral;
}

namespace {

int64_t ceil_seconds(std::chrono::milliseconds ms) {
  return std::max<int64_t>(1, (ms.count() + 999) / 1000);
}

}  // namespace

void CircuitBreaker::open(Ms now) {
  state_ = BreakerState::open;
  opened_at_ = now;
  failures_ = 0;
  probes_.clear();
  probes_succeeded_ = 0;
}

CircuitBreaker::Admission CircuitBreaker::admit(const CircuitBreakerSettings& settings,
                                                std::string_view request_id, Ms now) {
  Admission result;
  if (state_ == BreakerState::open) {
    Ms until = opened_at_ + settings.open_for;
    if (now < until) {
      result.admitted = false;
      result.retry_after_seconds = ceil_seconds(until - now);
      return result;
    }
    state_ = BreakerState::half_open;
    probes_.clear();
    probes_succeeded_ = 0;
    result.transition = BreakerState::half_open;
  }
  if (state_ == BreakerState::half_open) {
    if (probes_.size() + probes_succeeded_ >= settings.half_open_requests) {
      result.admitted = false;
      result.retry_after_seconds = 1;  // the probes in flight decide soon
      return result;
    }
    probes_.emplace_back(request_id);
  }
  return result;
}

std::optional<BreakerState> CircuitBreaker::record(const CircuitBreakerSettings& settings,
                                                   std::string_view request_id,
                                                   BreakerOutcome outcome, Ms now) {
  switch (state_) {
    case BreakerState::closed:
      if (outcome == BreakerOutcome::success) failures_ = 0;
      if (outcome != BreakerOutcome::failure) return std::nullopt;
      if (failures_ == 0 || now - first_failure_ > settings.window) {
        failures_ = 0;
        first_failure_ = now;
      }
      if (++failures_ < settings.consecutive_failures) return std::nullopt;
      open(now);
      return BreakerState::open;
    case BreakerState::open:
      return std::nullopt;  // requests forwarded before it opened
    case BreakerState::half_open:
      break;
  }
  auto probe = std::find(probes_.begin(), probes_.end(), request_id);
  if (probe == probes_.end()) return std::nullopt;  // forwarded before it opened
  probes_.erase(probe);
  if (outcome == BreakerOutcome::failure) {
    open(now);
    return BreakerState::open;
  }
  if (outcome == BreakerOutcome::neutral) return std::nullopt;  // its slot is free again
  if (++probes_succeeded_ < settings.half_open_requests) return std::nullopt;
  state_ = BreakerState::closed;
  failures_ = 0;
  probes_succeeded_ = 0;
  return BreakerState::closed;
}

std::chrono::milliseconds CircuitBreakers::steady_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now().time_since_epoch());
}

CircuitBreakers::CircuitBreakers(prometheus::Registry& registry, Clock clock)
    : clock_(std::move(clock)),
      state_(prometheus::BuildGauge()
                 .Name("llm_circuit_breaker_state")
                 .Help("Circuit breaker state by route: 0 closed, 1 open, 2 half-open")
                 .Register(registry)),
      transitions_(prometheus::BuildCounter()
                       .Name("llm_circuit_breaker_transitions_total")
                       .Help("Circuit breaker state changes by route and the state entered")
                       .Register(registry)) {}

CircuitBreakers::Entry& CircuitBreakers::entry(const std::string& route_name) {
  auto it = entries_.find(route_name);
  if (it != entries_.end()) return it->second;
  Entry& e = entries_[route_name];
  e.gauge = &state_.Add({{"route", route_name}});
  e.gauge->Set(0);
  return e;
}

void CircuitBreakers::entered(const std::string& route_name, Entry& e, BreakerState to) {
  e.gauge->Set(static_cast<double>(to));
  transitions_.Add({{"route", route_name}, {"to", breaker_state_name(to)}}).Increment();
  diag(to == BreakerState::open ? LogLevel::warn : LogLevel::info, "circuit breaker",
       {{"route", route_name}, {"state", breaker_state_name(to)}});
}

void CircuitBreakers::configure(const std::vector<Route>& routes) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    bool kept = std::any_of(routes.begin(), routes.end(), [&](const Route& r) {
      return r.circuit_breaker && r.name == it->first;
    });
    if (kept) {
      ++it;
    } else {
      state_.Remove(it->second.gauge);
      it = entries_.erase(it);
    }
  }
  for (const Route& r : routes) {
    if (r.circuit_breaker) entry(r.name);
  }
}

std::optional<int64_t> CircuitBreakers::admit(const Route& route, std::string_view request_id) {
  if (!route.circuit_breaker) return std::nullopt;
  const auto now = clock_();
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = entry(route.name);
  CircuitBreaker::Admission a = e.breaker.admit(*route.circuit_breaker, request_id, now);
  if (a.transition) entered(route.name, e, *a.transition);
  if (a.admitted) return std::nullopt;
  return a.retry_after_seconds;
}

void CircuitBreakers::record(const Route& route, std::string_view request_id,
                             BreakerOutcome outcome) {
  if (!route.circuit_breaker) return;
  const auto now = clock_();
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = entry(route.name);
  if (auto to = e.breaker.record(*route.circuit_breaker, request_id, outcome, now)) {
    entered(route.name, e, *to);
  }
}

std::optional<BreakerState> CircuitBreakers::state(std::string_view route_name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(route_name);
  if (it == entries_.end()) return std::nullopt;
  return it->second.breaker.state();
}

std::optional<Rejection> CircuitBreakerAdmission::admit(const RequestContext& ctx) {
  if (ctx.route == nullptr || !ctx.route->circuit_breaker) return std::nullopt;
  std::optional<int64_t> wait = breakers_.admit(*ctx.route, ctx.request_id);
  if (!wait) return std::nullopt;
  return Rejection{.type = ErrorType::circuit_open,
                   .message = "the circuit breaker of route " + ctx.route->name +
                              " is open after upstream failures; try again in " +
                              std::to_string(*wait) + " s",
                   .retry = retry_after(*wait)};
}

void CircuitBreakerSink::on_request_end(const RequestContext& ctx) {
  if (ctx.route == nullptr || !ctx.route->circuit_breaker) return;
  breakers_.record(*ctx.route, ctx.request_id,
                   breaker_outcome(ctx, ctx.route->circuit_breaker->trip_on_429));
}

}  // namespace tokentap
