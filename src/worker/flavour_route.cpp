#include "sluice/worker/flavour_route.hpp"

#include "sluice/core/ascii_lower.hpp"
#include "sluice/services/target_url.hpp"
#include "sluice/worker/forward_outcome.hpp"

namespace sluice::worker {
namespace {

constexpr std::string_view prefix = "x-sluice-";

}  // namespace

std::optional<rpc::rpc_reply> apply_route_overrides(const rpc::header_list& headers,
                                                    const routing::route_key& base,
                                                    std::optional<routing::route_key>& out) {
  bool tenant = false;
  bool env = false;
  bool version = false;
  for (const auto& [name, value] : headers) {
    // Most requests carry none: one size and prefix check per header before any comparison.
    if (name.size() < prefix.size() + 3 || !ascii_iequals(name.substr(0, prefix.size()), prefix))
      continue;
    const std::string_view rest = std::string_view(name).substr(prefix.size());
    std::string routing::route_key::*part = nullptr;
    bool* seen = nullptr;
    if (ascii_iequals(rest, "tenant")) {
      part = &routing::route_key::tenant;
      seen = &tenant;
    } else if (ascii_iequals(rest, "env")) {
      part = &routing::route_key::env;
      seen = &env;
    } else if (ascii_iequals(rest, "version")) {
      part = &routing::route_key::version;
      seen = &version;
    } else {
      continue;
    }
    if (*seen)
      continue;
    *seen = true;
    if (const auto problem = routing::name_problem(value)) {
      out.reset();
      return error_reply(400, invalid_route_header_error,
                         "header " + name + " is not a valid route name: it " + *problem);
    }
    if (!out)
      out = base;
    (*out).*part = value;
  }
  return std::nullopt;
}

flavour_route::flavour_route(routing::route_key key, std::optional<target_origin> fallback,
                             std::string fallback_error)
    : key_(std::move(key)),
      fallback_(std::move(fallback)),
      fallback_error_(std::move(fallback_error)) {}

const target_origin* flavour_route::origin_of(const std::string& url, std::string& why) {
  if (parsed_url_.empty() || url != parsed_url_) {
    parsed_url_ = url;
    parsed_error_.clear();
    if (const auto parsed = services::parse_http_url(url, &parsed_error_)) {
      parsed_origin_.host = parsed->host;
      parsed_origin_.port = parsed->port;
      parsed_origin_.base_path = parsed->path;
    } else if (parsed_error_.empty()) {
      parsed_error_ = "not an http:// URL";
    }
  }
  if (!parsed_error_.empty()) {
    why = parsed_error_;
    return nullptr;
  }
  return &parsed_origin_;
}

boost::asio::awaitable<flavour_route::pick> flavour_route::choose(routing::route_lookup* lookup,
                                                                  const rpc::header_list* headers) {
  pick out;
  std::optional<routing::route_key> overridden;
  if (headers) {
    out.error = apply_route_overrides(*headers, key_, overridden);
    if (out.error)
      co_return out;
  }
  const routing::route_key& key = overridden ? *overridden : key_;
  const routing::resolve_outcome outcome = co_await services::resolve_route(lookup, key);
  out.source = services::choose_target(outcome, fallback_.has_value());
  switch (out.source) {
    case services::target_source::route: {
      std::string why;
      if (const target_origin* o = origin_of(*outcome.url, why))
        out.origin = *o;
      else
        out.error = error_reply(502, upstream_unavailable,
                                "the url " + *outcome.url + " of route " + routing::to_string(key) +
                                    " is unusable: " + why);
      break;
    }
    case services::target_source::url:
      if (!fallback_error_.empty())
        out.error = error_reply(502, upstream_unavailable, fallback_error_);
      else
        out.origin = *fallback_;
      break;
    case services::target_source::no_route:
      out.error = error_reply(
          502, services::no_route_error,
          lookup ? "no active route " + routing::to_string(key) + " and the flavour has no url"
                 : "route " + routing::to_string(key) +
                       " cannot be resolved: this instance has no route "
                       "registry, and the flavour has no url");
      break;
    case services::target_source::unavailable:
      out.error =
          error_reply(503, services::route_unavailable_error,
                      "the route registry cannot resolve " + routing::to_string(key) + " now" +
                          (outcome.error.empty() ? "" : " (" + outcome.error + ")") +
                          " and the flavour has no url");
      break;
  }
  co_return out;
}

}  // namespace sluice::worker
