#include "sluice/services/service_store.hpp"

#include <algorithm>
#include <variant>

#include "sluice/services/service_json.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace sluice::services {
namespace asio = boost::asio;
using json = nlohmann::json;

namespace {

// xmax = 0 only on a row this statement inserted (an updated row carries the updating
// transaction's id): created or replaced, without a second statement.
constexpr std::string_view put_sql = R"sql(
INSERT INTO sluice_services AS s (name, spec, schedule, updated_at)
VALUES ($1, $2::jsonb, $3::jsonb, now())
ON CONFLICT (name) DO UPDATE
   SET spec = EXCLUDED.spec,
       schedule = CASE WHEN $4::bool THEN EXCLUDED.schedule ELSE s.schedule END,
       updated_at = now()
RETURNING (xmax = 0), spec::text, schedule::text)sql";

constexpr std::string_view set_schedule_sql = R"sql(
UPDATE sluice_services SET schedule = $2::jsonb, updated_at = now() WHERE name = $1
RETURNING name)sql";

constexpr std::string_view set_schedule_or_insert_sql = R"sql(
INSERT INTO sluice_services AS s (name, spec, schedule, updated_at)
VALUES ($1, $2::jsonb, $3::jsonb, now())
ON CONFLICT (name) DO UPDATE SET schedule = EXCLUDED.schedule, updated_at = now()
RETURNING name)sql";

constexpr std::string_view remove_sql = R"sql(
DELETE FROM sluice_services WHERE name = $1 RETURNING name)sql";

constexpr std::string_view load_sql = R"sql(
SELECT name, spec::text, schedule::text FROM sluice_services WHERE name = $1)sql";

constexpr std::string_view load_all_sql = R"sql(
SELECT name, spec::text, schedule::text FROM sluice_services ORDER BY name)sql";

using store::status_of;

// The spec column: the API's JSON without the schedule (it has a column of its own).
std::string spec_json(const service& s) {
  service copy = s;
  copy.traffic.reset();
  return to_json(copy);
}

// parse_service reads a PUT body; the stored spec is to_json's view, which may name the
// service and carry fields a PUT body does not: keep only what a PUT body has.
std::string as_put_body(std::string_view spec) {
  json j = json::parse(spec, nullptr, false);
  if (!j.is_object())
    return std::string(spec);
  j.erase("name");
  j.erase("schedule");
  return j.dump();
}

load_one_result decode_one(std::string_view name, const store::pg_result& r,
                           const service_defaults& defaults) {
  load_one_result out;
  out.status = status_of(r);
  if (r.ec || r.rows.empty())
    return out;
  const auto& row = r.rows.front();
  if (row.size() != 3 || !row[1]) {
    out.status.ec = store::errc::query_failed;
    out.status.message = "unexpected row shape";
    return out;
  }
  std::string problem;
  std::string schedule_problem;
  out.found = decode_service_row(name, *row[1], row[2], defaults, problem, &schedule_problem);
  if (!out.found) {
    spdlog::error("services: stored service {} does not parse: {}", name, problem);
  } else if (!schedule_problem.empty()) {
    spdlog::warn("services: schedule of {} ignored: {}", name, schedule_problem);
  }
  return out;
}

load_all_result decode_all(const store::pg_result& r, const service_defaults& defaults) {
  load_all_result out;
  out.status = status_of(r);
  if (r.ec)
    return out;
  out.services.reserve(r.rows.size());
  for (const auto& row : r.rows) {
    if (row.size() != 3 || !row[0] || !row[1])
      continue;
    std::string problem;
    std::string schedule_problem;
    auto s = decode_service_row(*row[0], *row[1], row[2], defaults, problem, &schedule_problem);
    if (!s) {
      spdlog::error("services: stored service {} does not parse: {}", *row[0], problem);
      out.skipped.push_back(*row[0]);
      continue;
    }
    if (!schedule_problem.empty())
      spdlog::warn("services: schedule of {} ignored: {}", *row[0], schedule_problem);
    out.services.push_back(std::move(*s));
  }
  std::sort(out.services.begin(), out.services.end(),
            [](const service& a, const service& b) { return a.name < b.name; });
  return out;
}

store::pg_statement name_statement(std::string_view sql, std::string_view statement_name,
                                   std::string_view name) {
  store::pg_statement s{.sql = sql, .name = statement_name};
  s.params.add_text_bytes(name);
  return s;
}

change_result change_of(const store::pg_result& r) {
  change_result out;
  out.status = status_of(r);
  out.found = !r.ec && !r.rows.empty();
  return out;
}

}  // namespace

