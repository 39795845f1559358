#include "sluice/routing/route_store.hpp"

#include <charconv>

#include "sluice/core/rfc3339.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace sluice::routing {
namespace asio = boost::asio;
using json = nlohmann::json;
using store::status_of;

namespace {

// The SQL of every change has one shape:
//
//   reg_lock  SELECT ... FROM sluice_route_registry FOR UPDATE: taken first, by every change,
//             so changes never deadlock on each other and run one at a time. In READ COMMITTED
//             a row lock that had to wait returns the newest committed row, so reg_lock sees
//             the version of the change that committed just before.
//   t         the next version and the change's time (clock_timestamp() after the lock: times
//             grow with versions, unlike now(), the transaction's start).
//   old       the route row, locked FOR UPDATE OF r after the registry (the join makes the
//             registry lock come first): like reg_lock it is the newest committed row even if
//             the statement's snapshot is older, so "before" is what the change replaced.
//   write     INSERT / UPDATE / DELETE of the route, empty when nothing changes.
//   reg       UPDATE sluice_route_registry SET version = version + 1 only WHERE EXISTS (write).
//   ev        the event row, only when reg bumped.
//   SELECT    new version (NULL: no change), the route's JSON, the version the lock saw, and
//             pg_notify('sluice_routes', new version) for each event (sent at the commit).
//
// Routes travel as the JSON of to_json(route) (built by route_object below), in the results
// and in the events' before/after columns, so one parser reads them all.

std::string timestamp_text(const std::string& column) {
  return "to_char(" + column + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";
}

std::string route_object(const std::string& a) {
  return "jsonb_build_object('id', " + a + ".id, 'tenant', " + a + ".tenant, 'service', " + a +
         ".service, 'env', " + a + ".env, 'version', " + a + ".version, 'url', " + a +
         ".url, 'is_active', " + a + ".is_active, 'created_at', " +
         timestamp_text(a + ".created_at") + ", 'updated_at', " +
         timestamp_text(a + ".updated_at") + ", 'registry_version', " + a + ".registry_version)";
}

constexpr std::string_view key_match =
    "r.tenant = $1 AND r.service = $2 AND r.env = $3 AND "
    "r.version = $4";

std::string head() {
  return R"sql(
WITH reg_lock AS (
  SELECT version FROM sluice_route_registry WHERE id = 1 FOR UPDATE
), t AS (
  SELECT version + 1 AS next, clock_timestamp() AS at FROM reg_lock
))sql";
}

std::string old_cte() {
  return ", old AS (\n  SELECT r.id, " + route_object("r") +
         " AS before, r.url, r.is_active FROM sluice_routes r, reg_lock WHERE " +
         std::string(key_match) + " FOR UPDATE OF r\n)";
}

std::string bump_and_event(std::string_view write, std::string_view action, std::string_view before,
                           std::string_view after, std::string_view actor_param) {
  return std::string(R"sql(, reg AS (
  UPDATE sluice_route_registry SET version = version + 1
   WHERE id = 1 AND EXISTS (SELECT 1 FROM )sql") +
         std::string(write) + R"sql()
  RETURNING version
), ev AS (
  INSERT INTO sluice_route_events (registry_version, action, tenant, service, env, version,
                                   before, after, actor, created_at)
  SELECT reg.version, )sql" +
         std::string(action) + ", $1, $2, $3, $4, " + std::string(before) + ", " +
         std::string(after) + ", " + std::string(actor_param) + ", t.at FROM reg, t" +
         (write == "ins" ? std::string(", ins") : std::string(", old, ") + std::string(write)) +
         R"sql(
  RETURNING registry_version
)
SELECT (SELECT version FROM reg), )sql";
}

std::string tail() {
  return R"sql(, (SELECT version FROM reg_lock),
       (SELECT count(*) FROM (SELECT pg_notify('sluice_routes', registry_version::text)
                                FROM ev) n))sql";
}

const std::string& create_sql() {
  static const std::string sql = head() + R"sql(, ins AS (
  INSERT INTO sluice_routes AS r (tenant, service, env, version, url, is_active, created_at,
                                  updated_at, registry_version)
  SELECT $1, $2, $3, $4, $5, true, t.at, t.at, t.next FROM t
  ON CONFLICT (tenant, service, env, version) DO NOTHING
  RETURNING )sql" + route_object("r") +
                                 " AS after\n)" +
                                 bump_and_event("ins", "'created'", "NULL", "ins.after", "$6") +
                                 "(SELECT after::text FROM ins)" + tail();
  return sql;
}

