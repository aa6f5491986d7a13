#include "pricing/price_table.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "common/text.h"
#include "pricing/builtin_prices.h"
#include "pricing/price_file.h"

namespace tokentap::pricing {
namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The family name of a dated or versioned snapshot, or nullopt when `name` is not one.
std::optional<std::string_view> strip_snapshot(std::string_view name) {
  if (size_t at = name.find('@'); at != std::string_view::npos && at > 0 && at + 1 < name.size()) {
    return name.substr(0, at);  // Vertex AI: claude-3-5-sonnet@20240620
  }
  const size_t n = name.size();
  if (n > 11 && name[n - 11] == '-' && name[n - 6] == '-' && name[n - 3] == '-' &&
      all_digits(name.substr(n - 10, 4)) && all_digits(name.substr(n - 5, 2)) &&
      all_digits(name.substr(n - 2))) {
    return name.substr(0, n - 11);  // OpenAI: gpt-4o-2024-08-06
  }
  if (n > 9 && name[n - 9] == '-' && all_digits(name.substr(n - 8))) {
    return name.substr(0, n - 9);  // Anthropic: claude-sonnet-4-20250514
  }
  if (n > 4 && name[n - 4] == '-' && all_digits(name.substr(n - 3))) {
    return name.substr(0, n - 4);  // Gemini: gemini-2.0-flash-001
  }
  return std::nullopt;
}

template <typename Map>
std::vector<std::string> sorted_keys(const Map& map) {
  std::vector<std::string> keys;
  keys.reserve(map.size());
  for (const auto& entry : map) keys.push_back(entry.first);
  std::sort(keys.begin(), keys.end());
  return keys;
}

}  // namespace

const PriceTable& PriceTable::builtin() {
  static const PriceTable table = from_file("pricing/prices.json (built in)", builtin_price_json());
  return table;
}

PriceTable PriceTable::from_file(std::string_view name, std::string_view text) {
  return PriceTable().merged_with(name, text);
}

PriceTable PriceTable::merged_with(std::string_view name, std::string_view text) const {
  PriceFile file = parse_price_file(name, text);
  PriceTable merged = *this;
  merged.merge(std::move(file));
  return merged;
}

void PriceTable::merge(PriceFile&& file) {
  if (!file.pricing_version.empty()) version_ = file.pricing_version;
  // Later files win over earlier ones: a model replaces an alias of the same name and an alias
  // replaces a model of the same name.
  for (ModelPrice& model : file.models) {
    aliases_.erase(model.name);
    std::string name = model.name;
    models_[name] = std::make_shared<const ModelPrice>(std::move(model));
  }
  for (auto& [alias, target] : file.aliases) {
    models_.erase(alias);
    aliases_[alias] = target;
  }
}

const ModelPrice* PriceTable::find_key(std::string_view key) const {
  if (auto it = models_.find(key); it != models_.end()) return it->second.get();
  if (auto alias = aliases_.find(key); alias != aliases_.end()) {
    if (auto it = models_.find(alias->second); it != models_.end()) return it->second.get();
  }
  return nullptr;
}

const ModelPrice* PriceTable::find(std::string_view model) const {
  const std::string key = normalize_model_key(model);
  if (key.empty()) return nullptr;
  if (const ModelPrice* exact = find_key(key)) return exact;
  std::string_view base = key;
  if (size_t slash = base.rfind('/'); slash != std::string_view::npos) {
    base = base.substr(slash + 1);
    if (const ModelPrice* unprefixed = find_key(base)) return unprefixed;
  }
  if (auto family = strip_snapshot(base)) return find_key(*family);
  return nullptr;
}

const ModelPrice* PriceTable::find_deployment(std::string_view deployment,
                                              const DeploymentMap& deployments) const {
  if (auto it = deployments.find(deployment); it != deployments.end()) return find(it->second);
  for (const auto& [name, model] : deployments) {
    if (iequals(name, deployment)) return find(model);
  }
  return find(deployment);
}

std::vector<std::string> PriceTable::model_names() const { return sorted_keys(models_); }

std::vector<std::string> PriceTable::alias_names() const { return sorted_keys(aliases_); }

}  // namespace tokentap::pricing
