#include "proxy/metering/metering_observer.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "parsers/content_capture.h"
#include "parsers/llm_parser.h"
#include "parsers/usage_estimate.h"
#include "pricing/cost.h"
#include "proxy/metering/stream_usage_rewriter.h"

namespace tokentap {

namespace {

bool bills_tokens(Operation op) { return op != Operation::other && op != Operation::count_tokens; }

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

PendingToolCalls::Ms store_time(Clock::time_point t) {
  return std::chrono::duration_cast<PendingToolCalls::Ms>(t.time_since_epoch());
}

class MeteringObserver final : public RequestObserver {
 public:
  MeteringObserver(HandleCache& cache, LlmMetrics& metrics, PendingToolCalls& pending,
                   std::shared_ptr<const Runtime> runtime)
      : cache_(cache), m_(metrics), pending_(pending), runtime_(std::move(runtime)) {}

  void on_request_headers(RequestContext& ctx, const HeaderList& headers) override {
    std::optional<ApiProvider> provider =
        ctx.route ? api_provider_for(ctx.route->provider) : std::nullopt;
    parser_ = LlmParser::create(provider, ctx.method, ctx.path);
    if (!parser_) return;
    parser_->on_request_headers(headers);
    provider_name_ = api_provider_name(parser_->facts().provider);
    inflight_ = &cache_.gauge(m_.inflight, {{"agent", ctx.agent}, {"provider", provider_name_}});
    inflight_->Increment();
  }

  void on_request_body(RequestContext& ctx, std::string_view body) override {
    if (!parser_ || !ctx.request_is_json) return;
    if (ctx.capture_content_bytes > 0) parser_->capture_content(ctx.capture_content_bytes);
    parser_->on_request_body(body);
    // Matched when the request arrives: the agent's time running the tool ends here.
    const std::vector<ToolResultRef>& results = parser_->facts().tool_result_refs;
    if (results.empty() || !tool_results_.empty()) return;
    for (PendingToolCalls::Match& m : pending_.take(ctx.agent, results, store_time(ctx.start))) {
      tool_results_.push_back(
          {.tool = std::move(m.tool), .is_error = m.is_error, .seconds = m.seconds.value_or(-1)});
    }
  }

  std::optional<std::string> replace_request_body(RequestContext&, std::string_view body) override {
    if (!parser_ || !runtime_->config->metering.include_stream_usage) return std::nullopt;
    std::optional<std::string> rewritten = rewriter_.replace_request_body(parser_->facts(), body);
    if (rewritten)
      cache_.counter(m_.stream_usage_added, {{"provider", provider_name_}}).Increment();
    return rewritten;
  }

  void on_response_headers(RequestContext& ctx, int status, const HeaderList& headers) override {
    if (!parser_) return;
    if (ctx.capture_content_bytes > 0) parser_->capture_content(ctx.capture_content_bytes);
    parser_->on_response_headers(status, headers);
    rewriter_.on_response_headers(status, headers);
  }

  void on_response_body(RequestContext&, std::string_view chunk) override {
    if (!parser_) return;
    FeedResult r = parser_->feed(chunk);
    if (r.content) {
      Clock::time_point now = Clock::now();
      if (r.first_content || first_content_ == Clock::time_point{}) first_content_ = now;
      last_content_ = now;
    }
  }

  bool filters_response() const override { return rewriter_.filters_response(); }
  void filter_response(std::string_view in, std::string& out) override {
    rewriter_.filter(in, out);
  }
  void finish_response_filter(std::string& out) override { rewriter_.finish(out); }

  void on_complete(RequestContext& ctx) override {
    if (!parser_) return;
    if (inflight_) inflight_->Decrement();
    parser_->finish();
    const LlmFacts& f = parser_->facts();
    summarize(ctx, f);
    if (ctx.upstream_request_id.empty()) ctx.upstream_request_id = f.upstream_request_id;
    if (ctx.capture_content_bytes > 0) {
      ctx.content = std::make_shared<const CapturedContent>(parser_->take_content());
    }
    // Only a delivered answer asks the agent to run anything.
    if (!f.tool_call_refs.empty() && ctx.status >= 200 && ctx.status < 300) {
      pending_.remember(ctx.agent, f.tool_call_refs, store_time(ctx.end));
    }
  }

 private:
  // Computes the request's facts once, into ctx.llm; every sink reads them from there.
  void summarize(RequestContext& ctx, const LlmFacts& f) {
    LlmSummary& s = ctx.llm;
    s.metered = true;
    s.api = f.provider;
    s.provider = provider_name_;
    s.api_operation = f.operation;
    s.operation = operation_name(f.operation);
    s.model = !f.requested_model.empty()
                  ? f.requested_model
                  : (!f.response_model.empty() ? f.response_model : kUnknown);
    s.response_model = f.response_model;
    s.stream = f.stream;
    s.provider_error_class = f.error_class;
    s.provider_error = f.error;
    s.finish_reason = f.finish_reason;
    s.tool_calls = f.tool_calls;
    s.tool_results = std::move(tool_results_);
    s.tool_call_refs = f.tool_call_refs;
    s.rate_limits = f.rate_limits;
    s.parse_errors = f.parse_errors;
    s.parse_error_count = f.parse_error_count();
    s.stream_usage_added = rewriter_.added();

    s.billed = f.usage;
    if (f.stream && first_content_ != Clock::time_point{}) {
      s.ttft_seconds = seconds_between(ctx.start, first_content_);
      if (f.usage.present && f.usage.output > 1 && last_content_ > first_content_) {
        s.tpot_seconds = seconds_between(first_content_, last_content_) /
                         static_cast<double>(f.usage.output - 1);
      }
    }
    bill_usage(ctx, f);
    s.service_tier = s.billed.service_tier;
    if (s.billed.input + s.billed.output == 0) return;
    price(ctx, f);
  }

