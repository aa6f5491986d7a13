#include "pricing/price_file.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <map>
#include <optional>
#include <span>

#include "common/text.h"

namespace tokentap::pricing {

using Json = nlohmann::json;

namespace {

constexpr size_t kMaxModelNameBytes = 256;
constexpr size_t kMaxVersionBytes = 64;
constexpr size_t kMaxTermNameBytes = 48;  // a service tier or region name
constexpr std::string_view kUnit = "usd_per_million_tokens";

// Prices as written: a field the file leaves out takes its documented default.
struct PartialPrices {
  std::optional<int64_t> input, output, cache_read, cache_write, cache_write_1h, reasoning,
      input_audio, output_audio, output_image;

  bool any() const {
    return input || output || cache_read || cache_write || cache_write_1h || reasoning ||
           input_audio || output_audio || output_image;
  }
};

using PriceField = std::optional<int64_t> PartialPrices::*;
using ResolvedField = int64_t TokenPrices::*;
// Every price, with the side of the request it bills: input-side prices follow `input` where a
// file leaves them out, output-side prices follow `output`.
struct FieldInfo {
  std::string_view name;
  PriceField partial;
  ResolvedField resolved;
  bool input_side;
};
constexpr std::array<FieldInfo, 9> kFields = {{
    {"input", &PartialPrices::input, &TokenPrices::input, true},
    {"output", &PartialPrices::output, &TokenPrices::output, false},
    {"cache_read", &PartialPrices::cache_read, &TokenPrices::cache_read, true},
    {"cache_write", &PartialPrices::cache_write, &TokenPrices::cache_write, true},
    {"cache_write_1h", &PartialPrices::cache_write_1h, &TokenPrices::cache_write_1h, true},
    {"reasoning", &PartialPrices::reasoning, &TokenPrices::reasoning, false},
    {"input_audio", &PartialPrices::input_audio, &TokenPrices::input_audio, true},
    {"output_audio", &PartialPrices::output_audio, &TokenPrices::output_audio, false},
    {"output_image", &PartialPrices::output_image, &TokenPrices::output_image, false},
}};

// Base prices: cache reads and writes default to the input price and reasoning to the output
// price, so that a file that does not know about a token class never bills it at zero.
TokenPrices resolve_base(const PartialPrices& p) {
  TokenPrices t;
  t.input = p.input.value_or(0);
  t.output = p.output.value_or(0);
  t.cache_read = p.cache_read.value_or(t.input);
  t.cache_write = p.cache_write.value_or(t.input);
  t.cache_write_1h = p.cache_write_1h.value_or(t.cache_write);
  t.reasoning = p.reasoning.value_or(t.output);
  t.input_audio = p.input_audio.value_or(t.input);
  t.output_audio = p.output_audio.value_or(t.output);
  t.output_image = p.output_image.value_or(t.output);
  return t;
}

// A tier overrides the prices it lists and keeps the model's other listed prices; the defaults
// then apply within the tier (an unlisted reasoning price follows the tier's output price).
TokenPrices resolve_tier(const PartialPrices& tier, const PartialPrices& base) {
  PartialPrices merged = base;
  for (const FieldInfo& f : kFields) {
    if (tier.*f.partial) merged.*f.partial = tier.*f.partial;
  }
  return resolve_base(merged);
}

// A non-standard service tier as written: a multiplier of the standard prices, or prices of
// its own (and long-context tiers of its own, by threshold).
struct PartialServiceTier {
  std::optional<int64_t> multiplier_ppm;
  PartialPrices prices;
  std::map<uint64_t, PartialPrices> tiers;
};

// pico * num / den, rounded to the nearest pico-USD.
int64_t scale(int64_t pico, int64_t num, int64_t den) {
  __extension__ typedef __int128 Int128;
  const Int128 product = static_cast<Int128>(pico) * num;
  return static_cast<int64_t>((product + den / 2) / den);
}

// Maps the standard prices `from` into a service tier: a price the tier lists is taken as is;
// another one follows the standard price in the ratio of the tier's input (input side) or
// output (output side) price to the standard one, or the multiplier. Cache reads at flex
// prices are then cheaper by as much as flex input is, as providers price them.
TokenPrices map_into_tier(const TokenPrices& from, const TokenPrices& standard,
                          const PartialServiceTier& svc, const TokenPrices& svc_base,
                          const PartialPrices& listed) {
  TokenPrices out;
  for (const FieldInfo& f : kFields) {
    if (listed.*f.partial) {
      out.*f.resolved = *(listed.*f.partial);
    } else if (svc.multiplier_ppm) {
      out.*f.resolved = scale(from.*f.resolved, *svc.multiplier_ppm, 1'000'000);
    } else {
      const int64_t num = f.input_side ? svc_base.input : svc_base.output;
      const int64_t den = f.input_side ? standard.input : standard.output;
      out.*f.resolved = den > 0 ? scale(from.*f.resolved, num, den) : num;
    }
  }
  return out;
}

ServiceTierPrice resolve_service_tier(std::string name, const PartialServiceTier& svc,
                                      const ModelPrice& model) {
  ServiceTierPrice out;
  out.name = std::move(name);
  // The tier's own base: listed prices, the rest mapped from the standard base.
  TokenPrices own = resolve_base(svc.prices);
  out.base = map_into_tier(model.base, model.base, svc, own, svc.prices);
  std::map<uint64_t, TokenPrices> tiers;
  for (const PriceTier& standard_tier : model.tiers) {
    auto listed = svc.tiers.find(standard_tier.above_input_tokens);
    tiers[standard_tier.above_input_tokens] =
        map_into_tier(standard_tier.prices, model.base, svc, out.base,
                      listed != svc.tiers.end() ? listed->second : PartialPrices{});
  }
  for (const auto& [above, listed] : svc.tiers) {
    if (!tiers.contains(above))
      tiers[above] = map_into_tier(out.base, out.base, {}, out.base, listed);
  }
  for (const auto& [above, prices] : tiers) out.tiers.push_back(PriceTier{above, prices});
  return out;
}

std::string in_quotes(std::string_view s) {
  std::string out = "\"";
  out.append(s);
  out.push_back('"');
  return out;
}

std::string join(std::span<const std::string_view> names) {
  std::string out;
  for (std::string_view n : names) {
    if (!out.empty()) out.append(", ");
    out.append(n);
  }
  return out;
}

void check_keys(const LinedJson& doc, const Json& object, std::span<const std::string_view> allowed,
                std::string_view where) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      doc.fail(value, "unknown key " + in_quotes(key) + " in " + std::string(where) +
                          "; expected one of: " + join(allowed));
    }
  }
}

