// Spend budgets per agent (and for all agents together), over a rolling hour and a rolling day.
// Spend is recorded in nano-USD when a priced request ends; admission is checked before a
// request contacts its upstream, and a refusal says how long until the windows admit again.
// Thread-safe: every worker shares one tracker. The clock is injected (seconds since an
// arbitrary epoch; windows roll on its whole minutes) so tests can move time.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "config/config.h"

namespace tokentap {

// Nano-USD spent per minute over the last 24 hours, with running hour and day sums.
class SpendWindow {
 public:
  static constexpr int64_t kMinutes = int64_t{24} * 60;
  void add(int64_t minute, int64_t nano_usd);
  int64_t hour(int64_t minute);  // the last 60 minutes, this one included
  int64_t day(int64_t minute);   // the last 1440 minutes, this one included
  // The first minute, from `minute` on, whose last `window` minutes (60 or kMinutes) hold less
  // than `limit` if nothing more is spent: `minute` itself when they already do.
  int64_t first_minute_below(int64_t minute, int64_t window, int64_t limit);

 private:
  void advance(int64_t minute);

  std::array<int64_t, kMinutes> buckets_{};
  int64_t last_minute_ = -1;
  int64_t hour_sum_ = 0;
  int64_t day_sum_ = 0;
};

class BudgetTracker {
 public:
  using SecondClock = std::function<int64_t()>;
  static int64_t wall_second();

  BudgetTracker(const std::vector<Budget>& budgets, prometheus::Registry& registry,
                SecondClock clock = wall_second);

  struct Refusal {
    std::string reason;
    // Seconds until every blocking budget of the agent admits again if nothing more is
    // spent (the windows roll per whole minute); at least 1.
    int64_t retry_after_seconds = 1;
  };
  // Why `agent` may not spend now (a block budget of its own, or the all-agents one, is used
  // up), or nullopt. Counts the block once, on the budget the reason names.
  std::optional<Refusal> admit(std::string_view agent);
  // A finished request's cost. Agents without a budget of their own count only towards "*".
  void record(std::string_view agent, int64_t nano_usd);
  // A reload: budgets that stay (same agent) keep their spend windows; new ones start empty,
  // removed ones leave the metrics.
  void reconfigure(const std::vector<Budget>& budgets);
  bool empty() const { return !active_.load(std::memory_order_relaxed); }

 private:
  struct Tracked {
    Budget budget;
    SpendWindow window;
    std::string label;  // agent label value; "*" budgets report as "all"
    prometheus::Gauge* spent_hour = nullptr;
    prometheus::Gauge* spent_day = nullptr;
    prometheus::Counter* blocked = nullptr;
    bool alerted_hour = false;
    bool alerted_day = false;
  };
  // Why `t` is over its limits now, or "".
  std::string over(Tracked& t, int64_t minute);
  // The first minute at which none of `t`'s windows is over its limit any more.
  int64_t first_minute_admitted(Tracked& t, int64_t minute);
  void publish(Tracked& t, int64_t minute);
  // Sets the limit gauges of `label`; a window without a limit (0) has no gauge.
  void set_limit_gauges(const std::string& label, double hourly_usd, double daily_usd);
  void remove_metrics(const Tracked& t);

  SecondClock clock_;
  prometheus::Family<prometheus::Gauge>& spent_;
  prometheus::Family<prometheus::Gauge>& limit_;
  prometheus::Family<prometheus::Counter>& blocked_;
  std::atomic<bool> active_{false};  // any budget configured
  std::mutex mu_;
  std::vector<Tracked> tracked_;
  std::unordered_map<std::string, size_t> by_agent_;
  Tracked* all_ = nullptr;
};

}  // namespace tokentap
