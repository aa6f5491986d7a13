// json_util::parse has its own reader (for speed) that must build exactly the DOM
// nlohmann::json::parse builds and reject exactly what it rejects, plus the nesting limit. Checked
// here differentially: hand-picked edge cases, every golden recording (whole bodies and each
// SSE data line), and deterministic random mutations of all of them.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "parsers/json_util.h"

namespace tokentap::test {
namespace {

using Json = nlohmann::json;

// nlohmann's own parse with the nesting limit json_util::parse documents.
Json reference(std::string_view text) {
  size_t depth = 0;
  size_t max_depth = 0;
  bool in_string = false;
  bool escape = false;
  for (char c : text) {
    if (in_string) {
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max_depth = std::max(max_depth, ++depth);
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  if (max_depth > 256) return Json(Json::value_t::discarded);
  return Json::parse(text, nullptr, false);
}

// Equal values of equal types (nlohmann's operator== calls 1 and 1u and 1.0 equal).
bool same(const Json& a, const Json& b) {
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case Json::value_t::object: {
      if (a.size() != b.size()) return false;
      auto i = a.begin();
      auto j = b.begin();
      for (; i != a.end(); ++i, ++j) {
        if (i.key() != j.key() || !same(*i, *j)) return false;
      }
      return true;
    }
    case Json::value_t::array:
      if (a.size() != b.size()) return false;
      for (size_t k = 0; k < a.size(); ++k) {
        if (!same(a[k], b[k])) return false;
      }
      return true;
    case Json::value_t::number_float: {
      const double x = a.get<double>();
      const double y = b.get<double>();
      return std::memcmp(&x, &y, sizeof x) == 0 || (std::isnan(x) && std::isnan(y));
    }
    case Json::value_t::discarded:
      return true;
    default:
      return a == b;
  }
}

void check(std::string_view text) {
  const Json expected = reference(text);
  const Json actual = json_util::parse(text);
  INFO("input (" << text.size() << " bytes): " << std::string(text.substr(0, 300)));
  INFO("expected: " << (expected.is_discarded() ? "discarded" : expected.dump()));
  INFO("actual: " << (actual.is_discarded() ? "discarded" : actual.dump()));
  REQUIRE(same(expected, actual));
}

std::vector<std::string> golden_texts() {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(TOKENTAP_GOLDEN_DIR)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    const std::string body = text.str();
    out.push_back(body);
    std::istringstream lines(body);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("data:", 0) == 0) out.push_back(line.substr(5));
    }
  }
  return out;
}

