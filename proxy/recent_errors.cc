#include "proxy/recent_errors.h"

namespace tokentap {

std::string_view error_stage(const RequestContext& ctx) {
  switch (ctx.error) {
    case ErrorType::upstream_connect_error: return "connect";
    case ErrorType::upstream_tls_error: return "tls";
    case ErrorType::timeout:
    case ErrorType::header_timeout: return "timeout";
    case ErrorType::client_cancelled: return "client";
    case ErrorType::upstream_protocol_error:
    case ErrorType::upstream_reset: return "protocol";
    case ErrorType::bad_request:
    case ErrorType::request_too_large:
    case ErrorType::headers_too_large:
    case ErrorType::no_route:
    case ErrorType::budget_exceeded:
    case ErrorType::runaway_session: return "request";
    case ErrorType::overloaded:
    case ErrorType::request_buffer_full:
    case ErrorType::shutting_down:
    case ErrorType::internal: return "proxy";
    case ErrorType::none: break;
  }
  return "upstream";
}

void RecentErrors::record(const RequestContext& ctx, std::string_view time) {
  const nlohmann::ordered_json& fields = ctx.log_fields;
  auto field = [&](const char* key) -> std::string {
    auto it = fields.find(key);
    return it != fields.end() && it->is_string() ? it->get<std::string>() : "";
  };
  std::string llm_error = field("llm_error_type");
  bool llm_failed = !llm_error.empty() && llm_error != "none";
  if (ctx.error == ErrorType::none && ctx.status < 400 && !llm_failed) return;

  nlohmann::ordered_json entry;
  entry["time"] = time;
  entry["request_id"] = ctx.request_id;
  entry["agent"] = ctx.agent;
  entry["session"] = ctx.session;
  entry["provider"] = field("provider");
  entry["model"] = field("model");
  entry["stage"] = error_stage(ctx);
  entry["status"] = ctx.status;
  entry["error_type"] = llm_failed ? llm_error : std::string(error_type_name(ctx.error));
  std::string message = ctx.error_detail;
  if (auto it = fields.find("provider_error"); it != fields.end() && it->is_object()) {
    entry["provider_error"] = *it;
    if (message.empty() && it->contains("message")) message = (*it)["message"].get<std::string>();
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

}  // namespace tokentap
