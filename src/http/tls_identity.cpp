#include "sluice/http/tls_identity.hpp"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ssl/context.hpp>
#include <spdlog/spdlog.h>

namespace sluice::http {

namespace ssl = boost::asio::ssl;

namespace {

// Mozilla's "intermediate" configuration (ssl-config.mozilla.org, guidelines 5.7): TLS 1.2 with
// forward-secret AEAD suites only, TLS 1.3 with OpenSSL's default suites (all of them AEAD).
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";
constexpr const char* groups = "X25519:prime256v1:secp384r1";

// OpenSSL's queued errors as one line (and the queue emptied, so the next load starts clean).
std::string openssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    out += (out.empty() ? "" : "; ") + std::string(text);
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

// ALPN: only http/1.1 is spoken. A client offering only h2 gets no ALPN answer (rather than a
// fatal alert) and may still try HTTP/1.1, as nginx lets it.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                unsigned int in_len, void*) {
  static constexpr unsigned char ours[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, out_len, ours, sizeof ours, in, in_len) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

std::string describe(SSL_CTX* ctx) {
  X509* leaf = SSL_CTX_get0_certificate(ctx);
  if (leaf == nullptr)
    return "no certificate";
  std::string serial = "?";
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(leaf), nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      serial = hex;
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  char subject[256];
  X509_NAME_oneline(X509_get_subject_name(leaf), subject, sizeof subject);
  return "serial " + serial + ", subject " + subject;
}

std::shared_ptr<ssl::context> load(const std::string& cert_file, const std::string& key_file) {
  ERR_clear_error();
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* ctx = context->native_handle();
  const auto fail = [](const std::string& what) {
    throw tls_identity::load_error(what + ": " + openssl_errors());
  };
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
    fail("TLS 1.2 minimum");
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1)
    fail("cipher list");
  if (SSL_CTX_set1_groups_list(ctx, groups) != 1)
    fail("key exchange groups");
  // The DHE suites of the list need parameters; OpenSSL picks them to match the key's size.
  SSL_CTX_set_dh_auto(ctx, 1);
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1)
    fail("SLUICE_TLS_CERT " + cert_file);
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    fail("SLUICE_TLS_KEY " + key_file);
  if (SSL_CTX_check_private_key(ctx) != 1)
    fail("SLUICE_TLS_KEY " + key_file + " does not match SLUICE_TLS_CERT " + cert_file);
  return context;
}

}  // namespace

tls_identity::tls_identity(std::string cert_file, std::string key_file)
    : cert_file_(std::move(cert_file)),
      key_file_(std::move(key_file)),
      context_(load(cert_file_, key_file_)),
      description_(describe(context_->native_handle())) {}

tls_identity::~tls_identity() = default;

bool tls_identity::reload() {
  try {
    auto fresh = load(cert_file_, key_file_);
    description_ = describe(fresh->native_handle());
    context_ = std::move(fresh);
    spdlog::info("tls: reloaded {} and {}: {}", cert_file_, key_file_, description_);
    return true;
  } catch (const std::exception& e) {  // never fatal: the old context still serves
    spdlog::error("tls: reload failed, new connections keep the previous certificate ({}): {}",
                  description_, e.what());
    return false;
  }
}

}  // namespace sluice::http
