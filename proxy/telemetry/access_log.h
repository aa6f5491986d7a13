// The access log's line format: one JSON object per finished request, rendered from the
// request's context (see README, "Access log" for the fields).
#pragma once

#include <chrono>
#include <string>

#include "common/log.h"
#include "proxy/core/exchange.h"
#include "proxy/core/request_context.h"

namespace tokentap {

// The access log line for a finished request: one JSON object, no trailing newline. The core
// fields, the one error_type (ctx.outcome()), then ctx.llm when metered.
// `wall_end` is the wall-clock time the request ended.
std::string access_log_line(const RequestContext& ctx,
                            std::chrono::system_clock::time_point wall_end);

// The access log as a completion sink: one access_log_line per finished request, stamped with
// ctx.wall_end, queued on `log` (shared by all workers; it never blocks, and counts a line it
// has to drop).
class AccessLogSink final : public CompletionSink {
 public:
  explicit AccessLogSink(LineWriter& log) : log_(log) {}
  void on_request_end(const RequestContext& ctx) override;

 private:
  LineWriter& log_;
};

}  // namespace tokentap
