// The credential scrubber: replaces known secrets and anything shaped like a provider API key or
// an HTTP credential in text that leaves the process. Pure; safe from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tokentap {

// What replaces a secret value in anything we emit.
inline constexpr std::string_view kRedacted = "REDACTED";

// `text` with every occurrence of any non-empty string in `secrets`, and anything that looks like
// a provider API key (sk-..., sk-ant-..., AIza...) or a bearer token, replaced by REDACTED.
// Longer secrets win over shorter ones that overlap them. Use it on every message that leaves the
// process: error bodies sent to clients, diagnostic logs, error_detail.
std::string scrub(std::string_view text, const std::vector<std::string>& secrets);

// Length of a provider-API-key-shaped run (sk-..., AIza...) starting at text[i], or 0.
size_t api_key_length(std::string_view text, size_t i);

}  // namespace tokentap
