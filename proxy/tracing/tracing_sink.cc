#include "proxy/tracing/tracing_sink.h"

#include "proxy/tracing/sampler.h"

namespace tokentap {

TracingSink::TracingSink(TracingSinkOptions options, std::shared_ptr<SpanQueue> queue,
                         TraceLookup trace_of, std::optional<uint64_t> seed)
    : options_(options),
      queue_(std::move(queue)),
      trace_of_(std::move(trace_of)),
      ids_(seed ? IdGenerator(*seed) : IdGenerator()) {}

void TracingSink::on_request_end(const RequestContext& ctx) {
  if (options_.llm_only && !ctx.llm.metered) return;
  std::optional<RequestTrace> trace;
  if (trace_of_) trace = trace_of_(ctx);
  if (!trace) trace = new_request_trace(ids_, std::nullopt, {});
  SpanRecord span = build_span(ctx, *trace);
  if (!keep_span(span.failed && options_.keep_errors, trace->parent_sampled, options_.sample_ratio,
                 ids_.unit())) {
    ++sampled_out_;
    return;
  }
  queue_->enqueue(std::move(span.json));
}

}  // namespace tokentap
