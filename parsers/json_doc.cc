#include "parsers/json_doc.h"

#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "common/text.h"

namespace tokentap::json_util {
namespace {

// Provider JSON nests a few levels deep; "[[[[..." would cost a node per byte.
constexpr size_t kMaxNesting = 256;
// What a document keeps between parses; a larger one is given back before the next parse, so a
// stream's one big event does not pin its memory for the rest of the connection.
constexpr size_t kKeepNodes = 1024;
constexpr size_t kKeepDecodedBytes = size_t{16} * 1024;

// Eight bytes at a time (SWAR): a flag (the byte's high bit) for each byte that a JSON string
// does not hold as it is: a control character, a quote, a backslash or a byte >= 0x80 (UTF-8,
// validated by the byte path). Each test's lowest flag is exact (a borrow only runs upwards),
// so the lowest flag of all is the first such byte. Provider text is mostly plain runs.
constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighs = 0x8080808080808080ULL;
constexpr uint64_t zero_byte_flags(uint64_t w) { return (w - kOnes) & ~w & kHighs; }
inline uint64_t special_byte_flags(const char* p) {
  static_assert(std::endian::native == std::endian::little, "the first byte is the lowest");
  uint64_t w = 0;
  std::memcpy(&w, p, sizeof w);
  return (w & kHighs) | ((w - kOnes * 0x20) & ~w & kHighs) | zero_byte_flags(w ^ (kOnes * '"')) |
         zero_byte_flags(w ^ (kOnes * '\\'));
}

// ASCII that a JSON string holds as it is: not a control character, quote or backslash.
constexpr std::array<bool, 256> kPlainStringByte = [] {
  std::array<bool, 256> t{};
  for (unsigned c = 0x20; c < 0x80; ++c) t[c] = c != '"' && c != '\\';
  return t;
}();

// Reads one JSON text into nodes, accepting and rejecting exactly what
// nlohmann::json::parse(text, nullptr, false) does: RFC 8259 grammar, strings checked for
// well-formed UTF-8, control characters and surrogate pairs, integers typed unsigned (no minus)
// or integer when they fit and float otherwise. Plus the nesting limit.
class Reader {
 public:
  Reader(std::string_view text, std::vector<JsonNode>& nodes, std::string& decoded)
      : p_(text.data()), end_(text.data() + text.size()), nodes_(nodes), decoded_(decoded) {}

  bool read() {
    if (end_ - p_ >= 3 && std::string_view(p_, 3) == "\xEF\xBB\xBF") p_ += 3;
    skip_space();
    if (!value(0, std::string_view())) return false;
    skip_space();
    return p_ == end_ || *p_ == '\0';  // nlohmann's lexer reads a NUL byte as end of input
  }

 private:
  void skip_space() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  // Appends the node of the value at p_ (and its subtree) as a member named `key`.
  bool value(size_t depth, std::string_view key);
  bool container(size_t index, size_t depth, char close);
  bool literal(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    return true;
  }
  bool string(std::string_view& out);
  bool escape();
  bool hex4(uint32_t& cp);
  bool number(JsonNode& out);

