// Pricing under the terms a provider reported: service tiers, long-context tiers within them,
// regional uplifts, cache writes by TTL, audio and image tokens, cache savings and the
// pricing_rule string, against hand-computed nano-USD. Also how price files declare them.
//
// $1 per million tokens is 1'000 nano-USD per token.
#include <catch2/catch.hpp>
#include <string>

#include "pricing/cost.h"
#include "pricing/price_file.h"
#include "pricing/price_table.h"

namespace tokentap::pricing {
namespace {

constexpr std::string_view kFile = R"({
  "pricing_version": "test",
  "models": {
    "gpt-x": {
      "provider": "openai",
      "input": 1.25, "output": 10, "cache_read": 0.125, "cache_write": 1.5625,
      "input_audio": 40, "output_audio": 80, "output_image": 30,
      "tiers": [{"above_input_tokens": 272000, "input": 2.5, "output": 15, "cache_read": 0.25}],
      "service_tiers": {
        "priority": {"input": 2.5, "output": 20, "cache_read": 0.25},
        "flex": {"multiplier": 0.5},
        "batch": {"input": 0.625, "output": 5,
                  "tiers": [{"above_input_tokens": 272000, "input": 1.5, "output": 8}]}
      },
      "regions": {"eu": {"multiplier": 1.1}}
    },
    "claude-x": {
      "provider": "anthropic",
      "input": 5, "output": 25, "cache_read": 0.5, "cache_write": 6.25, "cache_write_1h": 10,
      "service_tiers": {"batch": {"multiplier": 0.5}},
      "regions": {"us": {"multiplier": 1.1}}
    }
  }
})";

const PriceTable& table() {
  static const PriceTable t = PriceTable::from_file("terms.json", kFile);
  return t;
}

const ModelPrice* model(std::string_view name) {
  const ModelPrice* p = table().find(name);
  REQUIRE(p != nullptr);
  return p;
}

CostResult price(std::string_view name, const BillableUsage& usage, std::string_view tier = {},
                 std::string_view region = {}) {
  return price_request(usage, model(name), PricingTerms{tier, region});
}

// 1000 input tokens of which 200 cached, 100 output tokens.
constexpr BillableUsage kSmall{.input = 1000, .output = 100, .cache_read = 200};

