#include "proxy/tracing/tracing_sink.h"

#include "proxy/tracing/content_attributes.h"
#include "proxy/tracing/sampler.h"
#include "proxy/tracing/tracing_metrics.h"

namespace tokentap {

TracingSink::TracingSink(TracingSinkOptions options, std::shared_ptr<SpanQueue> queue,
                         TraceLookup trace_of, std::optional<uint64_t> seed)
    : options_(std::move(options)),
      queue_(std::move(queue)),
      trace_of_(std::move(trace_of)),
      ids_(seed ? IdGenerator(*seed) : IdGenerator()) {}

void TracingSink::on_request_end(const RequestContext& ctx) {
  if (options_.llm_only && !ctx.llm.metered) return;
  std::optional<RequestTrace> trace;
  if (trace_of_) trace = trace_of_(ctx);
  if (!trace) trace = new_request_trace(ids_, std::nullopt, {});
  const bool failed = ctx.outcome().failed();
  const double draw = ids_.unit();
  const bool sampled = trace->head_sampled.value_or(
      keep_span(false, trace->parent_sampled, options_.sample_ratio, draw));
  if (!sampled && !(failed && options_.keep_errors)) {
    ++sampled_out_;
    return;
  }
  SpanRecord span = build_span(ctx, *trace);
  if (ctx.content && options_.scrubber) {
    PiiCounts counts;
    add_content_attributes(*ctx.content, ctx.llm.finish_reason, *options_.scrubber,
                           options_.content_max_bytes, counts, span.json["attributes"]);
    if (options_.pii_counts) options_.pii_counts->add(counts);
  }
  queue_->enqueue(std::move(span.json));
}

}  // namespace tokentap
