// A JSON document that remembers on which line each value started, so that a price file can be
// validated after parsing and still report "NAME:LINE: what was expected".
//
// The line of an object member is the line of its key; the line of an array element is the line
// where the element began. Parsing throws PricingError for invalid JSON, with the line derived
// from the parser's byte position, and for nesting deeper than kMaxDepth.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tokentap::pricing {

// A price file that cannot be used. what() reads "NAME:LINE: what was expected".
class PricingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// NOLINTNEXTLINE(bugprone-exception-escape): the implicit special members of nlohmann::json
class LinedJson {
 public:
  static constexpr size_t kMaxDepth = 64;

  // Throws PricingError.
  static LinedJson parse(std::string_view name, std::string_view text);

  const nlohmann::json& root() const { return root_; }
  const std::string& name() const { return name_; }

  // The line `value` (a node of root()) started on; 1 for the root and for unknown nodes.
  size_t line_of(const nlohmann::json& value) const;

  // Throws PricingError "NAME:LINE: what" with the line of `at`.
  [[noreturn]] void fail(const nlohmann::json& at, std::string_view what) const;

  // The first key that appeared twice in one object (the later value is kept), if any.
  struct DuplicateKey {
    std::string key;
    size_t line = 0;
  };
  const std::optional<DuplicateKey>& first_duplicate_key() const { return duplicate_; }

 private:
  friend class LinedJsonBuilder;

  std::string name_;
  nlohmann::json root_;
  std::unordered_map<const nlohmann::json*, size_t> lines_;
  std::optional<DuplicateKey> duplicate_;
};

// "NAME:LINE: what" — the one spelling of every pricing error.
std::string located_message(std::string_view name, size_t line, std::string_view what);

}  // namespace tokentap::pricing
