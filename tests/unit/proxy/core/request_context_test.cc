#include "proxy/core/request_context.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "proxy/telemetry/access_log.h"
#include "proxy/telemetry/recent_errors.h"

using namespace tokentap;

namespace {

nlohmann::json log_of(const RequestContext& ctx) {
  return nlohmann::json::parse(access_log_line(ctx, std::chrono::system_clock::now()));
}

}  // namespace

TEST_CASE("Every ErrorType has a status, an error_type value and a stage", "[errors]") {
  for (size_t i = 0; i < kErrorTypeCount; ++i) {
    auto type = static_cast<ErrorType>(i);
    const ErrorTypeInfo& info = error_info(type);
    CHECK(info.type == type);
    CHECK(std::string_view(info.name).size() > 0);
    CHECK(std::string_view(info.error_type).size() > 0);
    CHECK((type == ErrorType::none) == (info.stage == ErrorStage::none));
    CHECK(info.status >= 200);
  }
  CHECK(error_status(ErrorType::runaway_session) == 429);
  CHECK(std::string_view(error_type_name(ErrorType::upstream_connect_error)) ==
        "upstream_connect_error");
}

TEST_CASE("request_outcome: the proxy's failure, else the provider's, else the status",
          "[errors]") {
  auto outcome = request_outcome(ErrorType::upstream_connect_error, 502, ErrorClass::none);
  CHECK(outcome.error_type == "connect_error");
  CHECK(outcome.stage == ErrorStage::upstream);
  outcome = request_outcome(ErrorType::budget_exceeded, 429, ErrorClass::none);
  CHECK(outcome.error_type == "budget_exceeded");
  CHECK(outcome.stage == ErrorStage::proxy);
  // A client that goes away mid-stream is the cause, whatever the stream said before.
  outcome = request_outcome(ErrorType::client_cancelled, 200, ErrorClass::overloaded);
  CHECK(outcome.error_type == "client_cancelled");
  CHECK(outcome.stage == ErrorStage::downstream);
  outcome = request_outcome(ErrorType::none, 200, ErrorClass::overloaded);
  CHECK(outcome.error_type == "overloaded");
  CHECK(outcome.stage == ErrorStage::provider);
  // An upstream 429 on a route without metering is still a failure, named by its status.
  outcome = request_outcome(ErrorType::none, 429, ErrorClass::none);
  CHECK(outcome.error_type == "rate_limited");
  CHECK(outcome.stage == ErrorStage::provider);
  outcome = request_outcome(ErrorType::none, 200, ErrorClass::none);
  CHECK(outcome.error_type == "none");
  CHECK_FALSE(outcome.failed());
}

