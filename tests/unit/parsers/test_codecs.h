// Encoders the parser tests use to produce compressed bodies on the fly (zlib and brotlienc).
#pragma once

#include <zlib.h>

#include <string>
#include <string_view>

#include "parsers/content_decoder.h"

namespace tokentap::test {

// Whole-buffer encoders. `deflate` is zlib-wrapped unless `raw`.
std::string gzip_encode(std::string_view data);
std::string deflate_encode(std::string_view data, bool raw = false);
std::string brotli_encode(std::string_view data);
// identity returns the data unchanged.
std::string encode(ContentEncoding encoding, std::string_view data);

// A gzip stream produced piece by piece, for bodies too large to hold.
class GzipStream {
 public:
  GzipStream();
  ~GzipStream();
  GzipStream(const GzipStream&) = delete;
  GzipStream& operator=(const GzipStream&) = delete;

  // Compresses `data` and replaces `out` with whatever compressed bytes are ready.
  void write(std::string_view data, std::string& out);
  // Ends the stream; `out` gets the remaining bytes and the trailer.
  void close(std::string& out);

 private:
  void run(std::string_view data, int flush, std::string& out);
  z_stream zs_{};
};

}  // namespace tokentap::test
