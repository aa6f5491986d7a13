#include "parsers/content_decoder.h"

#include <brotli/decode.h>
#include <zlib.h>

#include <string>

#include "common/text.h"

namespace tokentap {

class ContentDecoder::Impl {
 public:
  virtual ~Impl() = default;
  virtual Status next(std::string_view& input, std::string_view& output, const char*& error) = 0;
  virtual bool complete() const = 0;
};

namespace {

using Status = ContentDecoder::Status;

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

class IdentityDecoder final : public ContentDecoder::Impl {
 public:
  explicit IdentityDecoder(size_t max_output) : max_output_(max_output) {}
  Status next(std::string_view& input, std::string_view& output, const char*&) override {
    if (input.empty()) return Status::need_input;
    output = input.substr(0, max_output_);
    input.remove_prefix(output.size());
    return Status::output;
  }
  bool complete() const override { return true; }

 private:
  size_t max_output_;
};

// gzip and deflate. HTTP "deflate" means zlib-wrapped (RFC 9110), but some servers send raw
// deflate, so the first two bytes decide: a valid zlib header selects zlib, anything else raw.
class ZlibDecoder final : public ContentDecoder::Impl {
 public:
  ZlibDecoder(bool gzip, size_t max_output) : gzip_(gzip), out_(max_output, '\0') {}
  ~ZlibDecoder() override {
    if (initialized_) inflateEnd(&zs_);
  }
  ZlibDecoder(const ZlibDecoder&) = delete;
  ZlibDecoder& operator=(const ZlibDecoder&) = delete;

  Status next(std::string_view& input, std::string_view& output, const char*& error) override {
    if (pending_error_ != nullptr) {
      error = pending_error_;
      return Status::error;
    }
    if (!initialized_) {
      if (gzip_) {
        if (!init(16 + MAX_WBITS, error)) return Status::error;
      } else {
        while (header_.size() < 2 && !input.empty()) {
          header_.push_back(input.front());
          input.remove_prefix(1);
        }
        if (header_.size() < 2) return Status::need_input;
        if (!init(looks_like_zlib(header_) ? MAX_WBITS : -MAX_WBITS, error)) return Status::error;
      }
    }
    while (!header_.empty()) {
      std::string_view pending = header_;
      Status s = inflate_some(pending, output, error);
      header_.erase(0, header_.size() - pending.size());
      if (s != Status::need_input) return s;
    }
    return inflate_some(input, output, error);
  }

  bool complete() const override { return ended_; }

 private:
  static bool looks_like_zlib(std::string_view h) {
    const unsigned cmf = static_cast<unsigned char>(h[0]);
    const unsigned flg = static_cast<unsigned char>(h[1]);
    return (cmf & 0x0F) == 8 && (cmf >> 4) <= 7 && (cmf * 256 + flg) % 31 == 0;
  }

  bool init(int window_bits, const char*& error) {
    if (inflateInit2(&zs_, window_bits) != Z_OK) {
      error = "zlib initialisation failed";
      return false;
    }
    initialized_ = true;
    return true;
  }

  Status inflate_some(std::string_view& input, std::string_view& output, const char*& error) {
    for (;;) {
      if (ended_) {
        if (input.empty()) return Status::end;
        // gzip allows several members back to back (RFC 1952 section 2.2).
        if (!gzip_ || static_cast<unsigned char>(input.front()) != 0x1f) {
          error = "data after the end of the compressed stream";
          return Status::error;
        }
        inflateReset(&zs_);
        ended_ = false;
      }
      if (input.empty()) {
        // Output may still be pending inside zlib after a full output buffer.
        if (!output_may_be_pending_) return Status::need_input;
      }
      zs_.next_in = const_cast<unsigned char*>(bytes(input));
      zs_.avail_in = static_cast<uInt>(input.size());
      zs_.next_out = reinterpret_cast<unsigned char*>(out_.data());
      zs_.avail_out = static_cast<uInt>(out_.size());
      const int rc = inflate(&zs_, Z_NO_FLUSH);
      const size_t consumed = input.size() - zs_.avail_in;
      const size_t produced = out_.size() - zs_.avail_out;
      input.remove_prefix(consumed);
      output_may_be_pending_ = zs_.avail_out == 0;
      if (rc == Z_STREAM_END) {
        ended_ = true;
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        const char* why = rc == Z_NEED_DICT ? "deflate stream needs a preset dictionary"
                                            : "corrupt compressed data";
        if (produced == 0) {
          error = why;
          return Status::error;
        }
        // The bytes decoded before the corruption go out first, so that how much output
        // precedes the error does not depend on where the body was split.
        pending_error_ = why;
        output = std::string_view(out_.data(), produced);
        return Status::output;
      }
      if (produced > 0) {
        output = std::string_view(out_.data(), produced);
        return Status::output;
      }
      if (ended_ || consumed > 0) continue;
      if (input.empty()) return Status::need_input;
      error = "compressed stream made no progress";
      return Status::error;
    }
  }

