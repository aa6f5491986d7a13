// Shared by every fuzz target: turning the fuzzer's bytes into choices, reporting a broken
// invariant as a crash (libFuzzer then keeps the input; the corpus replay fails), and the
// encoders the targets use to build compressed bodies.
//
// A target is one LLVMFuzzerTestOneInput(). The same source links either with libFuzzer
// (clang, -DTOKENTAP_FUZZ=ON) or with replay_main.cc, which runs every file of the corpus
// directories it is given; nothing here depends on which.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tokentap::fuzz {

// Reads choices from the front of the input; past the end every read yields zero, so short
// inputs still make valid (if dull) choices.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : rest_(reinterpret_cast<const char*>(data), size) {}
  explicit ByteReader(std::string_view bytes) : rest_(bytes) {}

  uint8_t byte();
  uint16_t u16();  // little-endian
  // One of `options`, chosen by the next byte.
  template <class T, size_t N>
  const T& pick(const T (&options)[N]) {
    return options[byte() % N];
  }
  // Up to `count` ascending cut offsets in [0, size], from two bytes each.
  std::vector<size_t> cuts(size_t count, size_t size);
  // The next `n` bytes (fewer at the end).
  std::string_view take(size_t n);
  // A reader over the next `n` bytes, for choices that depend on what follows them.
  ByteReader split_off(size_t n) { return ByteReader(take(n)); }
  std::string_view rest() const { return rest_; }
  // The rest, split at each occurrence of `separator`, into at most `parts` pieces (the last
  // one keeps any further separators). Missing pieces are empty.
  std::vector<std::string_view> split_rest(std::string_view separator, size_t parts) const;

 private:
  std::string_view rest_;
};

// Splits `data` at ascending offsets `cuts` into consecutive pieces (empty ones included).
std::vector<std::string_view> pieces(std::string_view data, const std::vector<size_t>& cuts);

// Up to `max` bytes of `s` as a C-escaped string, for failure messages.
std::string printable(std::string_view s, size_t max = 240);

[[noreturn]] void fail(const char* file, int line, const char* condition, const std::string& what);

// Whole-buffer encoders for building compressed bodies; `level` is clamped to the codec's range.
std::string gzip_encode(std::string_view data, int level);
std::string zlib_encode(std::string_view data, int level, bool raw);
std::string brotli_encode(std::string_view data, int quality);

bool is_valid_utf8(std::string_view s);

}  // namespace tokentap::fuzz

// Aborts with the condition, a message and the location when `condition` is false.
#define FUZZ_CHECK(condition, what)                                                   \
  do {                                                                                \
    if (!(condition)) ::tokentap::fuzz::fail(__FILE__, __LINE__, #condition, (what)); \
  } while (false)
