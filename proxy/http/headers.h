// Header fields as received from either side, and case-insensitive lookup.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tokentap {

// A header as received: name in its original case, value without surrounding whitespace.
struct Header {
  std::string name;
  std::string value;
};
using HeaderList = std::vector<Header>;

// Case-insensitive lookup; returns nullptr when absent.
const std::string* find_header(const HeaderList& headers, std::string_view lower_name);

}  // namespace tokentap
