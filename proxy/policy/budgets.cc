#include "proxy/policy/budgets.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "common/log.h"

namespace tokentap {

namespace {
size_t slot_of(int64_t minute) {
  return static_cast<size_t>(((minute % SpendWindow::kMinutes) + SpendWindow::kMinutes) %
                             SpendWindow::kMinutes);
}
}  // namespace

void SpendWindow::advance(int64_t minute) {
  if (last_minute_ < 0 || minute - last_minute_ >= kMinutes) {
    buckets_.fill(0);
    hour_sum_ = day_sum_ = 0;
    last_minute_ = minute;
    return;
  }
  for (int64_t t = last_minute_ + 1; t <= minute; ++t) {
    // Minute t-60 leaves the hour (its bucket still holds it); minute t-1440 leaves the day.
    hour_sum_ -= buckets_[slot_of(t - 60)];
    int64_t& slot = buckets_[slot_of(t)];
    day_sum_ -= slot;
    slot = 0;
  }
  if (minute > last_minute_) last_minute_ = minute;
}

void SpendWindow::add(int64_t minute, int64_t nano_usd) {
  advance(minute);
  buckets_[slot_of(last_minute_)] += nano_usd;
  hour_sum_ += nano_usd;
  day_sum_ += nano_usd;
}

int64_t SpendWindow::hour(int64_t minute) {
  advance(minute);
  return hour_sum_;
}

int64_t SpendWindow::day(int64_t minute) {
  advance(minute);
  return day_sum_;
}

int64_t SpendWindow::first_minute_below(int64_t minute, int64_t window, int64_t limit) {
  advance(minute);
  int64_t sum = window == kMinutes ? day_sum_ : hour_sum_;
  int64_t later = 0;
  // Each minute that passes drops the oldest minute of the window.
  while (sum >= limit && later < window) {
    ++later;
    sum -= buckets_[slot_of(last_minute_ - window + later)];
  }
  return last_minute_ + later;
}

int64_t BudgetTracker::wall_second() {
  using namespace std::chrono;
  return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}

namespace {

int64_t minute_of(int64_t second) { return (second >= 0 ? second : second - 59) / 60; }

int64_t to_nano(double usd) { return std::llround(usd * 1e9); }
double to_usd(int64_t nano) { return static_cast<double>(nano) / 1e9; }

std::string money(double usd) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", usd);
  return buf;
}

}  // namespace

BudgetTracker::BudgetTracker(const std::vector<Budget>& budgets, prometheus::Registry& registry,
                             SecondClock clock)
    : clock_(std::move(clock)),
      spent_(prometheus::BuildGauge()
                 .Name("llm_budget_spent_usd")
                 .Help("Spend in the budget's rolling window (1h or 24h), in USD")
                 .Register(registry)),
      limit_(prometheus::BuildGauge()
                 .Name("llm_budget_limit_usd")
                 .Help("Budget limit for the rolling window, in USD")
                 .Register(registry)),
      blocked_(prometheus::BuildCounter()
                   .Name("llm_budget_blocked_requests_total")
                   .Help("Requests answered 429 budget_exceeded before any upstream contact")
                   .Register(registry)) {
  reconfigure(budgets);
}

void BudgetTracker::set_limit_gauges(const std::string& label, double hourly_usd,
                                     double daily_usd) {
  for (auto [window, usd] : {std::pair<const char*, double>{"1h", hourly_usd},
                             std::pair<const char*, double>{"24h", daily_usd}}) {
    const prometheus::Labels labels{{"agent", label}, {"window", window}};
    if (usd > 0) {
      limit_.Add(labels).Set(usd);
    } else if (limit_.Has(labels)) {
      limit_.Remove(&limit_.Add(labels));
    }
  }
}

void BudgetTracker::remove_metrics(const Tracked& t) {
  spent_.Remove(t.spent_hour);
  spent_.Remove(t.spent_day);
  blocked_.Remove(t.blocked);
  set_limit_gauges(t.label, 0, 0);
}

