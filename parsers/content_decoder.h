// Streaming Content-Encoding decoder for the observation copy of a response body: identity,
// gzip (including concatenated members), deflate (zlib-wrapped, or raw as some servers send
// it) and br. Output comes in pieces of at most max_output_bytes, so a small compressed
// chunk can never make us hold a large decompressed one. Errors are reported, never thrown.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace tokentap {

enum class ContentEncoding { identity, gzip, deflate, br, unsupported };

// Parses a Content-Encoding header value: "", "identity", "gzip", "x-gzip", "deflate", "br"
// (case-insensitive, surrounding whitespace ignored). A list of several codings, or any
// other coding, is `unsupported`.
ContentEncoding parse_content_encoding(std::string_view header_value);
const char* content_encoding_name(ContentEncoding e);

class ContentDecoder {
 public:
  enum class Status {
    output,      // `output` holds decoded bytes; call again (input may still be pending)
    need_input,  // all of `input` was consumed and nothing more can be produced yet
    end,         // the encoded stream is complete; further bytes are an error
    error,       // corrupt data (see error()); the decoder stays in this state
  };

  explicit ContentDecoder(ContentEncoding encoding, size_t max_output_bytes = 64u << 10);
  ~ContentDecoder();
  ContentDecoder(const ContentDecoder&) = delete;
  ContentDecoder& operator=(const ContentDecoder&) = delete;

  // Decodes from the front of `input` (advancing it past what was consumed) into at most
  // max_output_bytes of `output`, which stays valid until the next call.
  Status next(std::string_view& input, std::string_view& output);

  // True when the encoded stream ended properly (identity: always). Call at end of body.
  bool complete() const;
  // A short static description of the failure, or nullptr.
  const char* error() const { return error_; }

  class Impl;  // one per encoding; opaque outside content_decoder.cc

 private:
  ContentEncoding encoding_;
  size_t max_output_;
  std::unique_ptr<Impl> impl_;
  const char* error_ = nullptr;
};

}  // namespace tokentap
