// Tool timing through the metering observer, driven stage by stage as a worker drives it
// (request head, buffered body, response head and body, on_complete with ctx.end set, then the
// completion sinks), with the request clocks set by the test: a response asking for tool calls
// is remembered when it ends, a later request of the same agent carrying the results is
// matched when its body arrives, and llm_tool_duration_seconds, llm_tool_results_total and
// the access log's tool_results see the time in between.
#include <prometheus/registry.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/core/runtime.h"
#include "proxy/metering/llm_metrics.h"
#include "proxy/metering/metering_observer.h"
#include "proxy/telemetry/access_log.h"

namespace tokentap {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr const char* kConfig = R"(
routes:
  - prefix: /v1/messages
    upstream: http://127.0.0.1:9
    provider: anthropic
  - prefix: /v1beta/
    upstream: http://127.0.0.1:9
    provider: gemini
  - prefix: /v1/
    upstream: http://127.0.0.1:9
    provider: openai
)";

class Rig {
 public:
  Rig()
      : runtime_(make_runtime(load_config_string(kConfig, "tool-timing-test"), 1)),
        metering_(registry_, runtime_->config->metrics, 1),
        sink_(metering_.llm_metrics()) {}

  // One request of `agent` to `path` that arrived at `start_ms` and ended at `end_ms` (on a
  // steady clock the test controls), answered `status` with `response`. Returns its context
  // after the sinks ran, and its access log line in `log_line`.
  RequestContext exchange(const std::string& agent, const std::string& path, const json& request,
                          int status, const json& response, int64_t start_ms, int64_t end_ms) {
    RequestContext ctx;
    ctx.agent = agent;
    ctx.method = "POST";
    ctx.path = path;
    ctx.request_is_json = true;
    ctx.start = Clock::time_point(milliseconds(start_ms));
    for (const Route& r : runtime_->config->routes) {
      if (path.rfind(r.prefix, 0) == 0) {
        ctx.route = &r;
        break;
      }
    }
    REQUIRE(ctx.route != nullptr);
    const HeaderList json_type{{"content-type", "application/json"}};
    std::unique_ptr<RequestObserver> observer = metering_.make_observer(0, runtime_);
    observer->on_request_headers(ctx, json_type);
    const std::string body = request.dump();
    ctx.request_body_bytes = body.size();
    observer->on_request_body(ctx, body);
    CHECK_FALSE(observer->replace_request_body(ctx, body).has_value());
    ctx.upstream_status = ctx.status = status;
    observer->on_response_headers(ctx, status, json_type);
    const std::string answer = response.dump();
    observer->on_response_body(ctx, answer);
    ctx.response_body_bytes = answer.size();
    ctx.end = Clock::time_point(milliseconds(end_ms));
    observer->on_complete(ctx);
    sink_.on_request_end(ctx);
    log_line = json::parse(access_log_line(ctx, std::chrono::system_clock::now()));
    return ctx;
  }

  // llm_tool_duration_seconds{agent, tool}: (count, sum), or nullopt when never observed.
  std::optional<std::pair<uint64_t, double>> duration(const std::string& agent,
                                                      const std::string& tool) {
    const prometheus::ClientMetric* m = find("llm_tool_duration_seconds", agent, tool, "");
    if (m == nullptr) return std::nullopt;
    return std::pair{m->histogram.sample_count, m->histogram.sample_sum};
  }

  // llm_tool_results_total{agent, tool, status}; 0 when never counted.
  double results(const std::string& agent, const std::string& tool, const std::string& status) {
    const prometheus::ClientMetric* m = find("llm_tool_results_total", agent, tool, status);
    return m == nullptr ? 0 : m->counter.value;
  }

  json log_line;

