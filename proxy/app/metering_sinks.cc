#include "proxy/app/metering_sinks.h"

#include <memory>
#include <utility>
#include <vector>

#include "proxy/metering/llm_metrics.h"
#include "proxy/policy/spend_sinks.h"
#include "proxy/telemetry/usage_sink.h"

namespace tokentap {

void add_metering_sinks(Pipeline& pipeline, Metering& metering, BudgetTracker& budgets,
                        SessionTracker& sessions, UsageStore& usage) {
  pipeline.sinks.push_back(std::make_unique<LlmMetricsSink>(metering.llm_metrics()));
  pipeline.sinks.push_back(std::make_unique<BudgetSink>(budgets));
  pipeline.sinks.push_back(std::make_unique<SessionSink>(sessions));
  pipeline.sinks.push_back(std::make_unique<UsageSink>(usage, metering.limiter()));
}

namespace {

class SinkRunningObserver final : public RequestObserver {
 public:
  SinkRunningObserver(std::unique_ptr<RequestObserver> inner, Pipeline& pipeline)
      : inner_(std::move(inner)), pipeline_(pipeline) {}

  void on_request_headers(RequestContext& ctx, const HeaderList& headers) override {
    inner_->on_request_headers(ctx, headers);
  }
  void on_request_body(RequestContext& ctx, std::string_view body) override {
    inner_->on_request_body(ctx, body);
  }
  void on_response_headers(RequestContext& ctx, int status, const HeaderList& headers) override {
    inner_->on_response_headers(ctx, status, headers);
  }
  void on_response_body(RequestContext& ctx, std::string_view chunk) override {
    inner_->on_response_body(ctx, chunk);
  }
  void on_complete(RequestContext& ctx) override {
    inner_->on_complete(ctx);
    for (const auto& sink : pipeline_.sinks) sink->on_request_end(ctx);
  }
  std::optional<std::string> replace_request_body(RequestContext& ctx,
                                                  std::string_view body) override {
    return inner_->replace_request_body(ctx, body);
  }
  bool filters_response() const override { return inner_->filters_response(); }
  void filter_response(std::string_view in, std::string& out) override {
    inner_->filter_response(in, out);
  }
  void finish_response_filter(std::string& out) override { inner_->finish_response_filter(out); }

 private:
  std::unique_ptr<RequestObserver> inner_;
  Pipeline& pipeline_;
};

}  // namespace

ObserverFactory with_completion_sinks(ObserverFactory observers, const PipelineFactory& pipelines,
                                      size_t workers) {
  auto built = std::make_shared<std::vector<Pipeline>>();
  built->reserve(workers);
  for (size_t i = 0; i < workers; ++i) built->push_back(pipelines(i));
  return [observers = std::move(observers), built](
             size_t worker_index,
             const std::shared_ptr<const Runtime>& runtime) -> std::unique_ptr<RequestObserver> {
    std::unique_ptr<RequestObserver> inner = observers(worker_index, runtime);
    if (!inner) return inner;
    return std::make_unique<SinkRunningObserver>(std::move(inner), built->at(worker_index));
  };
}

}  // namespace tokentap
