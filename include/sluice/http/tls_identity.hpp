#pragma once

#include <memory>
#include <stdexcept>
#include <string>

namespace boost::asio::ssl {
class context;
}

namespace sluice::http {

// A TLS listener's certificate and key (SLUICE_TLS_CERT, SLUICE_TLS_KEY) as a server-side
// ssl::context: TLS 1.2 and 1.3 only, Mozilla's "intermediate" cipher list, ALPN http/1.1.
//
// reload() builds a whole new context from the files and swaps it in: connections accepted
// afterwards use it, established ones keep the one they were accepted with (each holds its
// context's shared_ptr). A reload that fails (missing file, key not matching the certificate)
// keeps the current context and says why in the log; only the first load may fail the start-up.
class tls_identity {
 public:
  struct load_error : std::runtime_error {
    using std::runtime_error::runtime_error;
  };

  // Throws load_error naming the file and OpenSSL's reason.
  tls_identity(std::string cert_file, std::string key_file);
  ~tls_identity();
  tls_identity(const tls_identity&) = delete;
  tls_identity& operator=(const tls_identity&) = delete;

  // True when the new files were taken.
  bool reload();

  std::shared_ptr<boost::asio::ssl::context> context() const { return context_; }
  // The leaf certificate's serial number (hex) and subject, for logs.
  const std::string& description() const { return description_; }

 private:
  std::string cert_file_;
  std::string key_file_;
  std::shared_ptr<boost::asio::ssl::context> context_;
  std::string description_;
};

}  // namespace sluice::http
