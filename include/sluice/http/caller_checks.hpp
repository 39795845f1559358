#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "sluice/http/caller.hpp"
#include "sluice/http/message.hpp"

namespace sluice::http {

// Who did it, for audit records and log lines: the token's name (never the token) when
// authentication is on, else the client's address.
inline std::string actor_of(const request& req) {
  if (req.caller)
    return req.caller->name;
  return req.remote_address.empty() ? std::string("unknown") : req.remote_address;
}

// For handlers that meet queue or service names the path does not carry (push items, a
// dead letter's queue, a filter): the caller's prefixes must cover each. With authentication
// off, or on an open route, req.caller is null and everything is covered.
inline std::optional<response> refuse_uncovered(const request& req, std::string_view name) {
  if (!req.caller || req.caller->covers(name))
    return std::nullopt;
  return error_response(
      403, "forbidden",
      "token " + req.caller->name + " does not cover the name " + std::string(name));
}

// For handlers that act on every name unless a filter (`param`) names one: a caller limited
// by prefixes must name one it covers, so it never reads or changes what others own.
inline std::optional<response> refuse_unfiltered(const request& req,
                                                 const std::optional<std::string>& name,
                                                 std::string_view param) {
  if (!req.caller || req.caller->prefixes.empty())
    return std::nullopt;
  if (!name) {
    return error_response(403, "forbidden",
                          "token " + req.caller->name + " is limited to name prefixes: give " +
                              std::string(param) + "= with a name it covers");
  }
  return refuse_uncovered(req, *name);
}

}  // namespace sluice::http
