// Workloads for parser_bench: synthetic provider requests and responses, generated from a
// seed, each with the LlmFacts a parser must extract from it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/llm_parser.h"

namespace tokentap::bench {

using Pieces = std::vector<std::string_view>;

// Prints `why` and ends the program with exit status 1.
[[noreturn]] inline void die(const std::string& why) {
  std::fprintf(stderr, "parser_bench: %s\n", why.c_str());
  std::exit(EXIT_FAILURE);
}

// splitmix64: the same workloads on every platform and standard library.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t between(size_t lo, size_t hi) { return lo + static_cast<size_t>(next() % (hi - lo + 1)); }
  template <class T, size_t N>
  const T& pick(const T (&items)[N]) {
    return items[between(0, N - 1)];
  }

 private:
  uint64_t state_;
};

struct RequestWorkload {
  std::optional<ApiProvider> provider;
  std::string target;
  std::string body;
  size_t messages = 0;
  LlmFacts expected;
};

struct StreamWorkload {
  std::optional<ApiProvider> provider;
  std::string target;
  std::string content_type;
  std::string body;   // the response body as the provider sends it (before any gzip)
  size_t events = 0;  // SSE events, or elements of the JSON array
  LlmFacts expected;
  std::string filtered;  // OpenAI: the body as the client sees it (no usage chunk, no usage:null)
};

// Keeps the compiler from proving a baseline's result unused and dropping the work.
inline void keep(const void* p) { asm volatile("" : : "r"(p) : "memory"); }

// Pieces of 1-4 KiB, the sizes a proxy reads from a TLS stream.
Pieces split(std::string_view body, Rng& rng);

// Gzip as a streaming server sends it: a sync flush after every event.
std::string gzip_per_event(std::string_view body);

// How many tool definitions every generated request carries.
size_t tool_spec_count();

// Request bodies of exactly `target` bytes.
RequestWorkload openai_request(size_t target, Rng& rng);
RequestWorkload anthropic_request(size_t target, Rng& rng);

// Streams with `content_events` text and tool-call deltas (Gemini: `chunks` array elements).
StreamWorkload openai_stream(size_t content_events, Rng& rng);
StreamWorkload anthropic_stream(size_t content_events, Rng& rng);
StreamWorkload gemini_stream(size_t chunks, Rng& rng);

// The parser after the request body / the whole response fed in `pieces`.
std::unique_ptr<LlmParser> parse_request(const RequestWorkload& w);
std::unique_ptr<LlmParser> parse_response(const StreamWorkload& w, const Pieces& pieces,
                                          std::string_view encoding);

// Empty when the parser reproduced `expected`, else what differs.
std::string compare_facts(const LlmParser* parser, const LlmFacts& expected);

}  // namespace tokentap::bench
