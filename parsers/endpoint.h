// Which provider API a request is for, decided from its method and request-target alone, so
// the proxy can pick a parser before any body byte arrives.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "parsers/llm_facts.h"

namespace tokentap {

// The wire format of request and response bodies, which can differ from the provider label:
// Anthropic and Gemini both serve OpenAI-format /chat/completions endpoints too.
enum class WireFormat { openai, anthropic, gemini };

struct Endpoint {
  ApiProvider provider = ApiProvider::openai;
  WireFormat format = WireFormat::openai;
  Operation operation = Operation::other;
  std::string path_model;    // Gemini "models/{model}:verb" or the Azure deployment name
  bool path_stream = false;  // Gemini :streamGenerateContent
  bool sse = false;          // Gemini ?alt=sse (otherwise a streamed JSON array)
};

// `configured` is the route's provider, or nullopt to detect it from the path: Gemini's
// ":generateContent"-style verbs, Anthropic's /messages, Azure's /openai/deployments/{d}/,
// and OpenAI otherwise. Only POST requests get an operation other than `other`.
Endpoint classify_endpoint(std::optional<ApiProvider> configured, std::string_view method,
                           std::string_view target);

}  // namespace tokentap
