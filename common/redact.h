// The one credential scrubber: replaces known secrets and anything shaped like a provider API key
// or an HTTP credential in text that leaves the process (error bodies, diagnostics, error_detail,
// provider error messages in the access log and /v1/errors). Pure; safe from any thread.
//
// What counts as a credential, everywhere (bytes are ASCII-matched; "word start" means the byte
// before is not an ASCII letter or digit):
//  - any occurrence of a non-empty known secret passed by the caller, longest first;
//  - at a word start, "sk-" and 8 or more key bytes (OpenAI sk-/sk-proj-, Anthropic sk-ant-,
//    OpenRouter sk-or-, DeepSeek), or "AIza" and 20 or more (Google); key bytes are letters,
//    digits, '-', '_' and '*', the last because providers echo keys masked as "sk-proj-****h3Qa";
//  - at a word start, "Bearer" or "Basic" (any case), one or more spaces, and a credential of 8 or
//    more token68 bytes (RFC 9110 section 11.2) or '*': the credential is replaced, the scheme
//    kept, so a reader still sees which kind of credential was there.
//
// Why these thresholds: two scanners used to disagree (this one wanted sk- + 20 and AIza + 30;
// the provider-message one sk- + 8 and AIza + 20, and knew no Basic). The lower ones win: a
// partial key such as "sk-proj-CANARY123" in a provider message is still part of a secret, and
// no model name, request id or English word starts a word with "sk-" or "AIza" (gpt-4o-mini,
// claude-sonnet-4-5, req_..., chatcmpl-..., "task-sk-12" stay intact). The word-start rule is the
// looser of the two (only a letter or digit before blocks a match), so "OPENAI_API_KEY=sk-..."
// and "x-sk-..." are caught too. Credentials of 8 token68 bytes are the floor both used: shorter
// ones are too weak to matter and "Bearer auth", "Basic tier" are ordinary text.
//
// Deliberately not patterns: keys with no fixed prefix, such as Azure OpenAI's 32 hex digits. A
// 32-hex run is also every request id ("req_e4da3b7f..."), trace id and digest we report, so a
// pattern would blank them all. Such keys are caught only when the caller passes them in
// `secrets`, which is why callers that know the request's key must pass it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tokentap {

// What replaces a secret value in anything we emit.
inline constexpr std::string_view kRedacted = "REDACTED";

// `text` with every credential described above replaced by `marker`. Longer secrets win over
// shorter ones that overlap them. Use it on every message that leaves the process.
std::string scrub(std::string_view text, const std::vector<std::string>& secrets,
                  std::string_view marker = kRedacted);

// Length of a provider-API-key-shaped run (sk-..., AIza...) starting at text[i], or 0.
size_t api_key_length(std::string_view text, size_t i);

}  // namespace tokentap
