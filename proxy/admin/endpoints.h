// The JSON endpoints of the admin API, one file each. Every one is registered with
// AdminAccess::token (loopback clients, or others with the bearer token), answers GET and HEAD
// with an application/json body, and reads its store on the admin loop's thread when a request
// comes. The stores must outlive the AdminServer.
#pragma once

#include <nlohmann/json.hpp>

#include "proxy/admin/admin_server.h"
#include "proxy/core/runtime.h"
#include "proxy/policy/sessions.h"
#include "proxy/telemetry/recent_errors.h"
#include "proxy/telemetry/usage_store.h"

namespace tokentap {

// GET /v1/usage?agent=&model=&hours=1..24&minutes=true: the usage of the last hours (400 for a
// bad `hours`), with the pricing version of the running configuration.
void register_usage_endpoint(AdminServer& admin, const UsageStore& usage,
                             const RuntimeSlot& runtime);
// {"window": {...}, "totals": {...}, "usage": [{agent, provider, model, ...}, ...]}: the body
// of /v1/usage without "pricing_version".
nlohmann::ordered_json usage_report_json(const UsageReport& report);

// GET /v1/errors?limit=1..RecentErrors::kCapacity&agent=: the latest errors, newest first.
void register_errors_endpoint(AdminServer& admin, const RecentErrors& errors);

// GET /v1/sessions?agent=: the open sessions, most recently active first.
void register_sessions_endpoint(AdminServer& admin, SessionTracker& sessions);

// `body` as an application/json response (invalid UTF-8 replaced).
inline AdminResponse json_response(const nlohmann::ordered_json& body, int status = 200) {
  return AdminResponse{status, "application/json",
                       body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

}  // namespace tokentap
