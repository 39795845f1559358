#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/http/caller.hpp"
#include "sluice/http/message.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::http {

using handler = std::function<boost::asio::awaitable<response>(request&)>;

struct route_options {
  route_options() = default;
  // The server watches the connection while the handler runs and sets request::client: for
  // handlers that wait long enough for a client to give up. Off by default: the watch costs
  // a socket read and its cancellation per request.
  bool watch_client = false;
  // What the caller needs once authentication is configured (server_options::authorize).
  // Admin unless the route says otherwise, so a route nobody classified is closed, not open.
  access required = access::admin;
  // The path capture naming the queue or service the request acts on: the caller's prefixes
  // must cover it (empty: the route names none, or its handler checks the names it meets).
  std::string resource_param;
  // The caller's sluice token is in Proxy-Authorization, not Authorization: set by the proxy's
  // routes, whose Authorization belongs to the target (and is forwarded to it). A flag of the
  // route, not a test of the path, so the header read is always the one of the route taken.
  bool proxy_credentials = false;
  // The handler reads the body itself through request::body_stream (body_reader.hpp) instead
  // of the server reading it into request::body first. Not with watch_client.
  bool stream_body = false;
  // For stream_body routes: the body's limit instead of server_options::max_body_bytes.
  std::size_t max_body_bytes = 0;
};

// Options of a route that needs `required` (and whose path capture `resource_param`, if any,
// names the queue or service the caller's prefixes must cover): routes.add(..., needs(...)).
inline route_options needs(access required, std::string resource_param = {}) {
  route_options o;
  o.required = required;
  o.resource_param = std::move(resource_param);
  return o;
}

// Routes by method and path pattern. Patterns are segments separated by '/'; a segment
// `{name}` captures one segment, a last segment `{name*}` captures the rest of the path
// (possibly empty). Literal segments win over captures when both match.
class router {
 public:
  // `name` labels the route in metrics and logs; unmatched requests are labelled "unmatched"
  // so a scan of random paths cannot blow up metric cardinality.
  void add(std::string method, std::string pattern, std::string name, handler h,
           route_options options = {});

  struct match {
    enum class kind { found, not_found, method_not_allowed } outcome = kind::not_found;
    const handler* target = nullptr;
    // The matched route's name; for a 405, the route the path belongs to.
    std::string route_name = "unmatched";
    std::vector<std::string> allowed;  // for 405's Allow header, sorted
    bool watch_client = false;
    const route_options* options = nullptr;  // the found route's
  };
  // True when some route takes `method` on `path` (the server routes HEAD as GET unless one
  // takes HEAD itself).
  bool has(std::string_view method, std::string_view path) const;
  // Fills req.params on success.
  match find(request& req) const;

  struct route_info {
    std::string method;
    std::string pattern;
    std::string name;
    const route_options* options;
  };
  // Every route in the order added: for the API document's tests and the auth matrix.
  std::vector<route_info> list() const;
  // The largest max_body_bytes of a stream_body route (0 without one): the server lets a
  // declared Content-Length up to it past the header, then holds it to the found route's.
  std::size_t max_stream_body_bytes() const noexcept { return max_stream_body_bytes_; }

 private:
  struct route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    std::string name;
    handler h;
    int literal_count = 0;
    route_options options;
  };
  std::vector<route> routes_;
  std::size_t max_stream_body_bytes_ = 0;
};

}  // namespace sluice::http
