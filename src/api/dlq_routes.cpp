#include "sluice/api/dlq_routes.hpp"

#include <charconv>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "sluice/core/percent_decode.hpp"
#include "sluice/core/rfc3339.hpp"
#include "sluice/core/utf8.hpp"
#include "sluice/http/caller_checks.hpp"
#include "sluice/http/json_body.hpp"
#include "sluice/http/list_page.hpp"
#include "sluice/store/errc.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace sluice::api {
namespace {

namespace asio = boost::asio;
using json = nlohmann::ordered_json;
using delivery::dead_letter;
using delivery::dead_letter_filter;
using delivery::dlq_status;

constexpr std::size_t default_page = 100;
constexpr std::size_t max_page = 1000;
constexpr std::size_t max_name_bytes = 255;
constexpr std::int64_t max_rate_per_sec = 1'000'000;

http::response bad_request(std::string_view code, const std::string& message) {
  return http::error_response(400, code, message);
}

http::response store_failed(const dlq_status& status) {
  const auto kind = store::classify(status.ec, status.sqlstate);
  if (kind == store::failure_kind::overloaded) {
    return http::overloaded_response(503, "overloaded", "too many requests waiting for PostgreSQL",
                                     1);
  }
  if (kind == store::failure_kind::rejected) {
    // sluice validated what it sent: PostgreSQL refusing it is a bug, not the client's fault.
    spdlog::error("delivery: PostgreSQL refused a dlq statement sqlstate={} error=\"{}\"",
                  status.sqlstate, status.message);
    return http::error_response(500, "internal_error", "PostgreSQL refused the statement");
  }
  spdlog::warn("delivery: dlq store failed error=\"{}\"", status.message);
  return http::overloaded_response(503, "db_unavailable",
                                   "PostgreSQL is not available: " + status.message, 1);
}

json time_or_null(const std::optional<std::int64_t>& ms) {
  return ms ? json(format_rfc3339_ms(*ms)) : json(nullptr);
}

// A time filter: RFC 3339, or Unix milliseconds.
std::optional<std::int64_t> parse_time(std::string_view text) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos) {
    std::int64_t ms = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (ec != std::errc{} || ptr != text.data() + text.size() || ms > 9'000'000'000'000)
      return std::nullopt;
    return ms;
  }
  const auto tp = parse_rfc3339(text);
  if (!tp)
    return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(tp->time_since_epoch()).count();
}

std::string time_rule(const std::string& field) {
  return field + " must be an RFC 3339 time (e.g. 2026-12-01T00:00:00Z) or Unix milliseconds";
}

bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= max_name_bytes && is_valid_utf8(name);
}

// queue= and subscription= of a request; absent or empty: no filter.
std::variant<std::optional<std::string>, http::response> name_param(const http::request& req,
                                                                    std::string_view field) {
  auto value = req.query_param(field);
  if (!value || value->empty())
    return std::optional<std::string>();
  if (!valid_name(*value)) {
    return bad_request("invalid_filter", std::string(field) + " must be 1 to " +
                                             std::to_string(max_name_bytes) + " bytes of UTF-8");
  }
  return std::optional<std::string>(std::move(*value));
}

std::variant<dead_letter_filter, http::response> read_filter(const http::request& req) {
  dead_letter_filter f;
  auto queue = name_param(req, "queue");
  if (auto* e = std::get_if<http::response>(&queue))
    return std::move(*e);
  f.queue = std::get<std::optional<std::string>>(queue);
  auto subscription = name_param(req, "subscription");
  if (auto* e = std::get_if<http::response>(&subscription))
    return std::move(*e);
  f.subscription = std::get<std::optional<std::string>>(subscription);
  for (const auto* field : {"start_time", "end_time"}) {
    const auto text = req.query_param(field);
    if (!text || text->empty())
      continue;
    const auto ms = parse_time(*text);
    if (!ms)
      return bad_request("invalid_time", time_rule(field));
    (std::string_view(field) == "start_time" ? f.start_ms : f.end_ms) = ms;
  }
  if (f.start_ms && f.end_ms && *f.start_ms > *f.end_ms)
    return bad_request("invalid_time", "start_time must not be after end_time");
  return f;
}

