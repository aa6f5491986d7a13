#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <future>
#include <string>

#include "proxy/admin/endpoints.h"
#include "proxy/telemetry/usage_store.h"

using namespace tokentap;

namespace {

UsageSample sample(std::string_view agent, std::string_view model, double seconds,
                   int64_t nano_usd = 0) {
  UsageSample s;
  s.agent = agent;
  s.provider = "openai";
  s.model = model;
  s.input = 100;
  s.output = 10;
  s.cache_read = 40;
  s.nano_usd = nano_usd;
  s.duration_seconds = seconds;
  return s;
}

const nlohmann::ordered_json* row(const nlohmann::ordered_json& out, const std::string& agent,
                                  const std::string& model) {
  for (const auto& r : out["usage"]) {
    if (r["agent"] == agent && r["model"] == model) return &r;
  }
  return nullptr;
}

// The store's report as /v1/usage shows it.
nlohmann::ordered_json query(const UsageStore& store, const UsageStore::Query& q) {
  return usage_report_json(store.query(q));
}

UsageStore::Query q(int hours, std::string agent = "", std::string model = "",
                    bool per_minute = false) {
  UsageStore::Query query;
  query.hours = hours;
  query.agent = std::move(agent);
  query.model = std::move(model);
  query.per_minute = per_minute;
  return query;
}

}  // namespace

TEST_CASE("latency percentiles are within a bucket of the truth", "[usage]") {
  SparseLatencyHistogram h;
  for (int i = 1; i <= 1000; ++i) h.add(i / 1000.0);  // 1 ms .. 1 s, uniform
  CHECK(h.count() == 1000);
  CHECK(h.quantile(0.5) == Approx(0.5).epsilon(0.1));
  CHECK(h.quantile(0.95) == Approx(0.95).epsilon(0.1));
  SparseLatencyHistogram merged;
  merged.merge(h);
  merged.merge(h);
  CHECK(merged.count() == 2000);
  CHECK(merged.quantile(0.5) == h.quantile(0.5));
  SparseLatencyHistogram tiny;
  tiny.add(0);
  tiny.add(1e6);  // beyond the last bucket: clamped, never out of range
  CHECK(tiny.quantile(0.5) == 0.001);
  CHECK(tiny.quantile(1.0) > 3600);
  CHECK(SparseLatencyHistogram().quantile(0.5) == 0);
}

