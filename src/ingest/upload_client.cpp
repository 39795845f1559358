#include "sluice/ingest/upload_client.hpp"

#include <charconv>
#include <stdexcept>

#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace sluice::ingest {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

}  // namespace

bool parse_http_url(std::string_view url, parsed_url& out, std::string& error) {
  constexpr std::string_view scheme = "http://";
  if (url.substr(0, scheme.size()) != scheme) {
    error = url.substr(0, 8) == "https://" ? "https:// is not supported by sluice ingest yet"
                                           : "the URL must start with http://";
    return false;
  }
  url.remove_prefix(scheme.size());
  const auto slash = url.find('/');
  auto authority = url.substr(0, slash);
  out.base_path = slash == std::string_view::npos ? "" : std::string(url.substr(slash));
  while (!out.base_path.empty() && out.base_path.back() == '/')
    out.base_path.pop_back();
  out.port = 80;
  std::string_view host = authority;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "unclosed [ in the URL's host";
      return false;
    }
    host = authority.substr(1, close - 1);
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() != ':') {
      error = "unexpected text after the URL's host";
      return false;
    }
  } else {
    const auto colon = authority.rfind(':');
    host = authority.substr(0, colon);
    authority = colon == std::string_view::npos ? std::string_view{} : authority.substr(colon);
  }
  if (!authority.empty()) {
    const auto digits = authority.substr(1);
    unsigned port = 0;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (digits.empty() || ec != std::errc{} || ptr != digits.data() + digits.size() || port == 0 ||
        port > 65535) {
      error = "the URL's port must be a number from 1 to 65535";
      return false;
    }
    out.port = static_cast<std::uint16_t>(port);
  }
  if (host.empty()) {
    error = "the URL has no host";
    return false;
  }
  out.host = std::string(host);
  return true;
}

upload_response post_chunked(const upload_target& to, const body_source& next) {
  asio::io_context io;
  tcp::resolver resolver(io);
  tcp::socket socket(io);
  boost::system::error_code ec;
  const auto endpoints = resolver.resolve(to.host, std::to_string(to.port), ec);
  if (ec)
    throw std::runtime_error("cannot resolve " + to.host + ": " + ec.message());
  asio::connect(socket, endpoints, ec);
  if (ec) {
    throw std::runtime_error("cannot connect to " + to.host + ":" + std::to_string(to.port) + ": " +
                             ec.message());
  }

  http::request<http::empty_body> req{http::verb::post, to.target, 11};
  req.set(http::field::host, to.host + ":" + std::to_string(to.port));
  req.set(http::field::user_agent, "sluice-ingest");
  for (const auto& [name, value] : to.headers)
    req.set(name, value);
  req.chunked(true);
  http::request_serializer<http::empty_body> header(req);
  http::write_header(socket, header, ec);
  if (ec)
    throw std::runtime_error("cannot send the request: " + ec.message());

  // A write error means the server stopped reading: it has answered early, or gone away.
  std::string piece;
  constexpr std::size_t piece_bytes = 256 * 1024;
  for (;;) {
    piece.clear();
    next(piece, piece_bytes);
    if (piece.empty()) {
      asio::write(socket, http::make_chunk_last(), ec);
      break;
    }
    asio::write(socket, http::make_chunk(asio::buffer(piece)), ec);
    if (ec)
      break;
  }

  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(16 * 1024 * 1024);
  boost::system::error_code read_ec;
  http::read(socket, buffer, parser, read_ec);
  if (read_ec) {
    throw std::runtime_error("no answer from the server: " +
                             (ec ? ec.message() + ", then " : std::string()) + read_ec.message());
  }
  auto res = parser.release();
  upload_response out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& field : res)
    out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  out.body = std::move(res.body());
  return out;
}

}  // namespace sluice::ingest
