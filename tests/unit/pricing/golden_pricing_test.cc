// Prices the golden recordings that carry a "pricing" section (tests/golden/*/pricing_*) with
// the built-in table, from the facts the parser extracts: one recording per service tier,
// region, data-residency host and long-context case (at and just above each threshold), so
// that what a provider reports on the wire reaches the bill. Nano-USD checked by hand against
// pricing/prices.json in the sidecars.
#include <catch2/catch.hpp>
#include <string>

#include "pricing/cost.h"
#include "pricing/price_table.h"
#include "tests/unit/parsers/golden_support.h"

namespace tokentap::test {
namespace {

size_t check_pricing(const std::string& dir) {
  size_t checked = 0;
  for (const Recording& rec : load_recordings(dir)) {
    if (rec.expected_pricing.is_null()) continue;
    INFO(rec.name);
    const ReplayResult r = replay(rec, ContentEncoding::identity, rec.response_body, {});
    REQUIRE(r.facts == rec.expected_facts);
    const LlmFacts& f = r.raw_facts;
    const pricing::PriceTable& table = pricing::PriceTable::builtin();
    const pricing::ModelPrice* price = table.find(f.response_model);
    if (price == nullptr) price = table.find(f.requested_model);

    pricing::PricingTerms terms = pricing::pricing_terms(f.usage);
    const std::string residency =
        pricing::data_residency_region(rec.expected_pricing.value("host", std::string()));
    if (terms.region.empty()) terms.region = residency;
    const pricing::CostResult cost =
        pricing::price_request(pricing::billable_usage(f.usage), price, terms);

    CHECK(cost.pricing_rule == rec.expected_pricing.at("pricing_rule").get<std::string>());
    const std::string reason = rec.expected_pricing.value("unpriced_reason", std::string("none"));
    CHECK(pricing::unpriced_reason_name(cost.unpriced) == reason);
    if (reason == "none")
      CHECK(cost.nano_usd == rec.expected_pricing.at("nano_usd").get<int64_t>());
    ++checked;
  }
  return checked;
}

TEST_CASE("golden recordings of service tiers, regions and long context are priced exactly",
          "[golden][cost][terms]") {
  CHECK(check_pricing("openai") >= 7);     // priority, flex, scale, eu, 272K +-, cache writes
  CHECK(check_pricing("anthropic") >= 4);  // inference_geo us and global, 200K +-
  CHECK(check_pricing("gemini") >= 3);     // 200K +-, Vertex flex traffic type
}

}  // namespace
}  // namespace tokentap::test
