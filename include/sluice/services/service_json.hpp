#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "sluice/services/service.hpp"

namespace sluice::services {

// A validation failure: the JSON field it is about (e.g. "flavours[1].url", "timeoutMs") and
// a sentence for the client. The API answers it as 400 {"error":{"code":"invalid_service",...}}
// naming the field.
struct parse_error {
  std::string field;
  std::string message;
};

// Names of services and flavours: letters, digits, '-', '_', 1 to 100 bytes. No '.': the
// RabbitMQ names <namespace>.<service>.<flavour> must tell services apart (service "b.c" in
// namespace "a" and service "c" in namespace "a.b" would share queue a.b.c.<flavour>), so the
// last two dot-separated parts are always the service and the flavour.
bool valid_name(std::string_view name);
// Namespaces may also contain '.'.
bool valid_namespace(std::string_view name);

// PUT /api/v1/services/{name}'s body:
//   {"namespace":"default","defaultFlavour":"std","flavours":[{"name":"std","url":"http://…"},
//    {"name":"green"},{"name":"blue","route":{"tenant":"acme","env":"prod","version":"v2"}}],
//    "timeoutMs":60000,"concurrency":32,
//    "batch":{"maxRequests":10,"maxWaitMs":50,"url":"http://…"},"schedule":{…}}
// Only "flavours" is required; absent fields take `defaults`; defaultFlavour defaults to the
// first flavour. "schedule" is accepted here (SERVICES_FILE carries it) and validated like
// parse_schedule. Unknown fields are refused (a typo must not be silently ignored). A flavour's
// "route" names its route in the registry (its service is the service's name); its names must
// pass routing::name_problem (a failure names e.g. "flavours[1].route.env").
std::variant<service, parse_error> parse_service(std::string_view name, std::string_view json,
                                                 const service_defaults& defaults);

// PUT /api/v1/services/{name}/schedule's body:
//   {"flavours":[{"name":"green","weight":70},{"name":"std","weight":30}],
//    "validUntil":"2026-12-31T00:00:00Z"}
// Every flavour must exist in `of`; weights are integers 0..1000000 and at least one > 0.
std::variant<schedule, parse_error> parse_schedule(std::string_view json, const service& of);

// The API's view (what GET answers and what PostgreSQL stores): every field spelled out, the
// schedule included when set.
std::string to_json(const service& s);
std::string to_json(const schedule& s);

// The base URL requests of `f` go to: f.url when set, else
// <scheme>://<service>-<flavour>.<namespace>[:port] from `defaults`; "" for a flavour with a
// route and no url (no fallback: its route is the only way to a target).
std::string target_base_url(const service& s, const flavour& f, const service_defaults& defaults);

// Seconds until the service's schedule expires (negative once expired); nullopt without one.
std::optional<double> schedule_valid_seconds(const service& s,
                                             std::chrono::system_clock::time_point now);

}  // namespace sluice::services
