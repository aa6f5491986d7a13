#include "proxy/net/tls.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>

namespace tokentap {
namespace {

using Status = TlsTransform::Status;

struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct CertFree {
  void operator()(X509* cert) const { X509_free(cert); }
};
using KeyPtr = std::shared_ptr<EVP_PKEY>;
using CertPtr = std::shared_ptr<X509>;

struct Identity {
  CertPtr cert;
  KeyPtr key;
};

KeyPtr make_key() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (key == nullptr) throw std::runtime_error("EC key generation failed");
  return KeyPtr(key, KeyFree{});
}

void add_extension(X509* cert, X509V3_CTX* v3, int nid, const char* value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, v3, nid, value);
  if (ext == nullptr) throw std::runtime_error(std::string("bad extension ") + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

struct CertSpec {
  std::string common_name;
  std::string subject_alt_names;  // e.g. "DNS:localhost,IP:127.0.0.1"; empty for a CA
  bool is_ca;
  long valid_from_s;  // seconds relative to now
  long valid_to_s;
};

// Signs with `issuer` (nullptr = self-signed).
Identity make_identity(const CertSpec& spec, const Identity* issuer) {
  static long serial = 1;
  Identity id{CertPtr(X509_new(), CertFree{}), make_key()};
  X509* cert = id.cert.get();
  X509_set_version(cert, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert), spec.valid_from_s);
  X509_gmtime_adj(X509_getm_notAfter(cert), spec.valid_to_s);
  X509_set_pubkey(cert, id.key.get());
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1,
                             -1, 0);
  X509* issuer_cert = issuer != nullptr ? issuer->cert.get() : cert;
  X509_set_issuer_name(cert, X509_get_subject_name(issuer_cert));

  X509V3_CTX v3;
  X509V3_set_ctx(&v3, issuer_cert, cert, nullptr, nullptr, 0);
  add_extension(cert, &v3, NID_subject_key_identifier, "hash");
  if (spec.is_ca) {
    add_extension(cert, &v3, NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert, &v3, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_extension(cert, &v3, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert, &v3, NID_key_usage, "critical,digitalSignature");
    add_extension(cert, &v3, NID_ext_key_usage, "serverAuth");
    add_extension(cert, &v3, NID_subject_alt_name, spec.subject_alt_names.c_str());
  }
  if (issuer != nullptr) add_extension(cert, &v3, NID_authority_key_identifier, "keyid");

  EVP_PKEY* signing_key = issuer != nullptr ? issuer->key.get() : id.key.get();
  if (X509_sign(cert, signing_key, EVP_sha256()) == 0) {
    throw std::runtime_error("certificate signing failed");
  }
  return id;
}

constexpr long kDay = 86400;

// Generated once per test binary: key generation and signing are the slow part.
struct Pki {
  Identity ca = make_identity({"tokentap test CA", "", true, -kDay, kDay}, nullptr);
  Identity localhost =
      make_identity({"localhost", "DNS:localhost,IP:127.0.0.1,IP:::1", false, -kDay, kDay}, &ca);
  Identity wrong_host =
      make_identity({"other.example", "DNS:other.example", false, -kDay, kDay}, &ca);
  Identity expired = make_identity({"localhost", "DNS:localhost", false, -10 * kDay, -kDay}, &ca);
  Identity self_signed = make_identity({"localhost", "DNS:localhost", false, -kDay, kDay}, nullptr);
};

const Pki& pki() {
  static const Pki instance;
  return instance;
}

std::string to_pem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(bio, &mem);
  std::string pem(mem->data, mem->length);
  BIO_free(bio);
  return pem;
}

