#include "parsers/json_splitter.h"

#include <catch2/catch.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace tokentap {
namespace {

struct Part {
  std::string key;
  std::string value;
  bool oversized = false;
  bool operator==(const Part& o) const {
    return key == o.key && value == o.value && oversized == o.oversized;
  }
};

struct Split {
  std::vector<Part> parts;
  bool error = false;
  bool complete = false;
};

Split split(const std::vector<std::string>& chunks, size_t max = 1 << 20) {
  JsonSplitter splitter(max);
  Split out;
  JsonPart part;
  for (const std::string& chunk : chunks) {
    std::string_view in = chunk;
    for (;;) {
      const JsonSplitter::Status s = splitter.next(in, part);
      if (s == JsonSplitter::Status::part) {
        out.parts.push_back({std::string(part.key), std::string(part.value), part.oversized});
        continue;
      }
      if (s == JsonSplitter::Status::error) out.error = true;
      break;
    }
    if (out.error) break;
  }
  out.complete = splitter.finish();
  return out;
}

Split split_every_way(const std::string& s, size_t max = 1 << 20) {
  const Split whole = split({s}, max);
  for (size_t k = 0; k <= s.size(); ++k) {
    const Split two = split({s.substr(0, k), s.substr(k)}, max);
    INFO("split at " << k);
    REQUIRE(two.parts == whole.parts);
    REQUIRE(two.error == whole.error);
    REQUIRE(two.complete == whole.complete);
  }
  std::vector<std::string> bytes;
  for (char c : s) bytes.emplace_back(1, c);
  const Split one_by_one = split(bytes, max);
  REQUIRE(one_by_one.parts == whole.parts);
  REQUIRE(one_by_one.complete == whole.complete);
  return whole;
}

TEST_CASE("splitter: members of an object", "[json]") {
  const Split s = split_every_way(
      " {\"model\" : \"gpt-4o\", \"n\":-1.5e3,\"ok\":true,\"nil\":null,"
      "\"obj\":{\"a\":[1,{\"b\":\"}]\\\"\"}]},\"s\":\"x\\\\\"} \n");
  CHECK(s.parts == std::vector<Part>{{"model", "\"gpt-4o\""},
                                     {"n", "-1.5e3"},
                                     {"ok", "true"},
                                     {"nil", "null"},
                                     {"obj", "{\"a\":[1,{\"b\":\"}]\\\"\"}]}"},
                                     {"s", "\"x\\\\\""}});
  CHECK(s.complete);
  CHECK_FALSE(s.error);
}

TEST_CASE("splitter: elements of a streamed array", "[json]") {
  const Split s = split_every_way("\xEF\xBB\xBF[{\n  \"a\": 1\n}\n,\r\n{\"b\": [2]}\n]\n");
  CHECK(s.parts == std::vector<Part>{{"", "{\n  \"a\": 1\n}"}, {"", "{\"b\": [2]}"}});
  CHECK(s.complete);
  CHECK(split_every_way("[]").complete);
  CHECK(split_every_way("{}").complete);
}

TEST_CASE("splitter: quotes after runs of backslashes, split anywhere", "[json]") {
  const std::string text =
      R"({"a":"\\","b":"x\\\"y","c":"\\\\\\\"","d":"\"\"","e":["\\",{"f":"]\"}"}],"g":"\\\\"})";
  const Split s = split_every_way(text);
  CHECK(s.parts == std::vector<Part>{{"a", R"("\\")"},
                                     {"b", R"("x\\\"y")"},
                                     {"c", R"("\\\\\\\"")"},
                                     {"d", R"("\"\"")"},
                                     {"e", R"(["\\",{"f":"]\"}"}])"},
                                     {"g", R"("\\\\")"}});
  CHECK(s.complete);
  for (const Part& part : s.parts) CHECK_NOTHROW(nlohmann::json::parse(part.value));
}

