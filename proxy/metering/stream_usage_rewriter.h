// The one sanctioned change to bytes on the wire (DESIGN §3.2), kept apart from the observe-only
// metering: an OpenAI-format chat/completions stream whose client did not ask for usage gets
// stream_options.include_usage (so the provider reports exact usage), and the usage-only chunk
// this adds is filtered back out of what the client receives (parsers/stream_options.h).
// One instance per request, used on the worker's loop thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "parsers/llm_facts.h"
#include "parsers/stream_options.h"
#include "proxy/http/headers.h"

namespace tokentap {

class StreamUsageRewriter {
 public:
  // The body to forward instead of `body`, given the request's facts parsed from it; nullopt to
  // forward the client's bytes (not such a stream, or stream_options already present).
  std::optional<std::string> replace_request_body(const LlmFacts& request, std::string_view body);
  // Decides, from the response head, whether the response body goes through filter().
  void on_response_headers(int status, const HeaderList& headers);

  bool added() const { return added_; }
  bool filters_response() const { return filtering_; }
  void filter(std::string_view in, std::string& out) { filter_.feed(in, out); }
  void finish(std::string& out) { filter_.finish(out); }

 private:
  bool added_ = false;
  bool filtering_ = false;
  UsageChunkFilter filter_;
};

}  // namespace tokentap