TEST_CASE("the standard tier under each of its spellings", "[cost][terms]") {
  for (std::string_view tier : {"", "default", "standard", "auto", "ON_DEMAND", "on_demand"}) {
    INFO(tier);
    const CostResult r = price("gpt-x", kSmall, tier);
    CHECK(r.priced());
    CHECK(r.nano_usd == 800 * 1250 + 200 * 125 + 100 * 10'000);
    CHECK(r.pricing_rule == "gpt-x");
  }
}

TEST_CASE("a service tier bills at its own prices, not the standard ones", "[cost][terms]") {
  const CostResult priority = price("gpt-x", kSmall, "priority");
  CHECK(priority.priced());
  CHECK(priority.nano_usd == 800 * 2500 + 200 * 250 + 100 * 20'000);
  CHECK(priority.pricing_rule == "gpt-x:priority");

  const CostResult flex = price("gpt-x", kSmall, "flex");  // multiplier 0.5
  CHECK(flex.nano_usd == (800 * 1250 + 200 * 125 + 100 * 10'000) / 2);
  CHECK(flex.pricing_rule == "gpt-x:flex");

  // Gemini and Vertex spellings.
  CHECK(price("gpt-x", kSmall, "SERVICE_TIER_PRIORITY").nano_usd == priority.nano_usd);
  CHECK(price("gpt-x", kSmall, "ON_DEMAND_FLEX").nano_usd == flex.nano_usd);

  // Batch with explicit prices: the unlisted cache read follows the input ratio (0.5).
  const CostResult batch = price("gpt-x", kSmall, "batch");
  CHECK(batch.nano_usd == 800 * 625 + 200 * 62.5 + 100 * 5000);
  CHECK(price("gpt-x", kSmall, "batches").pricing_rule == "gpt-x:batch");
}

TEST_CASE("a tier or region without a price leaves the request unpriced", "[cost][terms]") {
  const CostResult scale = price("gpt-x", kSmall, "scale");
  CHECK(scale.unpriced == UnpricedReason::unknown_service_tier);
  CHECK(scale.nano_usd == 0);
  CHECK(scale.pricing_rule == "gpt-x:scale");
  CHECK(std::string(unpriced_reason_name(scale.unpriced)) == "unknown_service_tier");

  const CostResult eu = price("claude-x", kSmall, {}, "eu");
  CHECK(eu.unpriced == UnpricedReason::unknown_region);
  CHECK(eu.nano_usd == 0);
  CHECK(eu.pricing_rule == "claude-x:region_eu");

  CHECK(price("claude-x", kSmall, "priority").unpriced == UnpricedReason::unknown_service_tier);
  CHECK(price("gpt-x", kSmall, "provisioned_throughput").unpriced ==
        UnpricedReason::unknown_service_tier);

  const CostResult unknown = price_request(kSmall, nullptr, {});
  CHECK(unknown.unpriced == UnpricedReason::unknown_model);
  CHECK(unknown.pricing_rule.empty());
  CHECK(std::string(unpriced_reason_name(unknown.unpriced)) == "unknown_model");
}

TEST_CASE("the long-context tier reprices the whole request, in every service tier",
          "[cost][terms]") {
  const BillableUsage at{.input = 272'000, .output = 1000};
  const BillableUsage above{.input = 272'001, .output = 1000};
  CHECK(price("gpt-x", at).nano_usd == 272'000LL * 1250 + 1000 * 10'000);
  CHECK(price("gpt-x", at).pricing_rule == "gpt-x");
  CHECK(price("gpt-x", above).nano_usd == 272'001LL * 2500 + 1000 * 15'000);
  CHECK(price("gpt-x", above).pricing_rule == "gpt-x:long_context_272k");

  // Priority lists no long-context tier: the standard one is mapped in the ratio of priority
  // to standard prices (input 2x, output 2x): 5 and 30 USD per million tokens.
  const CostResult priority = price("gpt-x", above, "priority");
  CHECK(priority.nano_usd == 272'001LL * 5000 + 1000 * 30'000);
  CHECK(priority.pricing_rule == "gpt-x:priority+long_context_272k");
  CHECK(price("gpt-x", at, "priority").nano_usd == 272'000LL * 2500 + 1000 * 20'000);

  // Batch lists its own.
  CHECK(price("gpt-x", above, "batch").nano_usd == 272'001LL * 1500 + 1000 * 8000);
  // Flex halves the long-context prices.
  CHECK(price("gpt-x", above, "flex").nano_usd == (272'001LL * 2500 + 1000 * 15'000) / 2);

  // Region on top, in the rule's fixed order.
  const CostResult all = price("gpt-x", above, "priority", "EU");
  CHECK(all.pricing_rule == "gpt-x:priority+long_context_272k+region_eu");
  CHECK(all.nano_usd == (272'001LL * 5000 + 1000 * 30'000) * 11 / 10);
}

TEST_CASE("a regional uplift multiplies the whole bill, rounded once", "[cost][terms]") {
  const BillableUsage usage{.input = 1001, .output = 7};
  const int64_t standard = 1001 * 5000 + 7 * 25'000;  // 5'180'000
  for (std::string_view geo : {"", "global", "not_available"}) {
    INFO(geo);
    CHECK(price("claude-x", usage, "standard", geo).nano_usd == standard);
    CHECK(price("claude-x", usage, "standard", geo).pricing_rule == "claude-x");
  }
  const CostResult us = price("claude-x", usage, "standard", "us");
  CHECK(us.nano_usd == 5'698'000);
  CHECK(us.pricing_rule == "claude-x:region_us");
  CHECK(price("claude-x", usage, "batch", "us").nano_usd == 2'849'000);
  CHECK(price("claude-x", usage, "batch", "us").pricing_rule == "claude-x:batch+region_us");
}

TEST_CASE("cache writes are billed by TTL and cache savings are net of them", "[cost][terms]") {
  // 10'000 input: 1'000 uncached, 6'000 read, 3'000 written (2'000 of them for 1 hour).
  const BillableUsage usage{.input = 10'000,
                            .output = 0,
                            .cache_read = 6000,
                            .cache_write = 3000,
                            .cache_write_1h = 2000};
  const CostResult r = price("claude-x", usage);
  CHECK(r.nano_usd == 1000 * 5000 + 6000 * 500 + 1000 * 6250 + 2000 * 10'000);
  CHECK(r.cache_savings_nano_usd ==
        6000 * (5000 - 500) - 1000 * (6250 - 5000) - 2000 * (10'000 - 5000));
  // The two parts behind the net, one counter each.
  CHECK(r.cache_read_savings_nano_usd == 6000 * (5000 - 500));
  CHECK(r.cache_write_premium_nano_usd == 1000 * (6250 - 5000) + 2000 * (10'000 - 5000));
  // Writes without reads cost more than they save.
  const BillableUsage writes{.input = 1000, .output = 0, .cache_write = 1000};
  const CostResult w = price("claude-x", writes);
  CHECK(w.cache_savings_nano_usd == -1000 * 1250);
  CHECK(w.cache_read_savings_nano_usd == 0);
  CHECK(w.cache_write_premium_nano_usd == 1000 * 1250);
  // US-only inference: savings scale with the bill.
  CHECK(price("claude-x", usage, {}, "us").cache_savings_nano_usd ==
        r.cache_savings_nano_usd * 11 / 10);

  // OpenAI cache_write_tokens at 1.25x input.
  const BillableUsage openai{.input = 1000, .output = 0, .cache_read = 100, .cache_write = 400};
  const CostResult o = price("gpt-x", openai);
  CHECK(o.nano_usd == 500 * 1250 + 100 * 125 + 400 * 1562 + 200);  // 400 * 1562.5
  CHECK(o.cache_savings_nano_usd == 100 * (1250 - 125) - 400 * 1562 + 400 * 1250 - 200);
}

TEST_CASE("audio and image tokens are billed at their own prices", "[cost][terms]") {
  const BillableUsage usage{.input = 1000,
                            .output = 500,
                            .cache_read = 100,
                            .reasoning = 50,
                            .input_audio = 300,
                            .output_audio = 150,
                            .output_image = 200};
  CHECK(price("gpt-x", usage).nano_usd == 600 * 1250 + 300 * 40'000 + 100 * 125 + 100 * 10'000 +
                                              50 * 10'000 + 150 * 80'000 + 200 * 30'000);
  // Audio counted beyond the uncached input is clamped, never billed twice.
  const BillableUsage clamped{
      .input = 100, .output = 10, .cache_read = 60, .input_audio = 90, .output_audio = 40};
  CHECK(price("gpt-x", clamped).nano_usd == 40 * 40'000 + 60 * 125 + 10 * 80'000);
  // A model that does not price audio apart bills it as text.
  CHECK(price("claude-x", BillableUsage{.input = 100, .output = 10, .input_audio = 100}).nano_usd ==
        100 * 5000 + 10 * 25'000);
}

TEST_CASE("the parsers' terms and counts reach the price", "[cost][terms]") {
  const TokenUsage u{.present = true,
                     .input = 1000,
                     .output = 100,
                     .cache_read = 200,
                     .input_audio = 5,
                     .output_audio = 6,
                     .output_image = 7,
                     .service_tier = std::string("priority"),
                     .inference_geo = std::string("us-only").substr(0, 2)};
  const BillableUsage b = billable_usage(u);
  CHECK(b.input_audio == 5);
  CHECK(b.output_audio == 6);
  CHECK(b.output_image == 7);
  const PricingTerms t = pricing_terms(u);
  CHECK(t.service_tier == "priority");
  CHECK(t.region == "us");
}

TEST_CASE("service tier, region and data-residency names", "[cost][terms]") {
  CHECK(normalize_service_tier("DEFAULT").empty());
  CHECK(normalize_service_tier("SERVICE_TIER_STANDARD").empty());
  CHECK(normalize_service_tier("traffic_type_unspecified").empty());
  CHECK(normalize_service_tier("Priority") == "priority");
  CHECK(normalize_service_tier("PROVISIONED_THROUGHPUT") == "provisioned_throughput");
  CHECK(normalize_region("GLOBAL").empty());
  CHECK(normalize_region("US") == "us");
  CHECK(data_residency_region("eu.api.openai.com") == "eu");
  CHECK(data_residency_region("US.API.OPENAI.COM:443") == "us");
  CHECK(data_residency_region("api.openai.com").empty());
  CHECK(data_residency_region("evil.example/eu.api.openai.com").empty());
  CHECK(data_residency_region("myres.openai.azure.com").empty());
}

TEST_CASE("built-in service tiers and regions give hand-computed bills", "[cost][terms][builtin]") {
  const PriceTable& builtin = PriceTable::builtin();
  const BillableUsage usage{.input = 10'000, .output = 2000, .cache_read = 4000};
  // gpt-5 priority processing: $2.50 / $0.25 cached / $20.
  CHECK(price_request(usage, builtin.find("gpt-5-2025-08-07"), {"priority", {}}).nano_usd ==
        6000 * 2500 + 4000 * 250 + 2000 * 20'000);
  // Flex and batch: half the standard price.
  CHECK(price_request(usage, builtin.find("gpt-5"), {"flex", {}}).nano_usd ==
        (6000 * 1250 + 4000 * 125 + 2000 * 10'000) / 2);
  CHECK(price_request(usage, builtin.find("gpt-5"), {"scale", {}}).unpriced ==
        UnpricedReason::unknown_service_tier);
  // Claude Opus 4.6 with US-only inference: 1.1x.
  const CostResult us = price_request(usage, builtin.find("claude-opus-4-6"), {"standard", "us"});
  CHECK(us.nano_usd == (6000 * 5000 + 4000 * 500 + 2000 * 25'000) * 11 / 10);
  CHECK(us.pricing_rule == "claude-opus-4-6:region_us");
  // Older Claude models do not offer inference_geo; a US report there is not priced silently.
  CHECK(price_request(usage, builtin.find("claude-sonnet-4-5"), {"standard", "us"}).unpriced ==
        UnpricedReason::unknown_region);
  // Gemini 2.5 Pro on flex above 200K tokens: half the long-context prices ($2.50, $15).
  const BillableUsage long_prompt{.input = 250'000, .output = 1000};
  const CostResult flex =
      price_request(long_prompt, builtin.find("models/gemini-2.5-pro"), {"flex", {}});
  CHECK(flex.nano_usd == (250'000LL * 2500 + 1000 * 15'000) / 2);
  CHECK(flex.pricing_rule == "gemini-2.5-pro:flex+long_context_200k");
  CHECK(PriceTable::builtin().version() == "2026-12-04");
}

constexpr std::string_view kLiteLlm = R"({
  "gpt-5.4": {
    "litellm_provider": "openai", "mode": "responses",
    "input_cost_per_token": 2.5e-06, "output_cost_per_token": 1.5e-05,
    "cache_read_input_token_cost": 2.5e-07,
    "input_cost_per_token_priority": 5e-06, "output_cost_per_token_priority": 3e-05,
    "cache_read_input_token_cost_priority": 5e-07,
    "input_cost_per_token_flex": 1.25e-06, "output_cost_per_token_flex": 7.5e-06,
    "input_cost_per_token_batches": 1.25e-06, "output_cost_per_token_batches": 7.5e-06,
    "input_cost_per_token_above_272k_tokens": 5e-06,
    "output_cost_per_token_above_272k_tokens": 2.25e-05,
    "input_cost_per_token_above_272k_tokens_priority": 1e-05,
    "output_cost_per_token_above_272k_tokens_priority": 4.5e-05
  },
  "gpt-4o-audio-preview": {
    "litellm_provider": "openai", "mode": "chat",
    "input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,
    "input_cost_per_audio_token": 4e-05, "output_cost_per_audio_token": 8e-05
  },
  "gemini-2.5-flash-image": {
    "litellm_provider": "vertex_ai-language-models", "mode": "chat",
    "input_cost_per_token": 3e-07, "output_cost_per_token": 2.5e-06,
    "output_cost_per_image_token": 3e-05,
    "input_cost_per_token_priority": 6e-07
  }
})";

TEST_CASE("LiteLLM service tier, batch, long-context and audio keys are imported",
          "[price_file][terms][litellm]") {
  const PriceTable t = PriceTable::from_file("litellm.json", kLiteLlm);
  const ModelPrice* gpt = t.find("gpt-5.4");
  REQUIRE(gpt != nullptr);
  REQUIRE(gpt->service_tiers.size() == 3);
  const ServiceTierPrice* priority = gpt->service_tier("priority");
  REQUIRE(priority != nullptr);
  CHECK(priority->base.input == 5'000'000);
  CHECK(priority->base.output == 30'000'000);
  CHECK(priority->base.cache_read == 500'000);
  REQUIRE(priority->tiers.size() == 1);
  CHECK(priority->tiers[0].above_input_tokens == 272'000);
  CHECK(priority->tiers[0].prices.input == 10'000'000);
  CHECK(priority->tiers[0].prices.output == 45'000'000);
  // Not listed for priority above 272K: the standard long-context cache read (which is the
  // base one, as LiteLLM lists none above 272K) in the ratio of priority to standard input.
  CHECK(priority->tiers[0].prices.cache_read == 500'000);
  const ServiceTierPrice* flex = gpt->service_tier("flex");
  REQUIRE(flex != nullptr);
  CHECK(flex->base.cache_read == 125'000);  // follows flex input: half the standard
  CHECK(flex->tiers.at(0).prices.input == 2'500'000);
  REQUIRE(gpt->service_tier("batch") != nullptr);
  CHECK(gpt->service_tier("batch")->base.output == 7'500'000);

  const BillableUsage usage{.input = 300'000, .output = 1000};
  const CostResult r = price_request(usage, gpt, {"priority", {}});
  CHECK(r.nano_usd == 300'000LL * 10'000 + 1000 * 45'000);
  CHECK(r.pricing_rule == "gpt-5.4:priority+long_context_272k");

  const ModelPrice* audio = t.find("gpt-4o-audio-preview");
  REQUIRE(audio != nullptr);
  CHECK(audio->base.input_audio == 40'000'000);
  CHECK(audio->base.output_audio == 80'000'000);
  CHECK(audio->service_tiers.empty());

  // A tier priced on the input side only cannot be priced: it is left out, so requests
  // served under it are reported unpriced.
  const ModelPrice* image = t.find("gemini-2.5-flash-image");
  REQUIRE(image != nullptr);
  CHECK(image->base.output_image == 30'000'000);
  CHECK(image->service_tiers.empty());
  CHECK(price_request(usage, image, {"priority", {}}).unpriced ==
        UnpricedReason::unknown_service_tier);
}

}  // namespace
}  // namespace tokentap::pricing
