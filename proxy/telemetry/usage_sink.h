// The record side of the usage store: a completion sink that adds each finished metered
// request (ctx.llm) to the per-minute analytics behind GET /v1/usage, with the same counts and
// capped label values as llm_tokens_total and llm_cost_usd_total. One per worker.
#pragma once

#include "proxy/core/exchange.h"
#include "proxy/core/label_limiter.h"
#include "proxy/telemetry/usage_store.h"

namespace tokentap {

class UsageSink final : public CompletionSink {
 public:
  // `limiter` is the one the LLM metrics cap agent and model values with.
  UsageSink(UsageStore& usage, LabelLimiter& limiter) : usage_(usage), capped_(limiter) {}
  void on_request_end(const RequestContext& ctx) override;

 private:
  UsageStore& usage_;
  CappedValues capped_;
};

}  // namespace tokentap