// Random documents whose strings are full of quotes, backslashes and brackets, fed in random
// pieces: every part must be exactly the member nlohmann wrote.
TEST_CASE("splitter: random documents agree with nlohmann in random pieces", "[json]") {
  std::mt19937 rng(20261205);
  const std::string alphabet = "a\"\\/{}[],: \n\t\xc3\xa9";
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  auto random_string = [&] {
    std::string out;
    for (size_t i = pick(12); i > 0; --i) {
      const char c = alphabet[pick(alphabet.size())];
      if (static_cast<unsigned char>(c) >= 0x80) {
        out += "\xc3\xa9";
      } else {
        out += c;
      }
    }
    return out;
  };
  std::function<nlohmann::json(int)> random_value = [&](int depth) -> nlohmann::json {
    switch (depth > 3 ? pick(3) : pick(5)) {
      case 0:
        return random_string();
      case 1:
        return static_cast<int>(pick(1000)) - 500;
      case 2:
        return pick(2) == 0 ? nlohmann::json(nullptr) : nlohmann::json(true);
      case 3: {
        nlohmann::json a = nlohmann::json::array();
        for (size_t i = pick(4); i > 0; --i) a.push_back(random_value(depth + 1));
        return a;
      }
      default: {
        nlohmann::json o = nlohmann::json::object();
        for (size_t i = pick(4); i > 0; --i) o[random_string()] = random_value(depth + 1);
        return o;
      }
    }
  };
  for (int round = 0; round < 500; ++round) {
    nlohmann::json doc = nlohmann::json::object();
    for (size_t i = pick(6) + 1; i > 0; --i) doc[random_string()] = random_value(0);
    const std::string text = doc.dump(pick(2) == 0 ? -1 : 1);
    std::vector<std::string> chunks;
    for (size_t at = 0; at < text.size();) {
      const size_t n = std::min(text.size() - at, pick(17) + 1);
      chunks.push_back(text.substr(at, n));
      at += n;
    }
    const Split s = split(chunks);
    INFO(text);
    REQUIRE(s.complete);
    REQUIRE(s.parts.size() == doc.size());
    for (const Part& part : s.parts) {
      const auto key = nlohmann::json::parse("\"" + part.key + "\"").get<std::string>();
      REQUIRE(doc.contains(key));
      CHECK(nlohmann::json::parse(part.value) == doc[key]);
    }
  }
}

TEST_CASE("splitter: a part within one input is a view into it", "[json]") {
  const std::string text = R"({"a":{"x":1},"b":2})";
  JsonSplitter splitter;
  std::string_view in = text;
  JsonPart part;
  REQUIRE(splitter.next(in, part) == JsonSplitter::Status::part);
  CHECK(part.value.data() == text.data() + 5);
  CHECK(part.value == R"({"x":1})");
}

TEST_CASE("splitter: oversized parts are flagged whatever the split", "[json]") {
  const std::string big = "\"" + std::string(100, 'x') + "\"";
  const Split s = split_every_way(
      "{\"big\":" + big + ",\"small\":1,\"edge\":\"" + std::string(30, 'y') + "\"}", 32);
  CHECK(s.parts == std::vector<Part>{{"big", "", true},
                                     {"small", "1", false},
                                     {"edge", "\"" + std::string(30, 'y') + "\"", false}});
  CHECK(s.complete);
}

TEST_CASE("splitter: declined members are skipped without buffering", "[json]") {
  const std::string text = "{\"data\":[\"" + std::string(1000, 'x') + "\"],\"usage\":{\"n\":1}}";
  for (size_t chunk : {size_t{1}, size_t{64}, text.size()}) {
    JsonSplitter splitter(16, [](std::string_view key) { return key == "usage"; });
    std::vector<Part> parts;
    JsonPart part;
    for (size_t pos = 0; pos < text.size(); pos += chunk) {
      std::string_view in = std::string_view(text).substr(pos, chunk);
      while (splitter.next(in, part) == JsonSplitter::Status::part) {
        parts.push_back({std::string(part.key), std::string(part.value), part.oversized});
      }
    }
    CHECK(splitter.finish());
    CHECK(parts == std::vector<Part>{{"usage", "{\"n\":1}"}});
  }
}

TEST_CASE("splitter: structural errors", "[json]") {
  for (const char* bad : {"{\"a\" 1}", "{\"a\":1 \"b\":2}", "{\"a\":[1}]}", "[1,]", "{,}",
                          "\"scalar\"", "42", "{\"a\":1} x", "{\"a\":1}}", "<html>", "{\"a\":@}"}) {
    INFO(bad);
    const Split s = split({bad});
    CHECK(s.error);
    CHECK_FALSE(s.complete);
  }
  const Split truncated = split({"{\"a\":1,\"b\":{\"c\""});
  CHECK_FALSE(truncated.error);
  CHECK_FALSE(truncated.complete);
  CHECK(truncated.parts == std::vector<Part>{{"a", "1"}});
  CHECK_FALSE(split({""}).complete);
  CHECK(split({std::string(600, '[') + std::string(600, ']')}).error);  // nested too deeply
}

TEST_CASE("splitter: helpers over a whole buffer", "[json]") {
  std::vector<std::string> keys;
  CHECK(for_each_member(R"({"a":1,"b":[2,3]})",
                        [&](std::string_view k, std::string_view) { keys.emplace_back(k); }));
  CHECK(keys == std::vector<std::string>{"a", "b"});
  CHECK_FALSE(for_each_member("[1,2]", [](std::string_view, std::string_view) {}));
  CHECK_FALSE(for_each_member("{\"a\":", [](std::string_view, std::string_view) {}));
  std::vector<std::string> elements;
  CHECK(for_each_element("[1, \"x\", {}]", [&](std::string_view v) { elements.emplace_back(v); }));
  CHECK(elements == std::vector<std::string>{"1", "\"x\"", "{}"});
  CHECK_FALSE(for_each_element("{}", [](std::string_view) {}));
}

}  // namespace
}  // namespace tokentap
