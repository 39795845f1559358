#include "sluice/services/service_json.hpp"

#include <cstdint>
#include <cstdio>
#include <set>
#include <vector>

#include "sluice/core/rfc3339.hpp"
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

// Thrown inside this file only; parse_service/parse_schedule turn it into their parse_error.
struct invalid {
  parse_error error;
};

[[noreturn]] void fail(std::string field, std::string message) {
  throw invalid{parse_error{std::move(field), std::move(message)}};
}

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

const json& require_object(const json& value, const std::string& field) {
  if (!value.is_object())
    fail(field, "must be a JSON object");
  return value;
}

std::int64_t integer_in(const json& value, const std::string& field, std::int64_t min,
                        std::int64_t max) {
  const std::string range =
      "must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (!value.is_number_integer())
    fail(field, range);
  if (value.is_number_unsigned()) {
    const auto u = value.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(max) || static_cast<std::int64_t>(u) < min)
      fail(field, range);
    return static_cast<std::int64_t>(u);
  }
  const auto v = value.get<std::int64_t>();
  if (v < min || v > max)
    fail(field, range);
  return v;
}

const std::string& string_of(const json& value, const std::string& field) {
  if (!value.is_string())
    fail(field, "must be a string");
  return value.get_ref<const std::string&>();
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

// nlohmann keeps the last of repeated keys; a repeated field is as likely a mistake as an unknown
// one, so it is refused too (named by its key: the parser reports no path).
json parse_body(std::string_view text) {
  std::vector<std::set<std::string>> open_objects;
  std::optional<std::string> repeated;
  const json::parser_callback_t watch = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!open_objects.empty())
          open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.empty() && !repeated &&
            !open_objects.back().insert(parsed.get<std::string>()).second)
          repeated = parsed.get<std::string>();
        break;
      default:
        break;
    }
    return true;
  };
  json j = json::parse(text, watch, false);
  if (j.is_discarded())
    fail("body", "is not valid JSON");
  if (repeated)
    fail(*repeated, "appears twice in one object");
  return j;
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
    refuse_unknown(entry, {"name", "url"}, at + ".");
    const auto fname = entry.find("name");
    if (fname == entry.end())
      fail(at + ".name", "is required");
    flavour f;
    f.name = name_of(*fname, at + ".name");
    if (out.find_flavour(f.name))
      fail(at + ".name", "names flavour " + f.name + " a second time");
    // No url (or null) means the derived one, <scheme>://<service>-<flavour>.<namespace>.
    if (const auto url = entry.find("url"); url != entry.end() && !url->is_null())
      f.url = url_of(*url, at + ".url");
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
    return service_from(name, parse_body(json), defaults);
  } catch (invalid& e) {
    return std::move(e.error);
  }
}

std::variant<schedule, parse_error> parse_schedule(std::string_view json, const service& of) {
  try {
    return schedule_from(parse_body(json), of, "");
  } catch (invalid& e) {
    return std::move(e.error);
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
  if (!f.url.empty())
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
