#include "parsers/content_decoder.h"

#include <catch2/catch.hpp>
#include <random>
#include <string>

#include "tests/unit/parsers/test_codecs.h"

namespace tokentap {
namespace {

using test::brotli_encode;
using test::deflate_encode;
using test::gzip_encode;

struct Decoded {
  std::string bytes;
  size_t largest_piece = 0;
  ContentDecoder::Status last = ContentDecoder::Status::need_input;
  bool complete = false;
};

// Feeds `encoded` in pieces of `chunk` bytes and collects the output.
Decoded decode(ContentEncoding encoding, const std::string& encoded, size_t chunk,
               size_t max_output = 1024) {
  ContentDecoder decoder(encoding, max_output);
  Decoded d;
  for (size_t pos = 0; pos < encoded.size() || pos == 0; pos += chunk) {
    std::string_view in = std::string_view(encoded).substr(pos, chunk);
    std::string_view out;
    for (;;) {
      d.last = decoder.next(in, out);
      if (d.last != ContentDecoder::Status::output) break;
      d.bytes.append(out);
      d.largest_piece = std::max(d.largest_piece, out.size());
    }
    if (d.last == ContentDecoder::Status::error) break;
    CHECK(in.empty());
    if (encoded.empty()) break;
  }
  d.complete = decoder.complete();
  return d;
}

std::string sample_text(size_t size) {
  std::mt19937 rng(42);
  const std::string words[] = {"data: ", "{\"delta\":", "\"content\"", "token", "\n\n", "usage",
                               " "};
  std::string s;
  while (s.size() < size) s += words[rng() % 7];
  s.resize(size);
  return s;
}

TEST_CASE("content encoding header values", "[decoder]") {
  CHECK(parse_content_encoding("") == ContentEncoding::identity);
  CHECK(parse_content_encoding(" identity ") == ContentEncoding::identity);
  CHECK(parse_content_encoding("GZIP") == ContentEncoding::gzip);
  CHECK(parse_content_encoding("x-gzip") == ContentEncoding::gzip);
  CHECK(parse_content_encoding("deflate") == ContentEncoding::deflate);
  CHECK(parse_content_encoding("br") == ContentEncoding::br);
  CHECK(parse_content_encoding("zstd") == ContentEncoding::unsupported);
  CHECK(parse_content_encoding("gzip, br") == ContentEncoding::unsupported);
}

TEST_CASE("decoders round-trip in any chunking with bounded pieces", "[decoder]") {
  const std::string text = sample_text(300'000);
  struct Case {
    ContentEncoding encoding;
    std::string encoded;
  };
  const Case cases[] = {
      {ContentEncoding::identity, text},
      {ContentEncoding::gzip, gzip_encode(text)},
      {ContentEncoding::deflate, deflate_encode(text)},
      {ContentEncoding::deflate, deflate_encode(text, /*raw=*/true)},
      {ContentEncoding::br, brotli_encode(text)},
  };
  for (const Case& c : cases) {
    for (size_t chunk : {size_t{1}, size_t{7}, size_t{4096}, c.encoded.size()}) {
      INFO(content_encoding_name(c.encoding) << " in chunks of " << chunk);
      const Decoded d = decode(c.encoding, c.encoded, chunk);
      CHECK(d.bytes == text);
      CHECK(d.largest_piece <= 1024);
      CHECK(d.complete);
      CHECK(d.last != ContentDecoder::Status::error);
    }
  }
}

TEST_CASE("gzip members back to back decode as one body", "[decoder]") {
  const std::string encoded = gzip_encode("first ") + gzip_encode("second");
  for (size_t chunk : {size_t{1}, encoded.size()}) {
    const Decoded d = decode(ContentEncoding::gzip, encoded, chunk);
    CHECK(d.bytes == "first second");
    CHECK(d.complete);
  }
}

TEST_CASE("corrupt, truncated and over-long compressed data", "[decoder]") {
  const std::string text = sample_text(20'000);
  SECTION("corrupt bytes are an error, and the decoder stays failed") {
    for (ContentEncoding e : {ContentEncoding::gzip, ContentEncoding::br}) {
      std::string encoded = test::encode(e, text);
      for (size_t i = encoded.size() / 3; i < encoded.size() / 3 + 16; ++i) encoded[i] ^= 0x5A;
      ContentDecoder decoder(e, 1024);
      std::string_view in = encoded;
      std::string_view out;
      ContentDecoder::Status s;
      while ((s = decoder.next(in, out)) == ContentDecoder::Status::output) {
      }
      CHECK(s == ContentDecoder::Status::error);
      CHECK(decoder.error() != nullptr);
      std::string_view more = "more";
      CHECK(decoder.next(more, out) == ContentDecoder::Status::error);
      CHECK_FALSE(decoder.complete());
    }
  }
  SECTION("gzip and deflate hand out what they decoded before corruption, however it was split") {
    for (ContentEncoding e : {ContentEncoding::gzip, ContentEncoding::deflate}) {
      std::string encoded = test::encode(e, text);
      for (size_t i = encoded.size() / 2; i < encoded.size() / 2 + 16; ++i) encoded[i] ^= 0x5A;
      const Decoded whole = decode(e, encoded, encoded.size(), 1 << 20);
      CHECK(whole.last == ContentDecoder::Status::error);
      // The corruption sits halfway, so at least the first third decodes intact.
      REQUIRE(whole.bytes.size() >= text.size() / 3);
      CHECK(text.substr(0, text.size() / 3) == whole.bytes.substr(0, text.size() / 3));
      for (size_t chunk : {size_t{1}, size_t{7}, size_t{500}}) {
        const Decoded split = decode(e, encoded, chunk, 1 << 20);
        CHECK(split.last == ContentDecoder::Status::error);
        CHECK(split.bytes == whole.bytes);
      }
    }
  }
  SECTION("a cut stream is not complete") {
    for (ContentEncoding e :
         {ContentEncoding::gzip, ContentEncoding::deflate, ContentEncoding::br}) {
      const std::string encoded = test::encode(e, text);
      const Decoded d = decode(e, encoded.substr(0, encoded.size() / 2), 100);
      CHECK(d.last == ContentDecoder::Status::need_input);
      CHECK_FALSE(d.complete);
      CHECK(text.substr(0, d.bytes.size()) == d.bytes);
    }
  }
  SECTION("bytes after the end of the stream are an error") {
    for (ContentEncoding e : {ContentEncoding::deflate, ContentEncoding::br}) {
      const Decoded d = decode(e, test::encode(e, text) + "garbage", 1 << 20);
      CHECK(d.last == ContentDecoder::Status::error);
    }
    const Decoded g = decode(ContentEncoding::gzip, gzip_encode(text) + "garbage", 1 << 20);
    CHECK(g.last == ContentDecoder::Status::error);
  }
  SECTION("a one-byte deflate body waits for the second header byte") {
    const std::string encoded = deflate_encode(text);
    ContentDecoder decoder(ContentEncoding::deflate, 1024);
    std::string_view first = std::string_view(encoded).substr(0, 1);
    std::string_view out;
    CHECK(decoder.next(first, out) == ContentDecoder::Status::need_input);
    CHECK(first.empty());
    CHECK_FALSE(decoder.complete());
  }
  SECTION("unsupported encodings report an error") {
    ContentDecoder decoder(ContentEncoding::unsupported);
    std::string_view in = "x";
    std::string_view out;
    CHECK(decoder.next(in, out) == ContentDecoder::Status::error);
  }
}

TEST_CASE("a compression bomb comes out in bounded pieces", "[decoder]") {
  const std::string zeros(64u << 20, '\0');
  for (ContentEncoding e : {ContentEncoding::gzip, ContentEncoding::br}) {
    const std::string encoded = test::encode(e, zeros);
    REQUIRE(encoded.size() < 256u << 10);
    ContentDecoder decoder(e, 64u << 10);
    std::string_view in = encoded;
    std::string_view out;
    size_t total = 0;
    size_t largest = 0;
    while (decoder.next(in, out) == ContentDecoder::Status::output) {
      total += out.size();
      largest = std::max(largest, out.size());
    }
    CHECK(total == zeros.size());
    CHECK(largest <= 64u << 10);
    CHECK(decoder.complete());
  }
}

}  // namespace
}  // namespace tokentap
