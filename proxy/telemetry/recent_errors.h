// The most recent failed requests, for GET /v1/errors on the admin port: a bounded ring,
// filled once per failed request when it ends (any worker), read by the admin listener.
#pragma once

#include <cstddef>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/core/exchange.h"
#include "proxy/core/request_context.h"

namespace tokentap {

class RecentErrors {
 public:
  static constexpr size_t kCapacity = 256;

  // Records `ctx` if it failed (ctx.outcome(): a proxy error, a provider error in a body or a
  // stream, or an HTTP status >= 400), with the error_type, stage and provider error every
  // other sink uses.
  void record(const RequestContext& ctx, std::string_view time);
  // Newest first, at most `limit`, only `agent`'s when not empty.
  nlohmann::ordered_json list(size_t limit, std::string_view agent) const;

 private:
  struct Entry {
    std::string time;
    std::string request_id;
    std::string agent;
    std::string session;
    std::string provider;
    std::string model;
    const char* stage;
    int status;
    std::string error_type;
    std::optional<ProviderError> provider_error;
    std::string message;
  };

  mutable std::mutex mu_;
  std::deque<Entry> entries_;  // front = newest
};

// RecentErrors as a completion sink: records every finished request (the failed ones are
// kept) with ctx.wall_end as its time. `errors` is shared by all workers and outlives the sink.
class RecentErrorsSink final : public CompletionSink {
 public:
  explicit RecentErrorsSink(RecentErrors& errors) : errors_(errors) {}
  void on_request_end(const RequestContext& ctx) override;

 private:
  RecentErrors& errors_;
};

}  // namespace tokentap
