#include "proxy/http/identity.h"

#include <algorithm>

#include "proxy/http/secrets.h"

namespace tokentap {

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
