#include "proxy/metering/metering.h"

#include <cmath>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "parsers/llm_parser.h"
#include "parsers/stream_options.h"
#include "pricing/cost.h"
#include "proxy/http/http1.h"

namespace tokentap {

namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

const Histogram::BucketBoundaries kDurationBuckets = {0.05, 0.1, 0.25, 0.5, 1,  2.5, 5,
                                                      10,   20,  30,   60,  120, 300, 600};
const Histogram::BucketBoundaries kTtftBuckets = {0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1,
                                                  1.5,  2,   3,   5,   10,  20,   60};
const Histogram::BucketBoundaries kCostBuckets = {0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05,
                                                  0.1,    0.5,    1,     5,     10};
const Histogram::BucketBoundaries kTpotBuckets = {0.001, 0.0025, 0.005, 0.01, 0.02, 0.03,
                                                  0.05,  0.075,  0.1,   0.2,  0.5,  1};
// The OpenTelemetry GenAI semantic conventions' advisory buckets.
const Histogram::BucketBoundaries kOtelTokenBuckets = {
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864};
const Histogram::BucketBoundaries kOtelDurationBuckets = {
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92};
const Histogram::BucketBoundaries kOtelTtftBuckets = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06,
                                                      0.08,  0.1,   0.25, 0.5,  0.75, 1.0,
                                                      2.5,   5.0,   7.5,  10.0};

// Labels whose values come from users or providers are capped; the key names the value set
// the cap counts in (a model is one value whatever the metric). Labels with a fixed vocabulary
// (type, operation, the usage-missing and parse-error reasons, ...) are not capped.
std::string_view cap_key(bool finish_reasons, std::string_view name) {
  if (name == "agent" || name == "tool") return name;
  if (name == "model" || name == "gen_ai_request_model" || name == "gen_ai_response_model") {
    return "model";
  }
  if (name == "reason" && finish_reasons) return "finish_reason";
  return {};
}

constexpr size_t kMaxCachedHandles = 20'000;

const char* otel_system(ApiProvider p) {
  switch (p) {
    case ApiProvider::openai: return "openai";
    case ApiProvider::azure_openai: return "az.ai.openai";
    case ApiProvider::openai_compatible: return "openai";
    case ApiProvider::anthropic: return "anthropic";
    case ApiProvider::gemini: return "gcp.gemini";
  }
  return "openai";
}

