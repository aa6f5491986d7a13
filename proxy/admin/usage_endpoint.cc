#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

#include "proxy/admin/endpoints.h"

namespace tokentap {

namespace {

using Json = nlohmann::ordered_json;

std::string iso_minute(int64_t minute) {
  const std::time_t t = static_cast<std::time_t>(minute * 60);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:00Z", &tm);
  return buf;
}

// Seconds to 0.1 ms, printed short.
double round_seconds(double v) { return std::round(v * 1e4) / 1e4; }

double usd(int64_t nano_usd) { return static_cast<double>(nano_usd) / 1e9; }

Json tokens_json(const UsageTotals& totals) {
  Json tokens = Json::object();
  for (size_t i = 0; i < totals.tokens.size(); ++i) {
    tokens[UsageTotals::kTokenTypes[i]] = totals.tokens[i];
  }
  return tokens;
}

Json percentiles_json(const SparseLatencyHistogram& h) {
  if (h.count() == 0) return Json(nullptr);
  return Json{{"count", h.count()},
              {"p50", round_seconds(h.quantile(0.50))},
              {"p95", round_seconds(h.quantile(0.95))}};
}

void describe(const UsageTotals& totals, Json& out) {
  out["requests"] = totals.requests;
  out["tokens"] = tokens_json(totals);
  out["cost_usd"] = usd(totals.nano_usd);
  out["unpriced_requests"] = totals.unpriced;
  std::vector<std::pair<std::string, uint64_t>> errors = totals.errors;
  std::sort(errors.begin(), errors.end());
  Json by_type = Json::object();
  for (const auto& [type, count] : errors) by_type[type] = count;
  out["errors"] = totals.error_count();
  out["errors_by_type"] = std::move(by_type);
  out["latency_seconds"] = percentiles_json(totals.latency);
  out["ttft_seconds"] = percentiles_json(totals.ttft);
}

Json or_null(const std::string& filter) { return filter.empty() ? Json(nullptr) : Json(filter); }

}  // namespace

Json usage_report_json(const UsageReport& report) {
  Json out;
  out["window"] = {{"from", iso_minute(report.first_minute)},
                   {"to", iso_minute(report.last_minute + 1)},
                   {"hours", report.hours},
                   {"agent", or_null(report.agent)},
                   {"model", or_null(report.model)}};
  describe(report.totals, out["totals"]);
  Json rows = Json::array();
  for (const UsageReport::Series& series : report.series) {
    Json row = {{"agent", series.agent}, {"provider", series.provider}, {"model", series.model}};
    describe(series.totals, row);
    if (report.per_minute) {
      Json minutes = Json::array();
      for (const auto& [minute, totals] : series.minutes) {
        minutes.push_back({{"minute", iso_minute(minute)},
                           {"requests", totals.requests},
                           {"tokens", tokens_json(totals)},
                           {"cost_usd", usd(totals.nano_usd)},
                           {"errors", totals.error_count()}});
      }
      row["minutes"] = std::move(minutes);
    }
    rows.push_back(std::move(row));
  }
  out["usage"] = std::move(rows);
  return out;
}

void register_usage_endpoint(AdminServer& admin, const UsageStore& usage,
                             const RuntimeSlot& runtime) {
  admin.add_handler("/v1/usage", [&usage, &runtime](const AdminRequest& request) {
    UsageStore::Query q;
    auto param = [&](const char* name) -> const std::string* {
      auto it = request.params.find(name);
      return it == request.params.end() ? nullptr : &it->second;
    };
    if (const std::string* agent = param("agent")) q.agent = *agent;
    if (const std::string* model = param("model")) q.model = *model;
    if (const std::string* hours = param("hours")) {
      char* end = nullptr;
      const long h = std::strtol(hours->c_str(), &end, 10);
      if (hours->empty() || *end != '\0' || h < 1 || h > 24) {
        return json_response({{"error",
                               {{"type", "invalid_request"},
                                {"message", "hours must be a whole number from 1 to 24"}}}},
                             400);
      }
      q.hours = static_cast<int>(h);
    }
    if (const std::string* minutes = param("minutes")) {
      q.per_minute = *minutes == "true" || *minutes == "1";
    }
    Json body = usage_report_json(usage.query(q));
    body["pricing_version"] = runtime.get()->prices->version();
    return json_response(body);
  });
}

}  // namespace tokentap