// Every filter, times normalised to ms: a cursor works with the same filters spelt otherwise.
std::string fingerprint(const dead_letter_filter& f) {
  std::string out = "queue=" + f.queue.value_or("");
  out += "\nsubscription=" + f.subscription.value_or("");
  out += "\nstart=" + (f.start_ms ? std::to_string(*f.start_ms) : std::string());
  out += "\nend=" + (f.end_ms ? std::to_string(*f.end_ms) : std::string());
  return out;
}

json item_json(const dead_letter& d) {
  const auto& m = d.message;
  return json{
      {"id", m.message_id.to_string()},
      {"queue", m.queue},
      {"subscription", m.subscription},
      {"reason", d.reason},
      {"lastStatus", d.last_status ? json(*d.last_status) : json(nullptr)},
      {"attempts", m.attempt},
      {"firstAttemptAt", format_rfc3339_ms(d.first_attempt_ms)},
      {"lastAttemptAt", format_rfc3339_ms(d.last_attempt_ms)},
      {"responseExcerpt", d.response_excerpt.empty() ? json(nullptr) : json(d.response_excerpt)},
      {"partition", m.partition},
      {"deadAt", format_rfc3339_ms(d.dead_ms)}};
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// The item with the payload as the JSON it was pushed as (its exact bytes); a payload that is
// not JSON (nothing sluice accepted, but rows can be written by hand) goes as a string.
std::string item_with_payload(const dead_letter& d) {
  std::string out = dump(item_json(d));
  out.pop_back();
  out += ",\"payload\":";
  const auto& payload = d.message.payload;
  out += json::accept(payload) ? payload : dump(json(payload));
  out += '}';
  return out;
}

std::variant<uuid, http::response> id_param(const http::request& req, const char* name,
                                            const char* what) {
  const auto it = req.params.find(name);
  std::optional<uuid> id;
  if (it != req.params.end()) {
    if (const auto text = percent_decode(it->second))
      id = uuid::parse(*text);
  }
  if (!id) {
    return bad_request(
        "invalid_id",
        std::string(what) + " must be a UUID, e.g. 01890a5d-ac96-774b-bcce-b302099a8057");
  }
  return *id;
}

// The one dead letter `req` names (an id, narrowed by ?queue=&subscription=), or the 4xx.
asio::awaitable<std::variant<dead_letter, http::response>> one_dead_letter(
    const dlq_api& api, const http::request& req) {
  auto id = id_param(req, "id", "the dead letter id");
  if (auto* e = std::get_if<http::response>(&id))
    co_return std::move(*e);
  auto queue = name_param(req, "queue");
  if (auto* e = std::get_if<http::response>(&queue))
    co_return std::move(*e);
  auto subscription = name_param(req, "subscription");
  if (auto* e = std::get_if<http::response>(&subscription))
    co_return std::move(*e);
  const auto deadline = store::clock::now() + api.statement_timeout;
  auto [status, rows] =
      co_await api.letters.find(std::get<uuid>(id), std::get<std::optional<std::string>>(queue),
                                std::get<std::optional<std::string>>(subscription), deadline);
  if (status)
    co_return store_failed(status);
  if (rows.empty()) {
    co_return http::error_response(404, "dead_letter_not_found",
                                   "no dead letter " + std::get<uuid>(id).to_string());
  }
  // Every row is judged before any is named: the 409 below lists queues and subscriptions.
  for (const auto& d : rows) {
    if (auto refused = http::refuse_uncovered(req, d.message.queue))
      co_return std::move(*refused);
  }
  if (rows.size() > 1) {
    // Broadcast mode: the message failed on several subscriptions, each with its own row.
    json matches = json::array();
    for (const auto& d : rows)
      matches.push_back({{"queue", d.message.queue}, {"subscription", d.message.subscription}});
    json body = {{"error",
                  {{"code", "ambiguous"},
                   {"message", "message " + std::get<uuid>(id).to_string() +
                                   " has dead letters on several subscriptions: name one with "
                                   "?queue=&subscription="},
                   {"matches", std::move(matches)}}}};
    co_return http::response::json(409, dump(body));
  }
  co_return std::move(rows.front());
}

json job_json(const delivery::dlq_job& j) {
  json out{{"job", j.id.to_string()},
           {"state", j.state},
           {"matched", j.matched},
           {"redriven", j.redriven},
           {"dryRun", j.dry_run},
           {"ratePerSec", j.rate_per_sec ? json(*j.rate_per_sec) : json(nullptr)},
           {"filter",
            {{"queue", j.filter.queue ? json(*j.filter.queue) : json(nullptr)},
             {"subscription", j.filter.subscription ? json(*j.filter.subscription) : json(nullptr)},
             {"start_time", time_or_null(j.filter.start_ms)},
             {"end_time", time_or_null(j.filter.end_ms)}}},
           {"createdAt", format_rfc3339_ms(j.created_ms)},
           {"updatedAt", format_rfc3339_ms(j.updated_ms)},
           {"finishedAt", time_or_null(j.finished_ms)}};
  if (j.error)
    out["error"] = *j.error;
  return out;
}

struct redrive_request {
  dead_letter_filter filter;
  bool dry_run = false;
  std::optional<std::int32_t> rate_per_sec;
};

std::variant<redrive_request, http::response> parse_redrive(const std::string& body) {
  const auto invalid = [](const std::string& message) {
    return bad_request("invalid_body", message);
  };
  const auto j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return invalid(
        "the body must be a JSON object: {\"queue\",\"subscription\",\"start_time\","
        "\"end_time\",\"dryRun\",\"ratePerSec\"} (all optional; {} re-drives every dead letter)");
  }
  redrive_request out;
  for (const auto& [key, value] : j.items()) {
    if (key == "queue" || key == "subscription") {
      if (value.is_null())
        continue;
      if (!value.is_string() || !valid_name(value.get<std::string>()))
        return invalid(key + " must be a string of 1 to " + std::to_string(max_name_bytes) +
                       " bytes");
      (key == "queue" ? out.filter.queue : out.filter.subscription) = value.get<std::string>();
    } else if (key == "start_time" || key == "end_time") {
      if (value.is_null())
        continue;
      std::optional<std::int64_t> ms;
      if (value.is_string()) {
        ms = parse_time(value.get<std::string>());
      } else if (value.is_number_unsigned()) {
        ms = parse_time(std::to_string(value.get<std::uint64_t>()));
      }
      if (!ms)
        return invalid(time_rule(key));
      (key == "start_time" ? out.filter.start_ms : out.filter.end_ms) = ms;
    } else if (key == "dryRun") {
      if (!value.is_boolean())
        return invalid("dryRun must be true or false");
      out.dry_run = value.get<bool>();
    } else if (key == "ratePerSec") {
      if (value.is_null())
        continue;
      if (!value.is_number_integer() || value.get<std::int64_t>() < 1 ||
          value.get<std::int64_t>() > max_rate_per_sec)
        return invalid("ratePerSec must be an integer from 1 to " +
                       std::to_string(max_rate_per_sec) + ", or null for no limit");
      out.rate_per_sec = static_cast<std::int32_t>(value.get<std::int64_t>());
    } else {
      return invalid("unknown field " + key);
    }
  }
  if (out.filter.start_ms && out.filter.end_ms && *out.filter.start_ms > *out.filter.end_ms)
    return invalid("start_time must not be after end_time");
  return out;
}

