#include "proxy/telemetry/usage_sink.h"

#include <chrono>
#include <string>

namespace tokentap {

void UsageSink::on_request_end(const RequestContext& ctx) {
  const LlmSummary& s = ctx.llm;
  if (!s.metered) return;
  const TokenUsage& u = s.billed;
  const std::string agent = capped_.get("agent", ctx.agent);
  const std::string& model = capped_.get("model", s.model);
  usage_.record(
      UsageSample{.agent = agent,
                  .provider = s.provider,
                  .model = model,
                  .input = u.input,
                  .output = u.output,
                  .cache_read = u.cache_read,
                  .cache_write = u.cache_write,
                  .reasoning = u.reasoning,
                  .nano_usd = s.nano_usd,
                  .unpriced = s.unpriced,
                  .error_type = ctx.outcome().error_type,
                  .duration_seconds = std::chrono::duration<double>(ctx.end - ctx.start).count(),
                  .ttft_seconds = s.ttft_seconds});
}

}  // namespace tokentap
