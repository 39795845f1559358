#include "sluice_test/tls_client.hpp"

#include <cstdlib>
#include <filesystem>
#include <openssl/bn.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

namespace sluice::test {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

test_ca::test_ca() {
  const char* base = std::getenv("SLUICE_TEST_TMPDIR");
  std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/sluice-tls-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr)
    throw std::runtime_error("test_ca: mkdtemp failed");
  dir_ = tmpl;
  // RabbitMQ, running as its own user, reads the files from here.
  std::filesystem::permissions(dir_, std::filesystem::perms(0755));
  ca_file_ = dir_ + "/ca.pem";
}

test_ca::~test_ca() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

test_ca::issued test_ca::issue(const std::string& name) const {
  const std::string command =
      std::string(SLUICE_MAKE_TEST_CERTS) + " '" + dir_ + "' '" + name + "' >/dev/null";
  if (std::system(command.c_str()) != 0)
    throw std::runtime_error("test_ca: " + command + " failed");
  return {dir_ + "/" + name + ".pem", dir_ + "/" + name + ".key"};
}

struct tls_connection::impl {
  asio::io_context io;
  ssl::context context{ssl::context::tls_client};
  ssl::stream<tcp::socket> stream{io, context};
  asio::streambuf buffer;
  std::string host;
};

tls_connection::tls_connection(std::uint16_t port, tls_options options)
    : impl_(std::make_unique<impl>()) {
  auto& s = *impl_;
  s.host = options.host;
  if (options.max_version != 0) {
    // Offered for real (the system's MinProtocol and security level would stop it here), so
    // that a refusal is the server's.
    SSL* native = s.stream.native_handle();
    SSL_set_security_level(native, 0);
    SSL_set_min_proto_version(native, TLS1_VERSION);
    SSL_set_max_proto_version(native, options.max_version);
  }
  if (!options.ca_file.empty()) {
    s.context.load_verify_file(options.ca_file);
    s.stream.set_verify_mode(ssl::verify_peer);
    s.stream.set_verify_callback(ssl::host_name_verification(options.host));
  } else {
    s.stream.set_verify_mode(ssl::verify_none);
  }
  SSL_set_tlsext_host_name(s.stream.native_handle(), options.host.c_str());
  static constexpr unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_set_alpn_protos(s.stream.native_handle(), alpn, sizeof alpn);
  s.stream.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  s.stream.handshake(ssl::stream_base::client);
}

tls_connection::~tls_connection() {
  boost::system::error_code ignored;
  impl_->stream.next_layer().close(ignored);
}

void tls_connection::send(const std::string& method, const std::string& target,
                          const std::string& body) {
  auto& s = *impl_;
  std::string wire = method + " " + target + " HTTP/1.1\r\nHost: " + s.host + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT")
    wire +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  wire += "\r\n" + body;
  asio::write(s.stream, asio::buffer(wire));
}

tls_reply tls_connection::request(const std::string& method, const std::string& target,
                                  const std::string& body) {
  auto& s = *impl_;
  send(method, target, body);

  const std::size_t header_end = asio::read_until(s.stream, s.buffer, "\r\n\r\n");
  std::string head(asio::buffers_begin(s.buffer.data()),
                   asio::buffers_begin(s.buffer.data()) + static_cast<long>(header_end));
  s.buffer.consume(header_end);
  tls_reply reply;
  reply.status = std::stoi(head.substr(9, 3));
  std::size_t length = 0;
  std::string lower = head;
  for (auto& c : lower)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (const auto at = lower.find("\r\ncontent-length:"); at != std::string::npos)
    length = std::stoul(head.substr(at + 17));
  if (s.buffer.size() < length)
    asio::read(s.stream, s.buffer, asio::transfer_exactly(length - s.buffer.size()));
  reply.body.assign(asio::buffers_begin(s.buffer.data()),
                    asio::buffers_begin(s.buffer.data()) + static_cast<long>(length));
  s.buffer.consume(length);
  reply.raw = head + reply.body;
  return reply;
}

std::string tls_connection::peer_serial() const {
  X509* cert = SSL_get1_peer_certificate(impl_->stream.native_handle());
  if (cert == nullptr)
    return {};
  std::string out;
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(bn)) {
      out = hex;
      OPENSSL_free(hex);
    }
    BN_free(bn);
  }
  X509_free(cert);
  return out;
}

std::string tls_connection::protocol() const {
  return SSL_get_version(impl_->stream.native_handle());
}

std::string tls_connection::alpn() const {
  const unsigned char* data = nullptr;
  unsigned int size = 0;
  SSL_get0_alpn_selected(impl_->stream.native_handle(), &data, &size);
  return std::string(reinterpret_cast<const char*>(data), size);
}

}  // namespace sluice::test
