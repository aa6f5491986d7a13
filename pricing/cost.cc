#include "pricing/cost.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tokentap::pricing {
namespace {

constexpr double kMaxUsdPerMillionTokens = 1'000'000.0;

// Sums token-class charges in pico-USD and remembers whether anything overflowed.
class PicoSum {
 public:
  void add(uint64_t tokens, int64_t pico_per_token) {
    uint64_t charge = 0;
    overflow_ |= __builtin_mul_overflow(
        tokens, static_cast<uint64_t>(std::max<int64_t>(pico_per_token, 0)), &charge);
    overflow_ |= __builtin_add_overflow(total_, charge, &total_);
  }
  bool overflow() const { return overflow_; }
  uint64_t total() const { return total_; }

 private:
  uint64_t total_ = 0;
  bool overflow_ = false;
};

}  // namespace

const char* model_kind_name(ModelKind kind) {
  return kind == ModelKind::embedding ? "embedding" : "chat";
}

const TokenPrices& ModelPrice::prices_for(uint64_t input_tokens) const {
  const TokenPrices* selected = &base;
  for (const PriceTier& tier : tiers) {
    if (input_tokens > tier.above_input_tokens) selected = &tier.prices;
  }
  return *selected;
}

BillableUsage billable_usage(const TokenUsage& usage) {
  return BillableUsage{.input = usage.input,
                       .output = usage.output,
                       .cache_read = usage.cache_read,
                       .cache_write = usage.cache_write,
                       .cache_write_1h = usage.cache_write_1h,
                       .reasoning = usage.reasoning};
}

int64_t cost_nano_usd(const BillableUsage& usage, const ModelPrice& price) {
  const TokenPrices& p = price.prices_for(usage.input);

  // Clamp the subsets so that an inconsistent report never bills a token twice.
  const uint64_t cache_read = std::min(usage.cache_read, usage.input);
  const uint64_t cache_write = std::min(usage.cache_write, usage.input - cache_read);
  const uint64_t cache_write_1h = std::min(usage.cache_write_1h, cache_write);
  const uint64_t uncached = usage.input - cache_read - cache_write;
  const uint64_t reasoning = std::min(usage.reasoning, usage.output);

  PicoSum pico;
  pico.add(uncached, p.input);
  pico.add(cache_read, p.cache_read);
  pico.add(cache_write - cache_write_1h, p.cache_write);
  pico.add(cache_write_1h, p.cache_write_1h);
  pico.add(usage.output - reasoning, p.output);
  pico.add(reasoning, p.reasoning);

  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (pico.overflow()) return static_cast<int64_t>(kMax);
  constexpr auto kPerNano = static_cast<uint64_t>(kPicoPerNano);
  const uint64_t nano = pico.total() / kPerNano + (pico.total() % kPerNano >= kPerNano / 2 ? 1 : 0);
  return static_cast<int64_t>(std::min(nano, kMax));
}

int64_t pico_per_token_from_usd_per_mtok(double usd_per_million_tokens) {
  if (!std::isfinite(usd_per_million_tokens) || usd_per_million_tokens < 0 ||
      usd_per_million_tokens > kMaxUsdPerMillionTokens) {
    return -1;
  }
  return std::llround(usd_per_million_tokens * 1e6);
}

}  // namespace tokentap::pricing
