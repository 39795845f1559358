#pragma once

#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::http {

class body_reader;
class client_watch;
struct caller;

// Requests and responses as handlers see them: plain data, so handler code never includes
// Beast. The session converts to and from Beast's types in one place (server.cpp).
struct request {
  std::string method;  // upper case, e.g. "POST"
  std::string target;  // as received, with the query
  std::string path;    // target without the query
  std::string query;   // after '?', undecoded
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string request_id;                     // X-Request-Id, echoed or generated
  std::map<std::string, std::string> params;  // captures of the matched route pattern
  std::string remote_address;                 // the peer's IP address, e.g. "127.0.0.1"
  // Set only for routes added with route_options::watch_client (client_watch.hpp).
  std::shared_ptr<client_watch> client;
  // Set only for routes added with route_options::stream_body: read the body from here;
  // `body` stays empty.
  body_reader* body_stream = nullptr;
  // Who is calling, when server_options::authorize found out (null when authentication is
  // off or the route is open).
  std::shared_ptr<const http::caller> caller;

  // Case-insensitive lookup of the first header with this name.
  std::optional<std::string_view> header(std::string_view name) const;
  // Decoded value of a query parameter, if present.
  std::optional<std::string> query_param(std::string_view name) const;
  // The first query parameter (decoded) not among `taken`: a misspelt filter must be a 400,
  // not a query that quietly ignores it.
  std::optional<std::string> unknown_query_param(
      std::initializer_list<std::string_view> taken) const;
};

struct response {
  int status = 200;
  std::string content_type = "application/json";  // empty: no Content-Type header
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  static response json(int status, std::string body);
  static response text(int status, std::string content_type, std::string body);
  response& with_header(std::string name, std::string value);
};

// The one error shape of the API: {"error":{"code":"…","message":"…"}}.
response error_response(int status, std::string_view code, std::string_view message);

// 429/503 with Retry-After: what every full queue answers.
response overloaded_response(int status, std::string_view code, std::string_view message,
                             int retry_after_seconds);

}  // namespace sluice::http
