#include "proxy/telemetry/recent_errors.h"

#include "common/log.h"

namespace tokentap {

void RecentErrors::record(const RequestContext& ctx, std::string_view time) {
  ErrorOutcome outcome = ctx.outcome();
  if (!outcome.failed()) return;

  const LlmSummary& llm = ctx.llm;
  Entry entry{.time = std::string(time),
              .request_id = ctx.request_id,
              .agent = ctx.agent,
              .session = ctx.session,
              .provider = llm.provider,
              .model = llm.model,
              .stage = error_stage_name(outcome.stage),
              .status = ctx.status,
              .error_type = std::string(outcome.error_type),
              .provider_error = std::nullopt,
              .message = ctx.error_detail};
  if (llm.provider_error.present()) {
    entry.provider_error = llm.provider_error;
    if (entry.message.empty()) entry.message = llm.provider_error.message;
  }
  std::lock_guard<std::mutex> lock(mu_);
  entries_.push_front(std::move(entry));
  if (entries_.size() > kCapacity) entries_.pop_back();
}

nlohmann::ordered_json RecentErrors::list(size_t limit, std::string_view agent) const {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& entry : entries_) {
    if (out.size() >= limit) break;
    if (!agent.empty() && entry.agent != agent) continue;
    nlohmann::ordered_json item;
    item["time"] = entry.time;
    item["request_id"] = entry.request_id;
    item["agent"] = entry.agent;
    item["session"] = entry.session;
    item["provider"] = entry.provider;
    item["model"] = entry.model;
    item["stage"] = entry.stage;
    item["status"] = entry.status;
    item["error_type"] = entry.error_type;
    if (entry.provider_error) {
      item["provider_error"] = {{"type", entry.provider_error->type},
                                {"code", entry.provider_error->code},
                                {"message", entry.provider_error->message}};
    }
    item["message"] = entry.message;
    out.push_back(std::move(item));
  }
  return out;
}

void RecentErrorsSink::on_request_end(const RequestContext& ctx) {
  errors_.record(ctx, utc_timestamp(ctx.wall_end));
}

}  // namespace tokentap
