#include "pricing/lined_json.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <utility>
#include <vector>

namespace tokentap::pricing {

using Json = nlohmann::json;

namespace {

// An input iterator over the text that counts the newlines it has stepped over, so that SAX
// callbacks can ask which line the parser is on.
class LineCountingIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  LineCountingIterator(const char* at, size_t* newlines) : at_(at), newlines_(newlines) {}

  reference operator*() const { return *at_; }
  LineCountingIterator& operator++() {
    if (*at_ == '\n') ++*newlines_;
    ++at_;
    return *this;
  }
  LineCountingIterator operator++(int) {
    LineCountingIterator before = *this;
    ++*this;
    return before;
  }
  bool operator==(const LineCountingIterator& other) const { return at_ == other.at_; }

 private:
  const char* at_;
  size_t* newlines_;
};

// Lines before the character at 1-based byte position `position`: nlohmann reports the
// position of the last character it read, which is the offending one.
size_t line_at_byte(std::string_view text, size_t position) {
  size_t end = position == 0 ? 0 : position - 1;
  if (end >= text.size()) {
    // The error is the end of the input: report the last line that has any content.
    end = text.size();
    while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == '\r' || text[end - 1] == ' ' ||
                       text[end - 1] == '\t')) {
      --end;
    }
  }
  return 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + end, '\n'));
}

// nlohmann's message reads "[json.exception.parse_error.101] parse error at line 1, column 9:
// syntax error while parsing ..."; keep what follows the location.
// The "last read" part quotes the input and can be long, so the description is capped.
std::string describe_parse_error(const std::string& what) {
  constexpr size_t kMaxBytes = 200;
  std::string description = what;
  if (size_t column = what.find("column "); column != std::string::npos) {
    if (size_t colon = what.find(": ", column); colon != std::string::npos) {
      description = what.substr(colon + 2);
    }
  } else if (size_t bracket = what.find("] "); bracket != std::string::npos) {
    description = what.substr(bracket + 2);
  }
  if (description.size() > kMaxBytes) {
    description.resize(kMaxBytes);
    description.append("...");
  }
  return description;
}

}  // namespace

std::string located_message(std::string_view name, size_t line, std::string_view what) {
  std::string message;
  message.reserve(name.size() + what.size() + 16);
  message.append(name);
  message.push_back(':');
  message.append(std::to_string(line));
  message.append(": ");
  message.append(what);
  return message;
}

// Builds the DOM from SAX events the way nlohmann's own DOM parser does, and records the line of
// every object member (at its key) and array element (where it begins). Member values live in
// std::map nodes and never move; array elements may move while their array grows, so their
// lines are attached when the array closes.
class LinedJsonBuilder {
 public:
  using number_integer_t = Json::number_integer_t;
  using number_unsigned_t = Json::number_unsigned_t;
  using number_float_t = Json::number_float_t;
  using string_t = Json::string_t;
  using binary_t = Json::binary_t;

  LinedJsonBuilder(LinedJson& out, const size_t* newlines) : out_(out), newlines_(newlines) {}

  bool null() { return put(nullptr); }
  bool boolean(bool v) { return put(v); }
  bool number_integer(number_integer_t v) { return put(v); }
  bool number_unsigned(number_unsigned_t v) { return put(v); }
  bool number_float(number_float_t v, const string_t& /*text*/) { return put(v); }
  bool string(string_t& v) { return put(std::move(v)); }
  bool binary(binary_t& v) { return put(Json::binary(std::move(v))); }

  bool start_object(std::size_t /*size*/) { return open(Json::object()); }
  bool end_object() { return close(); }
  bool start_array(std::size_t /*size*/) { return open(Json::array()); }
  bool end_array() { return close(); }

  bool key(string_t& k) {
    Json& object = *stack_.back().node;
    auto& members = *object.get_ptr<Json::object_t*>();
    auto existing = members.find(k);
    if (existing != members.end() && !out_.duplicate_) {
      out_.duplicate_ = LinedJson::DuplicateKey{k, line()};
    }
    Json& slot = members[k];
    out_.lines_[&slot] = line();
    member_ = &slot;
    return true;
  }

  bool parse_error(std::size_t position, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& ex) {
    error_position_ = position;
    error_ = describe_parse_error(ex.what());
    return false;
  }

  bool too_deep() const { return too_deep_; }
  size_t error_position() const { return error_position_; }
  const std::string& error() const { return error_; }
  size_t line() const { return *newlines_ + 1; }

 private:
  struct Open {
    Json* node;
    std::vector<size_t> element_lines;  // arrays only
  };

  // Places a value where the parser is: the root, the pending member, or the open array.
  Json* place(Json&& value) {
    if (stack_.empty()) {
      out_.root_ = std::move(value);
      return &out_.root_;
    }
    Open& top = stack_.back();
    if (top.node->is_array()) {
      top.element_lines.push_back(line());
      auto& elements = *top.node->get_ptr<Json::array_t*>();
      elements.push_back(std::move(value));
      return &elements.back();
    }
    *member_ = std::move(value);
    return member_;
  }

  bool put(Json&& value) {
    place(std::move(value));
    return true;
  }

  bool open(Json&& container) {
    if (stack_.size() >= LinedJson::kMaxDepth) {
      too_deep_ = true;
      return false;
    }
    Json* node = place(std::move(container));
    stack_.push_back(Open{node, {}});
    return true;
  }

  bool close() {
    Open& top = stack_.back();
    if (top.node->is_array()) {
      const auto& elements = *top.node->get_ptr<const Json::array_t*>();
      for (size_t i = 0; i < elements.size() && i < top.element_lines.size(); ++i) {
        out_.lines_[&elements[i]] = top.element_lines[i];
      }
    }
    stack_.pop_back();
    return true;
  }

  LinedJson& out_;
  const size_t* newlines_;
  std::vector<Open> stack_;
  Json* member_ = nullptr;
  bool too_deep_ = false;
  size_t error_position_ = 0;
  std::string error_;
};

LinedJson LinedJson::parse(std::string_view name, std::string_view text) {
  LinedJson doc;
  doc.name_ = std::string(name);
  size_t newlines = 0;
  LinedJsonBuilder builder(doc, &newlines);
  LineCountingIterator first(text.data(), &newlines);
  LineCountingIterator last(text.data() + text.size(), &newlines);
  if (!Json::sax_parse(first, last, &builder)) {
    if (builder.too_deep()) {
      throw PricingError(located_message(
          name, builder.line(),
          "nesting deeper than " + std::to_string(kMaxDepth) + " levels is not a price file"));
    }
    throw PricingError(
        located_message(name, line_at_byte(text, builder.error_position()), builder.error()));
  }
  return doc;
}

size_t LinedJson::line_of(const Json& value) const {
  auto it = lines_.find(&value);
  return it == lines_.end() ? 1 : it->second;
}

void LinedJson::fail(const Json& at, std::string_view what) const {
  throw PricingError(located_message(name_, line_of(at), what));
}

}  // namespace tokentap::pricing
