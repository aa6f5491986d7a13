// ContentDecoder (parsers/content_decoder.h): arbitrary bytes decoded as each encoding give the
// same output and outcome however they are split, no step outputs more than max_output_bytes,
// and every call makes progress; bytes we compress ourselves decode back exactly, also as
// concatenated gzip members. parse_content_encoding() only accepts the names it documents.
//
// Input: [mode] [max output] [level] [4 cuts: 2 bytes each] [data...]
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "parsers/content_decoder.h"
#include "tests/support/fuzz_support.h"

namespace tokentap::fuzz {
namespace {

constexpr size_t kMaxOutputs[] = {1, 7, 64, 4096, 64u << 10};

struct Decoded {
  std::string output;
  bool error = false;
  bool ended = false;
  bool complete = false;
  // Whether `end` came before an error depends on where the bytes after the end were cut.
  bool operator==(const Decoded& o) const {
    return output == o.output && error == o.error && complete == o.complete &&
           (error || ended == o.ended);
  }
};

// The same decoding, however the input was split. One exception: libbrotli flushes the
// window it has decoded when it runs out of input, and drops what it has not flushed when it
// meets corrupt data, so before a brotli error a split input may have produced more output.
// Both outputs are then still the same stream: one is a prefix of the other.
bool same_decoding(ContentEncoding encoding, const Decoded& a, const Decoded& b) {
  if (a == b) return true;
  if (encoding != ContentEncoding::br || !a.error || !b.error) return false;
  const size_t common = std::min(a.output.size(), b.output.size());
  return a.output.compare(0, common, b.output, 0, common) == 0;
}

std::string describe(const Decoded& d) {
  return std::to_string(d.output.size()) + " bytes out, error=" + std::to_string(d.error) +
         " ended=" + std::to_string(d.ended) + " complete=" + std::to_string(d.complete);
}

// Drives the decoder the way LlmParser does, and checks each step's contract.
Decoded decode(ContentEncoding encoding, size_t max_output,
               const std::vector<std::string_view>& chunks) {
  ContentDecoder decoder(encoding, max_output);
  Decoded d;
  size_t ended_with = SIZE_MAX;  // input left when `end` was reported with bytes after it
  for (std::string_view chunk : chunks) {
    if (d.error) break;
    for (int calls = 0;; ++calls) {
      FUZZ_CHECK(calls <= 1 << 22, "the decoder stopped making progress");
      const size_t before = chunk.size();
      std::string_view out;
      const ContentDecoder::Status s = decoder.next(chunk, out);
      FUZZ_CHECK(chunk.size() <= before, "next() grew its input");
      if (s == ContentDecoder::Status::output) {
        FUZZ_CHECK(!out.empty(), "status output with no bytes");
        FUZZ_CHECK(out.size() <= max_output, "step output " + std::to_string(out.size()) +
                                                 " bytes over max " + std::to_string(max_output));
        // Only gzip goes on after an end: another member may follow (RFC 1952 section 2.2).
        FUZZ_CHECK(!d.ended || encoding == ContentEncoding::gzip,
                   "output after the end of the stream");
        d.ended = false;
        d.output.append(out);
        FUZZ_CHECK(d.output.size() <= (64u << 20), "decoded output beyond 64 MiB");
        continue;
      }
      if (s == ContentDecoder::Status::need_input) {
        FUZZ_CHECK(chunk.empty(), "need_input with input left");
        // Bytes taken after a gzip member's end began the next member: no longer at an end
        // (fed whole, the same bytes never showed the end at all).
        if (before > 0) d.ended = false;
        break;
      }
      if (s == ContentDecoder::Status::end) {
        FUZZ_CHECK(!d.ended || chunk.size() < ended_with,
                   "end reported again without consuming the bytes after it");
        d.ended = true;
        if (chunk.empty()) break;
        // Bytes after the end: the next call must call them an error.
        ended_with = chunk.size();
        continue;
      }
      FUZZ_CHECK(decoder.error() != nullptr, "status error without error()");
      d.error = true;
      break;
    }
  }
  if (d.error) {
    std::string_view empty;
    std::string_view out;
    FUZZ_CHECK(decoder.next(empty, out) == ContentDecoder::Status::error,
               "the decoder left its error state");
  }
  d.complete = decoder.complete();
  if (encoding == ContentEncoding::identity) FUZZ_CHECK(d.complete, "identity is always complete");
  return d;
}

std::string lower_trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

void check_parse_content_encoding(std::string_view value) {
  const ContentEncoding e = parse_content_encoding(value);
  const std::string v = lower_trimmed(value);
  switch (e) {
    case ContentEncoding::identity:
      FUZZ_CHECK(v.empty() || v == "identity", "identity from " + printable(value));
      break;
    case ContentEncoding::gzip:
      FUZZ_CHECK(v == "gzip" || v == "x-gzip", "gzip from " + printable(value));
      break;
    case ContentEncoding::deflate:
      FUZZ_CHECK(v == "deflate", "deflate from " + printable(value));
      break;
    case ContentEncoding::br:
      FUZZ_CHECK(v == "br", "br from " + printable(value));
      break;
    case ContentEncoding::unsupported:
      FUZZ_CHECK(v != "gzip" && v != "x-gzip" && v != "deflate" && v != "br" && v != "identity" &&
                     !v.empty(),
                 "unsupported from " + printable(value));
      break;
  }
}

}  // namespace
}  // namespace tokentap::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  using namespace tokentap;
  using namespace tokentap::fuzz;
  ByteReader in(bytes, size);
  const uint8_t mode = in.byte();
  const size_t max_output = in.pick(kMaxOutputs);
  const int level = in.byte() % 12;
  ByteReader cut_bytes = in.split_off(8);
  const std::string_view data = in.rest();

  check_parse_content_encoding(data.substr(0, 24));

  constexpr ContentEncoding kEncodings[] = {ContentEncoding::identity, ContentEncoding::gzip,
                                            ContentEncoding::deflate, ContentEncoding::br};
  const ContentEncoding encoding = kEncodings[mode % 4];
  const bool round_trip = (mode & 4) != 0;

  std::string wire;
  if (!round_trip) {
    wire.assign(data);
  } else if (encoding == ContentEncoding::gzip) {
    // Two members when asked: HTTP gzip bodies may be a concatenation.
    const size_t half = (mode & 8) != 0 ? data.size() / 2 : data.size();
    wire = gzip_encode(data.substr(0, half), level);
    if (half < data.size()) wire += gzip_encode(data.substr(half), level);
  } else if (encoding == ContentEncoding::deflate) {
    wire = zlib_encode(data, level, (mode & 8) != 0);
  } else if (encoding == ContentEncoding::br) {
    wire = brotli_encode(data, level);
  } else {
    wire.assign(data);
  }
  const std::vector<size_t> cuts = cut_bytes.cuts(4, wire.size());

  const Decoded whole = decode(encoding, max_output, {wire});
  const Decoded split = decode(encoding, max_output, pieces(wire, cuts));
  FUZZ_CHECK(same_decoding(encoding, split, whole),
             "split decode differs from whole: " + describe(split) + " vs " + describe(whole));
  if (wire.size() <= 2048) {
    std::vector<std::string_view> bytewise;
    for (size_t i = 0; i < wire.size(); ++i)
      bytewise.push_back(std::string_view(wire).substr(i, 1));
    const Decoded one = decode(encoding, max_output, bytewise);
    FUZZ_CHECK(same_decoding(encoding, one, whole),
               "bytewise decode differs from whole: " + describe(one) + " vs " + describe(whole));
  }
  if (round_trip) {
    FUZZ_CHECK(!whole.error, "our own compressed data did not decode: " + describe(whole));
    FUZZ_CHECK(whole.output == data, "round trip changed the data: " + describe(whole) + " from " +
                                         std::to_string(data.size()) + " bytes");
    FUZZ_CHECK(whole.complete, "our own compressed data is not complete");
  }
  return 0;
}