TEST_CASE("usage sums per agent and model over the asked hours", "[usage]") {
  int64_t now = 29'000'000;
  UsageStore store([&] { return now; });
  store.record(sample("planner", "gpt-4o", 0.2, 1'500'000));
  UsageSample failed = sample("planner", "gpt-4o", 2.0);
  failed.error_type = "rate_limited";
  failed.input = failed.output = failed.cache_read = 0;
  store.record(failed);
  UsageSample streamed = sample("coder", "claude-sonnet-4-5", 1.0, 2'000'000);
  streamed.provider = "anthropic";
  streamed.ttft_seconds = 0.3;
  streamed.cache_write = 7;
  streamed.reasoning = 3;
  store.record(streamed);
  now += 90;  // an hour and a half later
  store.record(sample("planner", "gpt-4o", 0.4, 500'000));

  auto last_hour = query(store, q(1));
  CHECK(last_hour["totals"]["requests"] == 1);
  CHECK(last_hour["totals"]["cost_usd"] == 0.0005);
  auto two = query(store, q(2));
  CHECK(two["totals"]["requests"] == 4);
  CHECK(two["totals"]["cost_usd"] == Approx(0.004));
  CHECK(two["window"]["hours"] == 2);
  CHECK(two["usage"].size() == 2);
  const auto* planner = row(two, "planner", "gpt-4o");
  REQUIRE(planner != nullptr);
  CHECK((*planner)["provider"] == "openai");
  CHECK((*planner)["requests"] == 3);
  CHECK((*planner)["tokens"]["input"] == 200);
  CHECK((*planner)["tokens"]["output"] == 20);
  CHECK((*planner)["tokens"]["cache_read"] == 80);
  CHECK((*planner)["cost_usd"] == Approx(0.002));
  CHECK((*planner)["errors"] == 1);
  CHECK((*planner)["errors_by_type"]["rate_limited"] == 1);
  CHECK((*planner)["latency_seconds"]["count"] == 3);
  CHECK((*planner)["latency_seconds"]["p50"].get<double>() == Approx(0.4).epsilon(0.1));
  CHECK((*planner)["latency_seconds"]["p95"].get<double>() == Approx(2.0).epsilon(0.1));
  CHECK((*planner)["ttft_seconds"].is_null());
  const auto* coder = row(two, "coder", "claude-sonnet-4-5");
  REQUIRE(coder != nullptr);
  CHECK((*coder)["tokens"]["cache_write"] == 7);
  CHECK((*coder)["tokens"]["reasoning"] == 3);
  CHECK((*coder)["ttft_seconds"]["p50"].get<double>() == Approx(0.3).epsilon(0.1));

  auto only_coder = query(store, q(24, "coder"));
  CHECK(only_coder["usage"].size() == 1);
  CHECK(only_coder["totals"]["requests"] == 1);
  auto only_model = query(store, q(24, "", "gpt-4o", true));
  CHECK(only_model["totals"]["requests"] == 3);
  const auto& minutes = only_model["usage"][0]["minutes"];
  REQUIRE(minutes.size() == 2);
  CHECK(minutes[0]["requests"] == 2);
  CHECK(minutes[0]["errors"] == 1);
  CHECK(minutes[1]["requests"] == 1);
  CHECK(minutes[1]["minute"].get<std::string>().size() == 20);  // 2026-11-22T08:41:00Z
}

TEST_CASE("usage older than 24 hours is gone and hours are clamped", "[usage]") {
  int64_t now = 40'000'000;
  UsageStore store([&] { return now; });
  store.record(sample("a", "m", 0.1));
  now += 24 * 60 - 1;
  CHECK(query(store, q(24))["totals"]["requests"] == 1);
  now += 1;
  CHECK(query(store, q(24))["totals"]["requests"] == 0);
  store.record(sample("a", "m", 0.1));  // reuses the slot of the minute that left
  CHECK(query(store, q(99))["totals"]["requests"] == 1);
  CHECK(query(store, q(99))["window"]["hours"] == 24);
}

TEST_CASE("a minute holds a bounded number of series", "[usage]") {
  int64_t now = 50'000'000;
  UsageStore store([&] { return now; });
  for (size_t i = 0; i < UsageStore::kMaxSeriesPerMinute + 50; ++i) {
    store.record(sample("agent", "model-" + std::to_string(i), 0.1));
  }
  auto out = query(store, q(1));
  CHECK(out["totals"]["requests"] == UsageStore::kMaxSeriesPerMinute + 50);
  CHECK(out["usage"].size() == UsageStore::kMaxSeriesPerMinute + 1);
  const auto* other = row(out, "other", "other");
  REQUIRE(other != nullptr);
  CHECK((*other)["requests"] == 50);
}

TEST_CASE("a query reads a snapshot: record() is not blocked by it and does not change it",
          "[usage]") {
  int64_t now = 29'000'000;
  UsageStore store([&] { return now; });
  const std::string agents[] = {"planner", "coder", "critic"};
  for (int64_t minute = now - UsageStore::kMinutes + 1; minute <= now; ++minute) {
    for (const std::string& agent : agents) {
      int64_t saved = now;
      now = minute;
      store.record(sample(agent, "gpt-4o", 0.5, 1'000));
      now = saved;
    }
  }
  const UsageStore::Query day = q(24, "", "", true);
  const std::string before = query(store, day).dump();

  UsageStore::Snapshot snapshot = store.snapshot(day);
  // The lock is not held while the snapshot exists: a writer finishes (it would wait forever
  // on a held mutex). It writes into the minute the snapshot holds, the same cell included.
  auto writer = std::async(std::launch::async, [&store] {
    for (int i = 0; i < 100; ++i) store.record(sample("planner", "gpt-4o", 1.0, 5'000));
    store.record(sample("newcomer", "gpt-4o", 1.0));
  });
  REQUIRE(writer.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  writer.get();

  // The snapshot still answers as of when it was taken; a new query sees the writes.
  CHECK(usage_report_json(UsageStore::summarize(snapshot)).dump() == before);
  auto after = query(store, day);
  CHECK(after["totals"]["requests"] == 3 * UsageStore::kMinutes + 101);
  CHECK(row(after, "newcomer", "gpt-4o") != nullptr);

  // A minute slot reused 24 hours later does not reach into the snapshot either.
  now += UsageStore::kMinutes;
  store.record(sample("tomorrow", "gpt-4o", 1.0));
  CHECK(usage_report_json(UsageStore::summarize(snapshot)).dump() == before);
  auto tomorrow = query(store, q(24));
  CHECK(tomorrow["totals"]["requests"] == 1);
}
