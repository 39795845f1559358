#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "sluice/http/router.hpp"
#include "sluice/http/tls_identity.hpp"
#include "sluice/metrics/registry.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::http {

struct server_options {
  std::string name = "api";  // in logs, to tell listeners apart
  std::size_t max_body_bytes = 8 * 1024 * 1024;
  std::size_t max_header_bytes = 16 * 1024;
  std::chrono::milliseconds read_timeout{10'000};  // a started request must arrive within this
  std::chrono::milliseconds idle_timeout{60'000};  // keep-alive wait for the next request
  std::size_t max_connections = 10'000;
  // Called for every routed request once its header is read and before its body is: a
  // response (401, 403) answers the request instead of the handler, and a refused upload is
  // never read. It may set request::caller. Unset: everything is allowed.
  std::function<std::optional<response>(request&, const route_options&)> authorize;
  // Set: the listener speaks only HTTPS, each connection with the identity's context at its
  // accept (so a reload reaches new connections only). The TLS handshake must finish within
  // read_timeout: a client that never sends its ClientHello does not keep a connection slot.
  std::shared_ptr<tls_identity> tls;
};

// An HTTP/1.1 server on one executor: one coroutine per connection, keep-alive, limits and
// timeouts from `server_options`, JSON errors for everything the router or a limit rejects.
// Beast stays inside server.cpp; with `tls` the same code runs over Beast's ssl_stream.
class server {
 public:
  server(boost::asio::any_io_executor executor, server_options options, const router& routes,
         metrics::registry& metrics);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // Binds and listens; returns the bound port (useful with port 0). Throws std::system_error.
  std::uint16_t listen(const std::string& host, std::uint16_t port);
  void start();

  // Stops accepting, closes idle keep-alive connections at once, lets requests in flight finish
  // (their responses carry `Connection: close`) for up to `grace`, then closes what is left.
  boost::asio::awaitable<void> shutdown(std::chrono::milliseconds grace);
  // Ends a running (or the next) shutdown's grace period now: what is still in flight is closed.
  void end_grace();

  std::size_t connections() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace sluice::http