 private:
  const prometheus::ClientMetric* find(const std::string& family, const std::string& agent,
                                       const std::string& tool, const std::string& status) {
    collected_ = registry_.Collect();
    for (const prometheus::MetricFamily& f : collected_) {
      if (f.name != family) continue;
      for (const prometheus::ClientMetric& m : f.metric) {
        std::string a, t, s;
        for (const prometheus::ClientMetric::Label& l : m.label) {
          if (l.name == "agent") a = l.value;
          if (l.name == "tool") t = l.value;
          if (l.name == "status") s = l.value;
        }
        if (a == agent && t == tool && s == status) return &m;
      }
    }
    return nullptr;
  }

  prometheus::Registry registry_;
  std::shared_ptr<const Runtime> runtime_;
  Metering metering_;
  LlmMetricsSink sink_;
  std::vector<prometheus::MetricFamily> collected_;
};

json openai_call(const std::string& id, const std::string& name, const std::string& args) {
  return {{"id", id}, {"type", "function"}, {"function", {{"name", name}, {"arguments", args}}}};
}

// A chat completion that asks the client to run `calls`.
json openai_tool_response(const json& calls) {
  return {{"id", "chatcmpl-t"},
          {"object", "chat.completion"},
          {"model", "gpt-4o-mini"},
          {"choices",
           {{{"index", 0},
             {"finish_reason", "tool_calls"},
             {"message", {{"role", "assistant"}, {"content", nullptr}, {"tool_calls", calls}}}}}},
          {"usage", {{"prompt_tokens", 20}, {"completion_tokens", 10}, {"total_tokens", 30}}}};
}

json openai_text_response() {
  return {{"id", "chatcmpl-u"},
          {"object", "chat.completion"},
          {"model", "gpt-4o-mini"},
          {"choices",
           {{{"index", 0},
             {"finish_reason", "stop"},
             {"message", {{"role", "assistant"}, {"content", "done"}}}}}},
          {"usage", {{"prompt_tokens", 40}, {"completion_tokens", 2}, {"total_tokens", 42}}}};
}

// A chat request whose newest turn carries one `role: tool` message per (id, content).
json openai_results(const std::vector<std::pair<std::string, std::string>>& results) {
  json messages = json::array(
      {{{"role", "user"}, {"content", "weather?"}}, {{"role", "assistant"}, {"content", nullptr}}});
  for (const auto& [id, content] : results) {
    messages.push_back({{"role", "tool"}, {"tool_call_id", id}, {"content", content}});
  }
  return {{"model", "gpt-4o-mini"}, {"messages", messages}};
}

// llm_tool_duration_seconds{agent, tool} observed `count` times, summing to `sum` seconds.
void check_duration(Rig& rig, const std::string& agent, const std::string& tool, uint64_t count,
                    double sum) {
  INFO(agent << " " << tool);
  const auto observed = rig.duration(agent, tool);
  REQUIRE(observed.has_value());
  CHECK(observed->first == count);
  CHECK(observed->second == Approx(sum).margin(1e-9));
}

const json kAsk = {{"model", "gpt-4o-mini"},
                   {"messages", {{{"role", "user"}, {"content", "weather?"}}}}};

