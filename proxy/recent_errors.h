// The most recent failed requests, for GET /v1/errors on the admin port: a bounded ring,
// filled once per failed request when it ends (any worker), read by the admin listener.
#pragma once

#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "proxy/request_context.h"

namespace tokentap {

class RecentErrors {
 public:
  static constexpr size_t kCapacity = 256;

  // Records `ctx` if it failed (a proxy error, an HTTP status >= 400, or a provider error in a
  // stream). Uses the provider, model and provider_error fields the metering put in log_fields.
  void record(const RequestContext& ctx, std::string_view time);
  // Newest first, at most `limit`, only `agent`'s when not empty.
  nlohmann::ordered_json list(size_t limit, std::string_view agent) const;

 private:
  mutable std::mutex mu_;
  std::deque<nlohmann::ordered_json> entries_;  // front = newest
};

// Where a failure happened: connect, tls, timeout, client, upstream (a provider error status
// or event), protocol, request (rejected before forwarding), proxy.
std::string_view error_stage(const RequestContext& ctx);

}  // namespace tokentap
