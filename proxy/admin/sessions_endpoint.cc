#include <string>

#include "proxy/admin/endpoints.h"

namespace tokentap {

void register_sessions_endpoint(AdminServer& admin, SessionTracker& sessions) {
  admin.add_handler("/v1/sessions", [&sessions](const AdminRequest& request) {
    auto it = request.params.find("agent");
    const std::string agent = it == request.params.end() ? "" : it->second;
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const SessionTracker::Snapshot& s : sessions.snapshot(agent)) {
      list.push_back({{"session", s.id},
                      {"agent", s.agent},
                      {"requests", s.requests},
                      {"tokens", s.tokens},
                      {"cost_usd", static_cast<double>(s.nano_usd) / 1e9},
                      {"age_seconds", s.age_seconds},
                      {"runaway", s.runaway}});
    }
    return json_response({{"sessions", std::move(list)}});
  });
}

}  // namespace tokentap
