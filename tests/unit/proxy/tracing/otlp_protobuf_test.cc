#include "proxy/tracing/otlp_protobuf.h"

#include <catch2/catch.hpp>

using nlohmann::json;
using namespace tokentap;

namespace {

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

}  // namespace

TEST_CASE("protowire: varints, fixed64 and fixed32 as the encoding guide shows") {
  std::string out;
  protowire::varint(out, 150);
  CHECK(hex(out) == "9601");
  out.clear();
  protowire::varint_field(out, 3, static_cast<uint64_t>(int64_t{-1}));
  CHECK(hex(out) == "18ffffffffffffffffff01");
  out.clear();
  protowire::fixed64_field(out, 7, 1);
  CHECK(hex(out) == "390100000000000000");
  out.clear();
  protowire::fixed32_field(out, 16, 0x301);
  CHECK(hex(out) == "850101030000");
}

TEST_CASE("protobuf: a span with ids, times, every AnyValue kind, an event and a status") {
  json span = {
      {"traceId", "0102030405060708090a0b0c0d0e0f10"},
      {"spanId", "1112131415161718"},
      {"name", "chat m"},
      {"kind", 3},
      {"startTimeUnixNano", "1"},
      {"endTimeUnixNano", "2"},
      {"attributes",
       json::array({{{"key", "s"}, {"value", {{"stringValue", "v"}}}},
                    {{"key", "b"}, {"value", {{"boolValue", true}}}},
                    {{"key", "i"}, {"value", {{"intValue", "12"}}}},
                    {{"key", "a"},
                     {"value", {{"arrayValue", {{"values", json::array({{{"intValue", "1"}}})}}}}}},
                    {{"key", "y"}, {"value", {{"bytesValue", "AQI="}}}}})},
      {"events", json::array({{{"timeUnixNano", "2"}, {"name", "e"}}})},
      {"status", {{"code", 2}, {"message", "x"}}},
  };
  std::string bytes = otlp_span_protobuf(span);
  CHECK(hex(bytes) ==
        "0a100102030405060708090a0b0c0d0e0f10"  // trace_id
        "12081112131415161718"                  // span_id
        "2a0663686174206d"                      // name
        "3003"                                  // kind
        "390100000000000000"                    // start
        "410200000000000000"                    // end
        "4a080a017312030a0176"                  // s = "v"
        "4a070a016212021001"                    // b = true
        "4a070a01691202180c"                    // i = 12
        "4a0b0a016112062a040a021801"            // a = [1]
        "4a090a017912043a020102"                // y = bytes 01 02
        "5a0c090200000000000000120165"          // event
        "7a051201781802");                      // status
}
