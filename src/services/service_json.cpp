#include "sluice/services/service_json.hpp"

#include <cstdint>
#include <cstdio>
#include <set>
#include <vector>

#include "sluice/core/rfc3339.hpp"
#include "sluice/http/json_fields.hpp"
#include "sluice/services/target_url.hpp"

#include <nlohmann/json.hpp>

namespace sluice::services {
namespace {

using json = nlohmann::json;
using clock = std::chrono::system_clock;

constexpr std::int64_t max_timeout_ms = 86'400'000;
constexpr std::int64_t max_concurrency = 65'535;
constexpr std::int64_t max_batch_requests = 10'000;
constexpr std::int64_t max_batch_wait_ms = 60'000;
constexpr std::int64_t max_weight = 1'000'000;
// A service is a handful of flavours; the bound keeps a hostile body from making every
// request's pick walk a huge list.
constexpr std::size_t max_flavours = 100;

[[noreturn]] void fail(std::string field, std::string message) {
  http::fail_field(std::move(field), std::move(message));
}

using http::integer_in;
using http::require_object;
using http::string_of;

const char* name_rule() {
  return "must be 1 to 100 bytes of letters, digits, '-' and '_'";
}

const char* namespace_rule() {
  return "must be 1 to 100 bytes of letters, digits, '-', '_' and '.'";
}

void refuse_unknown(const json& object, std::initializer_list<std::string_view> known,
                    const std::string& prefix) {
  for (const auto& [key, value] : object.items()) {
    bool found = false;
    for (const auto k : known)
      found = found || key == k;
    if (!found)
      fail(prefix + key, "is not a known field");
  }
}

std::string name_of(const json& value, const std::string& field) {
  const std::string& v = string_of(value, field);
  if (!valid_name(v))
    fail(field, name_rule());
  return v;
}

std::string namespace_of(const json& value, const std::string& field) {
  const std::string& v = string_of(value, field);
  if (!valid_namespace(v))
    fail(field, namespace_rule());
  return v;
}

std::string url_of(const json& value, const std::string& field) {
  const std::string& v = string_of(value, field);
  std::string why;
  if (!parse_http_url(v, &why))
    fail(field, why);
  return v;
}

// "route":{"tenant","env","version"}; the route's service is the service's name.
routing::route_key route_of(const json& value, std::string_view service, const std::string& field) {
  require_object(value, field);
  refuse_unknown(value, {"tenant", "env", "version"}, field + ".");
  routing::route_key key;
  if (const auto problem = routing::name_problem(service))
    fail(field, "the service's name is the route's service, and " + std::string(service) +
                    " cannot be one: it " + *problem);
  key.service = std::string(service);
  const auto part = [&](const char* name, std::string& into) {
    const auto it = value.find(name);
    const std::string at = field + "." + name;
    if (it == value.end())
      fail(at, "is required");
    into = string_of(*it, at);
    if (const auto problem = routing::name_problem(into))
      fail(at, *problem);
  };
  part("tenant", key.tenant);
  part("env", key.env);
  part("version", key.version);
  return key;
}

std::string index_field(const std::string& prefix, const char* array, std::size_t i) {
  return prefix + array + "[" + std::to_string(i) + "]";
}

schedule schedule_from(const json& body, const service& of, const std::string& prefix) {
  const std::string field = prefix.empty() ? "body" : prefix.substr(0, prefix.size() - 1);
  require_object(body, field);
  refuse_unknown(body, {"flavours", "validUntil"}, prefix);
  schedule out;
  const auto list = body.find("flavours");
  if (list == body.end())
    fail(prefix + "flavours", "is required");
  if (!list->is_array() || list->empty())
    fail(prefix + "flavours", "must be a non-empty array of {\"name\",\"weight\"}");
  if (list->size() > max_flavours)
    fail(prefix + "flavours", "may hold at most " + std::to_string(max_flavours) + " entries");
  std::set<std::string, std::less<>> seen;
  bool any_weight = false;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string at = index_field(prefix, "flavours", i);
    const json& entry = require_object((*list)[i], at);
    refuse_unknown(entry, {"name", "weight"}, at + ".");
    const auto name = entry.find("name");
    if (name == entry.end())
      fail(at + ".name", "is required");
    weighted_flavour w;
    w.name = string_of(*name, at + ".name");
    if (!of.find_flavour(w.name))
      fail(at + ".name", "is not a flavour of service " + of.name);
    if (!seen.insert(w.name).second)
      fail(at + ".name", "names flavour " + w.name + " a second time");
    const auto weight = entry.find("weight");
    if (weight == entry.end())
      fail(at + ".weight", "is required");
    w.weight = static_cast<std::uint32_t>(integer_in(*weight, at + ".weight", 0, max_weight));
    any_weight = any_weight || w.weight > 0;
    out.flavours.push_back(std::move(w));
  }
  if (!any_weight)
    fail(prefix + "flavours", "needs at least one weight above 0");
  const auto until = body.find("validUntil");
  if (until == body.end())
    fail(prefix + "validUntil", "is required");
  const auto tp = parse_rfc3339(string_of(*until, prefix + "validUntil"));
  if (!tp)
    fail(prefix + "validUntil",
         "must be an RFC 3339 time with Z or an offset, e.g. 2026-12-31T00:00:00Z (years 1970 "
         "to 2261)");
  out.valid_until = *tp;
  return out;
}

batch_settings batch_from(const json& body) {
  require_object(body, "batch");
  refuse_unknown(body, {"maxRequests", "maxWaitMs", "url"}, "batch.");
  batch_settings out;
  if (const auto it = body.find("maxRequests"); it != body.end())
    out.max_requests =
        static_cast<std::size_t>(integer_in(*it, "batch.maxRequests", 1, max_batch_requests));
  if (const auto it = body.find("maxWaitMs"); it != body.end())
    out.max_wait =
        std::chrono::milliseconds(integer_in(*it, "batch.maxWaitMs", 1, max_batch_wait_ms));
  const auto url = body.find("url");
  if (url == body.end())
    fail("batch.url", "is required in batch mode");
  out.url = url_of(*url, "batch.url");
  return out;
}

service service_from(std::string_view name, const json& body, const service_defaults& defaults) {
  if (!valid_name(name))
    fail("name", name_rule());
  require_object(body, "body");
  refuse_unknown(body,
                 {"name", "namespace", "defaultFlavour", "flavours", "timeoutMs", "concurrency",
                  "batch", "schedule"},
                 "");
  service out;
  out.name = std::string(name);
  out.namespace_ = defaults.namespace_;
  out.timeout = defaults.timeout;
  out.concurrency = defaults.concurrency;
  if (const auto it = body.find("name"); it != body.end()) {
    if (string_of(*it, "name") != name)
      fail("name", "must be the service's name in the path, " + std::string(name));
  }
  if (const auto it = body.find("namespace"); it != body.end())
    out.namespace_ = namespace_of(*it, "namespace");

  const auto list = body.find("flavours");
  if (list == body.end())
    fail("flavours", "is required");
  if (!list->is_array() || list->empty())
    fail("flavours", "must be a non-empty array of {\"name\",\"url\"}");
  if (list->size() > max_flavours)
    fail("flavours", "may hold at most " + std::to_string(max_flavours) + " flavours");
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string at = index_field("", "flavours", i);
    const json& entry = require_object((*list)[i], at);
    refuse_unknown(entry, {"name", "url", "route"}, at + ".");
    const auto fname = entry.find("name");
    if (fname == entry.end())
      fail(at + ".name", "is required");
    flavour f;
    f.name = name_of(*fname, at + ".name");
    if (out.find_flavour(f.name))
      fail(at + ".name", "names flavour " + f.name + " a second time");
    // No url (or null) means the derived one, <scheme>://<service>-<flavour>.<namespace>,
    // unless a route is given: then no url means no fallback.
    if (const auto url = entry.find("url"); url != entry.end() && !url->is_null())
      f.url = url_of(*url, at + ".url");
    if (const auto route = entry.find("route"); route != entry.end() && !route->is_null())
      f.route = route_of(*route, name, at + ".route");
    out.flavours.push_back(std::move(f));
  }

