#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::ingest {

struct upload_target {
  std::string host;
  std::uint16_t port = 8080;
  std::string target;  // path and query
  std::vector<std::pair<std::string, std::string>> headers;
};

struct upload_response {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// Fills `out` with the next piece of the body (at most `max` bytes); an empty piece ends it.
using body_source = std::function<void(std::string& out, std::size_t max)>;

// One blocking HTTP/1.1 POST with a chunked body, for the `sluice ingest` command: the body is
// read from `next` only as fast as the server takes it (TCP backpressure), so a file of any
// size costs one piece of memory. If the server answers before the body ends (413, a strict
// upload's 400) that answer is returned. Throws std::runtime_error when there is no answer.
upload_response post_chunked(const upload_target& to, const body_source& next);

// http://host[:port][/base]: the scheme, host, port and path prefix, or an error.
struct parsed_url {
  std::string host;
  std::uint16_t port = 80;
  std::string base_path;  // without a trailing '/'
};
bool parse_http_url(std::string_view url, parsed_url& out, std::string& error);

}  // namespace sluice::ingest