  bool gzip_;
  bool initialized_ = false;
  bool ended_ = false;
  bool output_may_be_pending_ = false;
  const char* pending_error_ = nullptr;  // reported on the call after the last output
  z_stream zs_{};
  std::string header_;  // the first two bytes of a deflate stream, until the format is known
  std::string out_;
};

class BrotliDecoder final : public ContentDecoder::Impl {
 public:
  explicit BrotliDecoder(size_t max_output)
      : state_(BrotliDecoderCreateInstance(nullptr, nullptr, nullptr)), out_(max_output, '\0') {}
  ~BrotliDecoder() override {
    if (state_ != nullptr) BrotliDecoderDestroyInstance(state_);
  }
  BrotliDecoder(const BrotliDecoder&) = delete;
  BrotliDecoder& operator=(const BrotliDecoder&) = delete;

  Status next(std::string_view& input, std::string_view& output, const char*& error) override {
    if (state_ == nullptr) {
      error = "brotli initialisation failed";
      return Status::error;
    }
    if (pending_error_ != nullptr) {
      error = pending_error_;
      return Status::error;
    }
    for (;;) {
      if (ended_) {
        if (input.empty()) return Status::end;
        error = "data after the end of the compressed stream";
        return Status::error;
      }
      if (input.empty() && !BrotliDecoderHasMoreOutput(state_)) return Status::need_input;
      size_t avail_in = input.size();
      const uint8_t* next_in = bytes(input);
      size_t avail_out = out_.size();
      auto* next_out = reinterpret_cast<uint8_t*>(out_.data());
      const BrotliDecoderResult r = BrotliDecoderDecompressStream(state_, &avail_in, &next_in,
                                                                  &avail_out, &next_out, nullptr);
      input.remove_prefix(input.size() - avail_in);
      const size_t produced = out_.size() - avail_out;
      if (r == BROTLI_DECODER_RESULT_ERROR) {
        if (produced == 0) {
          error = "corrupt brotli data";
          return Status::error;
        }
        pending_error_ = "corrupt brotli data";
        output = std::string_view(out_.data(), produced);
        return Status::output;
      }
      if (r == BROTLI_DECODER_RESULT_SUCCESS) ended_ = true;
      if (produced > 0) {
        output = std::string_view(out_.data(), produced);
        return Status::output;
      }
      if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) return Status::need_input;
    }
  }

  bool complete() const override { return ended_; }

 private:
  BrotliDecoderState* state_;
  bool ended_ = false;
  const char* pending_error_ = nullptr;  // reported on the call after the last output
  std::string out_;
};

}  // namespace

ContentEncoding parse_content_encoding(std::string_view header_value) {
  const std::string_view v = trim(header_value);
  if (v.empty() || iequals(v, "identity")) return ContentEncoding::identity;
  if (iequals(v, "gzip") || iequals(v, "x-gzip")) return ContentEncoding::gzip;
  if (iequals(v, "deflate")) return ContentEncoding::deflate;
  if (iequals(v, "br")) return ContentEncoding::br;
  return ContentEncoding::unsupported;
}

const char* content_encoding_name(ContentEncoding e) {
  switch (e) {
    case ContentEncoding::identity:
      return "identity";
    case ContentEncoding::gzip:
      return "gzip";
    case ContentEncoding::deflate:
      return "deflate";
    case ContentEncoding::br:
      return "br";
    case ContentEncoding::unsupported:
      break;
  }
  return "unsupported";
}

ContentDecoder::ContentDecoder(ContentEncoding encoding, size_t max_output_bytes)
    : encoding_(encoding), max_output_(max_output_bytes == 0 ? 1 : max_output_bytes) {
  switch (encoding_) {
    case ContentEncoding::identity:
      impl_ = std::make_unique<IdentityDecoder>(max_output_);
      break;
    case ContentEncoding::gzip:
    case ContentEncoding::deflate:
      impl_ = std::make_unique<ZlibDecoder>(encoding_ == ContentEncoding::gzip, max_output_);
      break;
    case ContentEncoding::br:
      impl_ = std::make_unique<BrotliDecoder>(max_output_);
      break;
    case ContentEncoding::unsupported:
      error_ = "unsupported content encoding";
      break;
  }
}

ContentDecoder::~ContentDecoder() = default;

ContentDecoder::Status ContentDecoder::next(std::string_view& input, std::string_view& output) {
  if (error_ != nullptr || impl_ == nullptr) return Status::error;
  return impl_->next(input, output, error_);
}

bool ContentDecoder::complete() const {
  return error_ == nullptr && impl_ != nullptr && impl_->complete();
}

}  // namespace tokentap
