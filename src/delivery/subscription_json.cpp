#include "sluice/delivery/subscription_json.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <set>
#include <vector>

#include "sluice/core/ascii_lower.hpp"
#include "sluice/core/base64.hpp"
#include "sluice/http/json_fields.hpp"
#include "sluice/services/target_url.hpp"

namespace sluice::delivery {
namespace {

using json = nlohmann::json;

// Bounds: wide enough for any sane use, narrow enough that a typo (a timeout in microseconds,
// a concurrency of a million) is refused rather than obeyed.
constexpr std::int64_t max_timeout_ms = 300'000;
constexpr std::int64_t max_concurrency = 65'535;  // AMQP's prefetch count is 16 bits
constexpr std::int64_t max_attempts = 1'000;
constexpr std::int64_t max_backoff_ms = 86'400'000;
constexpr double max_rate_per_sec = 1'000'000;
constexpr std::int64_t max_batch_items = 10'000;
constexpr std::int64_t max_batch_wait_ms = 60'000;
constexpr std::size_t max_headers = 64;
constexpr std::size_t max_header_value = 8'192;
constexpr std::size_t max_secrets = 10;
constexpr std::size_t min_key_bytes = 24;
constexpr std::size_t max_key_bytes = 64;

[[noreturn]] void fail(std::string field, std::string message) {
  http::fail_field(std::move(field), std::move(message));
}

using http::integer_in;
using http::require_object;
using http::string_of;

void refuse_unknown(const json& object, std::initializer_list<std::string_view> known,
                    const std::string& prefix) {
  for (const auto& [key, value] : object.items()) {
    bool found = false;
    for (const auto k : known)
      found = found || key == k;
    if (found)
      continue;
    if (prefix.empty() &&
        (key == "paused" || key == "pausedReason" || key == "updatedAt" || key == "status"))
      fail(key, "is read-only (a paused subscription resumes with POST …/resume)");
    fail(prefix + key, "is not a known field");
  }
}

std::pair<std::string, target_address> url_of(const json& value, const std::string& field) {
  const std::string& v = string_of(value, field);
  std::string why;
  auto address = parse_target_url(v, &why);
  if (!address)
    fail(field, why);
  return {v, std::move(*address)};
}

// RFC 9110 token characters.
bool token_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
    return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

// Headers sluice sets on every delivery itself (or that frame the request): a subscription's
// own value would contradict them or break the framing.
bool reserved_header(std::string_view name) {
  const std::string lower = ascii_lower(name);
  static constexpr std::string_view exact[] = {"host",       "content-length",  "transfer-encoding",
                                               "connection", "idempotency-key", "traceparent"};
  for (const auto e : exact) {
    if (lower == e)
      return true;
  }
  return lower.starts_with("x-sluice-") || lower.starts_with("webhook-");
}

std::vector<std::pair<std::string, std::string>> headers_from(const json& value) {
  require_object(value, "headers");
  if (value.size() > max_headers)
    fail("headers", "may hold at most " + std::to_string(max_headers) + " headers");
  std::vector<std::pair<std::string, std::string>> out;
  std::set<std::string> seen;
  for (const auto& [name, v] : value.items()) {
    const std::string field = "headers." + name;
    if (name.empty())
      fail(field, "a header name must not be empty");
    for (const char c : name) {
      if (!token_char(c))
        fail(field, "a header name must be an HTTP token (letters, digits, !#$%&'*+-.^_`|~)");
    }
    if (reserved_header(name))
      fail(field,
           "is set by sluice itself (Host, Content-Length, Transfer-Encoding, Connection, "
           "Idempotency-Key, traceparent, X-Sluice-*, webhook-* are reserved)");
    if (!seen.insert(ascii_lower(name)).second)
      fail(field, "is given twice (header names are case-insensitive)");
    const std::string& text = string_of(v, field);
    if (text.size() > max_header_value)
      fail(field, "may be at most " + std::to_string(max_header_value) + " bytes");
    for (const unsigned char c : text) {
      if ((c < 0x20 && c != '\t') || c == 0x7f)
        fail(field, "must not contain control characters (CR, LF, NUL, ...)");
    }
    out.emplace_back(name, text);
  }
  return out;
}

retry_policy retry_from(const json& value) {
  require_object(value, "retry");
  refuse_unknown(value, {"maxAttempts", "initialBackoffMs", "maxBackoffMs"}, "retry.");
  retry_policy out;
  if (const auto it = value.find("maxAttempts"); it != value.end())
    out.max_attempts =
        static_cast<std::uint32_t>(integer_in(*it, "retry.maxAttempts", 1, max_attempts));
  if (const auto it = value.find("initialBackoffMs"); it != value.end())
    out.initial_backoff =
        std::chrono::milliseconds(integer_in(*it, "retry.initialBackoffMs", 1, max_backoff_ms));
  if (const auto it = value.find("maxBackoffMs"); it != value.end())
    out.max_backoff =
        std::chrono::milliseconds(integer_in(*it, "retry.maxBackoffMs", 1, max_backoff_ms));
  if (out.max_backoff < out.initial_backoff)
    fail(value.contains("maxBackoffMs") ? "retry.maxBackoffMs" : "retry.initialBackoffMs",
         "maxBackoffMs (" + std::to_string(out.max_backoff.count()) +
             ") must not be below initialBackoffMs (" +
             std::to_string(out.initial_backoff.count()) + ")");
  return out;
}

batch_spec batch_from(const json& value, target_address& address) {
  require_object(value, "batch");
  refuse_unknown(value, {"maxItems", "maxWaitMs", "url"}, "batch.");
  batch_spec out;
  if (const auto it = value.find("maxItems"); it != value.end())
    out.max_items =
        static_cast<std::uint32_t>(integer_in(*it, "batch.maxItems", 1, max_batch_items));
  if (const auto it = value.find("maxWaitMs"); it != value.end())
    out.max_wait =
        std::chrono::milliseconds(integer_in(*it, "batch.maxWaitMs", 1, max_batch_wait_ms));
  const auto url = value.find("url");
  if (url == value.end())
    fail("batch.url", "is required in batch mode");
  auto [text, parsed] = url_of(*url, "batch.url");
  out.url = std::move(text);
  address = std::move(parsed);
  return out;
}

// "route":{"tenant","env","version","service"}; service defaults to the subscription's name.
routing::route_key route_from(const json& value, std::string_view name) {
  require_object(value, "route");
  refuse_unknown(value, {"tenant", "service", "env", "version"}, "route.");
  routing::route_key key;
  const auto part = [&](const char* field, std::string& into, bool required) {
    const std::string at = std::string("route.") + field;
    const auto it = value.find(field);
    if (it == value.end()) {
      if (required)
        fail(at, "is required");
      return;
    }
    into = string_of(*it, at);
    if (const auto problem = routing::name_problem(into))
      fail(at, *problem);
  };
  part("tenant", key.tenant, true);
  part("env", key.env, true);
  part("version", key.version, true);
  key.service = std::string(name);
  part("service", key.service, false);
  if (!value.contains("service")) {
    if (const auto problem = routing::name_problem(key.service))
      fail("route.service",
           "defaults to the subscription's name, which cannot be a route's service (it " +
               *problem + "): give one");
  }
  return key;
}

std::vector<std::string> secrets_from(const json& value) {
  if (!value.is_array())
    fail("secrets", "must be an array of \"whsec_<base64>\" strings");
  if (value.size() > max_secrets)
    fail("secrets", "may hold at most " + std::to_string(max_secrets) + " secrets");
  std::vector<std::string> out;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const std::string field = "secrets[" + std::to_string(i) + "]";
    const std::string& s = string_of(value[i], field);
    if (auto problem = webhook_secret_problem(s))
      fail(field, *problem);
    out.push_back(s);
  }
  return out;
}

subscription subscription_from(std::string_view queue, std::string_view name, const json& body,
                               std::uint32_t default_concurrency) {
  if (!valid_subscription_name(name))
    fail("name", "must be 1 to 100 bytes of letters, digits, '-' and '_'");
  require_object(body, "body");
  refuse_unknown(body,
                 {"queue", "name", "url", "route", "method", "headers", "timeoutMs", "concurrency",
                  "retry", "rateLimitPerSec", "batch", "secrets", "ordering"},
                 "");
  subscription out;
  out.queue = std::string(queue);
  out.name = std::string(name);
  out.concurrency = default_concurrency;
  if (const auto it = body.find("queue"); it != body.end() && string_of(*it, "queue") != queue)
    fail("queue", "must be the queue in the path, " + std::string(queue));
  if (const auto it = body.find("name"); it != body.end() && string_of(*it, "name") != name)
    fail("name", "must be the subscription's name in the path, " + std::string(name));

  if (const auto it = body.find("route"); it != body.end() && !it->is_null())
    out.route = route_from(*it, name);
  const auto url = body.find("url");
  if (url == body.end() || url->is_null()) {
    if (!out.route)
      fail("url", "is required (or a route)");
  } else {
    auto [text, address] = url_of(*url, "url");
    out.url = std::move(text);
    out.address = std::move(address);
  }

  if (const auto it = body.find("method"); it != body.end()) {
    out.method = string_of(*it, "method");
    if (out.method != "POST" && out.method != "PUT" && out.method != "PATCH")
      fail("method", "must be \"POST\", \"PUT\" or \"PATCH\" (a delivery carries a body)");
  }
  if (const auto it = body.find("headers"); it != body.end())
    out.headers = headers_from(*it);
  if (const auto it = body.find("timeoutMs"); it != body.end())
    out.timeout = std::chrono::milliseconds(integer_in(*it, "timeoutMs", 1, max_timeout_ms));
  if (const auto it = body.find("concurrency"); it != body.end())
    out.concurrency =
        static_cast<std::uint32_t>(integer_in(*it, "concurrency", 1, max_concurrency));
  if (const auto it = body.find("retry"); it != body.end())
    out.retry = retry_from(*it);
  if (const auto it = body.find("rateLimitPerSec"); it != body.end()) {
    if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < 0 ||
        it->get<double>() > max_rate_per_sec)
      fail("rateLimitPerSec", "must be a number from 0 (unlimited) to 1000000");
    out.rate_limit_per_sec = it->get<double>();
  }
  if (const auto it = body.find("batch"); it != body.end() && !it->is_null()) {
    target_address batch_address;
    out.batch = batch_from(*it, batch_address);
    out.batch_address = std::move(batch_address);
  }
  if (const auto it = body.find("secrets"); it != body.end())
    out.secrets = secrets_from(*it);
  if (const auto it = body.find("ordering"); it != body.end()) {
    const std::string& o = string_of(*it, "ordering");
    if (o == "none") {
      out.ordering = ordering::none;
    } else if (o == "partition") {
      out.ordering = ordering::partition;
    } else {
      fail("ordering", "must be \"none\" or \"partition\"");
    }
  }
  return out;
}

