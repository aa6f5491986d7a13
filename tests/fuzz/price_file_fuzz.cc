// Price-file loading (pricing/price_file.h, pricing/price_table.h): arbitrary text either parses
// into prices the cost code can rely on, or throws PricingError worded "NAME:LINE: ..."; nothing
// else may escape. Merging a file over the built-in table never changes the built-in table,
// every model and alias of the file is then found under its name, and the cost of a request at
// any price is never negative and grows with the output tokens.
//
// Input: [usage: 16 bytes] model name to look up "\n" price file text
#include <cstdint>
#include <string>

#include "pricing/cost.h"
#include "pricing/price_file.h"
#include "pricing/price_table.h"
#include "tests/support/fuzz_support.h"

namespace tokentap::fuzz {
namespace {

constexpr std::string_view kName = "fuzz.json";

void check_error_wording(std::string_view what) {
  const std::string prefix = std::string(kName) + ":";
  size_t digits = 0;
  while (prefix.size() + digits < what.size() && what[prefix.size() + digits] >= '0' &&
         what[prefix.size() + digits] <= '9') {
    ++digits;
  }
  FUZZ_CHECK(
      what.starts_with(prefix) && digits > 0 && what.substr(prefix.size() + digits, 2) == ": ",
      "a PricingError not worded NAME:LINE: ...: " + printable(what));
}

void check_prices(const pricing::TokenPrices& p, std::string_view model) {
  for (int64_t v :
       {p.input, p.output, p.cache_read, p.cache_write, p.cache_write_1h, p.reasoning}) {
    FUZZ_CHECK(v >= 0, "a negative price for " + printable(model));
  }
}

void check_model(const pricing::ModelPrice& m) {
  FUZZ_CHECK(!m.name.empty() && m.name == pricing::normalize_model_key(m.name),
             "a model name that is not a table key: " + printable(m.name));
  check_prices(m.base, m.name);
  for (size_t i = 0; i < m.tiers.size(); ++i) {
    check_prices(m.tiers[i].prices, m.name);
    FUZZ_CHECK(i == 0 || m.tiers[i - 1].above_input_tokens < m.tiers[i].above_input_tokens,
               "tiers of " + printable(m.name) + " are not ascending and distinct");
  }
}

void check_cost(const pricing::ModelPrice& m, pricing::BillableUsage usage) {
  const int64_t cost = pricing::cost_nano_usd(usage, m);
  FUZZ_CHECK(cost >= 0, "a negative cost for " + printable(m.name));
  if (usage.output < UINT64_MAX) {
    ++usage.output;
    FUZZ_CHECK(pricing::cost_nano_usd(usage, m) >= cost,
               "one more output token made " + printable(m.name) + " cheaper");
  }
}

}  // namespace
}  // namespace tokentap::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  using namespace tokentap;
  using namespace tokentap::fuzz;
  ByteReader in(bytes, size);
  pricing::BillableUsage usage;
  usage.input = in.u16() * uint64_t{in.u16()};
  usage.output = in.u16() * uint64_t{in.u16()};
  usage.cache_read = in.u16();
  usage.cache_write = in.u16();
  usage.cache_write_1h = in.byte();
  usage.reasoning = in.byte();
  in.take(2);
  const std::string_view rest = in.rest();
  const std::string_view lookup = rest.substr(0, rest.find('\n'));
  const std::string_view text = rest.substr(std::min(rest.size(), lookup.size() + 1));

  const pricing::PriceTable& builtin = pricing::PriceTable::builtin();
  const size_t builtin_models = builtin.model_count();
  if (const pricing::ModelPrice* found = builtin.find(lookup)) {
    check_model(*found);
    check_cost(*found, usage);
  }

  try {
    const pricing::PriceFile file = pricing::parse_price_file(kName, text);
    for (const pricing::ModelPrice& m : file.models) check_model(m);
    for (const auto& [alias, canonical] : file.aliases) {
      bool known = false;
      for (const pricing::ModelPrice& m : file.models) known = known || m.name == canonical;
      FUZZ_CHECK(known, "alias " + printable(alias) + " of an unknown model");
    }
  } catch (const pricing::PricingError& e) {
    check_error_wording(e.what());
  }

  try {
    const pricing::PriceTable merged = builtin.merged_with(kName, text);
    const pricing::PriceFile file = pricing::parse_price_file(kName, text);
    for (const pricing::ModelPrice& m : file.models) {
      const pricing::ModelPrice* found = merged.find(m.name);
      FUZZ_CHECK(found != nullptr && found->name == m.name && found->base == m.base,
                 "a merged model is not found with its own price: " + printable(m.name));
      check_cost(*found, usage);
    }
    for (const auto& [alias, canonical] : file.aliases) {
      const pricing::ModelPrice* found = merged.find(alias);
      FUZZ_CHECK(found != nullptr, "a merged alias is not found: " + printable(alias));
    }
    if (const pricing::ModelPrice* found = merged.find(lookup)) check_cost(*found, usage);
  } catch (const pricing::PricingError& e) {
    check_error_wording(e.what());
  }
  FUZZ_CHECK(builtin.model_count() == builtin_models, "merging changed the built-in table");
  return 0;
}
