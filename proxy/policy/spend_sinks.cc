#include "proxy/policy/spend_sinks.h"

namespace tokentap {

void BudgetSink::on_request_end(const RequestContext& ctx) {
  if (ctx.llm.priced) budgets_.record(ctx.agent, ctx.llm.nano_usd);
}

void SessionSink::on_request_end(const RequestContext& ctx) {
  if (!ctx.llm.metered || ctx.session.empty()) return;
  sessions_.record(ctx.session, ctx.llm.billed.input + ctx.llm.billed.output, ctx.llm.nano_usd);
  sessions_.record_tool_calls(ctx.session, ctx.llm.tool_call_refs);
}

}  // namespace tokentap