nlohmann::ordered_json spec_json(const subscription& s, bool mask) {
  nlohmann::ordered_json out;
  if (s.url.empty())
    out["url"] = nullptr;
  else
    out["url"] = s.url;
  if (s.route) {
    out["route"] = {{"tenant", s.route->tenant},
                    {"service", s.route->service},
                    {"env", s.route->env},
                    {"version", s.route->version}};
  } else {
    out["route"] = nullptr;
  }
  out["method"] = s.method;
  nlohmann::ordered_json headers = nlohmann::ordered_json::object();
  for (const auto& [k, v] : s.headers)
    headers[k] = v;
  out["headers"] = std::move(headers);
  out["timeoutMs"] = s.timeout.count();
  out["concurrency"] = s.concurrency;
  out["retry"] = {{"maxAttempts", s.retry.max_attempts},
                  {"initialBackoffMs", s.retry.initial_backoff.count()},
                  {"maxBackoffMs", s.retry.max_backoff.count()}};
  out["rateLimitPerSec"] = s.rate_limit_per_sec;
  if (s.batch) {
    out["batch"] = {{"maxItems", s.batch->max_items},
                    {"maxWaitMs", s.batch->max_wait.count()},
                    {"url", s.batch->url}};
  } else {
    out["batch"] = nullptr;
  }
  nlohmann::ordered_json secrets = nlohmann::ordered_json::array();
  for (const auto& secret : s.secrets)
    secrets.push_back(mask ? masked_secret(secret) : secret);
  out["secrets"] = std::move(secrets);
  out["ordering"] = s.ordering == ordering::partition ? "partition" : "none";
  return out;
}

}  // namespace