TEST_CASE("tool results are matched to the calls the agent's previous response asked for",
          "[metering][tools]") {
  Rig rig;
  // The response ends at t = 11 s; the agent sends the results at t = 13.5 s and 14.25 s.
  const RequestContext asked = rig.exchange(
      "a1", "/v1/chat/completions", kAsk, 200,
      openai_tool_response({openai_call("call_w", "get_weather", R"({"city":"Oslo"})"),
                            openai_call("call_s", "search", R"({"q":"rain"})"),
                            openai_call("call_late", "get_weather", R"({"city":"Rome"})")}),
      10'000, 11'000);
  REQUIRE(asked.llm.tool_call_refs.size() == 3);
  CHECK(asked.llm.tool_results.empty());
  CHECK_FALSE(rig.log_line.contains("tool_results"));

  const RequestContext answered =
      rig.exchange("a1", "/v1/chat/completions",
                   openai_results({{"call_w", "sunny"},
                                   {"call_s", R"({"error": "search backend down"})"},
                                   {"call_nobody_asked", "42"}}),
                   200, openai_text_response(), 13'500, 14'000);
  const std::vector<ToolResultOutcome>& r = answered.llm.tool_results;
  REQUIRE(r.size() == 3);
  CHECK(r[0].tool == "get_weather");
  CHECK_FALSE(r[0].is_error);
  CHECK(r[0].seconds == Approx(2.5));
  CHECK(r[1].tool == "search");
  CHECK(r[1].is_error);
  CHECK(r[1].seconds == Approx(2.5));
  CHECK(r[2].tool == "unknown");  // no pending call had that id, and chat does not name it
  CHECK_FALSE(r[2].is_error);
  CHECK(r[2].seconds < 0);

  CHECK(rig.log_line.at("tool_results") ==
        json::parse(R"([{"tool":"get_weather","status":"success","duration_ms":2500},
                        {"tool":"search","status":"error","duration_ms":2500},
                        {"tool":"unknown","status":"success"}])"));
  check_duration(rig, "a1", "get_weather", 1, 2.5);
  check_duration(rig, "a1", "search", 1, 2.5);
  CHECK_FALSE(rig.duration("a1", "unknown").has_value());
  CHECK(rig.results("a1", "get_weather", "success") == 1);
  CHECK(rig.results("a1", "search", "error") == 1);
  CHECK(rig.results("a1", "search", "success") == 0);
  CHECK(rig.results("a1", "unknown", "success") == 1);

  // A result is matched once: sent again, it is unknown. The third call is still pending.
  rig.exchange("a1", "/v1/chat/completions",
               openai_results({{"call_w", "sunny"}, {"call_late", "warm"}}), 200,
               openai_text_response(), 14'250, 15'000);
  CHECK(rig.log_line.at("tool_results") == json::parse(R"([{"tool":"unknown","status":"success"},
                        {"tool":"get_weather","status":"success","duration_ms":3250}])"));
  check_duration(rig, "a1", "get_weather", 2, 5.75);
  CHECK(rig.results("a1", "unknown", "success") == 2);
}