  out.default_flavour = out.flavours.front().name;
  if (const auto it = body.find("defaultFlavour"); it != body.end()) {
    out.default_flavour = string_of(*it, "defaultFlavour");
    if (!out.find_flavour(out.default_flavour))
      fail("defaultFlavour", "must be the name of one of the flavours");
  }
  if (const auto it = body.find("timeoutMs"); it != body.end())
    out.timeout = std::chrono::milliseconds(integer_in(*it, "timeoutMs", 1, max_timeout_ms));
  if (const auto it = body.find("concurrency"); it != body.end())
    out.concurrency =
        static_cast<std::uint32_t>(integer_in(*it, "concurrency", 1, max_concurrency));
  if (const auto it = body.find("batch"); it != body.end() && !it->is_null())
    out.batch = batch_from(*it);
  if (const auto it = body.find("schedule"); it != body.end() && !it->is_null())
    out.traffic = schedule_from(*it, out, "schedule.");
  return out;
}

nlohmann::ordered_json schedule_json(const schedule& s) {
  nlohmann::ordered_json flavours = nlohmann::ordered_json::array();
  for (const auto& w : s.flavours)
    flavours.push_back({{"name", w.name}, {"weight", w.weight}});
  nlohmann::ordered_json out;
  out["flavours"] = std::move(flavours);
  out["validUntil"] = format_rfc3339(s.valid_until);
  return out;
}

}  // namespace

