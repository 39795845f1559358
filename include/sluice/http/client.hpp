#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

namespace sluice::http {

struct client_options {
  // Connections open to one host:port at most (idle, busy and connecting); a request beyond it
  // waits (first come, first served) for one to come free, within its deadline.
  std::size_t max_connections_per_host = 64;
  // A TCP connect that takes longer ends with connect_failed (the target is unreachable); when
  // the request's own deadline comes first, it ends with timeout.
  std::chrono::milliseconds connect_timeout{3'000};
  // Idle keep-alive connections are closed after this.
  std::chrono::milliseconds idle_timeout{30'000};
  std::size_t max_response_bytes = 8 * 1024 * 1024;
  std::size_t max_response_header_bytes = 64 * 1024;
};

// One request to an http:// origin. `target` is sent as is (path and query, undecoded).
// Headers go out in this order with their names and values byte for byte; nothing is added but
// Host (when missing, as host[:port]) and, for a request with a body and for POST/PUT/PATCH,
// Content-Length from the body (a given Content-Length that disagrees with the body is replaced,
// a Transfer-Encoding dropped: the body is sent as is). No User-Agent is added.
struct client_request {
  std::string method;
  std::string host;  // name or address, without port
  std::uint16_t port = 80;
  std::string target = "/";
  std::vector<std::pair<std::string, std::string>> headers;  // Host is added when missing
  std::string body;
};

// The final response (1xx responses are skipped). For HEAD, the body is empty and the headers
// are the ones a GET would get (Content-Length included).
struct client_response {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // as received, in order
  std::string body;
};

// Errors of send(): the caller maps them to 502/504. (error category "sluice.http_client")
enum class client_errc {
  connect_failed = 1,  // resolve or connect refused/unreachable
  timeout,             // the deadline passed (connecting, waiting for a slot, or the response)
  response_too_large,  // over max_response_bytes / max_response_header_bytes
  bad_response,        // not HTTP, or the connection closed (or failed) before the response ended
  cancelled,           // close(), or the client destroyed
  invalid_request,     // the request could not be serialized (e.g. a header Beast rejects)
};
std::error_code make_error_code(client_errc e);
const std::error_category& client_category();

// Counters since creation.
struct client_stats {
  std::uint64_t connects = 0;
  std::uint64_t reuses = 0;  // requests sent on a kept-alive connection
  std::uint64_t requests = 0;
  std::uint64_t failures = 0;
  std::uint64_t retries = 0;  // requests sent again on a fresh connection (see class comment)
  std::uint64_t timeouts = 0;
};

// An async HTTP/1.1 client on one executor: per host:port keep-alive pools with a bound on
// connections, a deadline on every request (connect, slot wait, write and read), a response size
// limit. A request that fails on a reused connection before any response byte arrived is retried
// once on a fresh connection (the server closed an idle one we had not noticed). Beast stays in
// client.cpp. Loop-thread only.
//
// Lifetime: the state lives in a shared impl that every send() keeps alive, so destroying the
// client with requests in flight is safe (the destructor calls close()). There is no background
// coroutine: idle timers are plain timer waits owned by their connections and cancelled by
// close(). After close() the client stays closed: send() answers cancelled at once.
class client {
 public:
  using clock = std::chrono::steady_clock;

  client(boost::asio::any_io_executor executor, client_options options);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  boost::asio::awaitable<std::tuple<std::error_code, client_response>> send(
      client_request request, clock::time_point deadline);
  // Closes every connection; requests in flight (and waiting for a slot) end with
  // client_errc::cancelled.
  void close();

  const client_stats& stats() const;
  // Idle, busy and connecting connections over all hosts.
  std::size_t open_connections() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace sluice::http

template <>
struct std::is_error_code_enum<sluice::http::client_errc> : std::true_type {};
