#include "proxy/net/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>
#include <mutex>
#include <new>
#include <stdexcept>
#include <system_error>
#include <unordered_map>

namespace tokentap {

namespace {

constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
constexpr size_t kMaxCachedSessions = 256;
constexpr size_t kReadChunk = size_t{16} * 1024;

// Latest resumable session per (sni, verify_host). Attached to the SSL_CTX as ex_data and
// freed with it, because an SSL keeps its SSL_CTX alive after the TlsClientContext that made it
// is gone (e.g. across a config reload) and may still receive session tickets.
class SessionCache {
 public:
  SessionCache() = default;
  SessionCache(const SessionCache&) = delete;
  SessionCache& operator=(const SessionCache&) = delete;
  ~SessionCache() {
    for (auto& [key, session] : sessions_) SSL_SESSION_free(session);
  }

  // Returns a private copy of a still-valid session, or nullptr. A copy, because a connection
  // that resumes shares the object and SSL_free() would void it (see on_new_session).
  SSL_SESSION* get(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(key);
    if (it == sessions_.end()) return nullptr;
    SSL_SESSION* session = it->second;
    if (SSL_SESSION_get_time(session) + SSL_SESSION_get_timeout(session) <= std::time(nullptr)) {
      SSL_SESSION_free(session);
      sessions_.erase(it);
      return nullptr;
    }
    return SSL_SESSION_dup(session);
  }

  // Takes ownership of `session`.
  void put(const std::string& key, SSL_SESSION* session) {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(key);
    if (it != sessions_.end()) {
      SSL_SESSION_free(it->second);
      it->second = session;
      return;
    }
    if (sessions_.size() >= kMaxCachedSessions) {
      SSL_SESSION_free(sessions_.begin()->second);
      sessions_.erase(sessions_.begin());
    }
    sessions_.emplace(key, session);
  }

  void erase(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(key);
    if (it == sessions_.end()) return;
    SSL_SESSION_free(it->second);
    sessions_.erase(it);
  }

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, SSL_SESSION*> sessions_;
};

void free_session_cache(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/,
                        long /*argl*/, void* /*argp*/) {
  delete static_cast<SessionCache*>(ptr);
}

int session_cache_index() {
  static const int index =
      SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_session_cache);
  return index;
}

SessionCache* session_cache(SSL_CTX* ctx) {
  return static_cast<SessionCache*>(SSL_CTX_get_ex_data(ctx, session_cache_index()));
}

// TLS 1.3 tickets arrive after the handshake, so sessions are collected here rather than
// with SSL_get1_session() once the handshake returns. The cache keeps a copy: SSL_free() marks
// the connection's own session object not resumable unless close_notify was sent, a TLS 1.0 rule
// (RFC 4346 dropped it) that would otherwise void every session of a connection that was just
// dropped, the common fate of pooled upstream connections.
int on_new_session(SSL* ssl, SSL_SESSION* session) {
  const auto* key = static_cast<const std::string*>(SSL_get_app_data(ssl));
  SessionCache* cache = session_cache(SSL_get_SSL_CTX(ssl));
  if (key == nullptr || cache == nullptr || !SSL_SESSION_is_resumable(session)) return 0;
  if (SSL_SESSION* copy = SSL_SESSION_dup(session)) cache->put(*key, copy);
  return 0;
}

// Readable reason of the oldest queued error, without the "error:0A000086:SSL routines::"
// prefix. Reason strings are static library text, never peer or key material.
std::string openssl_reason(const char* fallback) {
  unsigned long code = ERR_peek_error();
  if (code == 0) return fallback;
  // System errors (e.g. fopen of ca_file) carry errno as their reason and have no string table.
  if (ERR_SYSTEM_ERROR(code)) {
    return std::generic_category().message(static_cast<int>(ERR_GET_REASON(code)));
  }
  if (const char* reason = ERR_reason_error_string(code)) return reason;
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

// "[::1]" -> "::1"; other names unchanged.
std::string strip_brackets(const std::string& host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    return host.substr(1, host.size() - 2);
  }
  return host;
}

bool is_ip_literal(const std::string& host) {
  unsigned char addr[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), addr) == 1 ||
         inet_pton(AF_INET6, host.c_str(), addr) == 1;
}

}  // namespace

TlsClientContext::TlsClientContext(bool verify, const std::string& ca_file) : verify_(verify) {
  ERR_clear_error();
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (ctx_ == nullptr) throw std::bad_alloc();
  auto* cache = new SessionCache();
  if (SSL_CTX_set_ex_data(ctx_, session_cache_index(), cache) != 1) {
    delete cache;
    SSL_CTX_free(ctx_);
    throw std::bad_alloc();
  }

  SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx_, SSL_OP_NO_RENEGOTIATION);
  // Memory BIOs never refuse a write, but the partial/moving modes let write_plaintext hand
  // over any size in record-sized steps; RELEASE_BUFFERS keeps idle pooled connections small.
  SSL_CTX_set_mode(ctx_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                             SSL_MODE_RELEASE_BUFFERS);
  // set_alpn_protos returns 0 on success, unlike the rest of the API.
  if (SSL_CTX_set_alpn_protos(ctx_, kAlpnHttp11, sizeof kAlpnHttp11) != 0) {
    SSL_CTX_free(ctx_);
    throw std::bad_alloc();
  }
  SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx_, on_new_session);

  // A missing system store is not fatal: ca_file may be all the user trusts.
  SSL_CTX_set_default_verify_paths(ctx_);
  ERR_clear_error();
  if (!ca_file.empty() && SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr) != 1) {
    std::string reason = openssl_reason("no certificate found");
    ERR_clear_error();
    SSL_CTX_free(ctx_);
    throw std::runtime_error("cannot load CA file " + ca_file + ": " + reason);
  }
  SSL_CTX_set_verify(ctx_, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
}