void add_dead_letter_routes(http::router& routes, const std::shared_ptr<const dlq_api>& api) {
  routes.add(
      "GET", "/api/v1/dlq", "/api/v1/dlq",
      [api](http::request& req) -> asio::awaitable<http::response> {
        auto filter = read_filter(req);
        if (auto* e = std::get_if<http::response>(&filter))
          co_return std::move(*e);
        const auto& f = std::get<dead_letter_filter>(filter);
        if (auto refused = http::refuse_unfiltered(req, f.queue, "queue"))
          co_return std::move(*refused);
        const std::string fp = fingerprint(f);
        auto page = http::read_page_request(req, fp, default_page, max_page);
        if (auto* e = std::get_if<http::response>(&page))
          co_return std::move(*e);
        const auto& p = std::get<http::page_request>(page);
        std::optional<delivery::dead_letter_key> after;
        if (p.position) {
          after = delivery::dead_letter_key::decode(*p.position);
          if (!after)
            co_return http::cursor_error_response(http::cursor_error::malformed);
        }
        const auto deadline = store::clock::now() + api->statement_timeout;
        const auto listed = co_await api->letters.list(f, after, p.limit, deadline);
        if (listed.status)
          co_return store_failed(listed.status);
        std::vector<std::string> items;
        items.reserve(listed.items.size());
        for (const auto& d : listed.items)
          items.push_back(dump(item_json(d)));
        std::optional<std::string> next;
        if (listed.next)
          next = http::encode_cursor(listed.next->encode(), fp);
        co_return http::response::json(200, http::list_body(items, p.limit, next));
      },
      http::needs(http::access::read));

  routes.add(
      "GET", "/api/v1/dlq/{id}", "/api/v1/dlq/{id}",
      [api](http::request& req) -> asio::awaitable<http::response> {
        auto found = co_await one_dead_letter(*api, req);
        if (auto* e = std::get_if<http::response>(&found))
          co_return std::move(*e);
        co_return http::response::json(200, item_with_payload(std::get<dead_letter>(found)));
      },
      http::needs(http::access::read));

  routes.add(
      "POST", "/api/v1/dlq/{id}/retry", "/api/v1/dlq/{id}/retry",
      [api](http::request& req) -> asio::awaitable<http::response> {
        auto found = co_await one_dead_letter(*api, req);
        if (auto* e = std::get_if<http::response>(&found))
          co_return std::move(*e);
        const auto& m = std::get<dead_letter>(found).message;
        const auto deadline = store::clock::now() + api->statement_timeout;
        const auto [status, moved] =
            co_await api->letters.redrive_one(m.message_id, m.queue, m.subscription, deadline);
        if (status)
          co_return store_failed(status);
        if (!moved) {
          // Re-driven or deleted by someone else since it was read, or its subscription
          // is gone (the dead letter then stays: a re-drive would lose the message).
          const auto [again, rows] =
              co_await api->letters.find(m.message_id, m.queue, m.subscription, deadline);
          if (again)
            co_return store_failed(again);
          if (!rows.empty()) {
            co_return http::error_response(
                409, "subscription_not_found",
                "queue " + m.queue + " has no subscription named " + m.subscription +
                    " any more: PUT it again to re-drive its dead letters");
          }
          co_return http::error_response(404, "dead_letter_not_found",
                                         "no dead letter " + m.message_id.to_string());
        }
        spdlog::info("delivery: dead letter {} of {}/{} re-driven by {}", m.message_id.to_string(),
                     m.queue, m.subscription, http::actor_of(req));
        if (api->on_redriven)
          api->on_redriven();
        const json body{{"id", m.message_id.to_string()},
                        {"queue", m.queue},
                        {"subscription", m.subscription},
                        {"state", "redriven"}};
        co_return http::response::json(202, dump(body));
      },
      http::needs(http::access::admin));

  routes.add(
      "DELETE", "/api/v1/dlq/{id}", "/api/v1/dlq/{id}",
      [api](http::request& req) -> asio::awaitable<http::response> {
        auto found = co_await one_dead_letter(*api, req);
        if (auto* e = std::get_if<http::response>(&found))
          co_return std::move(*e);
        const auto& m = std::get<dead_letter>(found).message;
        const auto deadline = store::clock::now() + api->statement_timeout;
        const auto [status, removed] =
            co_await api->letters.remove(m.message_id, m.queue, m.subscription, deadline);
        if (status)
          co_return store_failed(status);
        if (!removed) {
          co_return http::error_response(404, "dead_letter_not_found",
                                         "no dead letter " + m.message_id.to_string());
        }
        spdlog::info("delivery: dead letter {} of {}/{} deleted by {}", m.message_id.to_string(),
                     m.queue, m.subscription, http::actor_of(req));
        co_return http::response::json(204, "");
      },
      http::needs(http::access::admin));
}

