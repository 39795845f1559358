#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>

#include <boost/asio/awaitable.hpp>

namespace sluice::http {

// Why a streamed body stopped before its end.
enum class body_errc {
  too_large = 1,  // past the route's max_body_bytes (answer 413)
  timeout,        // the client sent nothing for the read timeout
  malformed,      // bad chunked framing
  closed,         // the client went away
};
const std::error_category& body_category() noexcept;
inline std::error_code make_error_code(body_errc e) noexcept {
  return {static_cast<int>(e), body_category()};
}

// The body of a request to a route added with route_options::stream_body, read by the handler
// as it goes, so an upload of any size costs one read's worth of memory. Valid only while the
// handler runs. A body the handler leaves unread ends the connection after the response.
class body_reader {
 public:
  virtual ~body_reader() = default;
  // Appends up to `max_bytes` of the body to `out` (at least one byte unless the body ended
  // or an error is returned). An empty error and done() afterwards: the body is complete.
  virtual boost::asio::awaitable<std::error_code> read_some(std::string& out,
                                                            std::size_t max_bytes) = 0;
  virtual bool done() const noexcept = 0;
  // Bytes of the body read so far.
  virtual std::size_t bytes_read() const noexcept = 0;
  // The declared Content-Length, when there is one (not for chunked bodies).
  virtual std::optional<std::size_t> content_length() const noexcept = 0;
};

}  // namespace sluice::http

template <>
struct std::is_error_code_enum<sluice::http::body_errc> : std::true_type {};