  // What to bill: the reported usage; for a successful billable request without it (a cut
  // stream, an upstream error mid-stream, a body without usage), the exact counts the stream
  // carried completed by estimates (parsers/usage_estimate.h). Otherwise (an error status) only
  // the exact input side a response may have reported; its output counts are placeholders.
  void bill_usage(RequestContext& ctx, const LlmFacts& f) {
    LlmSummary& s = ctx.llm;
    if (f.usage.present) {
      s.usage_source = "reported";
      return;
    }
    const int status = ctx.status;
    if (!bills_tokens(f.operation) || status < 200 || status >= 300) {
      s.usage_source = "none";
      s.billed.output = s.billed.reasoning = s.billed.output_audio = s.billed.output_image = 0;
      return;
    }
    s.usage_missing_reason = missing_reason(ctx, f);
    if (f.usage_not_reported_by_api) {
      // Billed elsewhere (a later retrieval) or not reported by design: nothing to estimate.
      s.usage_source = "missing";
      s.billed.output = s.billed.reasoning = s.billed.output_audio = s.billed.output_image = 0;
      return;
    }
    UsageEstimate e = estimate_usage(f);
    s.billed = std::move(e.usage);
    s.usage_source = usage_source_name(e.source);
    s.estimated_input = e.estimated_input;
    s.estimated_output = e.estimated_output;
  }

  static std::string_view missing_reason(const RequestContext& ctx, const LlmFacts& f) {
    if (f.usage_not_reported_by_api) return "not_reported_by_api";
    if (ctx.error == ErrorType::client_cancelled) return "client_cancelled";
    if (ctx.error != ErrorType::none || f.error_class != ErrorClass::none) return "upstream_error";
    if (f.parse_error_count() > 0) return "parse_error";
    return "not_reported";
  }

  // Prices ctx.llm.billed under the terms the response reported (service tier, region) or the
  // upstream implies (an OpenAI data-residency host). An unknown model, tier or region leaves
  // the request unpriced, with the reason.
  void price(RequestContext& ctx, const LlmFacts& f) {
    LlmSummary& s = ctx.llm;
    s.pricing_version = runtime_->prices->version();
    const pricing::ModelPrice* model_price = price_for(f);
    std::string residency;
    pricing::PricingTerms terms = pricing::pricing_terms(s.billed);
    if (terms.region.empty() && f.provider == ApiProvider::openai && ctx.route != nullptr) {
      residency = pricing::data_residency_region(ctx.route->upstream.host);
      terms.region = residency;
    }
    const pricing::BillableUsage usage = pricing::billable_usage(s.billed);
    const pricing::CostResult cost = pricing::price_request(usage, model_price, terms);
    s.pricing_rule = cost.pricing_rule;
    if (!cost.priced()) {
      s.unpriced = true;
      s.unpriced_reason = pricing::unpriced_reason_name(cost.unpriced);
      return;
    }
    s.priced = true;
    s.nano_usd = cost.nano_usd;
    s.priced_as = model_price->name;
    s.cache_read_savings_nano_usd = cost.cache_read_savings_nano_usd;
    s.cache_write_premium_nano_usd = cost.cache_write_premium_nano_usd;
  }

  // The price of the most specific model name that resolves: the provider's response model
  // (e.g. a dated snapshot) before the requested one; Azure deployments through the config map.
  const pricing::ModelPrice* price_for(const LlmFacts& f) const {
    const pricing::PriceTable& prices = *runtime_->prices;
    if (f.provider == ApiProvider::azure_openai) {
      if (const auto* p = prices.find_deployment(f.requested_model,
                                                 runtime_->config->pricing.azure_deployments)) {
        return p;
      }
    }
    if (!f.response_model.empty()) {
      if (const auto* p = prices.find(f.response_model)) return p;
    }
    return f.requested_model.empty() ? nullptr : prices.find(f.requested_model);
  }

  static inline const std::string kUnknown = "unknown";

  HandleCache& cache_;
  LlmMetrics& m_;
  PendingToolCalls& pending_;
  std::shared_ptr<const Runtime> runtime_;
  std::unique_ptr<LlmParser> parser_;
  std::string provider_name_ = "unknown";
  prometheus::Gauge* inflight_ = nullptr;
  StreamUsageRewriter rewriter_;
  Clock::time_point first_content_{};
  Clock::time_point last_content_{};
  std::vector<ToolResultOutcome> tool_results_;
};

}  // namespace

Metering::Metering(prometheus::Registry& registry, const MetricsSettings& metrics, size_t workers)
    : metrics_(registry, metrics) {
  caches_.reserve(workers);
  for (size_t i = 0; i < workers; ++i) caches_.push_back(metrics_.make_cache());
}

std::unique_ptr<RequestObserver> Metering::make_observer(size_t worker_index,
                                                         std::shared_ptr<const Runtime> runtime) {
  return std::make_unique<MeteringObserver>(caches_.at(worker_index), metrics_, pending_,
                                            std::move(runtime));
}

}  // namespace tokentap