void add_job_routes(http::router& routes, const std::shared_ptr<const dlq_api>& api) {
  routes.add(
      "POST", "/api/v1/dlq/retry", "/api/v1/dlq/retry",
      [api](http::request& req) -> asio::awaitable<http::response> {
        if (auto rejected = http::reject_non_json_body(req))
          co_return std::move(*rejected);
        auto parsed = parse_redrive(req.body);
        if (auto* e = std::get_if<http::response>(&parsed))
          co_return std::move(*e);
        const auto& r = std::get<redrive_request>(parsed);
        if (auto refused = http::refuse_unfiltered(req, r.filter.queue, "queue"))
          co_return std::move(*refused);
        const auto deadline = store::clock::now() + api->statement_timeout;
        const auto [status, job] =
            co_await api->jobs.create(r.filter, r.dry_run, r.rate_per_sec, deadline);
        if (status)
          co_return store_failed(status);
        if (job.state == "running") {
          spdlog::info("delivery: dlq re-drive job {} created matched={} rate_per_sec={} by {}",
                       job.id.to_string(), job.matched,
                       job.rate_per_sec ? std::to_string(*job.rate_per_sec) : "none",
                       http::actor_of(req));
          if (api->runner)
            api->runner->wake(job.id);
        }
        const json body{{"job", job.id.to_string()}, {"matched", job.matched}};
        co_return http::response::json(r.dry_run ? 200 : 202, dump(body));
      },
      http::needs(http::access::admin));

  routes.add(
      "GET", "/api/v1/dlq/jobs/{job}", "/api/v1/dlq/jobs/{job}",
      [api](http::request& req) -> asio::awaitable<http::response> {
        auto id = id_param(req, "job", "the job id");
        if (auto* e = std::get_if<http::response>(&id))
          co_return std::move(*e);
        const auto deadline = store::clock::now() + api->statement_timeout;
        const auto [status, job] = co_await api->jobs.get(std::get<uuid>(id), deadline);
        if (status)
          co_return store_failed(status);
        if (!job) {
          co_return http::error_response(404, "job_not_found",
                                         "no re-drive job " + std::get<uuid>(id).to_string());
        }
        if (auto refused = http::refuse_unfiltered(req, job->filter.queue, "queue"))
          co_return std::move(*refused);
        co_return http::response::json(200, dump(job_json(*job)));
      },
      http::needs(http::access::read));
}

