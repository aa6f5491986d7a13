#include "tests/unit/parsers/test_codecs.h"

#include <brotli/encode.h>

#include <stdexcept>

namespace tokentap::test {
namespace {

std::string zlib_compress(std::string_view data, int window_bits) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    throw std::runtime_error("deflateInit2 failed");
  }
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate did not finish");
  return out;
}

}  // namespace

std::string gzip_encode(std::string_view data) { return zlib_compress(data, 16 + MAX_WBITS); }

std::string deflate_encode(std::string_view data, bool raw) {
  return zlib_compress(data, raw ? -MAX_WBITS : MAX_WBITS);
}

std::string brotli_encode(std::string_view data) {
  std::string out(BrotliEncoderMaxCompressedSize(data.size()) + 64, '\0');
  size_t size = out.size();
  if (BrotliEncoderCompress(BROTLI_DEFAULT_QUALITY, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_TEXT,
                            data.size(), reinterpret_cast<const uint8_t*>(data.data()), &size,
                            reinterpret_cast<uint8_t*>(out.data())) != BROTLI_TRUE) {
    throw std::runtime_error("BrotliEncoderCompress failed");
  }
  out.resize(size);
  return out;
}

std::string encode(ContentEncoding encoding, std::string_view data) {
  switch (encoding) {
    case ContentEncoding::gzip:
      return gzip_encode(data);
    case ContentEncoding::deflate:
      return deflate_encode(data);
    case ContentEncoding::br:
      return brotli_encode(data);
    case ContentEncoding::identity:
    case ContentEncoding::unsupported:
      break;
  }
  return std::string(data);
}

GzipStream::GzipStream() {
  if (deflateInit2(&zs_, 1, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2 failed");
  }
}

GzipStream::~GzipStream() { deflateEnd(&zs_); }

void GzipStream::write(std::string_view data, std::string& out) { run(data, Z_NO_FLUSH, out); }

void GzipStream::close(std::string& out) { run({}, Z_FINISH, out); }

void GzipStream::run(std::string_view data, int flush, std::string& out) {
  out.clear();
  zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs_.avail_in = static_cast<uInt>(data.size());
  char buffer[16384];
  for (;;) {
    zs_.next_out = reinterpret_cast<Bytef*>(buffer);
    zs_.avail_out = sizeof(buffer);
    const int rc = deflate(&zs_, flush);
    out.append(buffer, sizeof(buffer) - zs_.avail_out);
    if (rc == Z_STREAM_END) return;
    if (rc != Z_OK && rc != Z_BUF_ERROR) throw std::runtime_error("deflate failed");
    if (zs_.avail_out != 0 && (flush == Z_NO_FLUSH || rc == Z_BUF_ERROR)) return;
  }
}

}  // namespace tokentap::test