  const char* p_;
  const char* end_;
  std::vector<JsonNode>& nodes_;
  std::string& decoded_;
};

}  // namespace

// JsonNode's fields are private; the reader writes them through this.
struct NodeWriter {
  static void set_key(JsonNode& n, std::string_view key) {
    n.key_ = key.data();
    n.key_len_ = static_cast<uint32_t>(key.size());
  }
  static void set_type(JsonNode& n, JsonNode::Type type) { n.type_ = type; }
  static void set_string(JsonNode& n, std::string_view s) {
    n.type_ = JsonNode::Type::string;
    n.text_ = s.data();
    n.text_len_ = static_cast<uint32_t>(s.size());
  }
  static void set_bool(JsonNode& n, bool b) {
    n.type_ = JsonNode::Type::boolean;
    n.scalar_.b = b;
  }
  static void set_unsigned(JsonNode& n, uint64_t u) {
    n.type_ = JsonNode::Type::number_unsigned;
    n.scalar_.u = u;
  }
  static void set_integer(JsonNode& n, int64_t i) {
    n.type_ = JsonNode::Type::number_integer;
    n.scalar_.i = i;
  }
  static void set_float(JsonNode& n, double d) {
    n.type_ = JsonNode::Type::number_float;
    n.scalar_.d = d;
  }
  static void close(JsonNode& n, size_t span, size_t children) {
    n.span_ = static_cast<uint32_t>(span);
    n.children_ = static_cast<uint32_t>(children);
  }
};

namespace {

bool Reader::value(size_t depth, std::string_view key) {
  if (p_ == end_) return false;
  const size_t index = nodes_.size();
  NodeWriter::set_key(nodes_.emplace_back(), key);
  switch (*p_) {
    case '{':
      NodeWriter::set_type(nodes_[index], JsonNode::Type::object);
      return container(index, depth + 1, '}');
    case '[':
      NodeWriter::set_type(nodes_[index], JsonNode::Type::array);
      return container(index, depth + 1, ']');
    case '"': {
      std::string_view s;
      if (!string(s)) return false;
      NodeWriter::set_string(nodes_[index], s);
      return true;
    }
    case 't':
      NodeWriter::set_bool(nodes_[index], true);
      return literal("true");
    case 'f':
      NodeWriter::set_bool(nodes_[index], false);
      return literal("false");
    case 'n':
      return literal("null");
    default:
      return number(nodes_[index]);
  }
}

// At the '{' or '[' of the node at `index`: its members or elements, then its span.
bool Reader::container(size_t index, size_t depth, char close) {
  if (depth > kMaxNesting) return false;
  ++p_;
  skip_space();
  size_t children = 0;
  if (p_ < end_ && *p_ == close) {
    ++p_;
    NodeWriter::close(nodes_[index], 1, 0);
    return true;
  }
  for (;;) {
    std::string_view key;
    if (close == '}') {
      if (p_ == end_ || *p_ != '"') return false;
      if (!string(key)) return false;
      skip_space();
      if (p_ == end_ || *p_ != ':') return false;
      ++p_;
      skip_space();
    }
    if (!value(depth, key)) return false;
    ++children;
    skip_space();
    if (p_ == end_) return false;
    if (*p_ == close) {
      ++p_;
      NodeWriter::close(nodes_[index], nodes_.size() - index, children);
      return true;
    }
    if (*p_ != ',') return false;
    ++p_;
    skip_space();
  }
}

// At the opening quote. A string without escapes is a view of the text; one with escapes is
// decoded at the end of decoded_, which was reserved for the whole text and so never moves.
bool Reader::string(std::string_view& out) {
  ++p_;
  const char* run = p_;              // start of the bytes not yet copied
  size_t start = std::string::npos;  // where this string starts in decoded_, once escaped
  while (p_ < end_) {
    if (end_ - p_ >= 8) {
      const uint64_t flags = special_byte_flags(p_);
      if (flags == 0) {
        p_ += 8;
        continue;
      }
      p_ += std::countr_zero(flags) / 8;  // at the first special byte
    }
    const auto c = static_cast<unsigned char>(*p_);
    if (kPlainStringByte[c]) {
      ++p_;
      continue;
    }
    if (c == '"') {
      if (start == std::string::npos) {
        out = std::string_view(run, static_cast<size_t>(p_ - run));
      } else {
        decoded_.append(run, p_);
        out = std::string_view(decoded_).substr(start);
      }
      ++p_;
      return true;
    }
    if (c == '\\') {
      if (start == std::string::npos) start = decoded_.size();
      decoded_.append(run, p_);
      if (!escape()) return false;
      run = p_;
      continue;
    }
    if (c < 0x20) return false;
    const size_t len = utf8_sequence_length(std::string_view(p_, end_ - p_), 0);
    if (len == 0) return false;
    p_ += len;
  }
  return false;
}

bool Reader::escape() {
  ++p_;
  if (p_ == end_) return false;
  const char c = *p_++;
  switch (c) {
    case '"':
    case '\\':
    case '/':
      decoded_.push_back(c);
      return true;
    case 'b':
      decoded_.push_back('\b');
      return true;
    case 'f':
      decoded_.push_back('\f');
      return true;
    case 'n':
      decoded_.push_back('\n');
      return true;
    case 'r':
      decoded_.push_back('\r');
      return true;
    case 't':
      decoded_.push_back('\t');
      return true;
    case 'u':
      break;
    default:
      return false;
  }
  uint32_t cp = 0;
  if (!hex4(cp)) return false;
  if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // a low surrogate first
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    uint32_t low = 0;
    if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
    p_ += 2;
    if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
  }
  if (cp < 0x80) {
    decoded_.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    decoded_.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    decoded_.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    decoded_.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    decoded_.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    decoded_.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    decoded_.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    decoded_.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    decoded_.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    decoded_.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return true;
}

bool Reader::hex4(uint32_t& cp) {
  if (end_ - p_ < 4) return false;
  for (int i = 0; i < 4; ++i) {
    const char c = *p_++;
    uint32_t digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      digit = static_cast<uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<uint32_t>(c - 'A' + 10);
    } else {
      return false;
    }
    cp = cp << 4 | digit;
  }
  return true;
}

bool Reader::number(JsonNode& out) {
  auto digit = [&] { return p_ < end_ && *p_ >= '0' && *p_ <= '9'; };
  const char* start = p_;
  const bool negative = *p_ == '-';
  if (negative) ++p_;
  if (p_ < end_ && *p_ == '0') {
    ++p_;
  } else if (digit()) {
    while (digit()) ++p_;
  } else {
    return false;
  }
  bool integral = true;
  if (p_ < end_ && *p_ == '.') {
    integral = false;
    ++p_;
    if (!digit()) return false;
    while (digit()) ++p_;
  }
  if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
    integral = false;
    ++p_;
    if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
    if (!digit()) return false;
    while (digit()) ++p_;
  }
  if (integral) {
    // Out of range falls through to float, as in nlohmann.
    if (negative) {
      int64_t v = 0;
      auto [end, ec] = std::from_chars(start, p_, v);
      if (ec == std::errc() && end == p_) {
        NodeWriter::set_integer(out, v);
        return true;
      }
    } else {
      uint64_t v = 0;
      auto [end, ec] = std::from_chars(start, p_, v);
      if (ec == std::errc() && end == p_) {
        NodeWriter::set_unsigned(out, v);
        return true;
      }
    }
  }
  double d = 0;
  auto [end, ec] = std::from_chars(start, p_, d);
  if (ec != std::errc() || end != p_) {
    // Underflow: the nearest tiny value, as nlohmann stores; overflow is refused below.
    d = std::strtod(std::string(start, p_).c_str(), nullptr);
  }
  if (!std::isfinite(d)) return false;  // nlohmann: "number overflow"
  NodeWriter::set_float(out, d);
  return true;
}

}  // namespace

