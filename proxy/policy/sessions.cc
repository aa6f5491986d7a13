#include "proxy/policy/sessions.h"

#include <algorithm>

#include "common/log.h"
#include "proxy/core/label_limiter.h"

namespace tokentap {

namespace {

using prometheus::BuildCounter;
using prometheus::BuildHistogram;
using prometheus::Histogram;

const Histogram::BucketBoundaries kRequestBuckets = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};
const Histogram::BucketBoundaries kTokenBuckets = {1e3, 1e4,   5e4, 1e5, 2.5e5, 5e5,
                                                   1e6, 2.5e6, 5e6, 1e7, 5e7};
const Histogram::BucketBoundaries kCostBuckets = {0.001, 0.01, 0.05, 0.1, 0.25, 0.5,
                                                  1,     2.5,  5,    10,  50};
const Histogram::BucketBoundaries kDurationBuckets = {10,   30,   60,   120,   300,  600,
                                                      1800, 3600, 7200, 14400, 86400};

}  // namespace

std::chrono::milliseconds SessionTracker::steady_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now().time_since_epoch());
}

SessionTracker::SessionTracker(const SessionSettings& settings, prometheus::Registry& registry,
                               LabelLimiter& limiter, Clock clock)
    : settings_(settings),
      limiter_(limiter),
      clock_(std::move(clock)),
      requests_(BuildHistogram()
                    .Name("llm_session_requests")
                    .Help("Requests per closed conversation (session), by agent")
                    .Register(registry)),
      tokens_(BuildHistogram()
                  .Name("llm_session_tokens")
                  .Help("Tokens (input + output) per closed conversation, by agent")
                  .Register(registry)),
      cost_(BuildHistogram()
                .Name("llm_session_cost_usd")
                .Help("Cost per closed conversation in USD, by agent")
                .Register(registry)),
      duration_(BuildHistogram()
                    .Name("llm_session_duration_seconds")
                    .Help("First to last request of a closed conversation, by agent")
                    .Register(registry)),
      runaway_(BuildCounter()
                   .Name("llm_session_runaway_total")
                   .Help("Conversations flagged as runaway (request rate, cost or identical "
                         "tool calls over the limit)")
                   .Register(registry)),
      tool_repeats_(BuildCounter()
                        .Name("llm_session_tool_repeats_total")
                        .Help("Tool calls a response asked for that repeat an earlier call of "
                              "the same session (same tool, same arguments), by agent and tool")
                        .Register(registry)) {}

SessionTracker::Session* SessionTracker::find(std::string_view id) {
  auto it = sessions_.find(std::string(id));
  return it == sessions_.end() ? nullptr : &it->second;
}

void SessionTracker::flag_runaway(Session& s, const std::string& why) {
  if (s.runaway) return;
  s.runaway = true;
  runaway_.Add({{"agent", limiter_.cap("agent", s.agent)}}).Increment();
  diag(LogLevel::warn, "runaway session",
       {{"session", s.id},
        {"agent", s.agent},
        {"reason", why},
        {"action", settings_.runaway_action == BudgetAction::block ? "block" : "alert"}});
}

std::optional<std::string> SessionTracker::admit(std::string_view session, std::string_view agent) {
  if (session.empty()) return std::nullopt;
  std::chrono::milliseconds now = clock_();
  std::lock_guard<std::mutex> lock(mu_);
  Session* s = find(session);
  if (s == nullptr) {
    // A `while`: a reload may have lowered max_sessions.
    while (sessions_.size() >= settings_.max_sessions && !lru_.empty()) {
      close(sessions_.at(lru_.back()));
    }
    Session fresh;
    fresh.id = std::string(session);
    fresh.agent = std::string(agent);
    fresh.started = fresh.window_start = now;
    lru_.push_front(fresh.id);
    fresh.lru = lru_.begin();
    s = &sessions_.emplace(fresh.id, std::move(fresh)).first->second;
  } else {
    lru_.splice(lru_.begin(), lru_, s->lru);
  }
  s->last_active = now;
  ++s->requests;
  if (now - s->window_start >= std::chrono::minutes(1)) {
    s->window_start = now;
    s->window_requests = 0;
  }
  ++s->window_requests;
  if (settings_.max_requests_per_minute > 0 &&
      s->window_requests > settings_.max_requests_per_minute) {
    flag_runaway(*s, "more than " + std::to_string(settings_.max_requests_per_minute) +
                         " requests in a minute");
  }
  if (s->runaway && settings_.runaway_action == BudgetAction::block) {
    return "session " + s->id +
           " is a runaway (request rate, cost or identical tool calls over the configured limit)";
  }
  return std::nullopt;
}

