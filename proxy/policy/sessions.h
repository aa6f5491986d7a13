// Conversations: requests that carry the session header are grouped in memory (bounded, least
// recently used evicted first). A session idle for sessions.idle_timeout closes and is observed
// once in the llm_session_* histograms by agent, so conversation-level cost needs no session
// label. A session over the configured request rate or cost is a runaway: counted, logged with
// its id, and, with action block, refused with 429. So is a tool loop: the same tool with the
// same arguments asked for more than sessions.max_identical_tool_calls times in a session
// (every call seen before counts in llm_session_tool_repeats_total; at most
// kMaxToolKeysPerSession distinct calls are remembered per session). Thread-safe; the clock is
// injected.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/config.h"
#include "parsers/llm_facts.h"

namespace tokentap {

class LabelLimiter;

class SessionTracker {
 public:
  using Clock = std::function<std::chrono::milliseconds()>;
  static std::chrono::milliseconds steady_now();

  SessionTracker(const SessionSettings& settings, prometheus::Registry& registry,
                 LabelLimiter& limiter, Clock clock = steady_now);

  // A request of `session` starts. Returns why it is refused (a blocked runaway), or nullopt.
  std::optional<std::string> admit(std::string_view session, std::string_view agent);
  // A request of `session` ended with these totals.
  void record(std::string_view session, uint64_t tokens, int64_t nano_usd);
  // A response of `session` asked the client to run `calls`.
  void record_tool_calls(std::string_view session, std::span<const ToolCallRef> calls);
  static constexpr size_t kMaxToolKeysPerSession = 64;
  // Closes sessions idle for longer than the timeout; returns how many closed.
  size_t sweep();
  // A reload: open sessions stay open and are judged by the new settings from now on.
  void reconfigure(const SessionSettings& settings);
  size_t open_sessions();

  struct Snapshot {
    std::string id, agent;
    uint64_t requests = 0, tokens = 0;
    int64_t nano_usd = 0;
    double age_seconds = 0;
    bool runaway = false;
  };
  // Open sessions (optionally of one agent), most recently active first.
  std::vector<Snapshot> snapshot(std::string_view agent = {});

 private:
  struct Session {
    std::string id;
    std::string agent;
    std::chrono::milliseconds started{0};
    std::chrono::milliseconds last_active{0};
    uint64_t requests = 0;
    uint64_t tokens = 0;
    int64_t nano_usd = 0;
    std::chrono::milliseconds window_start{0};  // start of the current rate window
    uint32_t window_requests = 0;
    bool runaway = false;
    // (tool, arguments) hash -> times asked for; bounded by kMaxToolKeysPerSession.
    std::vector<std::pair<uint64_t, uint32_t>> tool_calls;
    std::list<std::string>::iterator lru;
  };
  void close(Session& s);  // observes and forgets; mu_ held
  void flag_runaway(Session& s, const std::string& why);
  Session* find(std::string_view id);

  SessionSettings settings_;
  LabelLimiter& limiter_;
  Clock clock_;
  std::mutex mu_;
  std::unordered_map<std::string, Session> sessions_;
  std::list<std::string> lru_;  // front = most recently active
  prometheus::Family<prometheus::Histogram>& requests_;
  prometheus::Family<prometheus::Histogram>& tokens_;
  prometheus::Family<prometheus::Histogram>& cost_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Family<prometheus::Counter>& runaway_;
  prometheus::Family<prometheus::Counter>& tool_repeats_;
};

}  // namespace tokentap
