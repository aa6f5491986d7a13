#include "proxy/telemetry/recent_errors.h"

#include "common/log.h"

namespace tokentap {

void RecentErrors::record(const RequestContext& ctx, std::string_view time) {
  ErrorOutcome outcome = ctx.outcome();
  if (!outcome.failed()) return;

  const LlmSummary& llm = ctx.llm;
  nlohmann::ordered_json entry;
  entry["time"] = time;
  entry["request_id"] = ctx.request_id;
  entry["agent"] = ctx.agent;
  entry["session"] = ctx.session;
  entry["provider"] = llm.provider;
  entry["model"] = llm.model;
  entry["stage"] = error_stage_name(outcome.stage);
  entry["status"] = ctx.status;
  entry["error_type"] = outcome.error_type;
  std::string message = ctx.error_detail;
  if (llm.provider_error.present()) {
    entry["provider_error"] = {{"type", llm.provider_error.type},
                               {"code", llm.provider_error.code},
                               {"message", llm.provider_error.message}};
    if (message.empty()) message = llm.provider_error.message;
  }
  entry["message"] = message;
  std::lock_guard<std::mutex> lock(mu_);
  entries_.push_front(std::move(entry));
  if (entries_.size() > kCapacity) entries_.pop_back();
}

nlohmann::ordered_json RecentErrors::list(size_t limit, std::string_view agent) const {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& entry : entries_) {
    if (out.size() >= limit) break;
    if (!agent.empty() && entry["agent"] != agent) continue;
    out.push_back(entry);
  }
  return out;
}

void RecentErrorsSink::on_request_end(const RequestContext& ctx) {
  errors_.record(ctx, utc_timestamp(ctx.wall_end));
}

}  // namespace tokentap
