#include "parsers/endpoint.h"

#include "parsers/json_util.h"

namespace tokentap {
namespace {

constexpr std::string_view kAzureDeployments = "/openai/deployments/";

bool query_has(std::string_view query, std::string_view param) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    if (query.substr(0, amp) == param) return true;
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

struct GeminiVerb {
  std::string_view name;
  Operation operation;
  bool stream;
};

constexpr GeminiVerb kGeminiVerbs[] = {
    {"generateContent", Operation::generate_content, false},
    {"streamGenerateContent", Operation::generate_content, true},
    {"embedContent", Operation::embed_content, false},
    {"batchEmbedContents", Operation::embed_content, false},
    {"countTokens", Operation::count_tokens, false},
};

struct OpenAiSuffix {
  std::string_view suffix;
  Operation operation;
};

// Longest first: "/chat/completions" must win over "/completions".
constexpr OpenAiSuffix kOpenAiSuffixes[] = {
    {"/chat/completions", Operation::chat_completions},
    {"/completions", Operation::completions},
    {"/responses", Operation::responses},
    {"/embeddings", Operation::embeddings},
};

}  // namespace

Endpoint classify_endpoint(std::optional<ApiProvider> configured, std::string_view method,
                           std::string_view target) {
  std::string_view path = target.substr(0, target.find_first_of("?#"));
  std::string_view query;
  if (const size_t q = target.find('?'); q != std::string_view::npos) {
    query = target.substr(q + 1);
    query = query.substr(0, query.find('#'));
  }
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const bool post = method == "POST";

  Endpoint e;
  bool detected = false;
  const std::string_view last_segment = path.substr(path.rfind('/') + 1);
  if (const size_t colon = last_segment.find(':'); colon != std::string_view::npos) {
    const std::string_view verb = last_segment.substr(colon + 1);
    for (const GeminiVerb& g : kGeminiVerbs) {
      if (verb != g.name) continue;
      e.format = WireFormat::gemini;
      e.provider = ApiProvider::gemini;
      e.operation = g.operation;
      e.path_stream = g.stream;
      e.sse = g.stream && query_has(query, "alt=sse");
      e.path_model = json_util::clean_label(last_segment.substr(0, colon));
      detected = true;
      break;
    }
  }
  if (!detected) {
    if (path.ends_with("/messages/count_tokens") || path.ends_with("/messages")) {
      e.format = WireFormat::anthropic;
      e.provider = ApiProvider::anthropic;
      e.operation = path.ends_with("/messages") ? Operation::messages : Operation::count_tokens;
      detected = true;
    }
  }
  if (!detected) {
    for (const OpenAiSuffix& s : kOpenAiSuffixes) {
      if (!path.ends_with(s.suffix)) continue;
      e.format = WireFormat::openai;
      e.operation = s.operation;
      detected = true;
      break;
    }
    if (const size_t d = path.find(kAzureDeployments); d != std::string_view::npos) {
      std::string_view deployment = path.substr(d + kAzureDeployments.size());
      deployment = deployment.substr(0, deployment.find('/'));
      e.path_model = json_util::clean_label(deployment);
      e.provider = ApiProvider::azure_openai;
    } else if (path.substr(0, 8) == "/openai/") {
      e.provider = ApiProvider::azure_openai;
    } else {
      e.provider = ApiProvider::openai;
    }
  }
  if (configured.has_value()) {
    e.provider = *configured;
    if (!detected) {
      // Unknown endpoint: read its bodies (errors, mostly) in the provider's native format.
      switch (*configured) {
        case ApiProvider::anthropic:
          e.format = WireFormat::anthropic;
          break;
        case ApiProvider::gemini:
          e.format = WireFormat::gemini;
          break;
        default:
          e.format = WireFormat::openai;
          break;
      }
    }
  }
  if (!post) {
    e.operation = Operation::other;
    e.path_stream = false;
    e.sse = false;
  }
  return e;
}

}  // namespace tokentap