TEST_CASE("json_util::parse agrees with nlohmann on edge cases", "[json_util]") {
  const char* cases[] = {
      "",
      " ",
      "null",
      "true",
      "false",
      "nul",
      "truex",
      "[true false]",
      "0",
      "-0",
      "-",
      "01",
      "1.",
      "1.5",
      "-1.5e3",
      "1e",
      "1e+",
      "1E-2",
      "1.0",
      ".5",
      "+1",
      "0x10",
      "1e400",
      "-1e400",
      "1e-400",
      "4e-320",
      "9223372036854775807",
      "9223372036854775808",
      "-9223372036854775808",
      "-9223372036854775809",
      "18446744073709551615",
      "18446744073709551616",
      "123456789012345678901234567890",
      "0.1",
      "3.141592653589793238462",
      "\"\"",
      "\"a\"",
      "\"\\u0000\"",
      "\"\\ud83d\\ude00\"",
      "\"\\ud83d\"",
      "\"\\ude00\"",
      "\"\\ud83d\\u0041\"",
      "\"\\uD83D\\uDE00\"",
      "\"\\u00e9\\u20AC\"",
      "\"\\x\"",
      "\"\\u12\"",
      "\"\\u12G4\"",
      "\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"",
      "\"tab\there\"",
      "\"\x7f\"",
      "\"\xc3\xa9\"",
      "\"\xc3\"",
      "\"\xc0\x80\"",
      "\"\xe0\x80\x80\"",
      "\"\xed\xa0\x80\"",
      "\"\xf4\x90\x80\x80\"",
      "\"\xf0\x9f\x98\x80\"",
      "\"\xff\"",
      "\"unterminated",
      "\xEF\xBB\xBF{}",
      "\xEF\xBB{}",
      " \xEF\xBB\xBF{}",
      "{}",
      "[]",
      "{ }",
      "[ ]",
      "{\"a\":1,}",
      "[1,]",
      "[,1]",
      "{\"a\" 1}",
      "{a:1}",
      "{\"a\":1 \"b\":2}",
      "{\"a\":1,\"a\":2}",
      "{\"b\":1,\"a\":{\"c\":[1,2,{\"d\":null}]}}",
      "[1,[2,[3]]]",
      "[1] x",
      "[1]\n\t\r ",
      "\n[1]",
      "{\"a\":[}",
      "[\"a\\\"b\"]",
      "[\"\\u0041\\u0042\"]",
      "{\"\\u0000\":0}",
      "{\"x\":-0.0}",
      "[-0, 0, -1, 1, 1.0, 1e0]",
      "\"a\0b\"",
  };
  for (const char* c : cases) check(c);
  check(std::string_view("[\"a\0b\"]", 7));
  check(std::string_view("[1]\0", 4));
  check(std::string_view("[1] \0garbage", 12));
  check(std::string_view("1\0", 2));
  check(std::string_view("[1,\0]", 5));
  check(std::string_view("\0", 1));
}

TEST_CASE("json_util::parse keeps the nesting limit", "[json_util]") {
  for (size_t depth : {255, 256, 257, 300}) {
    check(std::string(depth, '[') + std::string(depth, ']'));
    std::string objects;
    for (size_t i = 0; i < depth; ++i) objects += "{\"k\":";
    objects += "1" + std::string(depth, '}');
    check(objects);
  }
  CHECK_FALSE(json_util::parse(std::string(256, '[') + std::string(256, ']')).is_discarded());
  CHECK(json_util::parse(std::string(257, '[') + std::string(257, ']')).is_discarded());
}

TEST_CASE("json_util::parse agrees with nlohmann on golden recordings and their mutations",
          "[json_util]") {
  const std::vector<std::string> texts = golden_texts();
  REQUIRE(texts.size() > 100);
  for (const std::string& text : texts) check(text);

  // Mutations that keep most of the structure: flip, insert or delete a byte, cut the text.
  std::mt19937_64 rng(20261122);
  const std::string interesting = "{}[]\",:\\u0123456789.eE+-tfn \x80\xbf\xc3\xed\xf0\x01";
  for (int round = 0; round < 100; ++round) {
    for (const std::string& original : texts) {
      if (original.empty() || original.size() > 64 * 1024) continue;
      std::string text = original;
      const int edits = 1 + static_cast<int>(rng() % 3);
      for (int e = 0; e < edits && !text.empty(); ++e) {
        const size_t at = rng() % text.size();
        const char c = interesting[rng() % interesting.size()];
        switch (rng() % 4) {
          case 0:
            text[at] = c;
            break;
          case 1:
            text.insert(text.begin() + static_cast<long>(at), c);
            break;
          case 2:
            text.erase(at, 1);
            break;
          default:
            text.resize(at);
            break;
        }
      }
      check(text);
    }
  }
}

TEST_CASE("json_util::parse agrees with nlohmann on short random texts", "[json_util]") {
  // Short strings over JSON's own alphabet reach the grammar's corners faster than mutations.
  std::mt19937_64 rng(7);
  const std::string alphabet = "{}[]\",:\\u0D8E9-.eE+ tfnrl\x80\xc3\xa9\xed\xa0\xf4\x8f\x01";
  for (int i = 0; i < 200000; ++i) {
    std::string text(1 + rng() % 10, ' ');
    for (char& c : text) c = alphabet[rng() % alphabet.size()];
    check(text);
  }
}

