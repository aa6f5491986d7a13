// Reading price files: tokentap's own format (pricing/README.md, e.g. pricing/prices.json) and
// LiteLLM's model_prices_and_context_window.json. parse_price_file() tells them apart by shape:
// an object with "models" or "pricing_version" at the top is ours; an object whose members are
// objects carrying LiteLLM cost keys ("input_cost_per_token", "mode", "litellm_provider") is
// LiteLLM's. Anything else is an error.
//
// Every problem throws PricingError whose what() reads "NAME:LINE: what was expected". Nothing
// here does I/O: the caller reads the file and passes its name (for messages) and its text.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pricing/cost.h"
#include "pricing/lined_json.h"

namespace tokentap::pricing {

enum class PriceFileFormat : uint8_t { tokentap, litellm };

struct PriceFile {
  PriceFileFormat format = PriceFileFormat::tokentap;
  std::string pricing_version;  // "" when the file has none (always "" for LiteLLM)
  std::vector<ModelPrice> models;
  // (alias, canonical model name) pairs; every canonical name is one of `models`.
  std::vector<std::pair<std::string, std::string>> aliases;
};

// Throws PricingError.
PriceFile parse_price_file(std::string_view name, std::string_view text);

// How a model name is keyed in a table: lower case, surrounding white space removed.
std::string normalize_model_key(std::string_view name);

}  // namespace tokentap::pricing