void SessionTracker::record(std::string_view session, uint64_t tokens, int64_t nano_usd) {
  if (session.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  Session* s = find(session);
  if (s == nullptr) return;
  s->tokens += tokens;
  s->nano_usd += nano_usd;
  s->last_active = clock_();
  if (settings_.max_cost_usd > 0 &&
      static_cast<double>(s->nano_usd) / 1e9 >= settings_.max_cost_usd) {
    flag_runaway(*s, "cost over " + std::to_string(settings_.max_cost_usd) + " USD");
  }
}

void SessionTracker::record_tool_calls(std::string_view session,
                                       std::span<const ToolCallRef> calls) {
  if (session.empty() || calls.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  Session* s = find(session);
  if (s == nullptr) return;
  for (const ToolCallRef& call : calls) {
    const uint64_t key =
        hash_tool_arguments(call.arguments_hash ^ 0x9e3779b97f4a7c15ull, call.name);
    auto it = std::find_if(s->tool_calls.begin(), s->tool_calls.end(),
                           [&](const auto& seen) { return seen.first == key; });
    if (it == s->tool_calls.end()) {
      if (s->tool_calls.size() < kMaxToolKeysPerSession) s->tool_calls.emplace_back(key, 1);
      continue;
    }
    ++it->second;
    tool_repeats_
        .Add(
            {{"agent", limiter_.cap("agent", s->agent)}, {"tool", limiter_.cap("tool", call.name)}})
        .Increment();
    if (settings_.max_identical_tool_calls > 0 && it->second > settings_.max_identical_tool_calls) {
      flag_runaway(*s, "tool " + call.name + " called with the same arguments more than " +
                           std::to_string(settings_.max_identical_tool_calls) + " times");
    }
  }
}

void SessionTracker::close(Session& s) {
  prometheus::Labels labels{{"agent", limiter_.cap("agent", s.agent)}};
  requests_.Add(labels, kRequestBuckets).Observe(static_cast<double>(s.requests));
  tokens_.Add(labels, kTokenBuckets).Observe(static_cast<double>(s.tokens));
  cost_.Add(labels, kCostBuckets).Observe(static_cast<double>(s.nano_usd) / 1e9);
  duration_.Add(labels, kDurationBuckets)
      .Observe(std::chrono::duration<double>(s.last_active - s.started).count());
  std::string id = s.id;  // s dies with the erase
  lru_.erase(s.lru);
  sessions_.erase(id);
}

void SessionTracker::reconfigure(const SessionSettings& settings) {
  std::lock_guard<std::mutex> lock(mu_);
  settings_ = settings;
}

size_t SessionTracker::sweep() {
  std::chrono::milliseconds now = clock_();
  std::lock_guard<std::mutex> lock(mu_);
  size_t closed = 0;
  // The LRU tail is the longest idle.
  while (!lru_.empty()) {
    Session& s = sessions_.at(lru_.back());
    if (now - s.last_active < settings_.idle_timeout) break;
    close(s);
    ++closed;
  }
  return closed;
}

size_t SessionTracker::open_sessions() {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_.size();
}

std::vector<SessionTracker::Snapshot> SessionTracker::snapshot(std::string_view agent) {
  std::chrono::milliseconds now = clock_();
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Snapshot> out;
  for (const std::string& id : lru_) {
    const Session& s = sessions_.at(id);
    if (!agent.empty() && s.agent != agent) continue;
    out.push_back(Snapshot{s.id, s.agent, s.requests, s.tokens, s.nano_usd,
                           std::chrono::duration<double>(now - s.started).count(), s.runaway});
  }
  return out;
}

}  // namespace tokentap
