// Model prices and the cost of one request, in integer nano-USD.
//
// Prices are held in pico-USD per token: a price of 1 USD per million tokens is 1'000'000
// pico-USD per token, so every published price down to $0.000001 per million tokens is exact.
// cost_nano_usd() is a pure function of the token counts and the price: it sums pico-USD over
// the token classes and rounds once, half up, to nano-USD.
//
// Token semantics are those of parsers/llm_facts.h: `input` counts every billed input token,
// including cache reads and writes; `output` counts every output token, including reasoning;
// cache_read, cache_write, input_audio, reasoning, output_audio and output_image are subsets
// of those totals.
//
// price_request() prices under the terms the provider reported: the service tier (a price
// line of its own: priority, flex, batch, ...), the long-context tier the prompt size selects
// within that line, and a regional uplift (Anthropic US-only inference, OpenAI data
// residency). A tier or region the table has no price for leaves the request unpriced with a
// reason; it is never billed at the standard price.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/llm_facts.h"

namespace tokentap::pricing {

inline constexpr int64_t kPicoPerNano = 1000;
inline constexpr int64_t kNanoPerUsd = 1'000'000'000;

// Per-token prices in pico-USD.
struct TokenPrices {
  int64_t input = 0;           // uncached input
  int64_t output = 0;          // output other than reasoning
  int64_t cache_read = 0;      // input served from a prompt cache
  int64_t cache_write = 0;     // input written to a cache with the default TTL (Anthropic: 5m)
  int64_t cache_write_1h = 0;  // input written to Anthropic's 1-hour cache
  int64_t reasoning = 0;       // reasoning/thinking output; equals `output` unless priced apart
  int64_t input_audio = 0;     // uncached audio input; equals `input` unless priced apart
  int64_t output_audio = 0;    // audio output; equals `output` unless priced apart
  int64_t output_image = 0;    // image output (Gemini image models); equals `output` unless apart

  bool operator==(const TokenPrices&) const = default;
};

// Prices that replace the base prices for a request whose prompt (all input tokens, cached or
// not) is strictly greater than `above_input_tokens`. Every token of that request, output
// included, is billed at the tier's prices, as Anthropic, OpenAI and Google bill long contexts.
struct PriceTier {
  uint64_t above_input_tokens = 0;
  TokenPrices prices;

  bool operator==(const PriceTier&) const = default;
};

enum class ModelKind : uint8_t { chat, embedding };
const char* model_kind_name(ModelKind kind);  // "chat", "embedding"

// The prices of a non-standard service tier ("priority", "flex", "batch", ...), resolved when
// the price file was read: its own long-context tiers, one per threshold of the standard line.
struct ServiceTierPrice {
  std::string name;  // normalized as by normalize_service_tier()
  TokenPrices base;
  std::vector<PriceTier> tiers;

  bool operator==(const ServiceTierPrice&) const = default;
};

// A regional uplift: every charge times multiplier_ppm / 1'000'000 (1.1x is 1'100'000).
struct RegionPrice {
  std::string name;  // lower case: "us", "eu", ...
  int64_t multiplier_ppm = 1'000'000;

  bool operator==(const RegionPrice&) const = default;
};

struct ModelPrice {
  std::string name;      // canonical name in the table, lower case
  std::string provider;  // as the price file says: "openai", "anthropic", "gemini", ...
  ModelKind kind = ModelKind::chat;
  TokenPrices base;              // the standard service tier
  std::vector<PriceTier> tiers;  // its long-context tiers: ascending, distinct thresholds
  std::vector<ServiceTierPrice> service_tiers;
  std::vector<RegionPrice> regions;