namespace {

bool valid_charset(std::string_view name, bool dots) {
  if (name.empty() || name.size() > 100)
    return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || (dots && c == '.');
    if (!ok)
      return false;
  }
  return true;
}

}  // namespace

bool valid_name(std::string_view name) {
  return valid_charset(name, false);
}

bool valid_namespace(std::string_view name) {
  return valid_charset(name, true);
}

std::variant<service, parse_error> parse_service(std::string_view name, std::string_view json,
                                                 const service_defaults& defaults) {
  try {
    return service_from(name, http::parse_strict(json), defaults);
  } catch (http::field_error& e) {
    return parse_error{std::move(e.field), std::move(e.message)};
  }
}

std::variant<schedule, parse_error> parse_schedule(std::string_view json, const service& of) {
  try {
    return schedule_from(http::parse_strict(json), of, "");
  } catch (http::field_error& e) {
    return parse_error{std::move(e.field), std::move(e.message)};
  }
}

std::string to_json(const service& s) {
  nlohmann::ordered_json out;
  out["name"] = s.name;
  out["namespace"] = s.namespace_;
  out["defaultFlavour"] = s.default_flavour;
  nlohmann::ordered_json flavours = nlohmann::ordered_json::array();
  for (const auto& f : s.flavours) {
    nlohmann::ordered_json one;
    one["name"] = f.name;
    if (!f.url.empty())
      one["url"] = f.url;
    if (f.route)
      one["route"] = {
          {"tenant", f.route->tenant}, {"env", f.route->env}, {"version", f.route->version}};
    flavours.push_back(std::move(one));
  }
  out["flavours"] = std::move(flavours);
  out["timeoutMs"] = s.timeout.count();
  out["concurrency"] = s.concurrency;
  if (s.batch) {
    nlohmann::ordered_json batch;
    batch["maxRequests"] = s.batch->max_requests;
    batch["maxWaitMs"] = s.batch->max_wait.count();
    batch["url"] = s.batch->url;
    out["batch"] = std::move(batch);
  }
  if (s.traffic)
    out["schedule"] = schedule_json(*s.traffic);
  return out.dump();
}

std::string to_json(const schedule& s) {
  return schedule_json(s).dump();
}

std::string target_base_url(const service& s, const flavour& f, const service_defaults& defaults) {
  if (!f.url.empty() || f.route)
    return f.url;
  std::string out = defaults.scheme + "://" + s.name + "-" + f.name + "." + s.namespace_;
  if (defaults.port)
    out += ":" + std::to_string(*defaults.port);
  return out;
}

std::optional<double> schedule_valid_seconds(const service& s,
                                             std::chrono::system_clock::time_point now) {
  if (!s.traffic)
    return std::nullopt;
  return std::chrono::duration<double>(s.traffic->valid_until - now).count();
}

}  // namespace sluice::services