void check_duplicates(const LinedJson& doc) {
  if (const auto& dup = doc.first_duplicate_key()) {
    throw PricingError(
        located_message(doc.name(), dup->line, "duplicate key " + in_quotes(dup->key)));
  }
}

bool has_control_characters(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

std::string checked_model_name(const LinedJson& doc, const Json& at, std::string_view raw,
                               std::string_view what) {
  std::string key = normalize_model_key(raw);
  if (key.empty() || key.size() > kMaxModelNameBytes || has_control_characters(key)) {
    doc.fail(at, std::string(what) + " must be a non-empty name of at most " +
                     std::to_string(kMaxModelNameBytes) + " bytes without control characters");
  }
  return key;
}

const std::string& expect_string(const LinedJson& doc, const Json& value, std::string_view what) {
  if (!value.is_string()) doc.fail(value, std::string(what) + " must be a string");
  return value.get_ref<const std::string&>();
}

// Own format: USD per million tokens.
int64_t expect_price(const LinedJson& doc, const Json& value, std::string_view field) {
  int64_t pico = value.is_number() ? pico_per_token_from_usd_per_mtok(value.get<double>()) : -1;
  if (pico < 0) {
    doc.fail(value, in_quotes(field) +
                        " must be a price in USD per million tokens: a number from 0 to 1000000");
  }
  return pico;
}

// LiteLLM format: USD per token.
int64_t expect_litellm_price(const LinedJson& doc, const Json& value, std::string_view field) {
  int64_t pico =
      value.is_number() ? pico_per_token_from_usd_per_mtok(value.get<double>() * 1e6) : -1;
  if (pico < 0) {
    doc.fail(value, in_quotes(field) + " must be a price in USD per token: a number from 0 to 1");
  }
  return pico;
}

// The keys of tokentap's own format.
constexpr std::array<std::string_view, 5> kTopKeys = {"pricing_version", "unit", "sources", "notes",
                                                      "models"};
constexpr std::array<std::string_view, 16> kModelKeys = {
    "provider",       "kind",      "input",       "output",       "cache_read",   "cache_write",
    "cache_write_1h", "reasoning", "input_audio", "output_audio", "output_image", "tiers",
    "service_tiers",  "regions",   "aliases",     "notes"};
constexpr std::array<std::string_view, 10> kTierKeys = {
    "above_input_tokens", "input",     "output",      "cache_read",   "cache_write",
    "cache_write_1h",     "reasoning", "input_audio", "output_audio", "output_image"};
constexpr std::array<std::string_view, 11> kServiceTierKeys = {
    "multiplier", "input",       "output",       "cache_read",   "cache_write", "cache_write_1h",
    "reasoning",  "input_audio", "output_audio", "output_image", "tiers"};
constexpr std::array<std::string_view, 1> kRegionKeys = {"multiplier"};
constexpr double kMaxMultiplier = 1000.0;

PartialPrices read_prices(const LinedJson& doc, const Json& object) {
  PartialPrices p;
  for (const FieldInfo& f : kFields) {
    auto it = object.find(f.name);
    if (it != object.end()) p.*f.partial = expect_price(doc, *it, f.name);
  }
  return p;
}

int64_t expect_multiplier(const LinedJson& doc, const Json& value) {
  const double m = value.is_number() ? value.get<double>() : -1.0;
  if (!(m > 0 && m <= kMaxMultiplier)) {
    doc.fail(value, "\"multiplier\" must be a number above 0 and at most 1000, e.g. 0.5 or 1.1");
  }
  return std::llround(m * 1e6);
}

std::vector<PriceTier> read_tiers(const LinedJson& doc, const Json& tiers,
                                  const PartialPrices& base) {
  if (!tiers.is_array()) doc.fail(tiers, "\"tiers\" must be an array of objects");
  std::vector<PriceTier> out;
  for (const Json& tier : tiers) {
    if (!tier.is_object()) doc.fail(tier, "a tier must be an object");
    check_keys(doc, tier, kTierKeys, "a tier");
    auto threshold = tier.find("above_input_tokens");
    if (threshold == tier.end()) {
      doc.fail(tier, "a tier needs \"above_input_tokens\": the prompt size above which it applies");
    }
    if (!threshold->is_number_unsigned() || threshold->get<uint64_t>() == 0) {
      doc.fail(*threshold, "\"above_input_tokens\" must be a positive integer");
    }
    uint64_t above = threshold->get<uint64_t>();
    if (!out.empty() && above <= out.back().above_input_tokens) {
      doc.fail(*threshold, "tiers must be listed by increasing \"above_input_tokens\"");
    }
    out.push_back(PriceTier{above, resolve_tier(read_prices(doc, tier), base)});
  }
  return out;
}

void read_service_tiers(const LinedJson& doc, const Json& tiers, ModelPrice& model) {
  if (!tiers.is_object()) {
    doc.fail(tiers, "\"service_tiers\" must be an object of tier name -> prices or multiplier");
  }
  for (const auto& [raw_name, entry] : tiers.items()) {
    std::string name = normalize_service_tier(raw_name);
    if (name.empty() || name.size() > kMaxTermNameBytes) {
      doc.fail(entry, "service tier " + in_quotes(raw_name) +
                          " must name a non-standard tier of at most 48 bytes, e.g. \"priority\", "
                          "\"flex\" or \"batch\" (the standard tier is the model's own prices)");
    }
    if (model.service_tier(name) != nullptr) {
      doc.fail(entry, "service tier " + in_quotes(name) + " is listed twice");
    }
    if (!entry.is_object()) doc.fail(entry, "a service tier must be an object");
    check_keys(doc, entry, kServiceTierKeys, "service tier " + in_quotes(name));
    PartialServiceTier svc;
    svc.prices = read_prices(doc, entry);
    if (auto m = entry.find("multiplier"); m != entry.end()) {
      if (svc.prices.any() || entry.contains("tiers")) {
        doc.fail(*m, "service tier " + in_quotes(name) +
                         " has a \"multiplier\" and prices: give one or the other");
      }
      svc.multiplier_ppm = expect_multiplier(doc, *m);
    } else {
      if (!svc.prices.input || (!svc.prices.output && model.kind == ModelKind::chat)) {
        doc.fail(entry, "service tier " + in_quotes(name) +
                            " needs a \"multiplier\", or \"input\" and \"output\" prices");
      }
      if (auto t = entry.find("tiers"); t != entry.end()) {
        read_tiers(doc, *t, svc.prices);  // checks thresholds, order and keys
        for (const Json& tier : *t) {
          svc.tiers[tier.at("above_input_tokens").get<uint64_t>()] = read_prices(doc, tier);
        }
      }
    }
    model.service_tiers.push_back(resolve_service_tier(std::move(name), svc, model));
  }
}

void read_regions(const LinedJson& doc, const Json& regions, ModelPrice& model) {
  if (!regions.is_object()) {
    doc.fail(regions, "\"regions\" must be an object of region name -> {\"multiplier\": N}");
  }
  for (const auto& [raw_name, entry] : regions.items()) {
    std::string name = normalize_region(raw_name);
    if (name.empty() || name.size() > kMaxTermNameBytes) {
      doc.fail(entry, "region " + in_quotes(raw_name) +
                          " must name a non-default region of at most 48 bytes, e.g. \"us\"");
    }
    if (model.region(name) != nullptr) {
      doc.fail(entry, "region " + in_quotes(name) + " is listed twice");
    }
    if (!entry.is_object()) doc.fail(entry, "a region must be an object");
    check_keys(doc, entry, kRegionKeys, "region " + in_quotes(name));
    auto m = entry.find("multiplier");
    if (m == entry.end()) doc.fail(entry, "region " + in_quotes(name) + " needs a \"multiplier\"");
    model.regions.push_back(RegionPrice{name, expect_multiplier(doc, *m)});
  }
}

ModelPrice read_model(const LinedJson& doc, const std::string& name, const Json& entry) {
  if (!entry.is_object())
    doc.fail(entry, "model " + in_quotes(name) + " must be an object of prices");
  check_keys(doc, entry, kModelKeys, "model " + in_quotes(name));
  ModelPrice model;
  model.name = name;
  if (auto it = entry.find("provider"); it != entry.end()) {
    model.provider = expect_string(doc, *it, "\"provider\"");
  }
  if (auto it = entry.find("kind"); it != entry.end()) {
    const std::string& kind = expect_string(doc, *it, "\"kind\"");
    if (kind == "embedding") {
      model.kind = ModelKind::embedding;
    } else if (kind != "chat") {
      doc.fail(*it, "\"kind\" must be \"chat\" or \"embedding\"");
    }
  }
  if (auto it = entry.find("notes"); it != entry.end()) expect_string(doc, *it, "\"notes\"");
  PartialPrices prices = read_prices(doc, entry);
  if (!prices.input) doc.fail(entry, "model " + in_quotes(name) + " needs an \"input\" price");
  if (!prices.output && model.kind == ModelKind::chat) {
    doc.fail(entry, "model " + in_quotes(name) + " needs an \"output\" price");
  }
  model.base = resolve_base(prices);
  if (auto it = entry.find("tiers"); it != entry.end()) {
    model.tiers = read_tiers(doc, *it, prices);
  }
  if (auto it = entry.find("service_tiers"); it != entry.end()) {
    read_service_tiers(doc, *it, model);
  }
  if (auto it = entry.find("regions"); it != entry.end()) read_regions(doc, *it, model);
  return model;
}

PriceFile read_tokentap(const LinedJson& doc) {
  const Json& root = doc.root();
  check_duplicates(doc);
  check_keys(doc, root, kTopKeys, "the price file");
  PriceFile file;
  file.format = PriceFileFormat::tokentap;
  if (auto it = root.find("pricing_version"); it != root.end()) {
    const std::string& v = expect_string(doc, *it, "\"pricing_version\"");
    bool printable = std::all_of(v.begin(), v.end(), [](char c) { return c > 0x20 && c < 0x7f; });
    if (v.empty() || v.size() > kMaxVersionBytes || !printable) {
      doc.fail(*it,
               "\"pricing_version\" must be 1 to 64 printable characters without spaces, "
               "e.g. \"2026-11-22\"");
    }
    file.pricing_version = v;
  }
  if (auto it = root.find("unit");
      it != root.end() && expect_string(doc, *it, "\"unit\"") != kUnit) {
    doc.fail(*it, "\"unit\" must be \"usd_per_million_tokens\"");
  }
  if (auto it = root.find("notes"); it != root.end()) expect_string(doc, *it, "\"notes\"");
  if (auto it = root.find("sources"); it != root.end()) {
    if (!it->is_object()) doc.fail(*it, "\"sources\" must be an object of provider -> URL");
    for (const auto& [provider, url] : it->items()) expect_string(doc, url, "a source");
  }
  auto models = root.find("models");
  if (models == root.end()) doc.fail(root, "missing \"models\": an object of model name -> prices");
  if (!models->is_object()) {
    doc.fail(*models, "\"models\" must be an object of model name -> prices");
  }

  std::map<std::string, const Json*> seen;  // normalized name -> entry, for case-folded clashes
  auto claim = [&](const std::string& key, const Json& at, std::string_view what) {
    auto [it, fresh] = seen.emplace(key, &at);
    if (fresh) return;
    const Json& later = doc.line_of(at) >= doc.line_of(*it->second) ? at : *it->second;
    doc.fail(later, std::string(what) + " " + in_quotes(key) +
                        " is already defined in this file (names are case-insensitive)");
  };
  for (const auto& [raw_name, entry] : models->items()) {
    std::string name = checked_model_name(doc, entry, raw_name, "a model name");
    claim(name, entry, "model");
    file.models.push_back(read_model(doc, name, entry));
  }
  for (const ModelPrice& model : file.models) {
    const Json& entry = *seen.at(model.name);
    auto aliases = entry.find("aliases");
    if (aliases == entry.end()) continue;
    if (!aliases->is_array()) doc.fail(*aliases, "\"aliases\" must be an array of model names");
    for (const Json& alias : *aliases) {
      const std::string& raw = expect_string(doc, alias, "an alias");
      std::string key = checked_model_name(doc, alias, raw, "an alias");
      claim(key, alias, "alias");
      file.aliases.emplace_back(key, model.name);
    }
  }
  return file;
}

// Providers whose LiteLLM keys carry a routing prefix ("gemini/gemini-2.5-pro") for the same
// model the proxy sees unprefixed. Other prefixes (azure/, bedrock/, ...) name other offerings
// and stay part of the key.
constexpr std::array<std::string_view, 3> kStrippedPrefixes = {"openai/", "anthropic/", "gemini/"};

bool is_priced_mode(std::string_view mode) {
  return mode == "chat" || mode == "completion" || mode == "responses" || mode == "embedding";
}

// Which price a LiteLLM cost key sets, with or without a "_above_<N>k_tokens" suffix.
std::optional<int64_t>* litellm_slot(PartialPrices& p, std::string_view base_key) {
  if (base_key == "input_cost_per_token") return &p.input;
  if (base_key == "output_cost_per_token") return &p.output;
  if (base_key == "cache_read_input_token_cost") return &p.cache_read;
  if (base_key == "cache_creation_input_token_cost") return &p.cache_write;
  if (base_key == "cache_creation_input_token_cost_above_1hr") return &p.cache_write_1h;
  if (base_key == "output_cost_per_reasoning_token") return &p.reasoning;
  if (base_key == "input_cost_per_audio_token") return &p.input_audio;
  if (base_key == "output_cost_per_audio_token") return &p.output_audio;
  if (base_key == "output_cost_per_image_token") return &p.output_image;
  return nullptr;
}

// Splits "input_cost_per_token_flex" into ("input_cost_per_token", "flex"); LiteLLM's service
// tier suffixes are _priority, _flex and _batches. No suffix: ("...", "").
std::pair<std::string_view, std::string_view> split_service_tier_key(std::string_view key) {
  for (std::string_view suffix : {"_priority", "_flex", "_batches"}) {
    if (key.size() > suffix.size() && key.ends_with(suffix)) {
      return {key.substr(0, key.size() - suffix.size()), suffix.substr(1)};
    }
  }
  return {key, {}};
}

// Splits "input_cost_per_token_above_200k_tokens" into ("input_cost_per_token", 200000).
std::optional<std::pair<std::string_view, uint64_t>> split_tier_key(std::string_view key) {
  constexpr std::string_view kSuffix = "k_tokens";
  constexpr std::string_view kAbove = "_above_";
  if (key.size() <= kSuffix.size() || !key.ends_with(kSuffix)) return std::nullopt;
  std::string_view head = key.substr(0, key.size() - kSuffix.size());
  size_t digits = head.size();
  while (digits > 0 && std::isdigit(static_cast<unsigned char>(head[digits - 1]))) --digits;
  if (digits == head.size() || head.size() - digits > 9) return std::nullopt;
  uint64_t thousands = std::stoull(std::string(head.substr(digits)));
  head = head.substr(0, digits);
  if (!head.ends_with(kAbove) || thousands == 0) return std::nullopt;
  return std::pair{head.substr(0, head.size() - kAbove.size()), thousands * 1000};
}

std::optional<ModelPrice> read_litellm_entry(const LinedJson& doc, const std::string& name,
                                             const Json& entry) {
  auto mode = entry.find("mode");
  if (mode == entry.end() || !mode->is_string() ||
      !is_priced_mode(mode->get_ref<const std::string&>())) {
    return std::nullopt;  // images, audio, rerank, search, ...: not priced per token here
  }
  ModelKind kind =
      mode->get_ref<const std::string&>() == "embedding" ? ModelKind::embedding : ModelKind::chat;
  PartialPrices base;
  std::map<uint64_t, PartialPrices> tiers;
  std::map<std::string, PartialServiceTier, std::less<>> service_tiers;
  for (const auto& [key, value] : entry.items()) {
    if (value.is_null()) continue;  // LiteLLM's way of saying "unknown"
    const auto [unsuffixed, service_tier] = split_service_tier_key(key);
    PartialPrices* prices = &base;
    std::map<uint64_t, PartialPrices>* tier_prices = &tiers;
    if (!service_tier.empty()) {
      PartialServiceTier& svc = service_tiers[normalize_service_tier(service_tier)];
      prices = &svc.prices;
      tier_prices = &svc.tiers;
    }
    if (auto* slot = litellm_slot(*prices, unsuffixed)) {
      *slot = expect_litellm_price(doc, value, key);
    } else if (auto tier = split_tier_key(unsuffixed)) {
      if (auto* tier_slot = litellm_slot((*tier_prices)[tier->second], tier->first)) {
        *tier_slot = expect_litellm_price(doc, value, key);
      }
    }
  }
  // Without both prices (embeddings have no output) the entry cannot be priced: leave it out
  // so that the model stays visibly unpriced rather than half-priced.
  if (!base.input || (kind == ModelKind::chat && !base.output)) return std::nullopt;
  ModelPrice model;
  model.name = name;
  model.kind = kind;
  if (auto provider = entry.find("litellm_provider");
      provider != entry.end() && provider->is_string()) {
    model.provider = provider->get<std::string>();
  }
  model.base = resolve_base(base);
  for (const auto& [above, prices] : tiers) {
    if (prices.any()) model.tiers.push_back(PriceTier{above, resolve_tier(prices, base)});
  }
  // A service tier without its own input and output price cannot be priced: leave it out, so
  // that requests served under it are reported unpriced rather than priced as standard.
  for (auto& [tier_name, svc] : service_tiers) {
    if (!svc.prices.input || (kind == ModelKind::chat && !svc.prices.output)) continue;
    model.service_tiers.push_back(resolve_service_tier(tier_name, svc, model));
  }
  return model;
}

bool looks_like_litellm(const Json& root) {
  return std::any_of(root.begin(), root.end(), [](const Json& entry) {
    return entry.is_object() && (entry.contains("input_cost_per_token") ||
                                 entry.contains("litellm_provider") || entry.contains("mode"));
  });
}

PriceFile read_litellm(const LinedJson& doc) {
  PriceFile file;
  file.format = PriceFileFormat::litellm;
  struct Kept {
    size_t index;
    bool prefixed;
  };
  std::map<std::string, Kept> kept;
  for (const auto& [raw_key, entry] : doc.root().items()) {
    if (!entry.is_object()) continue;
    std::string key = normalize_model_key(raw_key);
    if (key.empty() || key.size() > kMaxModelNameBytes || has_control_characters(key)) continue;
    bool prefixed = false;
    for (std::string_view prefix : kStrippedPrefixes) {
      if (key.starts_with(prefix) && key.size() > prefix.size()) {
        key.erase(0, prefix.size());
        prefixed = true;
        break;
      }
    }
    std::optional<ModelPrice> model = read_litellm_entry(doc, key, entry);
    if (!model) continue;
    // LiteLLM lists some models twice (by case, or with and without a provider prefix); the
    // unprefixed entry describes the provider's own API, otherwise the first one stays.
    auto it = kept.find(key);
    if (it == kept.end()) {
      kept.emplace(key, Kept{file.models.size(), prefixed});
      file.models.push_back(std::move(*model));
    } else if (it->second.prefixed && !prefixed) {
      file.models[it->second.index] = std::move(*model);
      it->second.prefixed = false;
    }
  }
  if (file.models.empty()) {
    doc.fail(doc.root(), "no chat or embedding model with per-token prices found");
  }
  return file;
}

}  // namespace

std::string normalize_model_key(std::string_view name) {
  return to_lower(trim(name, kAsciiWhitespace));
}

PriceFile parse_price_file(std::string_view name, std::string_view text) {
  LinedJson doc = LinedJson::parse(name, text);
  const Json& root = doc.root();
  if (!root.is_object()) doc.fail(root, "expected a JSON object at the top level");
  if (root.contains("models") || root.contains("pricing_version")) return read_tokentap(doc);
  if (looks_like_litellm(root)) return read_litellm(doc);
  doc.fail(root,
           "expected a tokentap price file (an object with \"models\") or LiteLLM's "
           "model_prices_and_context_window.json (an object of model name -> costs)");
}

}  // namespace tokentap::pricing
