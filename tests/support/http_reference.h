// A plain reading of an HTTP/1.1 byte stream with llhttp's default (strict) settings, the
// library and settings the proxy itself parses with, except that 204 and 304 responses, like
// responses to HEAD, have no body (RFC 9112 section 6.3). The proxy fuzz targets use it as the
// oracle for what the client sent and what the upstream answered, and the fake upstream uses it
// to read what the proxy forwarded. It keeps everything, so it is for test-sized streams only.
#pragma once

#include <llhttp.h>

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tokentap::fuzz {

struct HttpMessage {
  std::string method;                                         // requests
  std::string url;                                            // requests
  int status = 0;                                             // responses
  std::vector<std::pair<std::string, std::string>> headers;   // names as written
  std::vector<std::pair<std::string, std::string>> trailers;  // after a chunked body
  std::string body;                                           // de-chunked
  bool chunked = false;
  bool has_content_length = false;
  bool keep_alive = false;
  bool headers_complete = false;
  bool complete = false;

  // The values of every header named `name` (case-insensitive).
  std::vector<std::string> values(std::string_view name) const;
};

class HttpReader {
 public:
  // For responses, `is_head(i)` says whether the i-th final (non-1xx) response answers a HEAD
  // request, which has no body whatever its headers say.
  explicit HttpReader(llhttp_type_t type, std::function<bool(size_t)> is_head = {});
  HttpReader(const HttpReader&) = delete;
  HttpReader& operator=(const HttpReader&) = delete;

  // Parses more bytes; does nothing once the stream failed or was upgraded.
  void feed(std::string_view bytes);
  // The end of the stream: completes a close-delimited body, or marks the last message cut.
  void finish();

  // Called with each message as soon as it is complete.
  std::function<void(const HttpMessage&)> on_complete;

  // Every message begun, in order; only the last one can be incomplete.
  std::vector<HttpMessage> messages;
  llhttp_errno_t error = HPE_OK;  // the first parse error; HPE_OK when none
  std::string error_reason;
  bool upgraded = false;   // llhttp stopped at an Upgrade/CONNECT: the rest is not HTTP
  bool truncated = false;  // the stream ended inside a message
  size_t final_responses = 0;

  std::vector<HttpMessage> complete_messages() const;
  // Complete responses with a status of 200 or more.
  std::vector<HttpMessage> final_messages() const;

 private:
  friend struct HttpReaderCallbacks;
  static const llhttp_settings_t kSettings;

  llhttp_t parser_{};
  std::function<bool(size_t)> is_head_;
  bool in_value_ = false;
  bool failed_ = false;
};

std::string describe(const HttpMessage& m);

}  // namespace tokentap::fuzz