TEST_CASE("json_util::parse agrees with nlohmann on every byte at every offset of a long string",
          "[json_util]") {
  // Strings are read eight bytes at a time while all eight are plain ASCII: a byte that is not
  // (quote, backslash, control character, UTF-8 lead or continuation, invalid) at each offset of
  // the word, and near the end of the text, must be handled as the byte loop handles it.
  for (int byte = 0; byte < 256; ++byte) {
    for (size_t at = 0; at < 20; ++at) {
      std::string s(20, 'a');
      s[at] = static_cast<char>(byte);
      check("\"" + s + "\"");
      check("[\"" + s + "\",1]");
      check("\"" + s.substr(0, at + 1));  // cut: never closed
      check("\"" + s + "\u00e9\\n\xc3\xa9" + s + "\"");
    }
  }
}

TEST_CASE("one JsonDoc reused for every golden text reads each as nlohmann does", "[json_util]") {
  // The parsers keep one document per stream: what an earlier (larger, escaped) text left in it
  // must not leak into the next one.
  json_util::JsonDoc doc;
  for (const std::string& text : golden_texts()) {
    const json_util::JsonNode* root = doc.parse(text);
    const Json expected = reference(text);
    INFO("input: " << text.substr(0, 300));
    REQUIRE((root == nullptr) == expected.is_discarded());
    if (root != nullptr) REQUIRE(same(expected, json_util::to_dom(*root)));
  }
}

TEST_CASE("JsonNode walks members and elements as nlohmann's accessors do", "[json_util]") {
  json_util::JsonDoc doc;
  const std::string text =
      R"({"a":1,"b":{"x":"\u00e9t\u00e9"},"a":-2,"n":null,"arr":[10,{"k":true},"s",1.5],)"
      R"("f":3.0,"big":18446744073709551615})";
  const json_util::JsonNode* root = doc.parse(text);
  REQUIRE(root != nullptr);
  REQUIRE(root->is_object());
  CHECK(root->size() == 7);  // every member as written, the duplicate included
  // A later duplicate wins.
  REQUIRE(root->find("a") != nullptr);
  CHECK(root->find("a")->integer_number() == -2);
  CHECK(json_util::as_count(*root->find("a")) == std::nullopt);
  // Null members are present but not a value.
  CHECK(root->contains("n"));
  CHECK(json_util::member(*root, "n") == nullptr);
  CHECK(json_util::member(*root, "missing") == nullptr);
  CHECK(json_util::string_member(*json_util::object_member(*root, "b"), "x") ==
        "\xC3\xA9t\xC3\xA9");
  const json_util::JsonNode* arr = json_util::array_member(*root, "arr");
  REQUIRE(arr != nullptr);
  CHECK(arr->size() == 4);
  CHECK((*arr)[0].unsigned_number() == 10);
  CHECK(json_util::true_member((*arr)[1], "k"));
  CHECK((*arr)[2].string() == "s");
  CHECK(arr->back().float_number() == 1.5);
  CHECK(json_util::count_member(*root, "f") == 3u);
  CHECK(json_util::count_member(*root, "big") == UINT64_MAX);
  std::vector<std::string> keys;
  for (const auto& [key, value] : root->items()) {
    keys.emplace_back(key);
    if (key == "a") CHECK(value.integer_number() == -2);
  }
  CHECK(keys == std::vector<std::string>{"b", "a", "n", "arr", "f", "big"});
  // Scalars and empty containers have no children.
  CHECK(doc.parse("[]")->empty());
  size_t members = 0;
  for (const auto& member : doc.parse("{}")->items()) members += member.key.size() + 1;
  CHECK(members == 0);
  CHECK(doc.parse("\"x\"")->size() == 0);
  CHECK(json_util::dump(*doc.parse(R"({"b":[1,2.5],"a":"\"q"})")) == R"({"a":"\"q","b":[1,2.5]})");
  CHECK(doc.parse("{\"a\":") == nullptr);
}

}  // namespace
}  // namespace tokentap::test