bool valid_subscription_name(std::string_view name) {
  if (name.empty() || name.size() > 100)
    return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok)
      return false;
  }
  return true;
}

std::variant<subscription, subscription_error> parse_subscription(
    std::string_view queue, std::string_view name, std::string_view json,
    std::uint32_t default_concurrency) {
  try {
    return subscription_from(queue, name, http::parse_strict(json), default_concurrency);
  } catch (http::field_error& e) {
    return subscription_error{std::move(e.field), std::move(e.message)};
  }
}

std::optional<target_address> parse_target_url(std::string_view url, std::string* why) {
  if (url.starts_with("https://") || url.starts_with("HTTPS://")) {
    if (why)
      *why =
          "https targets are not supported yet: use an http:// URL (e.g. through a local TLS "
          "proxy)";
    return std::nullopt;
  }
  auto parsed = services::parse_http_url_with_query(url, why);
  if (!parsed)
    return std::nullopt;
  target_address out;
  out.host = std::move(parsed->host);
  out.port = parsed->port;
  out.target = parsed->path.empty() ? "/" : std::move(parsed->path);
  return out;
}

// Kept in one place so that the check can become webhook_signature's decode_webhook_secret.
std::optional<std::string> webhook_secret_problem(std::string_view secret) {
  constexpr std::string_view prefix = "whsec_";
  if (!secret.starts_with(prefix))
    return "must start with \"whsec_\" (Standard Webhooks secret format)";
  const auto key = base64_decode(secret.substr(prefix.size()));
  if (!key)
    return "must be \"whsec_\" followed by padded standard base64";
  if (key->size() < min_key_bytes || key->size() > max_key_bytes)
    return "must encode " + std::to_string(min_key_bytes) + " to " + std::to_string(max_key_bytes) +
           " key bytes (this one has " + std::to_string(key->size()) + ")";
  return std::nullopt;
}

