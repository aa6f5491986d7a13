// The table of model prices the proxy prices requests with: the built-in table compiled from
// pricing/prices.json, with user price files merged over it.
//
// find() resolves the model names clients and providers actually send, in this order, stopping
// at the first name the table knows (as a model or an alias):
//   1. the name as given, lower-cased and trimmed ("GPT-4o" -> "gpt-4o"; also finds LiteLLM
//      keys such as "azure/gpt-4o");
//   2. without any routing prefix: everything up to the last '/' ("models/gemini-2.5-pro",
//      "openai/gpt-4o", "publishers/anthropic/models/claude-...");
//   3. without one snapshot suffix: "@..." (Vertex "claude-3-5-sonnet@20240620"), "-YYYY-MM-DD"
//      (OpenAI "gpt-4o-2024-08-06"), "-YYYYMMDD" (Anthropic "claude-sonnet-4-20250514") or
//      "-NNN" (Gemini "gemini-2.0-flash-001").
// A snapshot with its own price (e.g. "gpt-4o-2024-05-13") is its own entry and wins at step 1.
// An unknown model yields nullptr: the caller reports it as unpriced, never as free.
//
// A PriceTable is immutable once built; reloads build a new one. Pointers returned by find()
// live as long as the table.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pricing/cost.h"
#include "pricing/lined_json.h"  // PricingError

namespace tokentap::pricing {

struct PriceFile;

// Azure OpenAI deployment name -> model name, from config. Deployment names match exactly or,
// failing that, case-insensitively.
using DeploymentMap = std::map<std::string, std::string, std::less<>>;

class PriceTable {
 public:
  PriceTable() = default;  // empty: prices nothing

  // The built-in table, parsed once on first use. Its text is builtin_price_json().
  static const PriceTable& builtin();

  // A table holding one price file. Throws PricingError ("NAME:LINE: ...").
  static PriceTable from_file(std::string_view name, std::string_view text);

  // A copy of this table with the price file merged over it: the file's models and aliases
  // replace same-named models and aliases of this table. Throws PricingError; `this` is never
  // modified.
  PriceTable merged_with(std::string_view name, std::string_view text) const;

  // The price for a model name as clients and providers spell it; nullptr when unpriced.
  const ModelPrice* find(std::string_view model) const;
  // An Azure deployment: mapped through `deployments` when listed there, then resolved by find()
  // (deployments are often named after their model).
  const ModelPrice* find_deployment(std::string_view deployment,
                                    const DeploymentMap& deployments) const;

  // The pricing_version of the last merged file that declares one (the built-in table does).
  const std::string& version() const { return version_; }

  size_t model_count() const { return models_.size(); }
  std::vector<std::string> model_names() const;  // canonical names, sorted
  std::vector<std::string> alias_names() const;  // sorted

 private:
  void merge(PriceFile&& file);
  const ModelPrice* find_key(std::string_view key) const;

  // Lets find() look names up by string_view without building a std::string.
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  template <typename Value>
  using NameMap = std::unordered_map<std::string, Value, NameHash, std::equal_to<>>;

  std::string version_;
  // Canonical name -> price. shared_ptr keeps the ModelPrice shared between copies of a table
  // (each reload copies the built-in table) without copying it.
  NameMap<std::shared_ptr<const ModelPrice>> models_;
  NameMap<std::string> aliases_;  // alias -> canonical name
};

}  // namespace tokentap::pricing