const std::string& update_url_sql() {
  static const std::string sql =
      head() + old_cte() + R"sql(, upd AS (
  UPDATE sluice_routes r SET url = $5, updated_at = t.at, registry_version = t.next
    FROM old, t WHERE r.id = old.id AND old.url IS DISTINCT FROM $5
  RETURNING )sql" +
      route_object("r") + " AS after\n)" +
      bump_and_event("upd", "'updated'", "old.before", "upd.after", "$6") +
      "COALESCE((SELECT after::text FROM upd), (SELECT before::text FROM old))" + tail();
  return sql;
}

const std::string& set_active_sql() {
  static const std::string sql =
      head() + old_cte() + R"sql(, upd AS (
  UPDATE sluice_routes r SET is_active = $5, updated_at = t.at, registry_version = t.next
    FROM old, t WHERE r.id = old.id AND old.is_active <> $5
  RETURNING )sql" +
      route_object("r") + " AS after\n)" +
      bump_and_event("upd", "CASE WHEN $5 THEN 'activated' ELSE 'deactivated' END", "old.before",
                     "upd.after", "$6") +
      "COALESCE((SELECT after::text FROM upd), (SELECT before::text FROM old))" + tail();
  return sql;
}

const std::string& remove_sql() {
  static const std::string sql = head() + old_cte() + R"sql(, del AS (
  DELETE FROM sluice_routes r USING old WHERE r.id = old.id RETURNING r.id
))sql" + bump_and_event("del", "'deleted'", "old.before", "NULL", "$5") +
                                 "(SELECT before::text FROM old)" + tail();
  return sql;
}

const std::string& lookup_sql() {
  static const std::string sql =
      "SELECT (SELECT version FROM sluice_route_registry WHERE id = 1), (SELECT " +
      route_object("r") + "::text FROM sluice_routes r WHERE " + std::string(key_match) + ")";
  return sql;
}

const std::string& list_sql() {
  static const std::string sql = "SELECT " + route_object("r") + R"sql(::text
  FROM sluice_routes r
 WHERE ($1::text IS NULL OR r.tenant = $1) AND ($2::text IS NULL OR r.service = $2)
   AND ($3::text IS NULL OR r.env = $3) AND ($4::text IS NULL OR r.version = $4)
   AND ($5::bool IS NULL OR r.is_active = $5)
   AND ($6::text IS NULL OR (r.tenant, r.service, r.env, r.version) > ($6, $7, $8, $9))
 ORDER BY r.tenant, r.service, r.env, r.version
 LIMIT $10)sql";
  return sql;
}

std::string event_columns() {
  return "e.id, e.registry_version, e.action, e.tenant, e.service, e.env, e.version, "
         "e.before::text, e.after::text, e.actor, " +
         timestamp_text("e.created_at");
}

const std::string& events_since_sql() {
  static const std::string sql = "SELECT " + event_columns() +
                                 " FROM sluice_route_events e WHERE e.registry_version > $1 "
                                 "ORDER BY e.registry_version LIMIT $2";
  return sql;
}

const std::string& list_events_sql() {
  static const std::string sql = "SELECT " + event_columns() + R"sql(
  FROM sluice_route_events e
 WHERE ($1::text IS NULL OR e.tenant = $1) AND ($2::text IS NULL OR e.service = $2)
   AND ($3::text IS NULL OR e.env = $3) AND ($4::text IS NULL OR e.version = $4)
   AND ($5::text IS NULL OR e.action = $5)
   AND ($6::timestamptz IS NULL OR e.created_at >= $6)
   AND ($7::timestamptz IS NULL OR e.created_at < $7)
   AND ($8::bigint IS NULL OR e.registry_version < $8)
 ORDER BY e.registry_version DESC
 LIMIT $9)sql";
  return sql;
}

constexpr std::string_view current_version_sql =
    "SELECT version FROM sluice_route_registry WHERE id = 1";

