#include "tests/support/http_reference.h"

#include "tests/support/fuzz_support.h"

namespace tokentap::fuzz {
namespace {

HttpReader* reader(llhttp_t* p) { return static_cast<HttpReader*>(p->data); }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

std::vector<std::string> HttpMessage::values(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [n, v] : headers) {
    if (iequals(n, name)) out.push_back(v);
  }
  return out;
}

// The callbacks are members in spirit; they reach the reader through parser.data.
struct HttpReaderCallbacks {
  static int on_message_begin(llhttp_t* p) {
    HttpReader* r = reader(p);
    r->messages.emplace_back();
    return 0;
  }
  static int on_url(llhttp_t* p, const char* at, size_t n) {
    reader(p)->messages.back().url.append(at, n);
    return 0;
  }
  static int on_header_field(llhttp_t* p, const char* at, size_t n);
  static int on_header_value(llhttp_t* p, const char* at, size_t n);
  static int on_headers_complete(llhttp_t* p);
  static int on_body(llhttp_t* p, const char* at, size_t n) {
    reader(p)->messages.back().body.append(at, n);
    return 0;
  }
  static int on_message_complete(llhttp_t* p);
};

const llhttp_settings_t HttpReader::kSettings = {
    .on_message_begin = HttpReaderCallbacks::on_message_begin,
    .on_url = HttpReaderCallbacks::on_url,
    .on_status = nullptr,
    .on_method = nullptr,
    .on_version = nullptr,
    .on_header_field = HttpReaderCallbacks::on_header_field,
    .on_header_value = HttpReaderCallbacks::on_header_value,
    .on_chunk_extension_name = nullptr,
    .on_chunk_extension_value = nullptr,
    .on_headers_complete = HttpReaderCallbacks::on_headers_complete,
    .on_body = HttpReaderCallbacks::on_body,
    .on_message_complete = HttpReaderCallbacks::on_message_complete,
    .on_url_complete = nullptr,
    .on_status_complete = nullptr,
    .on_method_complete = nullptr,
    .on_version_complete = nullptr,
    .on_header_field_complete = nullptr,
    .on_header_value_complete = nullptr,
    .on_chunk_extension_name_complete = nullptr,
    .on_chunk_extension_value_complete = nullptr,
    .on_chunk_header = nullptr,
    .on_chunk_complete = nullptr,
    .on_reset = nullptr,
};

HttpReader::HttpReader(llhttp_type_t type, std::function<bool(size_t)> is_head)
    : is_head_(std::move(is_head)) {
  llhttp_init(&parser_, type, &kSettings);
  parser_.data = this;
}

int HttpReaderCallbacks::on_header_field(llhttp_t* p, const char* at, size_t n) {
  HttpReader* r = reader(p);
  HttpMessage& m = r->messages.back();
  auto& headers = m.headers_complete ? m.trailers : m.headers;
  if (r->in_value_ || headers.empty()) {
    headers.emplace_back();
    r->in_value_ = false;
  }
  headers.back().first.append(at, n);
  return 0;
}

int HttpReaderCallbacks::on_header_value(llhttp_t* p, const char* at, size_t n) {
  HttpReader* r = reader(p);
  r->in_value_ = true;
  HttpMessage& m = r->messages.back();
  (m.headers_complete ? m.trailers : m.headers).back().second.append(at, n);
  return 0;
}

int HttpReaderCallbacks::on_headers_complete(llhttp_t* p) {
  HttpReader* r = reader(p);
  HttpMessage& m = r->messages.back();
  r->in_value_ = false;
  m.headers_complete = true;
  m.chunked = (p->flags & F_CHUNKED) != 0;
  m.has_content_length = (p->flags & F_CONTENT_LENGTH) != 0;
  if (p->type == HTTP_REQUEST) {
    m.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
    return 0;
  }
  m.status = p->status_code;
  if (m.status < 200) return 0;
  const size_t index = r->final_responses++;
  // RFC 9112 section 6.3: these end at their head whatever their headers say; llhttp alone
  // would read a body that a Content-Length or Transfer-Encoding announces.
  if (m.status == 204 || m.status == 304) return 1;
  return r->is_head_ && r->is_head_(index) ? 1 : 0;
}

int HttpReaderCallbacks::on_message_complete(llhttp_t* p) {
  HttpReader* r = reader(p);
  HttpMessage& m = r->messages.back();
  m.complete = true;
  m.keep_alive = llhttp_should_keep_alive(p) != 0;
  if (r->on_complete) r->on_complete(m);
  return 0;
}

void HttpReader::feed(std::string_view bytes) {
  if (failed_ || upgraded || bytes.empty()) return;
  const llhttp_errno_t err = llhttp_execute(&parser_, bytes.data(), bytes.size());
  if (err == HPE_OK) return;
  if (err == HPE_PAUSED_UPGRADE) {
    upgraded = true;
    return;
  }
  failed_ = true;
  error = err;
  const char* reason = llhttp_get_error_reason(&parser_);
  error_reason = std::string(llhttp_errno_name(err)) + " " + (reason ? reason : "");
}

void HttpReader::finish() {
  if (!failed_ && !upgraded && llhttp_finish(&parser_) != HPE_OK) truncated = true;
  if (!messages.empty() && !messages.back().complete) truncated = true;
}

std::vector<HttpMessage> HttpReader::complete_messages() const {
  std::vector<HttpMessage> out;
  for (const HttpMessage& m : messages) {
    if (m.complete) out.push_back(m);
  }
  return out;
}

std::vector<HttpMessage> HttpReader::final_messages() const {
  std::vector<HttpMessage> out;
  for (const HttpMessage& m : messages) {
    if (m.complete && m.status >= 200) out.push_back(m);
  }
  return out;
}

std::string describe(const HttpMessage& m) {
  std::string out = m.method.empty() ? "status " + std::to_string(m.status)
                                     : m.method + " " + printable(m.url, 120);
  for (const auto& [name, value] : m.headers) {
    out += "\n      " + printable(name, 60) + ": " + printable(value, 120);
  }
  out += "\n      body " + printable(m.body, 200) + (m.complete ? "" : " (incomplete)");
  return out;
}

}  // namespace tokentap::fuzz