  // The standard prices that apply to a request with `input_tokens` prompt tokens.
  const TokenPrices& prices_for(uint64_t input_tokens) const;
  const ServiceTierPrice* service_tier(std::string_view normalized_name) const;
  const RegionPrice* region(std::string_view normalized_name) const;
};

// The token counts of one request. Subsets larger than their totals are clamped to them.
struct BillableUsage {
  uint64_t input = 0;           // all input tokens, including cache reads and writes
  uint64_t output = 0;          // all output tokens, including reasoning
  uint64_t cache_read = 0;      // subset of input
  uint64_t cache_write = 0;     // subset of input, every TTL
  uint64_t cache_write_1h = 0;  // subset of cache_write written with the 1-hour TTL
  uint64_t reasoning = 0;       // subset of output
  uint64_t input_audio = 0;     // subset of input; billed as audio when not cached
  uint64_t output_audio = 0;    // subset of output
  uint64_t output_image = 0;    // subset of output
};

// The billable counts of a parsed usage report.
BillableUsage billable_usage(const TokenUsage& usage);

// The terms a request was served under, as the provider reported them (TokenUsage's
// service_tier and inference_geo), or as the caller knows them (an OpenAI data-residency
// host, see data_residency_region()). Empty: the standard tier, the default region.
struct PricingTerms {
  std::string_view service_tier;
  std::string_view region;
};
PricingTerms pricing_terms(const TokenUsage& usage);  // views into `usage`

// A service tier name as priced: lower case, "SERVICE_TIER_" dropped; "" for every spelling
// of the standard tier ("default", "standard", "auto", "on_demand", "unspecified"); Vertex
// "on_demand_priority" / "on_demand_flex" become "priority" / "flex", LiteLLM's "batches"
// "batch". Anything else ("scale", "provisioned_throughput", ...) is kept as is.
std::string normalize_service_tier(std::string_view reported);
// A region name as priced: lower case; "" for the default ("global", "not_available").
std::string normalize_region(std::string_view reported);
// The data-residency region of an OpenAI API host ("eu" for eu.api.openai.com), or "".
std::string data_residency_region(std::string_view host);

enum class UnpricedReason : uint8_t { none, unknown_model, unknown_service_tier, unknown_region };
const char* unpriced_reason_name(UnpricedReason r);  // "none", "unknown_model", ...

struct CostResult {
  int64_t nano_usd = 0;  // 0 unless priced
  // What cache reads saved against the uncached input price, net of what cache writes cost
  // above it, at the prices applied; negative when the writes cost more than the reads saved.
  int64_t cache_savings_nano_usd = 0;
  // Its two parts, each rounded on its own and never negative, for the two counters
  // llm_cache_savings_usd_total and llm_cache_write_premium_usd_total (a counter cannot go
  // down, so a net that may be negative cannot be one): what the reads saved against the
  // uncached input price, and what the writes cost above it.
  int64_t cache_read_savings_nano_usd = 0;
  int64_t cache_write_premium_nano_usd = 0;
  UnpricedReason unpriced = UnpricedReason::none;
  // Which price line and adjustments were applied: the model's name in the table, then, after
  // ':' and joined by '+', in this order: the service tier ("priority"), the long-context tier
  // ("long_context_200k"), the region ("region_us"). "gpt-5:priority+long_context_272k";
  // just "gpt-4o" for standard terms. Also set for an unknown tier or region ("gpt-5:scale"),
  // empty for an unknown model. The model name (at most 256 bytes) plus at most 140 bytes.
  std::string pricing_rule;

  bool priced() const { return unpriced == UnpricedReason::none; }
};

// The cost of one request under `terms`: uncached input (input - cache_read - cache_write,
// audio apart), cache reads, cache writes by TTL, output by kind (text, reasoning, audio,
// image), each times its price in the service tier's line, in the long-context tier selected
// by `usage.input`; then the regional multiplier. Rounded once, half up, to nano-USD;
// saturates at INT64_MAX. `price` nullptr: unpriced, unknown_model.
CostResult price_request(const BillableUsage& usage, const ModelPrice* price,
                         const PricingTerms& terms = {});

// price_request() under standard terms, the amount only.
int64_t cost_nano_usd(const BillableUsage& usage, const ModelPrice& price);

// Converts a price in USD per million tokens to pico-USD per token, rounding to the nearest.
// Returns -1 for a negative, non-finite or absurd (> 1'000'000 USD per million tokens) price.
int64_t pico_per_token_from_usd_per_mtok(double usd_per_million_tokens);

}  // namespace tokentap::pricing