TEST_CASE("The access log's error fields and LLM fields come from the context", "[errors]") {
  RequestContext ctx;
  ctx.status = 429;
  ctx.upstream_status = 429;
  nlohmann::json line = log_of(ctx);
  CHECK(line["error_type"] == "rate_limited");
  CHECK(line["error_stage"] == "provider");
  CHECK_FALSE(line.contains("proxy_error"));
  CHECK_FALSE(line.contains("provider"));  // not metered: no LLM fields

  ctx.status = 504;
  ctx.error = ErrorType::timeout;
  line = log_of(ctx);
  CHECK(line["error_type"] == "timeout");
  CHECK(line["error_stage"] == "upstream");
  CHECK(line["proxy_error"] == "timeout");

  RequestContext ok;
  ok.status = 200;
  ok.llm.metered = true;
  ok.llm.provider = "anthropic";
  ok.llm.operation = "messages";
  ok.llm.model = "claude-sonnet-4";
  ok.llm.stream = true;
  ok.llm.billed.input = 30;
  ok.llm.billed.cache_write_1h = 5;
  ok.llm.usage_source = "missing";
  ok.llm.usage_missing_reason = "upstream_error";
  ok.llm.priced = true;
  ok.llm.nano_usd = 90'000;
  ok.llm.priced_as = "claude-sonnet-4";
  ok.llm.pricing_version = "v1";
  ok.llm.provider_error_class = ErrorClass::overloaded;
  ok.llm.provider_error = ProviderError{200, "overloaded_error", "", "Overloaded \"now\""};
  ok.llm.ttft_seconds = 0.0123456;
  line = log_of(ok);
  CHECK(line["error_type"] == "overloaded");
  CHECK(line["error_stage"] == "provider");
  CHECK(line["tokens"] == nlohmann::json{{"input", 30},
                                         {"output", 0},
                                         {"cache_read", 0},
                                         {"cache_write", 0},
                                         {"reasoning", 0},
                                         {"cache_write_1h", 5}});
  CHECK(line["usage_source"] == "missing");
  CHECK(line["usage_missing_reason"] == "upstream_error");
  CHECK(line["cost_usd"] == 0.00009);
  CHECK(line["priced_as"] == "claude-sonnet-4");
  CHECK(line["ttft_ms"] == 12.346);
  CHECK(line["provider_error"]["message"] == "Overloaded \"now\"");
  CHECK(line["finish_reason"] == "");
  CHECK_FALSE(line.contains("llm_error_type"));

  ok.llm.priced = false;
  ok.llm.unpriced = true;
  line = log_of(ok);
  CHECK(line["cost_usd"].is_null());
  CHECK(line["unpriced"] == true);
}

TEST_CASE("RecentErrors records what the access log says", "[errors]") {
  RecentErrors errors;
  RequestContext ok;
  ok.status = 200;
  errors.record(ok, "t0");
  CHECK(errors.list(10, "").empty());

  RequestContext cut;
  cut.status = 200;
  cut.agent = "a";
  cut.llm.metered = true;
  cut.llm.provider = "anthropic";
  cut.llm.model = "claude-sonnet-4";
  cut.llm.provider_error_class = ErrorClass::overloaded;
  cut.llm.provider_error = ProviderError{200, "overloaded_error", "", "Overloaded"};
  errors.record(cut, "t1");
  auto list = errors.list(10, "");
  REQUIRE(list.size() == 1);
  CHECK(list[0]["error_type"] == "overloaded");
  CHECK(list[0]["stage"] == "provider");
  CHECK(list[0]["model"] == "claude-sonnet-4");
  CHECK(list[0]["message"] == "Overloaded");
  CHECK(list[0]["error_type"] == log_of(cut)["error_type"]);
}

TEST_CASE("The access log renders the provider's typed facts after the LLM fields", "[errors]") {
  RequestContext ctx;
  ctx.status = 200;
  ctx.llm.metered = true;
  ctx.llm.provider = "anthropic";
  ctx.llm.finish_reason = "tool_use";
  std::string line = access_log_line(ctx, std::chrono::system_clock::now());
  CHECK(line.ends_with(R"("finish_reason":"tool_use","tool_calls":{}})"));

  // Counted by name whoever ran them; the provider's own repeated under server_tool_calls.
  ctx.llm.tool_calls = {{"get_weather", 2, ToolKind::function},
                        {"web_search", 1, ToolKind::server},
                        {"get_weather", 1, ToolKind::server},
                        {"t\"ab", 4, ToolKind::function}};
  ctx.llm.stream_usage_added = true;
  ctx.llm.parse_error_count = 3;
  line = access_log_line(ctx, std::chrono::system_clock::now());
  CHECK(line.ends_with(R"("finish_reason":"tool_use",)"
                       R"("tool_calls":{"get_weather":3,"web_search":1,"t\"ab":4},)"
                       R"("server_tool_calls":{"web_search":1,"get_weather":1},)"
                       R"("stream_usage_added":true,"parse_errors":3})"));
  CHECK(nlohmann::json::parse(line)["tool_calls"]["get_weather"] == 3);

  ctx.llm.metered = false;
  CHECK(access_log_line(ctx, std::chrono::system_clock::now()).find("finish_reason") ==
        std::string::npos);
}
