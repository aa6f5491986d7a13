// The built-in price table's text (pricing/prices.json), compiled in by pricing/CMakeLists.txt.
#pragma once

#include <string_view>

namespace tokentap::pricing {

std::string_view builtin_price_json();

}  // namespace tokentap::pricing
