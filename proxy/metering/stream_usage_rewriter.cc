#include "proxy/metering/stream_usage_rewriter.h"

#include "common/text.h"

namespace tokentap {

std::optional<std::string> StreamUsageRewriter::replace_request_body(const LlmFacts& f,
                                                                     std::string_view body) {
  bool openai_format = f.provider == ApiProvider::openai ||
                       f.provider == ApiProvider::azure_openai ||
                       f.provider == ApiProvider::openai_compatible;
  if (!openai_format || f.operation != Operation::chat_completions || !f.stream ||
      f.stream_options_present) {
    return std::nullopt;
  }
  std::optional<std::string> rewritten = add_stream_usage_option(body);
  if (rewritten) added_ = true;
  return rewritten;
}

void StreamUsageRewriter::on_response_headers(int status, const HeaderList& headers) {
  if (!added_ || status < 200 || status >= 300) return;
  // The filter reads SSE text: only an identity-encoded event stream can be filtered.
  for (const Header& h : headers) {
    if (iequals(h.name, "content-encoding") && !iequals(h.value, "identity")) {
      return;
    }
  }
  filtering_ = true;
}

}  // namespace tokentap