void BudgetTracker::reconfigure(const std::vector<Budget>& budgets) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Tracked> next;
  next.reserve(budgets.size());
  for (const Budget& b : budgets) {
    Tracked t;
    const std::string label = b.agent == "*" ? "all" : b.agent;
    auto kept = std::find_if(tracked_.begin(), tracked_.end(),
                             [&](const Tracked& old) { return old.label == label; });
    if (kept != tracked_.end()) {
      t = std::move(*kept);
      kept->label.clear();  // taken
    }
    t.budget = b;
    t.label = label;
    t.spent_hour = &spent_.Add({{"agent", t.label}, {"window", "1h"}});
    t.spent_day = &spent_.Add({{"agent", t.label}, {"window", "24h"}});
    t.blocked = &blocked_.Add({{"agent", t.label}});
    set_limit_gauges(t.label, b.hourly_usd, b.daily_usd);
    next.push_back(std::move(t));
  }
  for (const Tracked& old : tracked_) {
    if (!old.label.empty()) remove_metrics(old);
  }
  tracked_ = std::move(next);
  by_agent_.clear();
  all_ = nullptr;
  for (size_t i = 0; i < tracked_.size(); ++i) {
    if (tracked_[i].budget.agent == "*") {
      all_ = &tracked_[i];
    } else {
      by_agent_[tracked_[i].budget.agent] = i;
    }
  }
  active_.store(!tracked_.empty(), std::memory_order_relaxed);
}

std::string BudgetTracker::over(Tracked& t, int64_t minute) {
  const Budget& b = t.budget;
  if (b.hourly_usd > 0 && t.window.hour(minute) >= to_nano(b.hourly_usd)) {
    return "hourly budget of " + money(b.hourly_usd) + " USD";
  }
  if (b.daily_usd > 0 && t.window.day(minute) >= to_nano(b.daily_usd)) {
    return "daily budget of " + money(b.daily_usd) + " USD";
  }
  return "";
}

int64_t BudgetTracker::first_minute_admitted(Tracked& t, int64_t minute) {
  const Budget& b = t.budget;
  int64_t admitted = minute;
  if (b.hourly_usd > 0) {
    admitted = std::max(admitted, t.window.first_minute_below(minute, 60, to_nano(b.hourly_usd)));
  }
  if (b.daily_usd > 0) {
    admitted = std::max(
        admitted, t.window.first_minute_below(minute, SpendWindow::kMinutes, to_nano(b.daily_usd)));
  }
  return admitted;
}

void BudgetTracker::publish(Tracked& t, int64_t minute) {
  double hour = to_usd(t.window.hour(minute));
  double day = to_usd(t.window.day(minute));
  t.spent_hour->Set(hour);
  t.spent_day->Set(day);
  // One warning each time a window crosses its limit.
  auto crossing = [&](bool& alerted, double spent, double limit, const char* window) {
    bool is_over = limit > 0 && spent >= limit;
    if (is_over && !alerted) {
      std::string spent_text = money(spent);
      std::string limit_text = money(limit);
      diag(LogLevel::warn, "budget exceeded",
           {{"agent", t.label},
            {"window", window},
            {"spent_usd", spent_text},
            {"limit_usd", limit_text},
            {"action", t.budget.action == BudgetAction::block ? "block" : "alert"}});
    }
    alerted = is_over;
  };
  crossing(t.alerted_hour, hour, t.budget.hourly_usd, "1h");
  crossing(t.alerted_day, day, t.budget.daily_usd, "24h");
}

std::optional<BudgetTracker::Refusal> BudgetTracker::admit(std::string_view agent) {
  if (empty()) return std::nullopt;
  const int64_t second = clock_();
  const int64_t minute = minute_of(second);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_agent_.find(std::string(agent));
  std::optional<Refusal> refusal;
  for (Tracked* t : {it == by_agent_.end() ? nullptr : &tracked_[it->second], all_}) {
    if (t == nullptr || t->budget.action != BudgetAction::block) continue;
    std::string why = over(*t, minute);
    if (why.empty()) continue;
    const int64_t wait = std::max<int64_t>(1, first_minute_admitted(*t, minute) * 60 - second);
    if (refusal) {
      refusal->retry_after_seconds = std::max(refusal->retry_after_seconds, wait);
      continue;
    }
    t->blocked->Increment();
    refusal = Refusal{(t == all_ ? "the all-agents " : "agent " + t->label + "'s ") + why +
                          " is used up; requests are blocked until spend in the window falls "
                          "below it",
                      wait};
  }
  return refusal;
}

void BudgetTracker::record(std::string_view agent, int64_t nano_usd) {
  if (empty() || nano_usd <= 0) return;
  const int64_t minute = minute_of(clock_());
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_agent_.find(std::string(agent));
  if (it != by_agent_.end()) {
    Tracked& t = tracked_[it->second];
    t.window.add(minute, nano_usd);
    publish(t, minute);
  }
  if (all_ != nullptr) {
    all_->window.add(minute, nano_usd);
    publish(*all_, minute);
  }
}

}  // namespace tokentap