class TempFile {
 public:
  explicit TempFile(const std::string& contents) {
    std::string pattern = (std::filesystem::temp_directory_path() / "tokentap-tls-XXXXXX").string();
    int fd = mkstemp(pattern.data());
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    close(fd);
    path_ = pattern;
    std::ofstream(path_, std::ios::binary) << contents;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The test CA as a PEM file, shared by every test that trusts it.
const std::string& ca_file() {
  static const TempFile file(to_pem(pki().ca.cert.get()));
  return file.path();
}

int select_http11(SSL* /*ssl*/, const unsigned char** out, unsigned char* outlen,
                  const unsigned char* in, unsigned int inlen, void* /*arg*/) {
  static constexpr unsigned char kServerProtos[] = {2,   'h', '2', 8,   'h', 't',
                                                    't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kServerProtos, sizeof kServerProtos, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// An in-memory TLS server: one SSL_CTX, any number of connections.
class TestServer {
 public:
  struct Options {
    int max_version;  // 0 = library default
    bool legacy;      // allow TLS 1.0/1.1 (security level 0)
  };

  explicit TestServer(const Identity& id) : TestServer(id, Options{0, false}) {}
  TestServer(const Identity& id, Options options) : ctx_(SSL_CTX_new(TLS_server_method())) {
    REQUIRE(ctx_ != nullptr);
    REQUIRE(SSL_CTX_use_certificate(ctx_, id.cert.get()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey(ctx_, id.key.get()) == 1);
    SSL_CTX_set_alpn_select_cb(ctx_, select_http11, nullptr);
    SSL_CTX_callback_ctrl(ctx_, SSL_CTRL_SET_TLSEXT_SERVERNAME_CB,
                          reinterpret_cast<void (*)()>(&TestServer::on_servername));
    SSL_CTX_ctrl(ctx_, SSL_CTRL_SET_TLSEXT_SERVERNAME_ARG, 0, this);
    if (options.legacy) {
      SSL_CTX_set_security_level(ctx_, 0);
      REQUIRE(SSL_CTX_set_cipher_list(ctx_, "DEFAULT:@SECLEVEL=0") == 1);
      REQUIRE(SSL_CTX_set_min_proto_version(ctx_, TLS1_VERSION) == 1);
    }
    if (options.max_version != 0) {
      REQUIRE(SSL_CTX_set_max_proto_version(ctx_, options.max_version) == 1);
    }
  }
  ~TestServer() { SSL_CTX_free(ctx_); }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  SSL_CTX* native() const { return ctx_; }
  bool sni_seen() const { return sni_seen_; }
  const std::string& sni() const { return sni_; }

 private:
  static int on_servername(SSL* ssl, int* /*alert*/, void* arg) {
    auto* self = static_cast<TestServer*>(arg);
    if (const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) {
      self->sni_seen_ = true;
      self->sni_ = name;
    }
    return SSL_TLSEXT_ERR_OK;
  }

  SSL_CTX* ctx_;
  bool sni_seen_ = false;
  std::string sni_;
};

// A raw OpenSSL endpoint over memory BIOs (server side, or a reference client).
class Peer {
 public:
  Peer(SSL_CTX* ctx, bool server) : ssl_(SSL_new(ctx)) {
    REQUIRE(ssl_ != nullptr);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_, in_, out_);
    if (server) {
      SSL_set_accept_state(ssl_);
    } else {
      SSL_set_connect_state(ssl_);
    }
  }
  ~Peer() { SSL_free(ssl_); }
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;

  SSL* native() const { return ssl_; }
  void feed(const std::string& bytes) {
    if (!bytes.empty()) BIO_write(in_, bytes.data(), static_cast<int>(bytes.size()));
  }
  std::string take() {
    std::string out(BIO_ctrl_pending(out_), '\0');
    if (!out.empty()) BIO_read(out_, out.data(), static_cast<int>(out.size()));
    return out;
  }
  bool handshake() {
    if (SSL_is_init_finished(ssl_)) return true;
    int ret = SSL_do_handshake(ssl_);
    ERR_clear_error();
    return ret == 1;
  }
  void write(const std::string& plain) {
    size_t written = 0;
    REQUIRE(SSL_write_ex(ssl_, plain.data(), plain.size(), &written) == 1);
    REQUIRE(written == plain.size());
  }
  // Drains decrypted data; returns the SSL_get_error code that stopped it.
  int read(std::string& out) {
    char buf[16384];
    for (;;) {
      size_t got = 0;
      int ret = SSL_read_ex(ssl_, buf, sizeof buf, &got);
      if (ret != 1) {
        int err = SSL_get_error(ssl_, ret);
        ERR_clear_error();
        return err;
      }
      out.append(buf, got);
    }
  }

 private:
  SSL* ssl_;
  BIO* in_ = nullptr;
  BIO* out_ = nullptr;
};

// Moves handshake bytes both ways until neither side has anything to say.
Status pump_handshake(TlsTransform& client, Peer& server) {
  Status status = Status::want_more;
  for (int round = 0; round < 16; ++round) {
    status = client.handshake();
    std::string to_server;
    client.take_ciphertext(to_server);
    server.feed(to_server);
    server.handshake();
    std::string to_client = server.take();
    if (to_server.empty() && to_client.empty()) break;
    client.feed_ciphertext(to_client);
  }
  return status;
}

// Client -> server application data; returns what the server decrypted.
std::string send_to_server(TlsTransform& client, Peer& server, const std::string& plain) {
  REQUIRE(client.write_plaintext(plain) == Status::ok);
  std::string wire;
  client.take_ciphertext(wire);
  server.feed(wire);
  std::string got;
  CHECK(server.read(got) == SSL_ERROR_WANT_READ);
  return got;
}

std::string patterned(size_t size) {
  std::string data(size, '\0');
  for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
  return data;
}

bool error_queue_empty() { return ERR_peek_error() == 0; }

TEST_CASE("handshake negotiates http/1.1 and carries data both ways", "[tls]") {
  TlsClientContext ctx(true, ca_file());
  TestServer server_ctx(pki().localhost);
  Peer server(server_ctx.native(), true);
  TlsTransform client(ctx, "localhost", "localhost");

  REQUIRE(pump_handshake(client, server) == Status::ok);
  CHECK(client.handshake_done());
  CHECK(client.error_message().empty());
  CHECK_FALSE(client.verify_failed());
  CHECK(client.alpn() == "http/1.1");
  CHECK(SSL_version(server.native()) == TLS1_3_VERSION);

  CHECK(send_to_server(client, server, "GET / HTTP/1.1\r\n\r\n") == "GET / HTTP/1.1\r\n\r\n");

  server.write("HTTP/1.1 200 OK\r\n\r\n");
  client.feed_ciphertext(server.take());
  std::string got;
  CHECK(client.read_plaintext(got) == Status::ok);
  CHECK(got == "HTTP/1.1 200 OK\r\n\r\n");
  CHECK(client.read_plaintext(got) == Status::want_more);
  CHECK(got == "HTTP/1.1 200 OK\r\n\r\n");

  SECTION("payloads larger than one record, one MiB each way") {
    const std::string big = patterned(1 << 20);
    CHECK(send_to_server(client, server, big) == big);

    server.write(big);
    const std::string wire = server.take();
    CHECK(wire.size() > big.size());
    client.feed_ciphertext(wire);
    std::string received = "prefix:";
    CHECK(client.read_plaintext(received) == Status::ok);  // one call drains every record
    CHECK(received == "prefix:" + big);
  }

  SECTION("ciphertext split into single bytes") {
    server.write("streamed");
    const std::string wire = server.take();
    std::string received;
    for (size_t i = 0; i + 1 < wire.size(); ++i) {
      client.feed_ciphertext(wire.substr(i, 1));
      CHECK(client.read_plaintext(received) == Status::want_more);
    }
    client.feed_ciphertext(wire.substr(wire.size() - 1));
    CHECK(client.read_plaintext(received) == Status::ok);
    CHECK(received == "streamed");
  }
}

TEST_CASE("handshake works when the server only speaks TLS 1.2", "[tls]") {
  TlsClientContext ctx(true, ca_file());
  TestServer server_ctx(pki().localhost, {.max_version = TLS1_2_VERSION, .legacy = false});
  Peer server(server_ctx.native(), true);
  TlsTransform client(ctx, "localhost", "localhost");

  REQUIRE(pump_handshake(client, server) == Status::ok);
  CHECK(SSL_version(server.native()) == TLS1_2_VERSION);
  CHECK(client.alpn() == "http/1.1");
  CHECK(send_to_server(client, server, "ping") == "ping");
}

TEST_CASE("SNI reaches the server, except for IP literals", "[tls]") {
  TlsClientContext ctx(true, ca_file());
  TestServer server_ctx(pki().localhost);
  Peer server(server_ctx.native(), true);

  SECTION("host name") {
    TlsTransform client(ctx, "localhost", "localhost");
    REQUIRE(pump_handshake(client, server) == Status::ok);
    CHECK(server_ctx.sni_seen());
    CHECK(server_ctx.sni() == "localhost");
  }
  SECTION("SNI differs from the verified host") {
    TlsTransform client(ctx, "api.example.test", "localhost");
    REQUIRE(pump_handshake(client, server) == Status::ok);
    CHECK(server_ctx.sni() == "api.example.test");
  }
  SECTION("IP literal") {
    TlsTransform client(ctx, "127.0.0.1", "127.0.0.1");
    REQUIRE(pump_handshake(client, server) == Status::ok);
    CHECK_FALSE(server_ctx.sni_seen());
  }
}

TEST_CASE("a certificate from an unknown CA fails verification", "[tls]") {
  TlsClientContext ctx(true, "");  // system store only: the test CA is not in it
  TestServer server_ctx(pki().localhost);
  Peer server(server_ctx.native(), true);
  TlsTransform client(ctx, "localhost", "localhost");

  CHECK(pump_handshake(client, server) == Status::error);
  CHECK_FALSE(client.handshake_done());
  CHECK(client.verify_failed());
  CHECK(client.error_message() ==
        "certificate verify failed: unable to get local issuer certificate");
  CHECK(error_queue_empty());
  // A failed transform stays failed and never crashes.
  std::string out;
  CHECK(client.handshake() == Status::error);
  CHECK(client.read_plaintext(out) == Status::error);
  CHECK(client.write_plaintext("x") == Status::error);
  client.shutdown();
  CHECK(out.empty());
}

TEST_CASE("hostname verification", "[tls]") {
  TlsClientContext ctx(true, ca_file());

  SECTION("DNS name mismatch") {
    TestServer server_ctx(pki().wrong_host);
    Peer server(server_ctx.native(), true);
    TlsTransform client(ctx, "localhost", "localhost");
    CHECK(pump_handshake(client, server) == Status::error);
    CHECK(client.verify_failed());
    CHECK(client.error_message() == "certificate verify failed: hostname mismatch");
  }
  SECTION("SNI does not stand in for the verified host") {
    TestServer server_ctx(pki().wrong_host);
    Peer server(server_ctx.native(), true);
    TlsTransform client(ctx, "other.example", "localhost");
    CHECK(pump_handshake(client, server) == Status::error);
    CHECK(client.error_message() == "certificate verify failed: hostname mismatch");
  }
  SECTION("IPv4 SAN") {
    TestServer server_ctx(pki().localhost);
    Peer server(server_ctx.native(), true);
    TlsTransform client(ctx, "127.0.0.1", "127.0.0.1");
    CHECK(pump_handshake(client, server) == Status::ok);
  }
  SECTION("IPv6 SAN, bracketed") {
    TestServer server_ctx(pki().localhost);
    Peer server(server_ctx.native(), true);
    TlsTransform client(ctx, "[::1]", "[::1]");
    CHECK(pump_handshake(client, server) == Status::ok);
    CHECK_FALSE(server_ctx.sni_seen());
  }
  SECTION("IP not in the SANs") {
    TestServer server_ctx(pki().localhost);
    Peer server(server_ctx.native(), true);
    TlsTransform client(ctx, "127.0.0.2", "127.0.0.2");
    CHECK(pump_handshake(client, server) == Status::error);
    CHECK(client.verify_failed());
    CHECK(client.error_message() == "certificate verify failed: IP address mismatch");
  }
  SECTION("an IP literal is not matched against DNS SANs") {
    TestServer server_ctx(pki().wrong_host);
    Peer server(server_ctx.native(), true);
    TlsTransform client(ctx, "127.0.0.1", "127.0.0.1");
    CHECK(pump_handshake(client, server) == Status::error);
    CHECK(client.error_message() == "certificate verify failed: IP address mismatch");
  }
  SECTION("an empty host name fails closed instead of skipping the name check") {
    TestServer server_ctx(pki().localhost);
    Peer server(server_ctx.native(), true);
    TlsTransform client(ctx, "localhost", "");
    CHECK(client.handshake() == Status::error);
    CHECK(client.error_message().find("no host name") != std::string::npos);
    std::string wire;
    CHECK(client.take_ciphertext(wire) == 0);  // nothing was sent
  }
}

TEST_CASE("an expired certificate fails verification", "[tls]") {
  TlsClientContext ctx(true, ca_file());
  TestServer server_ctx(pki().expired);
  Peer server(server_ctx.native(), true);
  TlsTransform client(ctx, "localhost", "localhost");

  CHECK(pump_handshake(client, server) == Status::error);
  CHECK(client.verify_failed());
  CHECK(client.error_message() == "certificate verify failed: certificate has expired");
}

TEST_CASE("verify=false accepts a self-signed certificate, verify=true rejects it", "[tls]") {
  TestServer server_ctx(pki().self_signed);
  Peer server(server_ctx.native(), true);

  SECTION("verify off") {
    TlsClientContext ctx(false, "");
    CHECK_FALSE(ctx.verify());
    TlsTransform client(ctx, "localhost", "some.other.name");
    REQUIRE(pump_handshake(client, server) == Status::ok);
    CHECK_FALSE(client.verify_failed());
    CHECK(send_to_server(client, server, "hello") == "hello");
  }
  SECTION("verify on") {
    TlsClientContext ctx(true, ca_file());
    TlsTransform client(ctx, "localhost", "localhost");
    CHECK(pump_handshake(client, server) == Status::error);
    CHECK(client.verify_failed());
    CHECK(client.error_message() == "certificate verify failed: self-signed certificate");
  }
}

TEST_CASE("ca_file loading", "[tls]") {
  SECTION("a PEM bundle with the CA is trusted") {
    const TempFile bundle(to_pem(pki().self_signed.cert.get()) + to_pem(pki().ca.cert.get()));
    TlsClientContext ctx(true, bundle.path());
    TestServer server_ctx(pki().localhost);
    Peer server(server_ctx.native(), true);
    TlsTransform client(ctx, "localhost", "localhost");
    CHECK(pump_handshake(client, server) == Status::ok);
  }
  SECTION("a missing file throws a readable error") {
    const std::string path = "/nonexistent/tokentap/ca.pem";
    try {
      TlsClientContext ctx(true, path);
      FAIL("expected an exception");
    } catch (const std::runtime_error& e) {
      CHECK(std::string(e.what()) == "cannot load CA file " + path + ": No such file or directory");
    }
    CHECK(error_queue_empty());
  }
  SECTION("a file without certificates throws") {
    const TempFile junk("this is not a certificate\n");
    CHECK_THROWS_WITH(TlsClientContext(true, junk.path()),
                      "cannot load CA file " + junk.path() + ": no certificate or crl found");
    CHECK(error_queue_empty());
  }
}

TEST_CASE("a server limited to TLS 1.1 is rejected", "[tls]") {
  // Debian's OpenSSL refuses TLS < 1.2 at security level >= 1, so the server drops to level 0.
  TestServer server_ctx(pki().localhost, {.max_version = TLS1_1_VERSION, .legacy = true});

  SECTION("a legacy client can talk to it, so the server really offers TLS 1.1") {
    SSL_CTX* legacy_ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_security_level(legacy_ctx, 0);
    REQUIRE(SSL_CTX_set_cipher_list(legacy_ctx, "DEFAULT:@SECLEVEL=0") == 1);
    REQUIRE(SSL_CTX_set_min_proto_version(legacy_ctx, TLS1_VERSION) == 1);
    REQUIRE(SSL_CTX_set_max_proto_version(legacy_ctx, TLS1_1_VERSION) == 1);
    {
      Peer legacy_client(legacy_ctx, false);
      Peer server(server_ctx.native(), true);
      for (int round = 0; round < 8; ++round) {
        legacy_client.handshake();
        server.feed(legacy_client.take());
        server.handshake();
        legacy_client.feed(server.take());
      }
      CHECK(legacy_client.handshake());
      CHECK(SSL_version(legacy_client.native()) == TLS1_1_VERSION);
    }
    SSL_CTX_free(legacy_ctx);
  }
  SECTION("our client refuses it") {
    TlsClientContext ctx(true, ca_file());
    Peer server(server_ctx.native(), true);
    TlsTransform client(ctx, "localhost", "localhost");
    CHECK(pump_handshake(client, server) == Status::error);
    CHECK_FALSE(client.verify_failed());
    CHECK(client.error_message() == "tls handshake failed: tlsv1 alert protocol version");
    CHECK(error_queue_empty());
  }
}

TEST_CASE("close_notify from the server yields closed", "[tls]") {
  TlsClientContext ctx(true, ca_file());
  TestServer server_ctx(pki().localhost);
  Peer server(server_ctx.native(), true);
  TlsTransform client(ctx, "localhost", "localhost");
  REQUIRE(pump_handshake(client, server) == Status::ok);

  server.write("last words");
  SSL_shutdown(server.native());
  client.feed_ciphertext(server.take());
  std::string got;
  CHECK(client.read_plaintext(got) == Status::closed);
  CHECK(got == "last words");  // data before the alert is still delivered
  CHECK(client.read_plaintext(got) == Status::closed);
  CHECK(got == "last words");
}

TEST_CASE("shutdown sends close_notify to the server", "[tls]") {
  TlsClientContext ctx(true, ca_file());
  TestServer server_ctx(pki().localhost);
  Peer server(server_ctx.native(), true);
  TlsTransform client(ctx, "localhost", "localhost");
  REQUIRE(pump_handshake(client, server) == Status::ok);

  client.shutdown();
  std::string wire;
  CHECK(client.take_ciphertext(wire) > 0);
  server.feed(wire);
  std::string got;
  CHECK(server.read(got) == SSL_ERROR_ZERO_RETURN);
  CHECK(got.empty());
}

TEST_CASE("garbage ciphertext yields an error without crashing", "[tls]") {
  TlsClientContext ctx(true, ca_file());

  SECTION("during the handshake: a plaintext HTTP server") {
    TlsTransform client(ctx, "localhost", "localhost");
    CHECK(client.handshake() == Status::want_more);
    std::string hello;
    CHECK(client.take_ciphertext(hello) > 0);
    client.feed_ciphertext("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    CHECK(client.handshake() == Status::error);
    CHECK_FALSE(client.verify_failed());
    CHECK(client.error_message() == "tls handshake failed: wrong version number");
    CHECK(error_queue_empty());
  }
  SECTION("after the handshake: a record that fails authentication") {
    TestServer server_ctx(pki().localhost);
    Peer server(server_ctx.native(), true);
    TlsTransform client(ctx, "localhost", "localhost");
    REQUIRE(pump_handshake(client, server) == Status::ok);

    std::mt19937 rng(42);
    std::string record = {0x17, 0x03, 0x03, 0x01, 0x00};  // application data, 256 bytes
    for (int i = 0; i < 256; ++i) record.push_back(static_cast<char>(rng() & 0xff));
    client.feed_ciphertext(record);
    std::string got;
    CHECK(client.read_plaintext(got) == Status::error);
    CHECK(got.empty());
    CHECK(client.error_message() == "tls error: decryption failed or bad record mac");
    CHECK_FALSE(client.verify_failed());
    CHECK(error_queue_empty());
    CHECK(client.read_plaintext(got) == Status::error);
    CHECK(client.write_plaintext("more") == Status::error);
    client.shutdown();
  }
  SECTION("random bytes of every length never crash the client") {
    std::mt19937 rng(7);
    for (int trial = 0; trial < 64; ++trial) {
      TlsTransform client(ctx, "localhost", "localhost");
      client.handshake();
      std::string noise(rng() % 600, '\0');
      for (char& c : noise) c = static_cast<char>(rng() & 0xff);
      client.feed_ciphertext(noise);
      const Status status = client.handshake();
      CHECK((status == Status::error || status == Status::want_more));
      CHECK(error_queue_empty());
    }
  }
}

TEST_CASE("a stale OpenSSL error left by other code does not leak into a connection", "[tls]") {
  TlsClientContext ctx(true, ca_file());
  TestServer server_ctx(pki().localhost);
  Peer server(server_ctx.native(), true);
  TlsTransform client(ctx, "localhost", "localhost");
  ERR_raise(ERR_LIB_SSL, SSL_R_CERTIFICATE_VERIFY_FAILED);
  REQUIRE(pump_handshake(client, server) == Status::ok);
  std::string got;
  // Consume the TLS 1.3 tickets first: handshake messages run OpenSSL's state machine, which
  // clears the queue itself and would hide a missing clear on the application-data path.
  REQUIRE(client.read_plaintext(got) == Status::want_more);
  ERR_raise(ERR_LIB_SSL, SSL_R_CERTIFICATE_VERIFY_FAILED);
  CHECK(send_to_server(client, server, "fine") == "fine");
  server.write("also fine");
  client.feed_ciphertext(server.take());
  ERR_raise(ERR_LIB_SSL, SSL_R_CERTIFICATE_VERIFY_FAILED);
  CHECK(client.read_plaintext(got) == Status::ok);
  CHECK(got == "also fine");
  CHECK_FALSE(client.verify_failed());
  ERR_clear_error();
}

TEST_CASE("writing before the handshake is an error, not a silent drop", "[tls]") {
  TlsClientContext ctx(true, ca_file());
  TlsTransform client(ctx, "localhost", "localhost");
  CHECK(client.write_plaintext("too early") == Status::error);
  CHECK_FALSE(client.error_message().empty());
}

TEST_CASE("a second connection resumes the session for the same host only", "[tls]") {
  TlsClientContext ctx(true, ca_file());
  TestServer server_ctx(pki().localhost);

  auto connect = [&](const std::string& host) {
    Peer server(server_ctx.native(), true);
    TlsTransform client(ctx, host, host);
    REQUIRE(pump_handshake(client, server) == Status::ok);
    // TLS 1.3 tickets arrive after the handshake and are consumed by a read.
    std::string got;
    CHECK(client.read_plaintext(got) == Status::want_more);
    CHECK(got.empty());
    return client.session_reused();
  };

  // Every connection here is dropped without close_notify, like an evicted pooled connection.
  CHECK_FALSE(connect("localhost"));
  CHECK(connect("localhost"));
  CHECK(connect("localhost"));
  CHECK_FALSE(connect("127.0.0.1"));
  CHECK(connect("127.0.0.1"));

  SECTION("a fatal error forgets the session") {
    {
      Peer server(server_ctx.native(), true);
      TlsTransform client(ctx, "localhost", "localhost");
      REQUIRE(pump_handshake(client, server) == Status::ok);
      CHECK(client.session_reused());
      std::string got;
      client.read_plaintext(got);  // new tickets are stored...
      client.feed_ciphertext(std::string("\x17\x03\x03\x00\x20", 5) + std::string(32, 'x'));
      CHECK(client.read_plaintext(got) == Status::error);  // ...and dropped by the bad record
    }
    CHECK_FALSE(connect("localhost"));
    CHECK(connect("localhost"));
  }

  SECTION("a transform may outlive its context") {
    auto short_lived = std::make_unique<TlsClientContext>(true, ca_file());
    Peer server(server_ctx.native(), true);
    TlsTransform client(*short_lived, "localhost", "localhost");
    short_lived.reset();
    REQUIRE(pump_handshake(client, server) == Status::ok);
    std::string got;
    CHECK(client.read_plaintext(got) == Status::want_more);  // stores the ticket
    CHECK(send_to_server(client, server, "still fine") == "still fine");
  }
}

TEST_CASE("TLS 1.2 sessions resume too", "[tls]") {
  TlsClientContext ctx(true, ca_file());
  TestServer server_ctx(pki().localhost, {.max_version = TLS1_2_VERSION, .legacy = false});
  for (bool expect_reuse : {false, true, true}) {
    Peer server(server_ctx.native(), true);
    TlsTransform client(ctx, "localhost", "localhost");
    REQUIRE(pump_handshake(client, server) == Status::ok);
    CHECK(client.session_reused() == expect_reuse);
    CHECK(client.alpn() == "http/1.1");
    CHECK(send_to_server(client, server, "ping") == "ping");
  }
}

}  // namespace
}  // namespace tokentap
