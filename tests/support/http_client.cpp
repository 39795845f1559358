#include "sluice_test/http_client.hpp"

#include <algorithm>
#include <cctype>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace sluice::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

struct http_connection::impl {
  asio::io_context io;
  tcp::socket socket{io};
  beast::flat_buffer buffer;
};

http_connection::http_connection(std::uint16_t port) : impl_(std::make_unique<impl>()) {
  impl_->socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  impl_->socket.set_option(tcp::no_delay(true));
}

http_connection::~http_connection() = default;

http_result http_connection::request(const std::string& method, const std::string& target,
                                     const std::string& body,
                                     const std::map<std::string, std::string>& headers) {
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
  req.set(bhttp::field::host, "127.0.0.1");
  if (!body.empty())
    req.set(bhttp::field::content_type, "application/json");
  for (const auto& [k, v] : headers)
    req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  bhttp::write(impl_->socket, req);
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(1ULL << 30);
  bhttp::read(impl_->socket, impl_->buffer, parser);
  auto& res = parser.get();
  http_result out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    out.headers[name] = std::string(field.value());
  }
  out.body = std::move(res.body());
  return out;
}

bool http_connection::closed_by_peer(std::chrono::milliseconds wait) {
  impl_->socket.non_blocking(true);
  const auto deadline = std::chrono::steady_clock::now() + wait;
  char byte = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    boost::system::error_code ec;
    const auto n = impl_->socket.read_some(asio::buffer(&byte, 1), ec);
    if (ec == asio::error::eof || ec == asio::error::connection_reset)
      return true;
    if (!ec && n > 0)
      return false;  // unexpected data
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

http_result http_call(std::uint16_t port, const std::string& method, const std::string& target,
                      const std::string& body, const std::map<std::string, std::string>& headers) {
  http_connection conn(port);
  return conn.request(method, target, body, headers);
}

struct raw_connection::impl {
  asio::io_context io;
  tcp::socket socket{io};
};

raw_connection::raw_connection(std::uint16_t port) : impl_(std::make_unique<impl>()) {
  impl_->socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  impl_->socket.set_option(tcp::no_delay(true));
}

raw_connection::~raw_connection() = default;

void raw_connection::send(const std::string& bytes) {
  boost::system::error_code ec;
  impl_->socket.non_blocking(false);
  asio::write(impl_->socket, asio::buffer(bytes), ec);
}

std::string raw_connection::receive(std::chrono::milliseconds wait) {
  std::string out;
  boost::system::error_code ec;
  impl_->socket.non_blocking(true);
  const auto deadline = std::chrono::steady_clock::now() + wait;
  char chunk[4096];
  while (!closed_ && std::chrono::steady_clock::now() < deadline) {
    const auto n = impl_->socket.read_some(asio::buffer(chunk), ec);
    if (ec == asio::error::would_block) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    if (ec) {
      closed_ = true;
      break;
    }
    out.append(chunk, n);
  }
  return out;
}

bool raw_connection::closed_by_peer(std::chrono::milliseconds wait) {
  receive(wait);
  return closed_;
}

bool accepts_connections(std::uint16_t port) {
  asio::io_context io;
  tcp::socket socket(io);
  boost::system::error_code ec;
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  return !ec;
}

std::string send_raw(std::uint16_t port, const std::string& bytes, std::chrono::milliseconds wait) {
  raw_connection conn(port);
  conn.send(bytes);
  return conn.receive(wait);
}

}  // namespace sluice::test
