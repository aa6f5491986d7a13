#include "proxy/http/secrets.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>

#include "common/text.h"

namespace tokentap {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The query part of a request-target: after the first '?', up to any '#'. Its offset in
// `target` is returned through `offset` (target.size() when there is no query).
std::string_view query_of(std::string_view target, size_t& offset) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) {
    offset = target.size();
    return {};
  }
  offset = q + 1;
  std::string_view query = target.substr(offset);
  return query.substr(0, query.find('#'));
}

// Calls fn(name, value, value_offset_in_query) for each '&'-separated parameter; a parameter
// without '=' has an empty value.
template <typename Fn>
void for_each_param(std::string_view query, Fn&& fn) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t end = query.find('&', pos);
    if (end == std::string_view::npos) end = query.size();
    std::string_view param = query.substr(pos, end - pos);
    size_t eq = param.find('=');
    if (eq == std::string_view::npos) {
      fn(param, std::string_view{}, end);
    } else {
      fn(param.substr(0, eq), param.substr(eq + 1), pos + eq + 1);
    }
    pos = end + 1;
  }
}

}  // namespace

bool is_secret_header(std::string_view name) {
  static constexpr std::array<std::string_view, 7> kNames = {
      "authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key",
      "cookie",        "set-cookie"};
  return std::any_of(kNames.begin(), kNames.end(),
                     [name](std::string_view n) { return iequals(name, n); });
}

bool is_secret_query_param(std::string_view name) {
  static constexpr std::array<std::string_view, 4> kNames = {"key", "api_key", "api-key",
                                                             "access_token"};
  std::string decoded = percent_decode(name, true);
  return std::any_of(kNames.begin(), kNames.end(),
                     [&decoded](std::string_view n) { return iequals(decoded, n); });
}

std::string extract_api_key(const HeaderList& headers, std::string_view target) {
  if (const std::string* auth = find_header(headers, "authorization")) {
    // Split before trimming the end, so that "Bearer " is a scheme without credentials.
    std::string_view value = *auth;
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    size_t space = value.find_first_of(" \t");
    std::string_view credentials =
        trim(space == std::string_view::npos ? value : value.substr(space + 1));
    if (!credentials.empty()) return std::string(credentials);
  }
  for (std::string_view name : {"x-api-key", "api-key", "x-goog-api-key"}) {
    if (const std::string* v = find_header(headers, name)) {
      std::string_view value = trim(*v);
      if (!value.empty()) return std::string(value);
    }
  }
  size_t offset = 0;
  std::string found;
  for_each_param(query_of(target, offset),
                 [&found](std::string_view name, std::string_view value, size_t) {
                   if (found.empty() && !value.empty() && is_secret_query_param(name)) {
                     found = percent_decode(value, true);
                   }
                 });
  return found;
}

bool sha256(std::string_view data, std::array<unsigned char, 32>& digest) {
  // Fetched once: EVP_sha256() in EVP_Digest looks the algorithm up again on every call.
  static EVP_MD* const algorithm = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  unsigned int digest_len = 0;
  return algorithm != nullptr && EVP_MD_get_size(algorithm) == 32 &&
         EVP_Digest(data.data(), data.size(), digest.data(), &digest_len, algorithm, nullptr) == 1;
}

std::string sha256_hex(std::string_view data, size_t hex_chars) {
  std::array<unsigned char, 32> digest{};
  if (!sha256(data, digest)) return "";
  static constexpr char kHex[] = "0123456789abcdef";
  hex_chars = std::min<size_t>(hex_chars, 2 * digest.size());
  std::string out;
  out.reserve(hex_chars);
  for (size_t i = 0; i < hex_chars; ++i) {
    unsigned char byte = digest[i / 2];
    out.push_back(kHex[i % 2 == 0 ? byte >> 4 : byte & 0xf]);
  }
  return out;
}

std::string key_id(std::string_view key) {
  if (key.empty()) return "";
  // An agent sends the same key on every request: the last key and its id are kept per thread
  // (a worker's loop), so the hash runs once per key change instead of once per request. The key
  // stays only in this process's memory, as it does in the request buffers.
  thread_local std::string last_key;
  thread_local std::string last_id;
  if (key != last_key || last_id.empty()) {
    std::string id = sha256_hex(key, 8);
    if (id.empty()) return id;
    last_key.assign(key);
    last_id = std::move(id);
  }
  return last_id;
}

std::string redact_target(std::string_view target) {
  size_t query_offset = 0;
  std::string_view query = query_of(target, query_offset);
  // (offset in target, length) of each value to replace, in order.
  std::vector<std::pair<size_t, size_t>> spans;
  for_each_param(query, [&](std::string_view name, std::string_view value, size_t value_offset) {
    if (!value.empty() && is_secret_query_param(name)) {
      spans.emplace_back(query_offset + value_offset, value.size());
    }
  });
  if (spans.empty()) return std::string(target);
  std::string out;
  out.reserve(target.size());
  size_t pos = 0;
  for (const auto& [offset, length] : spans) {
    out.append(target.substr(pos, offset - pos));
    out.append(kRedacted);
    pos = offset + length;
  }
  out.append(target.substr(pos));
  return out;
}

std::string percent_decode(std::string_view s, bool plus_as_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      int hi = hex_value(s[i + 1]);
      int lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_as_space && c == '+' ? ' ' : c);
  }
  return out;
}

}  // namespace tokentap
