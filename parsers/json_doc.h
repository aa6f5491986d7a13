// A read-only JSON document laid out flat: one node per value in document order, each knowing
// how many nodes its subtree spans, so walking a member or skipping a subtree is pointer
// arithmetic. Strings without escapes point into the parsed text; escaped ones are decoded into a
// buffer the document owns. A JsonDoc is reused for every event of a stream, so after the first
// events parsing allocates nothing - this is what the parsers read every response body and stream
// event with (nlohmann's DOM cost a dozen allocations per event; bench/PROFILE.md).
//
// The grammar is exactly nlohmann::json::parse's (json_util::parse builds its DOM from this one
// and tests/unit/parsers/json_parse_test.cc checks them against each other). Nodes and views are
// valid until the next parse() and only while the parsed text is alive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

namespace tokentap::json_util {

class JsonNode {
 public:
  enum class Type : uint8_t {
    null,
    boolean,
    number_unsigned,
    number_integer,
    number_float,
    string,
    array,
    object
  };

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::null; }
  bool is_boolean() const { return type_ == Type::boolean; }
  bool is_number() const {
    return type_ == Type::number_unsigned || type_ == Type::number_integer ||
           type_ == Type::number_float;
  }
  bool is_number_unsigned() const { return type_ == Type::number_unsigned; }
  bool is_number_integer() const {  // as nlohmann: unsigned numbers are integers too
    return type_ == Type::number_unsigned || type_ == Type::number_integer;
  }
  bool is_number_float() const { return type_ == Type::number_float; }
  bool is_string() const { return type_ == Type::string; }
  bool is_array() const { return type_ == Type::array; }
  bool is_object() const { return type_ == Type::object; }

  bool boolean() const { return scalar_.b; }
  uint64_t unsigned_number() const { return scalar_.u; }
  int64_t integer_number() const { return scalar_.i; }
  double float_number() const { return scalar_.d; }
  std::string_view string() const { return {text_, text_len_}; }  // decoded; "" unless a string
  // The member name of an object's child ("" for array elements and the root).
  std::string_view key() const { return {key_, key_len_}; }

  // Elements of an array, or member values of an object in document order (with duplicates: see
  // find()). Scalars have none.
  size_t size() const { return children_; }
  bool empty() const { return children_ == 0; }

  class Iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = JsonNode;
    using difference_type = std::ptrdiff_t;
    using pointer = const JsonNode*;
    using reference = const JsonNode&;

    explicit Iterator(const JsonNode* node) : node_(node) {}
    const JsonNode& operator*() const { return *node_; }
    const JsonNode* operator->() const { return node_; }
    Iterator& operator++() {
      node_ += node_->span_;
      return *this;
    }
    Iterator operator++(int) {
      Iterator before = *this;
      ++*this;
      return before;
    }
    bool operator==(const Iterator& other) const { return node_ == other.node_; }
    bool operator!=(const Iterator& other) const { return node_ != other.node_; }

   private:
    const JsonNode* node_;
  };
  Iterator begin() const { return Iterator(this + 1); }
  Iterator end() const { return Iterator(this + span_); }

  const JsonNode& operator[](size_t index) const;  // index < size()
  const JsonNode& back() const;                    // !empty()

  // The value of member `key` of an object, or nullptr. A later duplicate wins, as in nlohmann.
  const JsonNode* find(std::string_view key) const;
  bool contains(std::string_view key) const { return find(key) != nullptr; }

  // An object's members as (key, value), each key once (its last occurrence), in document order.
  class Members {
   public:
    struct Member {
      std::string_view key;
      const JsonNode& value;
    };
    class Iterator {
     public:
      Iterator(const JsonNode* node, const JsonNode* end) : node_(node), end_(end) { settle(); }
      Member operator*() const { return {node_->key(), *node_}; }
      Iterator& operator++() {
        node_ += node_->span_;
        settle();
        return *this;
      }
      bool operator!=(const Iterator& other) const { return node_ != other.node_; }

     private:
      void settle();  // skips members whose key occurs again later
      const JsonNode* node_;
      const JsonNode* end_;
    };
    explicit Members(const JsonNode& object) : object_(object) {}
    Iterator begin() const { return {object_.is_object() ? &object_ + 1 : end_node(), end_node()}; }
    Iterator end() const { return {end_node(), end_node()}; }

   private:
    const JsonNode* end_node() const { return &object_ + object_.span_; }
    const JsonNode& object_;
  };
  Members items() const { return Members(*this); }

 private:
  friend struct NodeWriter;

  const char* text_ = nullptr;
  const char* key_ = nullptr;
  uint32_t text_len_ = 0;
  uint32_t key_len_ = 0;
  uint32_t span_ = 1;  // nodes in this subtree, this one included
  uint32_t children_ = 0;
  Type type_ = Type::null;
  union {
    bool b;
    uint64_t u;
    int64_t i;
    double d;
  } scalar_{};
};

class JsonDoc {
 public:
  // Parses `text` (one JSON value, a leading UTF-8 BOM skipped, anything after a NUL byte that
  // follows it ignored, nesting at most 256 deep) and returns its root, or nullptr when it is not
  // valid JSON. Replaces the previous document.
  const JsonNode* parse(std::string_view text);

 private:
  std::vector<JsonNode> nodes_;
  std::string decoded_;  // escaped strings and keys, decoded; reserved so it never moves
};

}  // namespace tokentap::json_util
