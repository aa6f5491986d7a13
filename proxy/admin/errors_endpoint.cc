#include <algorithm>
#include <cstdlib>

#include "proxy/admin/endpoints.h"

namespace tokentap {

void register_errors_endpoint(AdminServer& admin, const RecentErrors& errors) {
  admin.add_handler("/v1/errors", [&errors](const AdminRequest& request) {
    size_t limit = 50;
    if (auto it = request.params.find("limit"); it != request.params.end()) {
      limit = std::clamp<size_t>(std::strtoul(it->second.c_str(), nullptr, 10), 1,
                                 RecentErrors::kCapacity);
    }
    auto agent = request.params.find("agent");
    return json_response(
        {{"errors", errors.list(limit, agent == request.params.end() ? "" : agent->second)}});
  });
}

}  // namespace tokentap