std::optional<std::int64_t> integer_of(const std::optional<std::string>& text) {
  if (!text)
    return std::nullopt;
  std::int64_t v = 0;
  const char* end = text->data() + text->size();
  const auto [ptr, ec] = std::from_chars(text->data(), end, v);
  if (ec != std::errc{} || ptr != end)
    return std::nullopt;
  return v;
}

void add_key(store::pg_params& p, const route_key& key) {
  p.add_text_bytes(key.tenant);
  p.add_text_bytes(key.service);
  p.add_text_bytes(key.env);
  p.add_text_bytes(key.version);
}

void add_optional_text(store::pg_params& p, const std::optional<std::string>& v) {
  if (v) {
    p.add_text_bytes(*v);
  } else {
    p.add_null(store::pg_type::text);
  }
}

void add_optional_time(store::pg_params& p,
                       const std::optional<std::chrono::system_clock::time_point>& v) {
  if (v) {
    p.add_text(format_rfc3339(*v), store::pg_type::timestamptz);
  } else {
    p.add_null(store::pg_type::timestamptz);
  }
}

const char* bool_text(bool v) {
  return v ? "true" : "false";
}

store::statement_status shape_error(std::string what) {
  store::statement_status s;
  s.ec = store::errc::query_failed;
  s.message = std::move(what);
  return s;
}

// A route column the statement built itself: one that does not parse is a bug here, not data.
std::optional<route> route_column(const std::optional<std::string>& text, const char* where) {
  if (!text)
    return std::nullopt;
  auto r = parse_route_json(*text);
  if (!r)
    spdlog::error("routing: a route read back from PostgreSQL ({}) does not parse: {}", where,
                  *text);
  return r;
}

enum class change_kind { create, modify, remove };

change_result change_of(const store::pg_result& r, change_kind kind) {
  change_result out;
  out.status = status_of(r);
  if (r.ec)
    return out;
  if (r.rows.size() != 1 || r.rows.front().size() != 4) {
    out.status = shape_error("unexpected result shape of a route change");
    return out;
  }
  const auto& row = r.rows.front();
  const auto bumped = integer_of(row[0]);
  out.stored = route_column(row[1], "change");
  out.registry_version = bumped ? *bumped : integer_of(row[2]).value_or(0);
  if (kind == change_kind::create) {
    out.outcome = bumped ? change_outcome::done : change_outcome::conflict;
    if (!bumped)
      out.stored.reset();
  } else {
    out.outcome = row[1] ? change_outcome::done : change_outcome::not_found;
  }
  if (out.outcome == change_outcome::done && !out.stored) {
    out.outcome = change_outcome::failed;
    out.status = shape_error("a changed route did not read back");
  }
  return out;
}

events_result events_of(const store::pg_result& r) {
  events_result out;
  out.status = status_of(r);
  if (r.ec)
    return out;
  out.events.reserve(r.rows.size());
  for (const auto& row : r.rows) {
    if (row.size() != 11 || !row[2] || !row[3] || !row[4] || !row[5] || !row[6] || !row[9] ||
        !row[10]) {
      out.status = shape_error("unexpected row shape of sluice_route_events");
      out.events.clear();
      return out;
    }
    route_event e;
    e.id = integer_of(row[0]).value_or(0);
    e.registry_version = integer_of(row[1]).value_or(0);
    e.action = *row[2];
    e.key = {*row[3], *row[4], *row[5], *row[6]};
    e.before = route_column(row[7], "event before");
    e.after = route_column(row[8], "event after");
    e.actor = *row[9];
    e.created_at = parse_rfc3339(*row[10]).value_or(std::chrono::system_clock::time_point{});
    out.events.push_back(std::move(e));
  }
  return out;
}

store::pg_statement events_since_statement(std::int64_t after_version, std::size_t limit) {
  store::pg_statement st{.sql = events_since_sql(), .name = "sluice_routes_events_since"};
  st.params.add(after_version);
  st.params.add(static_cast<std::int64_t>(limit));
  return st;
}

}  // namespace

