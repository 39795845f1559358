#include "sluice/delivery/subscription_target.hpp"

#include "sluice/delivery/subscription_json.hpp"

namespace sluice::delivery {

boost::asio::awaitable<subscription_target> choose_subscription_target(
    routing::route_lookup* lookup, const subscription& s, bool batch) {
  subscription_target out;
  const target_address* fallback = nullptr;
  if (batch && s.batch_address)
    fallback = &*s.batch_address;
  else if (!s.url.empty())
    fallback = &s.address;
  const routing::resolve_outcome outcome = co_await services::resolve_route(lookup, *s.route);
  out.source = services::choose_target(outcome, fallback != nullptr);
  const std::string key = routing::to_string(*s.route);
  switch (out.source) {
    case services::target_source::route: {
      std::string why;
      if (auto address = parse_target_url(*outcome.url, &why))
        out.address = std::move(*address);
      else
        out.error = "the url " + *outcome.url + " of route " + key + " is unusable: " + why;
      break;
    }
    case services::target_source::url:
      out.address = *fallback;
      break;
    case services::target_source::no_route:
      out.error = std::string(services::no_route_error) + ": " +
                  (lookup ? "no active route " + key + " and the subscription has no url"
                          : "route " + key +
                                " cannot be resolved: this instance has no route "
                                "registry, and the subscription has no url");
      break;
    case services::target_source::unavailable:
      out.error = std::string(services::route_unavailable_error) +
                  ": the route registry cannot resolve " + key + " now" +
                  (outcome.error.empty() ? "" : " (" + outcome.error + ")") +
                  " and the subscription has no url";
      break;
  }
  co_return out;
}

}  // namespace sluice::delivery