const JsonNode& JsonNode::operator[](size_t index) const {
  auto it = begin();
  for (size_t i = 0; i < index; ++i) ++it;
  return *it;
}

const JsonNode& JsonNode::back() const {
  const JsonNode* last = this + 1;
  for (auto it = begin(); it != end(); ++it) last = &*it;
  return *last;
}

const JsonNode* JsonNode::find(std::string_view key) const {
  if (!is_object()) return nullptr;
  const JsonNode* found = nullptr;
  for (const JsonNode& child : *this) {
    if (child.key() == key) found = &child;
  }
  return found;
}

void JsonNode::Members::Iterator::settle() {
  for (; node_ != end_; node_ += node_->span_) {
    bool repeated = false;
    for (const JsonNode* later = node_ + node_->span_; later != end_; later += later->span_) {
      if (later->key() == node_->key()) {
        repeated = true;
        break;
      }
    }
    if (!repeated) return;
  }
}

const JsonNode* JsonDoc::parse(std::string_view text) {
  if (nodes_.capacity() > kKeepNodes) std::vector<JsonNode>().swap(nodes_);
  if (decoded_.capacity() > kKeepDecodedBytes) std::string().swap(decoded_);
  nodes_.clear();
  decoded_.clear();
  // A decoded string is never longer than its escaped form, so decoded_ never reallocates and
  // views into it stay valid.
  decoded_.reserve(text.size());
  if (!Reader(text, nodes_, decoded_).read()) {
    nodes_.clear();
    return nullptr;
  }
  return nodes_.data();
}

}  // namespace tokentap::json_util