bool bills_tokens(Operation op) {
  return op != Operation::other && op != Operation::count_tokens;
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

class MeteringObserver final : public RequestObserver {
 public:
  MeteringObserver(MeteringCache& cache, std::shared_ptr<const Runtime> runtime)
      : cache_(cache), m_(cache.metering()), runtime_(std::move(runtime)) {}

  void on_request_headers(RequestContext& ctx, const HeaderList& headers) override {
    std::optional<ApiProvider> provider =
        ctx.route ? api_provider_for(ctx.route->provider) : std::nullopt;
    parser_ = LlmParser::create(provider, ctx.method, ctx.path);
    if (!parser_) return;
    parser_->on_request_headers(headers);
    provider_name_ = api_provider_name(parser_->facts().provider);
    agent_ = ctx.agent;
    inflight_ = &cache_.gauge(m_.inflight, {{"agent", agent_}, {"provider", provider_name_}});
    inflight_->Increment();
  }

  void on_request_body(RequestContext& ctx, std::string_view body) override {
    if (parser_ && ctx.request_is_json) parser_->on_request_body(body);
  }

  std::optional<std::string> replace_request_body(RequestContext&, std::string_view body) override {
    if (!parser_ || !runtime_->config->metering.include_stream_usage) return std::nullopt;
    const LlmFacts& f = parser_->facts();
    bool openai_format = f.provider == ApiProvider::openai ||
                         f.provider == ApiProvider::azure_openai ||
                         f.provider == ApiProvider::openai_compatible;
    if (!openai_format || f.operation != Operation::chat_completions || !f.stream ||
        f.stream_options_present) {
      return std::nullopt;
    }
    std::optional<std::string> rewritten = add_stream_usage_option(body);
    if (rewritten) {
      usage_added_ = true;
      cache_.counter(m_.stream_usage_added, {{"provider", provider_name_}}).Increment();
    }
    return rewritten;
  }

  void on_response_headers(RequestContext&, int status, const HeaderList& headers) override {
    if (!parser_) return;
    parser_->on_response_headers(status, headers);
    if (!usage_added_ || status < 200 || status >= 300) return;
    // The filter reads SSE text: only an identity-encoded event stream can be filtered.
    for (const Header& h : headers) {
      if (iequals(h.name, "content-encoding") && !iequals(h.value, "identity")) {
        return;
      }
    }
    filtering_ = true;
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

  bool filters_response() const override { return filtering_; }
  void filter_response(std::string_view in, std::string& out) override { filter_.feed(in, out); }
  void finish_response_filter(std::string& out) override { filter_.finish(out); }

  void on_complete(RequestContext& ctx) override {
    if (!parser_) return;
    if (inflight_) inflight_->Decrement();
    parser_->finish();
    const LlmFacts& f = parser_->facts();
    summarize(ctx, f);
    record(ctx, f);
  }

 private:
  // Computes the request's billed facts once, into ctx.llm; every sink reads them from there.
  void summarize(RequestContext& ctx, const LlmFacts& f) {
    LlmSummary& s = ctx.llm;
    s.metered = true;
    s.provider = provider_name_;
    s.operation = operation_name(f.operation);
    s.model = !f.requested_model.empty()
                  ? f.requested_model
                  : (!f.response_model.empty() ? f.response_model : kUnknown);
    s.response_model = f.response_model;
    s.stream = f.stream;
    s.provider_error_class = f.error_class;
    s.provider_error = f.error;
    if (f.stream && first_content_ != Clock::time_point{}) {
      s.ttft_seconds = seconds_between(ctx.start, first_content_);
    }

    // Without final usage, a cut stream may still have reported its input side exactly
    // (Anthropic's message_start); output counts seen so far are placeholders, not bills.
    s.billed = f.usage;
    if (!f.usage.present) s.billed.output = s.billed.reasoning = 0;
    int status = ctx.status;
    if (f.usage.present) {
      s.usage_source = "reported";
    } else if (bills_tokens(f.operation) && status >= 200 && status < 300) {
      s.usage_source = "missing";
      if (f.usage_not_reported_by_api) {
        s.usage_missing_reason = "not_reported_by_api";
      } else if (ctx.error == ErrorType::client_cancelled) {
        s.usage_missing_reason = "client_cancelled";
      } else if (ctx.error != ErrorType::none || f.error_class != ErrorClass::none) {
        s.usage_missing_reason = "upstream_error";
      } else if (f.parse_error_count() > 0) {
        s.usage_missing_reason = "parse_error";
      } else {
        s.usage_missing_reason = "not_reported";
      }
    } else {
      s.usage_source = "none";
    }

    if (s.billed.input + s.billed.output == 0) return;
    s.pricing_version = runtime_->prices->version();
    const pricing::ModelPrice* price = price_for(f);
    if (price == nullptr) {
      s.unpriced = true;
      return;
    }
    s.priced = true;
    s.nano_usd = pricing::cost_nano_usd(pricing::billable_usage(s.billed), *price);
    s.priced_as = price->name;
  }

  // Every metric and store from ctx.llm (the summary) and ctx.outcome(); f only for what the
  // summary does not carry (tool calls, finish reason, parse errors, rate limits).
  void record(RequestContext& ctx, const LlmFacts& f) {
    const LlmSummary& s = ctx.llm;
    const std::string& model = s.model;
    std::string_view operation = s.operation;
    std::string_view error_type = ctx.outcome().error_type;
    std::string code = std::to_string(ctx.status);
    double duration = seconds_between(ctx.start, ctx.end);

    cache_.counter(m_.requests, {{"agent", agent_}, {"provider", provider_name_}, {"model", model},
                                 {"operation", operation}, {"code", code},
                                 {"error_type", error_type}})
        .Increment();
    cache_.histogram(m_.duration,
                     {{"agent", agent_}, {"provider", provider_name_}, {"model", model},
                      {"operation", operation}, {"stream", s.stream ? "true" : "false"}},
                     kDurationBuckets)
        .Observe(duration);

    const TokenUsage& u = s.billed;
    if (s.ttft_seconds >= 0) {
      cache_.histogram(m_.ttft, {{"agent", agent_}, {"provider", provider_name_}, {"model", model}},
                       kTtftBuckets)
          .Observe(s.ttft_seconds);
      if (u.output > 1 && last_content_ > first_content_) {
        cache_.histogram(m_.tpot,
                         {{"agent", agent_}, {"provider", provider_name_}, {"model", model}},
                         kTpotBuckets)
            .Observe(seconds_between(first_content_, last_content_) /
                     static_cast<double>(u.output - 1));
      }
    }

    auto add = [&](const char* type, uint64_t n) {
      if (n == 0) return;
      cache_.counter(m_.tokens, {{"agent", agent_}, {"provider", provider_name_},
                                 {"model", model}, {"type", type}})
          .Increment(static_cast<double>(n));
    };
    add("input", u.input);
    add("cache_read", u.cache_read);
    add("cache_write", u.cache_write);
    add("output", u.output);
    add("reasoning", u.reasoning);
    if (s.usage_source == "missing") {
      cache_.counter(m_.usage_missing, {{"agent", agent_}, {"provider", provider_name_},
                                        {"model", model}, {"reason", s.usage_missing_reason}})
          .Increment();
    }

    for (const ToolCallCount& t : f.tool_calls) {
      cache_.counter(m_.tool_calls, {{"agent", agent_},
                                     {"provider", provider_name_},
                                     {"model", model},
                                     {"tool", t.name},
                                     {"kind", tool_kind_name(t.kind)}})
          .Increment(t.count);
    }
    for (const ToolResultCount& t : f.tool_results) {
      cache_.counter(m_.tool_results,
                     {{"agent", agent_}, {"tool", t.tool}, {"status", tool_result_status(t)}})
          .Increment(t.count);
    }
    if (!f.finish_reason.empty()) {
      cache_.counter(m_.finish_reasons, {{"agent", agent_}, {"provider", provider_name_},
                                         {"model", model}, {"reason", f.finish_reason}})
          .Increment();
    }
    for (size_t k = 0; k < kParseErrorKindCount; ++k) {
      if (f.parse_errors[k] == 0) continue;
      cache_.counter(m_.parse_errors,
                     {{"provider", provider_name_},
                      {"reason", parse_error_kind_name(static_cast<ParseErrorKind>(k))}})
          .Increment(f.parse_errors[k]);
    }
    for (size_t r = 0; r < kRateLimitResourceCount; ++r) {
      const RateLimit& rl = f.rate_limits[r];
      const char* resource = rate_limit_resource_name(static_cast<RateLimitResource>(r));
      if (rl.remaining >= 0) {
        cache_.gauge(m_.ratelimit_remaining, {{"provider", provider_name_}, {"resource", resource}})
            .Set(static_cast<double>(rl.remaining));
      }
      if (rl.limit >= 0) {
        cache_.gauge(m_.ratelimit_limit, {{"provider", provider_name_}, {"resource", resource}})
            .Set(static_cast<double>(rl.limit));
      }
    }
    record_otel(f, s, error_type, duration);
    if (ctx.upstream_request_id.empty()) ctx.upstream_request_id = f.upstream_request_id;
    log(ctx, f);

    if (s.priced) {
      double usd = static_cast<double>(s.nano_usd) / static_cast<double>(pricing::kNanoPerUsd);
      cache_.counter(m_.cost, {{"agent", agent_}, {"provider", provider_name_}, {"model", model}})
          .Increment(usd);
      cache_.histogram(m_.request_cost, {{"agent", agent_}}, kCostBuckets).Observe(usd);
      if (m_.budgets() != nullptr) m_.budgets()->record(agent_, s.nano_usd);
    } else if (s.unpriced) {
      cache_.counter(m_.unpriced, {{"provider", provider_name_}, {"model", model}}).Increment();
    }
    if (m_.sessions() != nullptr && !ctx.session.empty()) {
      m_.sessions()->record(ctx.session, u.input + u.output, s.nano_usd);
    }
    if (UsageStore* usage = m_.usage()) {
      // The same counts and capped label values as llm_tokens_total and llm_cost_usd_total.
      const std::string agent = cache_.capped_value("agent", agent_);
      const std::string& capped_model = cache_.capped_value("model", model);
      usage->record(UsageSample{.agent = agent,
                                .provider = provider_name_,
                                .model = capped_model,
                                .input = u.input,
                                .output = u.output,
                                .cache_read = u.cache_read,
                                .cache_write = u.cache_write,
                                .reasoning = u.reasoning,
                                .nano_usd = s.nano_usd,
                                .unpriced = s.unpriced,
                                .error_type = error_type,
                                .duration_seconds = duration,
                                .ttft_seconds = s.ttft_seconds});
    }
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

  void record_otel(const LlmFacts& f, const LlmSummary& s, std::string_view error_type,
                   double duration) {
    if (m_.otel_duration == nullptr) return;
    const char* system = otel_system(f.provider);
    const char* op = otel_operation_name(f.operation);
    const std::string& model = s.model;
    const std::string& response_model = s.response_model.empty() ? model : s.response_model;
    cache_.histogram(*m_.otel_duration,
                     {{"gen_ai_operation_name", op}, {"gen_ai_system", system},
                      {"gen_ai_request_model", model}, {"gen_ai_response_model", response_model},
                      {"error_type", error_type == "none" ? "" : error_type}},
                     kOtelDurationBuckets)
        .Observe(duration);
    if (s.billed.input + s.billed.output > 0) {
      for (auto [type, n] : {std::pair<const char*, uint64_t>{"input", s.billed.input},
                             std::pair<const char*, uint64_t>{"output", s.billed.output}}) {
        cache_.histogram(*m_.otel_token_usage,
                         {{"gen_ai_operation_name", op}, {"gen_ai_system", system},
                          {"gen_ai_request_model", model},
                          {"gen_ai_response_model", response_model}, {"gen_ai_token_type", type}},
                         kOtelTokenBuckets)
            .Observe(static_cast<double>(n));
      }
    }
    if (s.ttft_seconds >= 0) {
      cache_.histogram(*m_.otel_ttft,
                       {{"gen_ai_operation_name", op}, {"gen_ai_system", system},
                        {"gen_ai_request_model", model}},
                       kOtelTtftBuckets)
          .Observe(s.ttft_seconds);
    }
  }

  // The access-log fields the summary does not carry (the access log writes ctx.llm itself).
  void log(RequestContext& ctx, const LlmFacts& f) {
    nlohmann::ordered_json& out = ctx.log_fields;
    out["finish_reason"] = f.finish_reason;
    // tool_calls counts every call by name, whoever ran it; server_tool_calls (only when there
    // were any) repeats the ones the provider ran itself.
    nlohmann::ordered_json tools = nlohmann::ordered_json::object();
    nlohmann::ordered_json server_tools = nlohmann::ordered_json::object();
    for (const ToolCallCount& t : f.tool_calls) {
      tools[t.name] = tools.value(t.name, 0u) + t.count;
      if (t.kind == ToolKind::server) server_tools[t.name] = t.count;
    }
    out["tool_calls"] = std::move(tools);
    if (!server_tools.empty()) out["server_tool_calls"] = std::move(server_tools);
    if (usage_added_) out["stream_usage_added"] = true;
    if (f.parse_error_count() > 0) out["parse_errors"] = f.parse_error_count();
  }

  static inline const std::string kUnknown = "unknown";

  MeteringCache& cache_;
  Metering& m_;
  std::shared_ptr<const Runtime> runtime_;
  std::unique_ptr<LlmParser> parser_;
  std::string provider_name_ = "unknown";
  std::string agent_;
  prometheus::Gauge* inflight_ = nullptr;
  bool usage_added_ = false;
  bool filtering_ = false;
  UsageChunkFilter filter_;
  Clock::time_point first_content_{};
  Clock::time_point last_content_{};
};

}  // namespace


const std::string& MeteringCache::key_of(const void* family, Labels labels) {
  key_.assign(reinterpret_cast<const char*>(&family), sizeof family);
  for (const auto& [name, value] : labels) {
    key_ += '\x1f';
    key_ += value;
  }
  return key_;
}

prometheus::Labels MeteringCache::capped(const void* family, Labels labels) {
  bool finish_reasons = family == &metering_.finish_reasons;
  prometheus::Labels out;
  for (const auto& [name, value] : labels) {
    std::string_view key = cap_key(finish_reasons, name);
    out.emplace(name, key.empty() ? std::string(value) : metering_.limiter().cap(key, value));
  }
  return out;
}

template <class T>
void MeteringCache::bound(std::unordered_map<std::string, T*>& cache) {
  // Raw values past the cap all map to "other" but still get cache entries; keep it bounded.
  if (cache.size() >= kMaxCachedHandles) cache.clear();
}

const std::string& MeteringCache::capped_value(std::string_view label, std::string_view value) {
  std::string key;
  key.reserve(label.size() + value.size() + 1);
  key.append(label).append(1, '\x1f').append(value);
  if (auto it = capped_values_.find(key); it != capped_values_.end()) return it->second;
  if (capped_values_.size() >= kMaxCachedHandles) capped_values_.clear();
  return capped_values_.emplace(std::move(key), metering_.limiter().cap(label, value))
      .first->second;
}

prometheus::Counter& MeteringCache::counter(prometheus::Family<prometheus::Counter>& family,
                                            Labels labels) {
  const std::string& key = key_of(&family, labels);
  if (auto it = counters_.find(key); it != counters_.end()) return *it->second;
  bound(counters_);
  prometheus::Counter& c = family.Add(capped(&family, labels));
  counters_.emplace(key, &c);
  return c;
}

prometheus::Gauge& MeteringCache::gauge(prometheus::Family<prometheus::Gauge>& family,
                                        Labels labels) {
  const std::string& key = key_of(&family, labels);
  if (auto it = gauges_.find(key); it != gauges_.end()) return *it->second;
  bound(gauges_);
  prometheus::Gauge& g = family.Add(capped(&family, labels));
  gauges_.emplace(key, &g);
  return g;
}

prometheus::Histogram& MeteringCache::histogram(prometheus::Family<prometheus::Histogram>& family,
                                                Labels labels,
                                                const prometheus::Histogram::BucketBoundaries& b) {
  const std::string& key = key_of(&family, labels);
  if (auto it = histograms_.find(key); it != histograms_.end()) return *it->second;
  bound(histograms_);
  prometheus::Histogram& h = family.Add(capped(&family, labels), b);
  histograms_.emplace(key, &h);
  return h;
}

Metering::Metering(prometheus::Registry& registry, const MetricsSettings& metrics,
                   size_t workers)
    : requests(BuildCounter()
                   .Name("llm_requests_total")
                   .Help("LLM API requests by agent, provider, model, operation, HTTP status and "
                         "error type")
                   .Register(registry)),
      duration(BuildHistogram()
                   .Name("llm_request_duration_seconds")
                   .Help("Time from the request's first byte to the response's last byte")
                   .Register(registry)),
      ttft(BuildHistogram()
               .Name("llm_time_to_first_token_seconds")
               .Help("Streams: time from the request to the first content-bearing event")
               .Register(registry)),
      tpot(BuildHistogram()
               .Name("llm_time_per_output_token_seconds")
               .Help("Streams: time between first and last content event per output token "
                     "after the first")
               .Register(registry)),
      tokens(BuildCounter()
                 .Name("llm_tokens_total")
                 .Help("Tokens billed, by type: input (all, incl. cache), output (incl. "
                       "reasoning), and the cache_read, cache_write, reasoning subsets")
                 .Register(registry)),
      tool_calls(BuildCounter()
                     .Name("llm_tool_calls_total")
                     .Help("Tool calls the model made, by tool name and kind: function (for "
                           "the client to run) or server (run by the provider)")
                     .Register(registry)),
      tool_results(BuildCounter()
                       .Name("llm_tool_results_total")
                       .Help("Tool results sent back to the model, by tool and status")
                       .Register(registry)),
      finish_reasons(BuildCounter()
                         .Name("llm_finish_reasons_total")
                         .Help("Responses by the provider's finish / stop reason")
                         .Register(registry)),
      inflight(BuildGauge()
                   .Name("llm_inflight_requests")
                   .Help("LLM API requests in progress")
                   .Register(registry)),
      usage_missing(BuildCounter()
                        .Name("llm_usage_missing_total")
                        .Help("Successful billable requests whose token usage could not be "
                              "read, by reason")
                        .Register(registry)),
      parse_errors(BuildCounter()
                       .Name("llm_parse_errors_total")
                       .Help("Request or response bodies that could not be metered, by reason "
                             "(traffic is forwarded unchanged)")
                       .Register(registry)),
      ratelimit_remaining(BuildGauge()
                              .Name("llm_upstream_ratelimit_remaining")
                              .Help("Provider rate-limit headroom from the latest response")
                              .Register(registry)),
      ratelimit_limit(BuildGauge()
                          .Name("llm_upstream_ratelimit_limit")
                          .Help("Provider rate limit from the latest response")
                          .Register(registry)),
      stream_usage_added(BuildCounter()
                             .Name("tokentap_stream_usage_requested_total")
                             .Help("Streaming requests to which tokentap added "
                                   "stream_options.include_usage")
                             .Register(registry)),
      cost(BuildCounter()
               .Name("llm_cost_usd_total")
               .Help("Cost of the tokens billed, in USD, from the price table")
               .Register(registry)),
      request_cost(BuildHistogram()
                       .Name("llm_request_cost_usd")
                       .Help("Cost of one request, in USD")
                       .Register(registry)),
      unpriced(BuildCounter()
                   .Name("llm_unpriced_requests_total")
                   .Help("Requests with token usage whose model is not in the price table")
                   .Register(registry)),
      limiter_(metrics.max_values_per_label) {
  if (metrics.otel_semconv) {
    otel_token_usage = &BuildHistogram()
                            .Name("gen_ai_client_token_usage")
                            .Help("OpenTelemetry GenAI: tokens used per request, by token type")
                            .Register(registry);
    otel_duration = &BuildHistogram()
                         .Name("gen_ai_client_operation_duration_seconds")
                         .Help("OpenTelemetry GenAI: duration of a GenAI operation")
                         .Register(registry);
    otel_ttft = &BuildHistogram()
                     .Name("gen_ai_server_time_to_first_token_seconds")
                     .Help("OpenTelemetry GenAI: time to the first token of a stream")
                     .Register(registry);
  }
  for (size_t i = 0; i < workers; ++i) caches_.push_back(std::make_unique<MeteringCache>(*this));
}

std::unique_ptr<RequestObserver> Metering::make_observer(size_t worker_index,
                                                         std::shared_ptr<const Runtime> runtime) {
  return std::make_unique<MeteringObserver>(*caches_.at(worker_index), std::move(runtime));
}


}  // namespace tokentap