TlsClientContext::~TlsClientContext() { SSL_CTX_free(ctx_); }

TlsTransform::TlsTransform(const TlsClientContext& ctx, const std::string& sni,
                           const std::string& verify_host)
    : session_key_(sni + '\0' + verify_host) {
  ERR_clear_error();
  ssl_ = SSL_new(ctx.native());
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  if (ssl_ == nullptr || in_ == nullptr || out_ == nullptr) {
    BIO_free(in_);
    BIO_free(out_);
    SSL_free(ssl_);
    ERR_clear_error();
    throw std::bad_alloc();
  }
  SSL_set_bio(ssl_, in_, out_);  // ssl_ owns both BIOs from here on
  SSL_set_connect_state(ssl_);
  SSL_set_app_data(ssl_, &session_key_);

  const std::string sni_name = strip_brackets(sni);
  // SSL_set_tlsext_host_name() spelled out: the macro's C-style cast trips -Wold-style-cast.
  if (!sni_name.empty() && !is_ip_literal(sni_name) &&
      SSL_ctrl(ssl_, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(sni_name.c_str())) != 1) {
    error_ = "tls handshake failed: invalid server name";
  }

  const std::string host = strip_brackets(verify_host);
  if (ctx.verify()) {
    if (host.empty()) {
      // SSL_set1_host("") would silently disable name checks and accept any trusted cert.
      error_ = "tls handshake failed: no host name to verify the certificate against";
    } else if (is_ip_literal(host)) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), host.c_str());
    } else {
      SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      if (SSL_set1_host(ssl_, host.c_str()) != 1) {
        error_ = "tls handshake failed: invalid host name";
      }
    }
  }

  if (SSL_SESSION* session = session_cache(ctx.native())->get(session_key_)) {
    SSL_set_session(ssl_, session);
    SSL_SESSION_free(session);
  }
  ERR_clear_error();
}

TlsTransform::~TlsTransform() { SSL_free(ssl_); }

void TlsTransform::feed_ciphertext(std::string_view bytes) {
  if (bytes.empty()) return;
  size_t written = 0;
  // A memory BIO only refuses on allocation failure; later SSL calls then fail cleanly.
  BIO_write_ex(in_, bytes.data(), bytes.size(), &written);
}

TlsTransform::Status TlsTransform::handshake() {
  if (!error_.empty()) return Status::error;
  if (handshake_done_) return Status::ok;
  ERR_clear_error();
  int ret = SSL_do_handshake(ssl_);
  if (ret == 1) {
    handshake_done_ = true;
    return Status::ok;
  }
  return fail(ret);
}

TlsTransform::Status TlsTransform::write_plaintext(std::string_view plain) {
  if (!error_.empty()) return Status::error;
  if (!handshake_done_) {
    error_ = "tls error: write before the handshake completed";
    return Status::error;
  }
  while (!plain.empty()) {
    ERR_clear_error();
    size_t written = 0;
    int ret = SSL_write_ex(ssl_, plain.data(), plain.size(), &written);
    if (ret != 1) return fail(ret);
    plain.remove_prefix(written);
  }
  return Status::ok;
}

TlsTransform::Status TlsTransform::read_plaintext(std::string& out) {
  if (!error_.empty()) return Status::error;
  if (!handshake_done_) {
    Status status = handshake();
    if (status != Status::ok) return status;
  }
  bool appended = false;
  for (;;) {
    const size_t old_size = out.size();
    out.resize(old_size + kReadChunk);
    ERR_clear_error();
    size_t got = 0;
    int ret = SSL_read_ex(ssl_, out.data() + old_size, kReadChunk, &got);
    out.resize(old_size + got);
    if (ret == 1) {
      appended = true;
      continue;
    }
    Status status = fail(ret);
    if (status == Status::want_more && appended) return Status::ok;
    return status;
  }
}

size_t TlsTransform::take_ciphertext(std::string& out) {
  const size_t pending = BIO_ctrl_pending(out_);
  if (pending == 0) return 0;
  const size_t old_size = out.size();
  out.resize(old_size + pending);
  size_t got = 0;
  BIO_read_ex(out_, out.data() + old_size, pending, &got);
  out.resize(old_size + got);
  return got;
}

void TlsTransform::shutdown() {
  // SSL_shutdown is not allowed after a fatal error, and mid-handshake it only errors.
  if (!error_.empty() || !handshake_done_) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

std::string TlsTransform::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl_, &data, &len);
  if (data == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(data), len);
}

bool TlsTransform::session_reused() const { return SSL_session_reused(ssl_) == 1; }

TlsTransform::Status TlsTransform::fail(int ssl_ret) {
  const int err = SSL_get_error(ssl_, ssl_ret);
  switch (err) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      return Status::want_more;
    case SSL_ERROR_ZERO_RETURN:
      return Status::closed;
    default:
      break;
  }

  const unsigned long code = ERR_peek_error();
  if (ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    verify_failed_ = true;
    error_ = std::string("certificate verify failed: ") +
             X509_verify_cert_error_string(SSL_get_verify_result(ssl_));
  } else {
    const char* what = handshake_done_ ? "tls error: " : "tls handshake failed: ";
    error_ =
        what + openssl_reason(err == SSL_ERROR_SYSCALL ? "unexpected failure" : "protocol error");
  }
  ERR_clear_error();
  // A fatal alert voids the session (RFC 8446 6.2, RFC 5246 7.2.2).
  session_cache(SSL_get_SSL_CTX(ssl_))->erase(session_key_);
  return Status::error;
}

}  // namespace tokentap