std::string to_json(const route_event& e) {
  const auto route_or_null = [](const std::optional<route>& r) {
    return r ? nlohmann::ordered_json::parse(to_json(*r)) : nlohmann::ordered_json(nullptr);
  };
  nlohmann::ordered_json j;
  j["id"] = e.id;
  j["registry_version"] = e.registry_version;
  j["action"] = e.action;
  j["tenant"] = e.key.tenant;
  j["service"] = e.key.service;
  j["env"] = e.key.env;
  j["version"] = e.key.version;
  j["before"] = route_or_null(e.before);
  j["after"] = route_or_null(e.after);
  j["actor"] = e.actor;
  j["created_at"] = format_rfc3339(e.created_at);
  return j.dump();
}

std::optional<route> parse_route_json(std::string_view text) {
  const json j = json::parse(text, nullptr, false);
  if (!j.is_object())
    return std::nullopt;
  const auto text_of = [&j](const char* name) -> const std::string* {
    const auto it = j.find(name);
    return it != j.end() && it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
  };
  const auto integer = [&j](const char* name) -> std::optional<std::int64_t> {
    const auto it = j.find(name);
    if (it == j.end() || !it->is_number_integer())
      return std::nullopt;
    return it->get<std::int64_t>();
  };
  const auto time_of = [&text_of](const char* name) {
    const std::string* t = text_of(name);
    return t ? parse_rfc3339(*t) : std::nullopt;
  };
  const auto id = integer("id");
  const auto registry_version = integer("registry_version");
  const auto created_at = time_of("created_at");
  const auto updated_at = time_of("updated_at");
  const auto active = j.find("is_active");
  const std::string* tenant = text_of("tenant");
  const std::string* service = text_of("service");
  const std::string* env = text_of("env");
  const std::string* version = text_of("version");
  const std::string* url = text_of("url");
  if (!id || !registry_version || !created_at || !updated_at || active == j.end() ||
      !active->is_boolean() || !tenant || !service || !env || !version || !url)
    return std::nullopt;
  route r;
  r.id = *id;
  r.key = {*tenant, *service, *env, *version};
  r.url = *url;
  r.is_active = active->get<bool>();
  r.created_at = *created_at;
  r.updated_at = *updated_at;
  r.registry_version = *registry_version;
  return r;
}

route_store::route_store(store::pg_pool& pool) : pool_(pool) {}

asio::awaitable<change_result> route_store::create(const route_key& key, std::string_view url,
                                                   std::string_view actor,
                                                   store::clock::time_point deadline) {
  store::pg_statement st{.sql = create_sql(), .name = "sluice_routes_create"};
  add_key(st.params, key);
  st.params.add_text_bytes(url);
  st.params.add_text_bytes(actor);
  const store::pg_result r = co_await pool_.execute(st, deadline);
  co_return change_of(r, change_kind::create);
}

asio::awaitable<change_result> route_store::update_url(const route_key& key, std::string_view url,
                                                       std::string_view actor,
                                                       store::clock::time_point deadline) {
  store::pg_statement st{.sql = update_url_sql(), .name = "sluice_routes_update_url"};
  add_key(st.params, key);
  st.params.add_text_bytes(url);
  st.params.add_text_bytes(actor);
  const store::pg_result r = co_await pool_.execute(st, deadline);
  co_return change_of(r, change_kind::modify);
}

asio::awaitable<change_result> route_store::set_active(const route_key& key, bool active,
                                                       std::string_view actor,
                                                       store::clock::time_point deadline) {
  store::pg_statement st{.sql = set_active_sql(), .name = "sluice_routes_set_active"};
  add_key(st.params, key);
  st.params.add_text(bool_text(active), store::pg_type::boolean);
  st.params.add_text_bytes(actor);
  const store::pg_result r = co_await pool_.execute(st, deadline);
  co_return change_of(r, change_kind::modify);
}

asio::awaitable<change_result> route_store::remove(const route_key& key, std::string_view actor,
                                                   store::clock::time_point deadline) {
  store::pg_statement st{.sql = remove_sql(), .name = "sluice_routes_remove"};
  add_key(st.params, key);
  st.params.add_text_bytes(actor);
  const store::pg_result r = co_await pool_.execute(st, deadline);
  co_return change_of(r, change_kind::remove);
}