std::optional<service> decode_service_row(std::string_view name, std::string_view spec,
                                          const std::optional<std::string>& schedule_json,
                                          const service_defaults& defaults, std::string& problem,
                                          std::string* schedule_problem) {
  auto parsed = parse_service(name, as_put_body(spec), defaults);
  if (auto* error = std::get_if<parse_error>(&parsed)) {
    problem = error->field + ": " + error->message;
    return std::nullopt;
  }
  service s = std::move(std::get<service>(parsed));
  s.source = service_source::api;
  s.traffic.reset();
  if (schedule_json) {
    auto traffic = parse_schedule(*schedule_json, s);
    if (auto* error = std::get_if<parse_error>(&traffic)) {
      if (schedule_problem)
        *schedule_problem = error->field + ": " + error->message;
    } else {
      s.traffic = std::move(std::get<schedule>(traffic));
    }
  }
  return s;
}

service_store::service_store(store::pg_pool& pool, service_defaults defaults)
    : pool_(pool), defaults_(std::move(defaults)) {}

asio::awaitable<put_result> service_store::put(const service& s,
                                               store::clock::time_point deadline) {
  store::pg_statement st{.sql = put_sql, .name = "sluice_services_put"};
  st.params.add_text_bytes(s.name);
  st.params.add_text_bytes(spec_json(s));
  if (s.traffic) {
    st.params.add_text_bytes(to_json(*s.traffic));
  } else {
    st.params.add_null(store::pg_type::text);
  }
  st.params.add_text(s.traffic ? "true" : "false", store::pg_type::boolean);
  const store::pg_result r = co_await pool_.execute(st, deadline);
  put_result out;
  out.status = status_of(r);
  if (r.ec || r.rows.empty() || r.rows.front().size() != 3)
    co_return out;
  const auto& row = r.rows.front();
  out.created = row[0] == "t";
  std::string problem;
  std::string schedule_problem;
  if (row[1])
    out.stored = decode_service_row(s.name, *row[1], row[2], defaults_, problem, &schedule_problem);
  if (!out.stored) {
    // What we wrote ourselves does not read back: report what was sent rather than fail.
    out.stored = s;
    out.stored->source = service_source::api;
  }
  co_return out;
}

asio::awaitable<change_result> service_store::set_schedule(std::string_view name,
                                                           const std::optional<schedule>& traffic,
                                                           store::clock::time_point deadline) {
  store::pg_statement st{.sql = set_schedule_sql, .name = "sluice_services_set_schedule"};
  st.params.add_text_bytes(name);
  if (traffic) {
    st.params.add_text_bytes(to_json(*traffic));
  } else {
    st.params.add_null(store::pg_type::text);
  }
  co_return change_of(co_await pool_.execute(st, deadline));
}

asio::awaitable<change_result> service_store::set_schedule_or_insert(
    const service& base, const schedule& traffic, store::clock::time_point deadline) {
  store::pg_statement st{.sql = set_schedule_or_insert_sql,
                         .name = "sluice_services_set_schedule_or_insert"};
  st.params.add_text_bytes(base.name);
  st.params.add_text_bytes(spec_json(base));
  st.params.add_text_bytes(to_json(traffic));
  co_return change_of(co_await pool_.execute(st, deadline));
}

asio::awaitable<change_result> service_store::remove(std::string_view name,
                                                     store::clock::time_point deadline) {
  const auto st = name_statement(remove_sql, "sluice_services_remove", name);
  co_return change_of(co_await pool_.execute(st, deadline));
}

asio::awaitable<load_one_result> service_store::load(std::string_view name,
                                                     store::clock::time_point deadline) {
  const auto st = name_statement(load_sql, "sluice_services_load", name);
  co_return decode_one(name, co_await pool_.execute(st, deadline), defaults_);
}

asio::awaitable<load_all_result> service_store::load_all(store::clock::time_point deadline) {
  const store::pg_statement st{.sql = load_all_sql, .name = "sluice_services_load_all"};
  co_return decode_all(co_await pool_.execute(st, deadline), defaults_);
}

asio::awaitable<load_one_result> service_store::load(store::pg_connection& conn,
                                                     std::string_view name,
                                                     const service_defaults& defaults,
                                                     store::clock::time_point deadline) {
  const auto st = name_statement(load_sql, "sluice_services_load", name);
  co_return decode_one(name, co_await conn.execute(st, deadline), defaults);
}

asio::awaitable<load_all_result> service_store::load_all(store::pg_connection& conn,
                                                         const service_defaults& defaults,
                                                         store::clock::time_point deadline) {
  const store::pg_statement st{.sql = load_all_sql, .name = "sluice_services_load_all"};
  co_return decode_all(co_await conn.execute(st, deadline), defaults);
}

}  // namespace sluice::services
