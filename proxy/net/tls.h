// TLS as a transform, not a socket (h2o style): an SSL* client over two memory BIOs.
// The owner moves ciphertext between the transform and the network; nothing here touches a
// socket, so the whole client can be driven in a unit test against an in-memory server.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>

namespace tokentap {

// One SSL_CTX per distinct TLS setting (created at start / reload, shared by connections of
// one worker). TLS 1.2 minimum, ALPN "http/1.1", system CA store plus optional ca_file,
// peer verification on unless verify=false. Throws std::runtime_error with a readable
// message if ca_file cannot be loaded. Keeps the latest session per (sni, verify_host) so new
// connections can resume; the cache lives with the SSL_CTX, so transforms may outlive this object.
class TlsClientContext {
 public:
  TlsClientContext(bool verify, const std::string& ca_file);
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;

  SSL_CTX* native() const { return ctx_; }
  bool verify() const { return verify_; }

 private:
  SSL_CTX* ctx_ = nullptr;
  bool verify_ = true;
};

// A client TLS session. Usage:
//   TlsTransform tls(ctx, "api.openai.com", "api.openai.com");
//   loop: feed network bytes with feed_ciphertext(); call handshake() until done;
//         write plaintext with write_plaintext(); read app data with read_plaintext();
//         after every call, send take_ciphertext() to the network if non-empty.
// Hostname verification uses `verify_host` (the upstream host, even when SNI differs);
// IP literals (also "[v6]") are verified against IP SANs and never sent as SNI. With
// verification on, an empty verify_host fails the handshake rather than skipping the name check.
class TlsTransform {
 public:
  enum class Status { ok, want_more, closed, error };

  TlsTransform(const TlsClientContext& ctx, const std::string& sni, const std::string& verify_host);
  ~TlsTransform();
  TlsTransform(const TlsTransform&) = delete;
  TlsTransform& operator=(const TlsTransform&) = delete;

  // Network -> TLS engine.
  void feed_ciphertext(std::string_view bytes);
  // Drives the handshake: ok when complete, want_more while waiting for the peer,
  // error on failure (see error_message()).
  Status handshake();
  bool handshake_done() const { return handshake_done_; }
  // Encrypts all of `plain` (the memory BIO never refuses); error after a fatal alert.
  Status write_plaintext(std::string_view plain);
  // Appends decrypted application data to `out`. ok if anything was appended or more may come,
  // want_more when nothing is buffered, closed on close_notify, error on a TLS failure.
  // Data decrypted before a close_notify or an error is still appended. Drives the handshake
  // first if it is not done yet.
  Status read_plaintext(std::string& out);
  // Moves pending ciphertext for the network into `out` (appends). Returns bytes appended.
  size_t take_ciphertext(std::string& out);
  // Queues a close_notify alert (take_ciphertext afterwards to send it).
  void shutdown();

  // Human-readable, secret-free reason for the last error, e.g.
  // "certificate verify failed: hostname mismatch" or "tls handshake failed: wrong version".
  const std::string& error_message() const { return error_; }
  // True when the last error was a certificate verification failure.
  bool verify_failed() const { return verify_failed_; }
  // Negotiated ALPN protocol ("" if none).
  std::string alpn() const;
  // True when the handshake resumed a cached session (no certificate exchange took place).
  bool session_reused() const;

 private:
  Status fail(int ssl_ret);

  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // network -> SSL
  BIO* out_ = nullptr;  // SSL -> network
  bool handshake_done_ = false;
  bool verify_failed_ = false;
  std::string error_;
  std::string session_key_;  // sni + '\0' + verify_host: which cached session may be resumed
};

}  // namespace tokentap
