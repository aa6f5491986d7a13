#include "proxy/metering/pending_tool_calls.h"

#include <algorithm>

namespace tokentap {

namespace {

constexpr size_t kMaxAgentKeyBytes = 128;

std::string_view cut(std::string_view s, size_t max) {
  return s.substr(0, std::min(s.size(), max));
}

}  // namespace

std::string PendingToolCalls::key_for(std::string_view agent, std::string_view id,
                                      std::string_view name) {
  std::string key(cut(agent, kMaxAgentKeyBytes));
  key.push_back(id.empty() ? '\1' : '\0');
  key.append(id.empty() ? name : id);
  return key;
}

void PendingToolCalls::erase(std::list<Entry>::iterator it) {
  unindex(by_key_, it->key, it);
  if (!it->name_key.empty()) unindex(by_name_, it->name_key, it);
  auto count = per_agent_.find(it->agent);
  if (count != per_agent_.end() && --count->second == 0) per_agent_.erase(count);
  order_.erase(it);
}

void PendingToolCalls::unindex(Index& index, const std::string& key,
                               std::list<Entry>::iterator it) {
  auto [first, last] = index.equal_range(key);
  for (auto k = first; k != last; ++k) {
    if (k->second == it) {
      index.erase(k);
      return;
    }
  }
}

PendingToolCalls::Index::iterator PendingToolCalls::oldest(Index& index, const std::string& key) {
  auto [first, last] = index.equal_range(key);
  auto best = last;
  for (auto k = first; k != last; ++k) {
    if (best == last || k->second->ended < best->second->ended) best = k;
  }
  return best == last ? index.end() : best;
}

void PendingToolCalls::expire(Ms now) {
  while (!order_.empty() && now - order_.front().ended > limits_.ttl) erase(order_.begin());
}

void PendingToolCalls::remember(std::string_view agent, std::span<const ToolCallRef> calls,
                                Ms response_end) {
  if (calls.empty() || limits_.max_per_agent == 0 || limits_.max_total == 0) return;
  std::string agent_key(cut(agent, kMaxAgentKeyBytes));
  std::lock_guard<std::mutex> lock(mu_);
  expire(response_end);
  for (const ToolCallRef& call : calls) {
    if (call.call_id.empty() && call.name.empty()) continue;
    if (per_agent_[agent_key] >= limits_.max_per_agent) {
      auto oldest = std::find_if(order_.begin(), order_.end(),
                                 [&](const Entry& e) { return e.agent == agent_key; });
      if (oldest != order_.end()) erase(oldest);
    }
    if (order_.size() >= limits_.max_total) erase(order_.begin());
    const bool by_name_too = !call.call_id.empty() && !call.name.empty();
    order_.push_back({key_for(agent_key, call.call_id, call.name),
                      by_name_too ? key_for(agent_key, {}, call.name) : std::string(), agent_key,
                      call.name, response_end});
    by_key_.emplace(order_.back().key, std::prev(order_.end()));
    if (by_name_too) by_name_.emplace(order_.back().name_key, std::prev(order_.end()));
    ++per_agent_[agent_key];
  }
}

std::vector<PendingToolCalls::Match> PendingToolCalls::take(std::string_view agent,
                                                            std::span<const ToolResultRef> results,
                                                            Ms now) {
  std::vector<Match> matches;
  matches.reserve(results.size());
  std::lock_guard<std::mutex> lock(mu_);
  expire(now);
  for (const ToolResultRef& result : results) {
    Match match{.tool = "unknown", .seconds = std::nullopt, .is_error = result.is_error};
    std::optional<std::list<Entry>::iterator> entry;
    if (!result.call_id.empty()) {
      if (auto k = by_key_.find(key_for(agent, result.call_id, {})); k != by_key_.end()) {
        entry = k->second;
      }
    }
    if (!entry && !result.name.empty()) {  // Gemini: calls without ids, or a result without one
      const std::string name_key = key_for(agent, {}, result.name);
      if (auto k = oldest(by_key_, name_key); k != by_key_.end()) {
        entry = k->second;
      } else if (result.call_id.empty()) {
        if (auto n = oldest(by_name_, name_key); n != by_name_.end()) entry = n->second;
      }
    }
    if (entry) {
      match.tool = (*entry)->name.empty() ? "unknown" : (*entry)->name;
      match.seconds = std::chrono::duration<double>(std::max(now - (*entry)->ended, Ms{0})).count();
      erase(*entry);
    } else if (!result.name.empty()) {
      match.tool = result.name;  // the format names the tool even without a known call
    }
    matches.push_back(std::move(match));
  }
  return matches;
}

size_t PendingToolCalls::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return order_.size();
}

}  // namespace tokentap
