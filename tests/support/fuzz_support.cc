#include "tests/support/fuzz_support.h"

#include <brotli/encode.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace tokentap::fuzz {

uint8_t ByteReader::byte() {
  if (rest_.empty()) return 0;
  const auto b = static_cast<uint8_t>(rest_.front());
  rest_.remove_prefix(1);
  return b;
}

uint16_t ByteReader::u16() {
  const uint16_t lo = byte();
  return static_cast<uint16_t>(lo | (byte() << 8));
}

std::vector<size_t> ByteReader::cuts(size_t count, size_t size) {
  std::vector<size_t> out;
  for (size_t i = 0; i < count; ++i) out.push_back(size == 0 ? 0 : u16() % (size + 1));
  std::sort(out.begin(), out.end());
  return out;
}

std::string_view ByteReader::take(size_t n) {
  const std::string_view out = rest_.substr(0, n);
  rest_.remove_prefix(out.size());
  return out;
}

std::vector<std::string_view> ByteReader::split_rest(std::string_view separator,
                                                     size_t parts) const {
  std::vector<std::string_view> out;
  std::string_view rest = rest_;
  while (out.size() + 1 < parts) {
    const size_t at = rest.find(separator);
    if (at == std::string_view::npos) break;
    out.push_back(rest.substr(0, at));
    rest.remove_prefix(at + separator.size());
  }
  out.push_back(rest);
  out.resize(parts);
  return out;
}

std::vector<std::string_view> pieces(std::string_view data, const std::vector<size_t>& cuts) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  for (size_t cut : cuts) {
    cut = std::clamp(cut, pos, data.size());
    out.push_back(data.substr(pos, cut - pos));
    pos = cut;
  }
  out.push_back(data.substr(pos));
  return out;
}

std::string printable(std::string_view s, size_t max) {
  std::string out = "\"";
  for (char c : s.substr(0, max)) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (u < 0x20 || u >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  if (s.size() > max) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

void fail(const char* file, int line, const char* condition, const std::string& what) {
  std::fprintf(stderr, "\nFUZZ INVARIANT BROKEN at %s:%d\n  check: %s\n  %s\n", file, line,
               condition, what.c_str());
  std::fflush(stderr);
  std::abort();
}

namespace {

std::string zlib_run(std::string_view data, int level, int window_bits) {
  z_stream zs{};
  if (deflateInit2(&zs, std::clamp(level, 0, 9), Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    std::abort();
  }
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace

std::string gzip_encode(std::string_view data, int level) {
  return zlib_run(data, level, 16 + MAX_WBITS);
}

std::string zlib_encode(std::string_view data, int level, bool raw) {
  return zlib_run(data, level, raw ? -MAX_WBITS : MAX_WBITS);
}

std::string brotli_encode(std::string_view data, int quality) {
  size_t size = BrotliEncoderMaxCompressedSize(data.size());
  if (size == 0) size = data.size() + 1024;
  std::string out(size, '\0');
  if (!BrotliEncoderCompress(std::clamp(quality, 0, 11), BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC,
                             data.size(), reinterpret_cast<const uint8_t*>(data.data()), &size,
                             reinterpret_cast<uint8_t*>(out.data()))) {
    std::abort();
  }
  out.resize(size);
  return out;
}

bool is_valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    size_t len = 1;
    uint32_t min = 0;
    if (b0 < 0x80) {
      ++i;
      continue;
    }
    if ((b0 & 0xE0) == 0xC0) {
      len = 2;
      min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
      len = 3;
      min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
      len = 4;
      min = 0x10000;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    uint32_t cp = b0 & (0x7Fu >> len);
    for (size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

}  // namespace tokentap::fuzz
