#include "proxy/tracing/otlp_protobuf.h"

#include <bit>
#include <charconv>
#include <cstdint>
#include <optional>

namespace tokentap {

using nlohmann::json;

namespace protowire {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

void varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out += static_cast<char>((value & 0x7f) | 0x80);
    value >>= 7;
  }
  out += static_cast<char>(value);
}

void tag(std::string& out, uint32_t field, uint32_t wire_type) {
  varint(out, (uint64_t{field} << 3) | wire_type);
}

void bytes_field(std::string& out, uint32_t field, std::string_view bytes) {
  tag(out, field, kLen);
  varint(out, bytes.size());
  out.append(bytes);
}

void varint_field(std::string& out, uint32_t field, uint64_t value) {
  tag(out, field, kVarint);
  varint(out, value);
}

void fixed64_field(std::string& out, uint32_t field, uint64_t value) {
  tag(out, field, kFixed64);
  for (int i = 0; i < 8; ++i) out += static_cast<char>((value >> (8 * i)) & 0xff);
}

void fixed32_field(std::string& out, uint32_t field, uint32_t value) {
  tag(out, field, kFixed32);
  for (int i = 0; i < 4; ++i) out += static_cast<char>((value >> (8 * i)) & 0xff);
}

}  // namespace protowire

namespace {

using protowire::bytes_field;
using protowire::fixed32_field;
using protowire::fixed64_field;
using protowire::varint_field;

const json* member(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::optional<std::string_view> string_member(const json& object, const char* key) {
  const json* v = member(object, key);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return std::string_view(v->get_ref<const std::string&>());
}

// An OTLP/JSON integer: a JSON number or a decimal string (64-bit values are strings).
std::optional<int64_t> integer_member(const json& object, const char* key) {
  const json* v = member(object, key);
  if (v == nullptr) return std::nullopt;
  if (v->is_number_integer()) return v->get<int64_t>();
  if (!v->is_string()) return std::nullopt;
  const std::string& s = v->get_ref<const std::string&>();
  int64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size()) {
    uint64_t u = 0;  // fixed64 nanoseconds past INT64_MAX
    auto [uend, uec] = std::from_chars(s.data(), s.data() + s.size(), u);
    if (uec != std::errc() || uend != s.data() + s.size()) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  return n;
}

// Trace and span ids: lower- or upper-case hex in OTLP/JSON, raw bytes on the wire.
std::optional<std::string> hex_bytes(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = digit(hex[i]);
    int lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

// bytesValue: standard base64 (padding optional) in the proto3 JSON mapping.
std::optional<std::string> base64_bytes(std::string_view text) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    if (c >= '0' && c <= '9') v = c - '0' + 52;
    if (c == '+' || c == '-') v = 62;
    if (c == '/' || c == '_') v = 63;
    if (c == '=') break;
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

void id_field(std::string& out, uint32_t field, const json& object, const char* key) {
  auto hex = string_member(object, key);
  if (!hex || hex->empty()) return;
  if (auto raw = hex_bytes(*hex)) bytes_field(out, field, *raw);
}

// Implicit-presence (proto3) scalars: the default value is not written.
void string_field(std::string& out, uint32_t field, const json& object, const char* key) {
  auto s = string_member(object, key);
  if (s && !s->empty()) bytes_field(out, field, *s);
}

void uint_field(std::string& out, uint32_t field, const json& object, const char* key) {
  auto n = integer_member(object, key);
  if (n && *n != 0) varint_field(out, field, static_cast<uint64_t>(*n));
}

void time_field(std::string& out, uint32_t field, const json& object, const char* key) {
  auto n = integer_member(object, key);
  if (n && *n != 0) fixed64_field(out, field, static_cast<uint64_t>(*n));
}

void flags_field(std::string& out, uint32_t field, const json& object) {
  auto n = integer_member(object, "flags");
  if (n && *n != 0) fixed32_field(out, field, static_cast<uint32_t>(*n));
}

std::string key_value(const json& kv);

// AnyValue: a oneof, so the chosen member is written even when it holds its default.
std::string any_value(const json& value) {
  std::string out;
  if (!value.is_object() || value.empty()) return out;
  auto first = value.begin();
  const std::string& name = first.key();
  const json& v = first.value();
  if (name == "stringValue" && v.is_string()) {
    bytes_field(out, 1, v.get_ref<const std::string&>());
  } else if (name == "boolValue" && v.is_boolean()) {
    varint_field(out, 2, v.get<bool>() ? 1 : 0);
  } else if (name == "intValue") {
    if (auto n = integer_member(value, "intValue")) {
      varint_field(out, 3, static_cast<uint64_t>(*n));
    }
  } else if (name == "doubleValue" && v.is_number()) {
    fixed64_field(out, 4, std::bit_cast<uint64_t>(v.get<double>()));
  } else if (name == "arrayValue" || name == "kvlistValue") {
    std::string list;
    if (const json* values = member(v, "values"); values && values->is_array()) {
      for (const json& item : *values) {
        bytes_field(list, 1, name == "arrayValue" ? any_value(item) : key_value(item));
      }
    }
    bytes_field(out, name == "arrayValue" ? 5 : 6, list);
  } else if (name == "bytesValue" && v.is_string()) {
    if (auto raw = base64_bytes(v.get_ref<const std::string&>())) bytes_field(out, 7, *raw);
  }
  return out;
}

std::string key_value(const json& kv) {
  std::string out;
  string_field(out, 1, kv, "key");
  if (const json* value = member(kv, "value")) bytes_field(out, 2, any_value(*value));
  return out;
}

void attributes_field(std::string& out, uint32_t field, const json& object) {
  const json* attrs = member(object, "attributes");
  if (attrs == nullptr || !attrs->is_array()) return;
  for (const json& kv : *attrs) bytes_field(out, field, key_value(kv));
}

std::string event(const json& e) {
  std::string out;
  time_field(out, 1, e, "timeUnixNano");
  string_field(out, 2, e, "name");
  attributes_field(out, 3, e);
  uint_field(out, 4, e, "droppedAttributesCount");
  return out;
}

std::string link(const json& l) {
  std::string out;
  id_field(out, 1, l, "traceId");
  id_field(out, 2, l, "spanId");
  string_field(out, 3, l, "traceState");
  attributes_field(out, 4, l);
  uint_field(out, 5, l, "droppedAttributesCount");
  flags_field(out, 6, l);
  return out;
}

std::string status(const json& s) {
  std::string out;
  string_field(out, 2, s, "message");
  uint_field(out, 3, s, "code");
  return out;
}

void repeated_field(std::string& out, uint32_t field, const json& object, const char* key,
                    std::string (*encode)(const json&)) {
  const json* items = member(object, key);
  if (items == nullptr || !items->is_array()) return;
  for (const json& item : *items) bytes_field(out, field, encode(item));
}

std::string scope(const json& s) {
  std::string out;
  string_field(out, 1, s, "name");
  string_field(out, 2, s, "version");
  attributes_field(out, 3, s);
  uint_field(out, 4, s, "droppedAttributesCount");
  return out;
}

std::string resource(const json& r) {
  std::string out;
  attributes_field(out, 1, r);
  uint_field(out, 2, r, "droppedAttributesCount");
  return out;
}

std::string scope_spans(const json& ss, std::span<const std::string> extra) {
  std::string out;
  if (const json* s = member(ss, "scope")) bytes_field(out, 1, scope(*s));
  repeated_field(out, 2, ss, "spans", [](const json& span) { return otlp_span_protobuf(span); });
  for (const std::string& span : extra) bytes_field(out, 2, span);
  string_field(out, 3, ss, "schemaUrl");
  return out;
}

std::string resource_spans(const json& rs, std::span<const std::string> extra) {
  std::string out;
  if (const json* r = member(rs, "resource")) bytes_field(out, 1, resource(*r));
  if (const json* list = member(rs, "scopeSpans"); list && list->is_array()) {
    bool first = true;
    for (const json& ss : *list) {
      bytes_field(out, 2, scope_spans(ss, first ? extra : std::span<const std::string>{}));
      first = false;
    }
  }
  string_field(out, 3, rs, "schemaUrl");
  return out;
}

}  // namespace

std::string otlp_span_protobuf(const json& span) {
  std::string out;
  id_field(out, 1, span, "traceId");
  id_field(out, 2, span, "spanId");
  string_field(out, 3, span, "traceState");
  id_field(out, 4, span, "parentSpanId");
  string_field(out, 5, span, "name");
  uint_field(out, 6, span, "kind");
  time_field(out, 7, span, "startTimeUnixNano");
  time_field(out, 8, span, "endTimeUnixNano");
  attributes_field(out, 9, span);
  uint_field(out, 10, span, "droppedAttributesCount");
  repeated_field(out, 11, span, "events", event);
  uint_field(out, 12, span, "droppedEventsCount");
  repeated_field(out, 13, span, "links", link);
  uint_field(out, 14, span, "droppedLinksCount");
  if (const json* s = member(span, "status"); s && s->is_object()) {
    bytes_field(out, 15, status(*s));
  }
  flags_field(out, 16, span);
  return out;
}

std::string otlp_request_protobuf(const json& request, std::span<const std::string> encoded_spans) {
  std::string out;
  if (const json* list = member(request, "resourceSpans"); list && list->is_array()) {
    bool first = true;
    for (const json& rs : *list) {
      bytes_field(out, 1,
                  resource_spans(rs, first ? encoded_spans : std::span<const std::string>{}));
      first = false;
    }
  }
  return out;
}

}  // namespace tokentap
