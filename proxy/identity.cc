#include "proxy/identity.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>

namespace tokentap {

std::string sha256_hex(std::string_view data, size_t hex_chars) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_len = 0;
  // Fetched once: EVP_sha256() in EVP_Digest looks the algorithm up again on every call.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (sha256 == nullptr ||
      EVP_Digest(data.data(), data.size(), digest.data(), &digest_len, sha256, nullptr) != 1) {
    return "";
  }
  static constexpr char kHex[] = "0123456789abcdef";
  hex_chars = std::min<size_t>(hex_chars, 2 * size_t{digest_len});
  std::string out;
  out.reserve(hex_chars);
  for (size_t i = 0; i < hex_chars; ++i) {
    unsigned char byte = digest[i / 2];
    out.push_back(kHex[i % 2 == 0 ? byte >> 4 : byte & 0xf]);
  }
  return out;
}

std::string bounded_identity(std::string_view value) {
  bool plain =
      value.size() <= kMaxIdentityBytes && std::none_of(value.begin(), value.end(), [](char c) {
        auto b = static_cast<unsigned char>(c);
        return b < 0x20 || b == 0x7f;
      });
  if (plain) return std::string(value);
  return std::string(kHashedIdentityPrefix) + sha256_hex(value, 32);
}

}  // namespace tokentap
