#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace sluice::test {

// A throwaway CA and the server certificates it signs (tests/support/make-test-certs): files in
// a directory of the test's own, removed with it.
class test_ca {
 public:
  test_ca();
  ~test_ca();
  test_ca(const test_ca&) = delete;
  test_ca& operator=(const test_ca&) = delete;

  struct issued {
    std::string cert_file;
    std::string key_file;
  };
  // A certificate for localhost and 127.0.0.1 with a fresh serial.
  issued issue(const std::string& name) const;
  const std::string& ca_file() const { return ca_file_; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::string ca_file_;
};

struct tls_options {
  std::string ca_file;             // verify the server against it (empty: no verify)
  std::string host = "localhost";  // SNI and the name the certificate must carry
  int max_version = 0;             // e.g. TLS1_1_VERSION to offer only old versions
};

struct tls_reply {
  int status = 0;
  std::string body;
  std::string raw;  // the response as received
};

// One blocking HTTPS connection (keep-alive): the handshake in the constructor (throws with
// OpenSSL's reason when it fails), then requests one at a time. No timeouts of its own: the
// test's ctest TIMEOUT bounds a server that never answers.
class tls_connection {
 public:
  tls_connection(std::uint16_t port, tls_options options);
  ~tls_connection();
  tls_connection(const tls_connection&) = delete;
  tls_connection& operator=(const tls_connection&) = delete;

  tls_reply request(const std::string& method, const std::string& target,
                    const std::string& body = "");
  // Sends a request without waiting for its answer (then the test may close the connection).
  void send(const std::string& method, const std::string& target, const std::string& body = "");

  std::string peer_serial() const;  // the server certificate's serial, hex
  std::string protocol() const;     // "TLSv1.3", "TLSv1.2"
  std::string alpn() const;         // "http/1.1" or empty

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace sluice::test