asio::awaitable<lookup_result> route_store::lookup(const route_key& key,
                                                   store::clock::time_point deadline) {
  store::pg_statement st{.sql = lookup_sql(), .name = "sluice_routes_lookup"};
  add_key(st.params, key);
  const store::pg_result r = co_await pool_.execute(st, deadline);
  lookup_result out;
  out.status = status_of(r);
  if (r.ec)
    co_return out;
  if (r.rows.size() != 1 || r.rows.front().size() != 2 || !integer_of(r.rows.front()[0])) {
    out.status = shape_error("unexpected result shape of a route lookup");
    co_return out;
  }
  out.registry_version = *integer_of(r.rows.front()[0]);
  out.found = route_column(r.rows.front()[1], "lookup");
  if (r.rows.front()[1] && !out.found)
    out.status = shape_error("a route did not read back");
  co_return out;
}

asio::awaitable<std::pair<store::statement_status, std::int64_t>> route_store::current_version(
    store::clock::time_point deadline) {
  const store::pg_statement st{.sql = current_version_sql, .name = "sluice_routes_version"};
  const store::pg_result r = co_await pool_.execute(st, deadline);
  if (r.ec)
    co_return std::pair{status_of(r), std::int64_t{0}};
  const auto v = r.rows.size() == 1 && r.rows.front().size() == 1 ? integer_of(r.rows.front()[0])
                                                                  : std::nullopt;
  if (!v)
    co_return std::pair{shape_error("sluice_route_registry has no version row"), std::int64_t{0}};
  co_return std::pair{store::statement_status{}, *v};
}

asio::awaitable<list_result> route_store::list(const route_filter& filter,
                                               const std::optional<route_key>& after,
                                               std::size_t limit,
                                               store::clock::time_point deadline) {
  store::pg_statement st{.sql = list_sql(), .name = "sluice_routes_list"};
  add_optional_text(st.params, filter.tenant);
  add_optional_text(st.params, filter.service);
  add_optional_text(st.params, filter.env);
  add_optional_text(st.params, filter.version);
  if (filter.active) {
    st.params.add_text(bool_text(*filter.active), store::pg_type::boolean);
  } else {
    st.params.add_null(store::pg_type::boolean);
  }
  if (after) {
    add_key(st.params, *after);
  } else {
    for (int i = 0; i < 4; ++i)
      st.params.add_null(store::pg_type::text);
  }
  st.params.add(static_cast<std::int64_t>(limit));
  const store::pg_result r = co_await pool_.execute(st, deadline);
  list_result out;
  out.status = status_of(r);
  if (r.ec)
    co_return out;
  out.routes.reserve(r.rows.size());
  for (const auto& row : r.rows) {
    auto found = row.size() == 1 ? route_column(row[0], "list") : std::nullopt;
    if (!found) {
      out.status = shape_error("a listed route did not read back");
      out.routes.clear();
      co_return out;
    }
    out.routes.push_back(std::move(*found));
  }
  co_return out;
}

asio::awaitable<events_result> route_store::list_events(const event_filter& filter,
                                                        std::optional<std::int64_t> before_version,
                                                        std::size_t limit,
                                                        store::clock::time_point deadline) {
  store::pg_statement st{.sql = list_events_sql(), .name = "sluice_routes_list_events"};
  add_optional_text(st.params, filter.tenant);
  add_optional_text(st.params, filter.service);
  add_optional_text(st.params, filter.env);
  add_optional_text(st.params, filter.version);
  add_optional_text(st.params, filter.action);
  add_optional_time(st.params, filter.start_time);
  add_optional_time(st.params, filter.end_time);
  if (before_version) {
    st.params.add(*before_version);
  } else {
    st.params.add_null(store::pg_type::int8);
  }
  st.params.add(static_cast<std::int64_t>(limit));
  const store::pg_result r = co_await pool_.execute(st, deadline);
  co_return events_of(r);
}

asio::awaitable<events_result> route_store::events_since(store::pg_connection& conn,
                                                         std::int64_t after_version,
                                                         std::size_t limit,
                                                         store::clock::time_point deadline) {
  const auto st = events_since_statement(after_version, limit);
  const store::pg_result r = co_await conn.execute(st, deadline);
  co_return events_of(r);
}

asio::awaitable<events_result> route_store::events_since(std::int64_t after_version,
                                                         std::size_t limit,
                                                         store::clock::time_point deadline) {
  const auto st = events_since_statement(after_version, limit);
  const store::pg_result r = co_await pool_.execute(st, deadline);
  co_return events_of(r);
}

}  // namespace sluice::routing
