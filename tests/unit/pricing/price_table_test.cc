// The built-in table and model-name matching.
#include "pricing/price_table.h"

#include <catch2/catch.hpp>
#include <string>

namespace tokentap::pricing {
namespace {

const PriceTable& table() { return PriceTable::builtin(); }

std::string resolved(std::string_view model) {
  const ModelPrice* price = table().find(model);
  return price == nullptr ? "<unpriced>" : price->name;
}

TEST_CASE("the built-in table parses and is dated", "[price_table][builtin]") {
  CHECK(table().version() == "2026-12-04");
  CHECK(table().model_count() >= 70);
}

TEST_CASE("every built-in model and alias resolves to a usable price", "[price_table][builtin]") {
  for (const std::string& name : table().model_names()) {
    INFO("model " << name);
    const ModelPrice* price = table().find(name);
    REQUIRE(price != nullptr);
    CHECK(price->name == name);
    CHECK_FALSE(price->provider.empty());
    CHECK(price->base.input > 0);
    CHECK(price->base.cache_read > 0);
    CHECK(price->base.cache_write > 0);
    CHECK(price->base.cache_write_1h > 0);
    if (price->kind == ModelKind::chat) {
      CHECK(price->base.output > 0);
      CHECK(price->base.reasoning > 0);
      // Cached input is never dearer than fresh input.
      CHECK(price->base.cache_read <= price->base.input);
    } else {
      CHECK(price->base.output == 0);
    }
    uint64_t previous = 0;
    for (const PriceTier& tier : price->tiers) {
      CHECK(tier.above_input_tokens > previous);
      previous = tier.above_input_tokens;
      // Long-context prices are never below the base prices.
      CHECK(tier.prices.input >= price->base.input);
      CHECK(tier.prices.output >= price->base.output);
      CHECK(tier.prices.cache_read >= price->base.cache_read);
    }
  }
  for (const std::string& alias : table().alias_names()) {
    INFO("alias " << alias);
    const ModelPrice* price = table().find(alias);
    REQUIRE(price != nullptr);
    CHECK(price->name != alias);
  }
}

TEST_CASE("the built-in table covers each provider's current models", "[price_table][builtin]") {
  for (const char* model : {"gpt-6-astra",
                            "gpt-6.2-sol",
                            "gpt-6-luna",
                            "gpt-5.6-terra",
                            "gpt-5.5",
                            "gpt-5",
                            "gpt-4.1",
                            "gpt-4o",
                            "o3",
                            "o4-mini",
                            "text-embedding-3-small",
                            "claude-fable-5-1",
                            "claude-opus-5-5",
                            "claude-sonnet-5-5",
                            "claude-haiku-5-5",
                            "claude-sonnet-4-5",
                            "claude-haiku-4-5",
                            "gemini-3.8-flash",
                            "gemini-3.5-flash",
                            "gemini-3.1-pro-preview",
                            "gemini-2.5-pro",
                            "gemini-2.5-flash",
                            "gemini-embedding-001"}) {
    INFO(model);
    CHECK(table().find(model) != nullptr);
  }
  const ModelPrice* sonnet = table().find("claude-sonnet-4-5");
  REQUIRE(sonnet != nullptr);
  CHECK(sonnet->provider == "anthropic");
  // $3.75 for 5-minute writes, $6 for 1-hour writes, $0.30 for reads.
  CHECK(sonnet->base.cache_write == 3'750'000);
  CHECK(sonnet->base.cache_write_1h == 6'000'000);
  CHECK(sonnet->base.cache_read == 300'000);
  REQUIRE(sonnet->tiers.size() == 1);
  CHECK(sonnet->tiers[0].above_input_tokens == 200'000);
  CHECK(sonnet->tiers[0].prices.input == 6'000'000);
  CHECK(sonnet->tiers[0].prices.output == 22'500'000);
  CHECK(table().find("text-embedding-3-large")->kind == ModelKind::embedding);
}

TEST_CASE("dated snapshots resolve to their family", "[price_table][matching]") {
  CHECK(resolved("gpt-4o-2024-08-06") == "gpt-4o");
  CHECK(resolved("gpt-4o-mini-2024-07-18") == "gpt-4o-mini");
  CHECK(resolved("gpt-6.1-sol-2026-09-29") == "gpt-6.1-sol");
  CHECK(resolved("o3-2025-04-16") == "o3");
  CHECK(resolved("claude-sonnet-4-20250514") == "claude-sonnet-4");
  CHECK(resolved("claude-opus-4-20250514") == "claude-opus-4");
  CHECK(resolved("claude-4-sonnet-20250514") == "claude-sonnet-4");
  CHECK(resolved("claude-sonnet-4-5-20250929") == "claude-sonnet-4-5");
  CHECK(resolved("claude-haiku-4-5-20251001") == "claude-haiku-4-5");
  CHECK(resolved("claude-3-5-sonnet@20240620") == "claude-3-5-sonnet");
  CHECK(resolved("claude-opus-4-5@20251101") == "claude-opus-4-5");
  CHECK(resolved("claude-3-5-sonnet-v2@20241022") == "claude-3-5-sonnet");
  CHECK(resolved("gemini-2.0-flash-001") == "gemini-2.0-flash");
  CHECK(resolved("gemini-2.5-flash-lite-001") == "gemini-2.5-flash-lite");
}

TEST_CASE("a snapshot with its own price is not priced as its family", "[price_table][matching]") {
  const ModelPrice* launch = table().find("gpt-4o-2024-05-13");
  REQUIRE(launch != nullptr);
  CHECK(launch->name == "gpt-4o-2024-05-13");
  CHECK(launch->base.input == 5'000'000);
  CHECK(table().find("gpt-4o-2024-08-06")->base.input == 2'500'000);
}

TEST_CASE("aliases resolve to their model", "[price_table][matching]") {
  CHECK(resolved("gpt-5.6") == "gpt-5.6-sol");
  CHECK(resolved("claude-opus-4-0") == "claude-opus-4");
  CHECK(resolved("claude-3-5-haiku-latest") == "claude-3-5-haiku");
  CHECK(resolved("gpt-5-chat-latest") == "gpt-5");
  CHECK(resolved("gemini-3.1-flash-lite-preview") == "gemini-3.1-flash-lite");
}

TEST_CASE("routing prefixes and case do not matter", "[price_table][matching]") {
  CHECK(resolved("models/gemini-2.5-pro") == "gemini-2.5-pro");
  CHECK(resolved("openai/gpt-4o") == "gpt-4o");
  CHECK(resolved("anthropic/claude-haiku-4-5") == "claude-haiku-4-5");
  CHECK(resolved("gemini/gemini-2.5-flash") == "gemini-2.5-flash");
  CHECK(resolved("publishers/google/models/gemini-2.0-flash-001") == "gemini-2.0-flash");
  CHECK(resolved("publishers/anthropic/models/claude-sonnet-4-5@20250929") == "claude-sonnet-4-5");
  CHECK(resolved("GPT-4O") == "gpt-4o");
  CHECK(resolved("  Claude-Sonnet-4-5 \n") == "claude-sonnet-4-5");
  CHECK(resolved("openai/GPT-4o-2024-11-20") == "gpt-4o");
}

TEST_CASE("unknown models are flagged as unpriced", "[price_table][matching]") {
  for (const char* model :
       {"", "   ", "gpt-7", "my-company-llm", "models/", "gpt-4o-2024-08-06-extra",
        "ft:gpt-4o-mini-2024-07-18:acme::abc123", "gemini-2.5-flash-preview-09-2025",
        "claude-sonnet", "text-embedding", "gpt-4o@", "@20240620", "gpt-4o-2024-8-6"}) {
    INFO("model '" << model << "'");
    CHECK(table().find(model) == nullptr);
  }
}

TEST_CASE("Azure deployments map to models through config", "[price_table][azure]") {
  const DeploymentMap deployments = {{"prod-4o", "gpt-4o-2024-11-20"},
                                     {"Cheap", "gpt-4o-mini"},
                                     {"experimental", "some-unreleased-model"}};
  CHECK(table().find_deployment("prod-4o", deployments)->name == "gpt-4o");
  CHECK(table().find_deployment("CHEAP", deployments)->name == "gpt-4o-mini");
  // Not in the map: many deployments are simply named after their model.
  CHECK(table().find_deployment("gpt-4.1-mini", deployments)->name == "gpt-4.1-mini");
  // Mapped to a model without a price, or neither mapped nor a model: unpriced.
  CHECK(table().find_deployment("experimental", deployments) == nullptr);
  CHECK(table().find_deployment("team-a-chat", deployments) == nullptr);
  CHECK(table().find_deployment("prod-4o", {}) == nullptr);
}

TEST_CASE("an empty table prices nothing", "[price_table]") {
  PriceTable empty;
  CHECK(empty.find("gpt-4o") == nullptr);
  CHECK(empty.model_count() == 0);
  CHECK(empty.version().empty());
}

}  // namespace
}  // namespace tokentap::pricing
