#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "sluice/routing/route.hpp"
#include "sluice/routing/route_lookup.hpp"
#include "sluice/rpc/rpc_message.hpp"
#include "sluice/services/route_target.hpp"
#include "sluice/worker/target_request.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::worker {

// The error code of a request whose X-Sluice-Tenant, X-Sluice-Env or X-Sluice-Version is not a
// valid route name (400: a typo must not silently route to the flavour's default).
inline constexpr std::string_view invalid_route_header_error = "invalid_route_header";

// A request's override of its flavour's route key: X-Sluice-Tenant, X-Sluice-Env and
// X-Sluice-Version (case-insensitive; the first of a repeated header counts) replace tenant, env
// and version. Without any of them `out` stays empty and the flavour's key applies as it is (no
// copy); with one, `out` is the flavour's key with the overrides. An override that is not a
// valid route name (routing::name_problem) is the 400 reply instead.
std::optional<rpc::rpc_reply> apply_route_overrides(const rpc::header_list& headers,
                                                    const routing::route_key& base,
                                                    std::optional<routing::route_key>& out);

// Where the requests of one flavour with a route go (README, "Routes"): the active route's url
// (the request's path and query appended as to a flavour url), else the fallback (the flavour's
// url; in batch mode the batch url) when there is one, else 502 no_route, or 503
// route_unavailable when the registry could not answer. Loop thread only.
class flavour_route {
 public:
  struct pick {
    target_origin origin;                 // where to send, unless `error` is set
    std::optional<rpc::rpc_reply> error;  // sluice's own answer instead
    services::target_source source = services::target_source::no_route;
  };

  // `fallback_error`: set when the fallback URL is unusable (picking it answers 502).
  flavour_route(routing::route_key key, std::optional<target_origin> fallback,
                std::string fallback_error);

  // `headers`: the request's, for overrides; nullptr for a batch (one call, the flavour's key).
  // `lookup` nullptr: no registry, routes never resolve.
  boost::asio::awaitable<pick> choose(routing::route_lookup* lookup,
                                      const rpc::header_list* headers);

  const routing::route_key& key() const { return key_; }

 private:
  // The route url as a target; the last one parsed is kept (a route changes rarely, so a
  // request costs one string compare, not a parse).
  const target_origin* origin_of(const std::string& url, std::string& why);

  routing::route_key key_;
  std::optional<target_origin> fallback_;
  std::string fallback_error_;
  std::string parsed_url_;
  target_origin parsed_origin_;
  std::string parsed_error_;
};

}  // namespace sluice::worker
