#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

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
};

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
  };
  // True when some route takes `method` on `path` (the server routes HEAD as GET unless one
  // takes HEAD itself).
  bool has(std::string_view method, std::string_view path) const;
  // Fills req.params on success.
  match find(request& req) const;

 private:
  struct route {
    std::string method;
    std::vector<std::string> segments;
    std::string name;
    handler h;
    int literal_count = 0;
    route_options options;
  };
  std::vector<route> routes_;
};

}  // namespace sluice::http
