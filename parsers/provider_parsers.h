// Internal to parsers/: the per-format LlmParser implementations behind LlmParser::create().
#pragma once

#include <memory>

#include "parsers/llm_parser.h"

namespace tokentap {

std::unique_ptr<LlmParser> make_openai_parser(const Endpoint& endpoint, const ParserLimits& limits);
std::unique_ptr<LlmParser> make_anthropic_parser(const Endpoint& endpoint,
                                                 const ParserLimits& limits);
std::unique_ptr<LlmParser> make_gemini_parser(const Endpoint& endpoint, const ParserLimits& limits);

}  // namespace tokentap