std::string masked_secret(std::string_view secret) {
  const std::string_view tail = secret.size() >= 4 ? secret.substr(secret.size() - 4) : secret;
  return "whsec_\u2026" + std::string(tail);
}

std::string format_utc_ms(std::int64_t unix_ms) {
  const std::chrono::sys_time<std::chrono::milliseconds> tp{std::chrono::milliseconds(unix_ms)};
  const auto day = std::chrono::floor<std::chrono::days>(tp);
  const std::chrono::year_month_day date{day};
  const std::chrono::hh_mm_ss time{tp - day};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
                static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
                static_cast<unsigned>(date.day()), static_cast<int>(time.hours().count()),
                static_cast<int>(time.minutes().count()), static_cast<int>(time.seconds().count()),
                static_cast<int>(time.subseconds().count()));
  return buf;
}

nlohmann::ordered_json to_api_json(const subscription& s) {
  nlohmann::ordered_json out;
  out["queue"] = s.queue;
  out["name"] = s.name;
  const auto spec = spec_json(s, true);
  for (const auto& [k, v] : spec.items())
    out[k] = v;
  out["paused"] = s.paused;
  if (s.paused) {
    out["pausedReason"] = s.paused_reason;
  } else {
    out["pausedReason"] = nullptr;
  }
  out["updatedAt"] = format_utc_ms(s.updated_ms);
  return out;
}

std::string to_json(const subscription& s) {
  return to_api_json(s).dump();
}

std::string to_stored_json(const subscription& s) {
  return spec_json(s, false).dump();
}

}  // namespace sluice::delivery
