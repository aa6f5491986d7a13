// Client-chosen identities (the agent and session headers) end up in long-lived stores: the
// session table, the usage store, recent errors, the metric handle caches. bounded_identity() is
// applied to each one before anything stores it, so no stored value is longer than
// kMaxIdentityBytes, and two distinct values never become one: a value that is too long or holds
// a control byte is replaced by "sha256:" followed by the first 32 hex characters (128 bits) of
// its SHA-256, never truncated. Pure, thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tokentap {

inline constexpr size_t kMaxIdentityBytes = 128;
inline constexpr std::string_view kHashedIdentityPrefix = "sha256:";

// `value` unchanged when it has at most kMaxIdentityBytes bytes and no control byte
// (0x00-0x1f, 0x7f); otherwise its 39-byte hashed form.
std::string bounded_identity(std::string_view value);

}  // namespace tokentap
