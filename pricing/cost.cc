#include "pricing/cost.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tokentap::pricing {
namespace {

constexpr double kMaxUsdPerMillionTokens = 1'000'000.0;
constexpr int64_t kPpm = 1'000'000;
__extension__ typedef __int128 Int128;  // GCC/Clang; -Wpedantic knows no 128-bit type

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Charges in pico-USD, signed and wide enough for any product of a 64-bit count and price.
class PicoSum {
 public:
  void add(uint64_t tokens, int64_t pico_per_token) {
    total_ += static_cast<Int128>(tokens) * std::max<int64_t>(pico_per_token, 0);
  }
  Int128 total() const { return total_; }

 private:
  Int128 total_ = 0;
};

// pico * multiplier_ppm / 1e6, then to nano-USD, rounded half away from zero; saturating.
int64_t to_nano(Int128 pico, int64_t multiplier_ppm) {
  constexpr Int128 kMax = std::numeric_limits<int64_t>::max();
  const bool negative = pico < 0;
  Int128 magnitude = negative ? -pico : pico;
  // Beyond this the product could overflow; such a cost saturates anyway.
  if (magnitude > kMax * kPpm) return negative ? -static_cast<int64_t>(kMax) : kMax;
  const Int128 divisor = static_cast<Int128>(kPpm) * kPicoPerNano;
  Int128 scaled = magnitude * multiplier_ppm;
  Int128 nano = scaled / divisor + (scaled % divisor >= divisor / 2 ? 1 : 0);
  nano = std::min(nano, kMax);
  return static_cast<int64_t>(negative ? -nano : nano);
}

// The price line of a service tier: its base prices and long-context tiers.
struct Line {
  const TokenPrices* base;
  const std::vector<PriceTier>* tiers;
};

std::string threshold_name(uint64_t above) {
  if (above % 1'000'000 == 0) return std::to_string(above / 1'000'000) + "m";
  if (above % 1000 == 0) return std::to_string(above / 1000) + "k";
  return std::to_string(above);
}

void append_part(std::string& rule, bool& first, std::string_view part) {
  rule.append(first ? ":" : "+");
  rule.append(part);
  first = false;
}

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

const ServiceTierPrice* ModelPrice::service_tier(std::string_view normalized_name) const {
  for (const ServiceTierPrice& t : service_tiers) {
    if (t.name == normalized_name) return &t;
  }
  return nullptr;
}

const RegionPrice* ModelPrice::region(std::string_view normalized_name) const {
  for (const RegionPrice& r : regions) {
    if (r.name == normalized_name) return &r;
  }
  return nullptr;
}

BillableUsage billable_usage(const TokenUsage& usage) {
  return BillableUsage{.input = usage.input,
                       .output = usage.output,
                       .cache_read = usage.cache_read,
                       .cache_write = usage.cache_write,
                       .cache_write_1h = usage.cache_write_1h,
                       .reasoning = usage.reasoning,
                       .input_audio = usage.input_audio,
                       .output_audio = usage.output_audio,
                       .output_image = usage.output_image};
}

PricingTerms pricing_terms(const TokenUsage& usage) {
  return PricingTerms{.service_tier = usage.service_tier, .region = usage.inference_geo};
}

std::string normalize_service_tier(std::string_view reported) {
  std::string tier = lowercase(reported);
  if (tier.starts_with("service_tier_")) tier.erase(0, 13);
  if (tier.empty() || tier == "default" || tier == "standard" || tier == "auto" ||
      tier == "on_demand" || tier == "unspecified" || tier == "traffic_type_unspecified") {
    return {};
  }
  if (tier == "on_demand_priority") return "priority";
  if (tier == "on_demand_flex") return "flex";
  if (tier == "batches") return "batch";
  return tier;
}

std::string normalize_region(std::string_view reported) {
  std::string region = lowercase(reported);
  if (region == "global" || region == "not_available") return {};
  return region;
}

std::string data_residency_region(std::string_view host) {
  constexpr std::string_view kSuffix = ".api.openai.com";
  if (const size_t colon = host.find(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  std::string lower = lowercase(host);
  if (lower.size() <= kSuffix.size() || !lower.ends_with(kSuffix)) return {};
  std::string region = lower.substr(0, lower.size() - kSuffix.size());
  const bool simple = region.size() <= 16 && std::all_of(region.begin(), region.end(), [](char c) {
                        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
                      });
  return simple ? region : std::string();
}

const char* unpriced_reason_name(UnpricedReason r) {
  switch (r) {
    case UnpricedReason::none:
      return "none";
    case UnpricedReason::unknown_model:
      return "unknown_model";
    case UnpricedReason::unknown_service_tier:
      return "unknown_service_tier";
    case UnpricedReason::unknown_region:
      return "unknown_region";
  }
  return "none";
}

CostResult price_request(const BillableUsage& usage, const ModelPrice* price,
                         const PricingTerms& terms) {
  CostResult result;
  if (price == nullptr) {
    result.unpriced = UnpricedReason::unknown_model;
    return result;
  }
  result.pricing_rule = price->name;
  bool first_part = true;

  Line line{&price->base, &price->tiers};
  const std::string tier_name = normalize_service_tier(terms.service_tier);
  if (!tier_name.empty()) {
    append_part(result.pricing_rule, first_part, tier_name.substr(0, 48));
    const ServiceTierPrice* tier = price->service_tier(tier_name);
    if (tier == nullptr) result.unpriced = UnpricedReason::unknown_service_tier;
    if (tier != nullptr) line = Line{&tier->base, &tier->tiers};
  }
  const PriceTier* long_context = nullptr;
  for (const PriceTier& tier : *line.tiers) {
    if (usage.input > tier.above_input_tokens) long_context = &tier;
  }
  const TokenPrices* p = long_context != nullptr ? &long_context->prices : line.base;
  if (long_context != nullptr) {
    append_part(result.pricing_rule, first_part,
                "long_context_" + threshold_name(long_context->above_input_tokens));
  }
  int64_t multiplier_ppm = kPpm;
  const std::string region_name = normalize_region(terms.region);
  if (!region_name.empty()) {
    append_part(result.pricing_rule, first_part, "region_" + region_name.substr(0, 48));
    if (const RegionPrice* region = price->region(region_name)) {
      multiplier_ppm = region->multiplier_ppm;
    } else if (result.unpriced == UnpricedReason::none) {
      result.unpriced = UnpricedReason::unknown_region;
    }
  }
  if (!result.priced()) return result;

  // Clamp the subsets so that an inconsistent report never bills a token twice.
  const uint64_t cache_read = std::min(usage.cache_read, usage.input);
  const uint64_t cache_write = std::min(usage.cache_write, usage.input - cache_read);
  const uint64_t cache_write_1h = std::min(usage.cache_write_1h, cache_write);
  const uint64_t uncached = usage.input - cache_read - cache_write;
  const uint64_t input_audio = std::min(usage.input_audio, uncached);
  uint64_t output_left = usage.output;
  auto take = [&output_left](uint64_t part) {
    const uint64_t taken = std::min(part, output_left);
    output_left -= taken;
    return taken;
  };
  const uint64_t reasoning = take(usage.reasoning);
  const uint64_t output_audio = take(usage.output_audio);
  const uint64_t output_image = take(usage.output_image);

  PicoSum pico;
  pico.add(uncached - input_audio, p->input);
  pico.add(input_audio, p->input_audio);
  pico.add(cache_read, p->cache_read);
  pico.add(cache_write - cache_write_1h, p->cache_write);
  pico.add(cache_write_1h, p->cache_write_1h);
  pico.add(output_left, p->output);
  pico.add(reasoning, p->reasoning);
  pico.add(output_audio, p->output_audio);
  pico.add(output_image, p->output_image);
  result.nano_usd = to_nano(pico.total(), multiplier_ppm);

  const Int128 read_savings = static_cast<Int128>(cache_read) * (p->input - p->cache_read);
  const Int128 write_premium =
      static_cast<Int128>(cache_write - cache_write_1h) * (p->cache_write - p->input) +
      static_cast<Int128>(cache_write_1h) * (p->cache_write_1h - p->input);
  result.cache_savings_nano_usd = to_nano(read_savings - write_premium, multiplier_ppm);
  result.cache_read_savings_nano_usd = std::max<int64_t>(to_nano(read_savings, multiplier_ppm), 0);
  result.cache_write_premium_nano_usd =
      std::max<int64_t>(to_nano(write_premium, multiplier_ppm), 0);
  return result;
}

int64_t cost_nano_usd(const BillableUsage& usage, const ModelPrice& price) {
  return price_request(usage, &price).nano_usd;
}

int64_t pico_per_token_from_usd_per_mtok(double usd_per_million_tokens) {
  if (!std::isfinite(usd_per_million_tokens) || usd_per_million_tokens < 0 ||
      usd_per_million_tokens > kMaxUsdPerMillionTokens) {
    return -1;
  }
  return std::llround(usd_per_million_tokens * 1e6);
}

}  // namespace tokentap::pricing