TEST_CASE("another agent's results do not match; a non-2xx response asks for nothing",
          "[metering][tools]") {
  Rig rig;
  const RequestContext asked = rig.exchange(
      "owner", "/v1/chat/completions", kAsk, 200,
      openai_tool_response(json::array({openai_call("call_1", "lookup", "{}")})), 0, 1'000);
  REQUIRE(asked.llm.tool_call_refs.size() == 1);
  CHECK(asked.llm.tool_call_refs[0].call_id == "call_1");

  const RequestContext other =
      rig.exchange("intruder", "/v1/chat/completions", openai_results({{"call_1", "x"}}), 200,
                   openai_text_response(), 2'000, 3'000);
  REQUIRE(other.llm.tool_results.size() == 1);
  CHECK(other.llm.tool_results[0].tool == "unknown");
  CHECK(other.llm.tool_results[0].seconds < 0);
  CHECK(rig.results("intruder", "unknown", "success") == 1);
  CHECK_FALSE(rig.duration("intruder", "lookup").has_value());

  // Still pending for its own agent.
  const RequestContext own =
      rig.exchange("owner", "/v1/chat/completions", openai_results({{"call_1", "x"}}), 200,
                   openai_text_response(), 4'000, 5'000);
  REQUIRE(own.llm.tool_results.size() == 1);
  CHECK(own.llm.tool_results[0].tool == "lookup");
  check_duration(rig, "owner", "lookup", 1, 3.0);

  // The same body under a 500: the parser reads the calls, but the client got no answer to
  // run, so nothing is remembered and the result that follows is unknown.
  const RequestContext failed = rig.exchange(
      "owner", "/v1/chat/completions", kAsk, 500,
      openai_tool_response(json::array({openai_call("call_2", "lookup", "{}")})), 6'000, 7'000);
  REQUIRE(failed.llm.tool_call_refs.size() == 1);
  const RequestContext after =
      rig.exchange("owner", "/v1/chat/completions", openai_results({{"call_2", "x"}}), 200,
                   openai_text_response(), 8'000, 9'000);
  REQUIRE(after.llm.tool_results.size() == 1);
  CHECK(after.llm.tool_results[0].tool == "unknown");
  check_duration(rig, "owner", "lookup", 1, 3.0);
  CHECK(rig.results("owner", "unknown", "success") == 1);
}

TEST_CASE("Anthropic is_error and Gemini calls without ids are timed per provider",
          "[metering][tools]") {
  Rig rig;
  const json tool_use = {
      {"id", "msg_1"},
      {"type", "message"},
      {"role", "assistant"},
      {"model", "claude-sonnet-4-20250514"},
      {"stop_reason", "tool_use"},
      {"content",
       {{{"type", "tool_use"}, {"id", "toolu_a"}, {"name", "read_file"}, {"input", {{"p", "x"}}}},
        {{"type", "tool_use"}, {"id", "toolu_b"}, {"name", "run"}, {"input", json::object()}}}},
      {"usage", {{"input_tokens", 10}, {"output_tokens", 5}}}};
  const json ask = {{"model", "claude-sonnet-4-20250514"},
                    {"max_tokens", 100},
                    {"messages", {{{"role", "user"}, {"content", "go"}}}}};
  rig.exchange("claude", "/v1/messages", ask, 200, tool_use, 0, 500);
  json results = ask;
  results["messages"].push_back({{"role", "assistant"}, {"content", tool_use["content"]}});
  results["messages"].push_back(
      {{"role", "user"},
       {"content",
        {{{"type", "tool_result"}, {"tool_use_id", "toolu_a"}, {"content", "data"}},
         {{"type", "tool_result"}, {"tool_use_id", "toolu_b"}, {"is_error", true}}}}});
  const json done = {{"id", "msg_2"},
                     {"type", "message"},
                     {"role", "assistant"},
                     {"model", "claude-sonnet-4-20250514"},
                     {"stop_reason", "end_turn"},
                     {"content", {{{"type", "text"}, {"text", "ok"}}}},
                     {"usage", {{"input_tokens", 30}, {"output_tokens", 1}}}};
  rig.exchange("claude", "/v1/messages", results, 200, done, 1'700, 2'000);
  CHECK(rig.log_line.at("tool_results") ==
        json::parse(R"([{"tool":"read_file","status":"success","duration_ms":1200},
                        {"tool":"run","status":"error","duration_ms":1200}])"));
  check_duration(rig, "claude", "read_file", 1, 1.2);
  CHECK(rig.results("claude", "run", "error") == 1);

  // Gemini: a functionCall without an id is matched by the functionResponse's name.
  const std::string gemini_path = "/v1beta/models/gemini-2.5-flash:generateContent";
  const json call = {
      {"candidates",
       {{{"content",
          {{"role", "model"},
           {"parts", {{{"functionCall", {{"name", "find"}, {"args", {{"q", "a"}}}}}}}}}},
         {"finishReason", "STOP"}}}},
      {"usageMetadata", {{"promptTokenCount", 8}, {"candidatesTokenCount", 3}}}};
  const json user = {{"role", "user"}, {"parts", {{{"text", "find a"}}}}};
  rig.exchange("gem", gemini_path, {{"contents", {user}}}, 200, call, 0, 100);
  const json reply = {
      {"contents",
       {user,
        call["candidates"][0]["content"],
        {{"role", "user"},
         {"parts",
          {{{"functionResponse", {{"name", "find"}, {"response", {{"error", "not found"}}}}}}}}}}}};
  const json text = {{"candidates",
                      {{{"content", {{"role", "model"}, {"parts", {{{"text", "none"}}}}}},
                        {"finishReason", "STOP"}}}},
                     {"usageMetadata", {{"promptTokenCount", 20}, {"candidatesTokenCount", 1}}}};
  rig.exchange("gem", gemini_path, reply, 200, text, 400, 600);
  CHECK(rig.log_line.at("tool_results") ==
        json::parse(R"([{"tool":"find","status":"error","duration_ms":300}])"));
  check_duration(rig, "gem", "find", 1, 0.3);
}

}  // namespace
}  // namespace tokentap
