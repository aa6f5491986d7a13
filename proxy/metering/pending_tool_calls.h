// The tool calls responses asked agents to run and whose results have not come back yet, so
// that the request carrying a result can be told how long the agent took to run the tool
// (issue 15: tool execution time). Metering (metering_observer.h) remembers and takes them.
//
// Entries are keyed by agent and call id (a call without an id, as Gemini may send, is found
// by its tool name instead). A result without an id (Gemini's functionResponse may omit it even
// when the call had one) takes the oldest pending call of that agent and name. Bounded: at most
// `max_per_agent` per agent and `max_total` in all (the oldest go first), and an entry older than
// `ttl` is forgotten. Shared by the workers (one mutex): an agent's next request may land on
// another worker. The clock is injected.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "parsers/tool_results.h"

namespace tokentap {

struct PendingToolCallLimits {
  size_t max_per_agent = 256;
  size_t max_total = 10'000;
  std::chrono::milliseconds ttl{std::chrono::minutes(30)};
};

class PendingToolCalls {
 public:
  using Ms = std::chrono::milliseconds;

  explicit PendingToolCalls(PendingToolCallLimits limits = {}) : limits_(limits) {}

  // A response of `agent` that ended at `response_end` asked for `calls`.
  void remember(std::string_view agent, std::span<const ToolCallRef> calls, Ms response_end);

  // What a result matched: the tool's name ("unknown" when no pending call matched) and the
  // seconds from the end of the response that asked for it to `now` (only when matched).
  struct Match {
    std::string tool;
    std::optional<double> seconds;
    bool is_error = false;
  };
  // The results a request of `agent` arriving at `now` carries; each matched call is forgotten.
  std::vector<Match> take(std::string_view agent, std::span<const ToolResultRef> results, Ms now);

  size_t size();

 private:
  struct Entry {
    std::string key;       // agent '\0' id, or agent '\1' name for a call without an id
    std::string name_key;  // agent '\1' name for a call with an id and a name, else empty
    std::string agent;
    std::string name;
    Ms ended{0};
  };
  using Index = std::unordered_multimap<std::string, std::list<Entry>::iterator>;
  static void unindex(Index& index, const std::string& key, std::list<Entry>::iterator it);
  static Index::iterator oldest(Index& index, const std::string& key);  // by `ended`
  void expire(Ms now);                                                  // mu_ held
  void erase(std::list<Entry>::iterator it);                            // mu_ held
  static std::string key_for(std::string_view agent, std::string_view id, std::string_view name);

  PendingToolCallLimits limits_;
  std::mutex mu_;
  std::list<Entry> order_;  // oldest first
  Index by_key_;
  Index by_name_;  // calls with an id, also by name, for results without one
  std::unordered_map<std::string, size_t> per_agent_;
};

}  // namespace tokentap