void add_attempt_routes(http::router& routes, const std::shared_ptr<const dlq_api>& api) {
  routes.add(
      "GET", "/api/v1/messages/{id}/deliveries", "/api/v1/messages/{id}/deliveries",
      [api](http::request& req) -> asio::awaitable<http::response> {
        auto id = id_param(req, "id", "the message id");
        if (auto* e = std::get_if<http::response>(&id))
          co_return std::move(*e);
        const std::string fp = "message=" + std::get<uuid>(id).to_string();
        auto page = http::read_page_request(req, fp, default_page, max_page);
        if (auto* e = std::get_if<http::response>(&page))
          co_return std::move(*e);
        const auto& p = std::get<http::page_request>(page);
        std::optional<delivery::attempt_key> after;
        if (p.position) {
          after = delivery::attempt_key::decode(*p.position);
          if (!after)
            co_return http::cursor_error_response(http::cursor_error::malformed);
        }
        const auto deadline = store::clock::now() + api->statement_timeout;
        const auto listed =
            co_await api->attempts.list(std::get<uuid>(id), after, p.limit, deadline);
        if (listed.status)
          co_return store_failed(listed.status);
        // A message has one queue: its attempts (targets' status and error text) are read only
        // by a caller covering it. Judged on the rows, so an id with none reveals nothing.
        for (const auto& a : listed.items) {
          if (auto refused = http::refuse_uncovered(req, a.queue))
            co_return std::move(*refused);
        }
        std::vector<std::string> items;
        items.reserve(listed.items.size());
        for (const auto& a : listed.items) {
          items.push_back(dump(json{{"attempt", a.attempt},
                                    {"queue", a.queue},
                                    {"subscription", a.subscription},
                                    {"attemptedAt", format_rfc3339_ms(a.attempted_ms)},
                                    {"outcome", a.outcome},
                                    {"status", a.status ? json(*a.status) : json(nullptr)},
                                    {"latencyMs", a.latency_ms},
                                    {"error", a.error.empty() ? json(nullptr) : json(a.error)}}));
        }
        std::optional<std::string> next;
        if (listed.next)
          next = http::encode_cursor(listed.next->encode(), fp);
        co_return http::response::json(200, http::list_body(items, p.limit, next));
      },
      http::needs(http::access::read));
}

}  // namespace

void add_dlq_routes(http::router& routes, const dlq_api& api) {
  const auto shared = std::make_shared<const dlq_api>(api);
  add_dead_letter_routes(routes, shared);
  add_job_routes(routes, shared);
  add_attempt_routes(routes, shared);
}

}  // namespace sluice::api
