// Model prices and the cost of one request, in integer nano-USD.
//
// Prices are held in pico-USD per token: a price of 1 USD per million tokens is 1'000'000
// pico-USD per token, so every published price down to $0.000001 per million tokens is exact.
// cost_nano_usd() is a pure function of the token counts and the price: it sums pico-USD over
// the token classes and rounds once, half up, to nano-USD.
//
// Token semantics are those of parsers/llm_facts.h: `input` counts every billed input token,
// including cache reads and writes; `output` counts every output token, including reasoning;
// cache_read, cache_write and reasoning are subsets of those totals.
#pragma once

#include <cstdint>
#include <string>
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

struct ModelPrice {
  std::string name;      // canonical name in the table, lower case
  std::string provider;  // as the price file says: "openai", "anthropic", "gemini", ...
  ModelKind kind = ModelKind::chat;
  TokenPrices base;
  std::vector<PriceTier> tiers;  // ascending, distinct thresholds

  // The prices that apply to a request with `input_tokens` prompt tokens.
  const TokenPrices& prices_for(uint64_t input_tokens) const;
};

// The token counts of one request. Subsets larger than their totals are clamped to them.
struct BillableUsage {
  uint64_t input = 0;           // all input tokens, including cache reads and writes
  uint64_t output = 0;          // all output tokens, including reasoning
  uint64_t cache_read = 0;      // subset of input
  uint64_t cache_write = 0;     // subset of input, every TTL
  uint64_t cache_write_1h = 0;  // subset of cache_write written with the 1-hour TTL
  uint64_t reasoning = 0;       // subset of output
};

// The billable counts of a parsed usage report.
BillableUsage billable_usage(const TokenUsage& usage);

// The cost of one request: uncached input (input - cache_read - cache_write), cache reads,
// cache writes by TTL, output other than reasoning and reasoning, each times its price in the
// tier selected by `usage.input`. Saturates at INT64_MAX instead of overflowing.
int64_t cost_nano_usd(const BillableUsage& usage, const ModelPrice& price);

// Converts a price in USD per million tokens to pico-USD per token, rounding to the nearest.
// Returns -1 for a negative, non-finite or absurd (> 1'000'000 USD per million tokens) price.
int64_t pico_per_token_from_usd_per_mtok(double usd_per_million_tokens);

}  // namespace tokentap::pricing
