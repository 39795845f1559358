#include "sluice/api/query_routes.hpp"

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "sluice/api/queue_name.hpp"
#include "sluice/core/percent_decode.hpp"
#include "sluice/core/rfc3339.hpp"
#include "sluice/http/list_page.hpp"
#include "sluice/query/cursor_key.hpp"
#include "sluice/query/message_reader.hpp"
#include "sluice/query/message_state_reader.hpp"
#include "sluice/query/query_cursor.hpp"
#include "sluice/query/queue_reader.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace sluice::api {
namespace {

namespace asio = boost::asio;
using json = nlohmann::ordered_json;
using query::sort_order;

// A misspelt filter (`partiton=`, `start=`) must not quietly answer every row.
std::optional<http::response> unknown_parameter(const http::request& req,
                                                std::initializer_list<std::string_view> taken) {
  const auto unknown = req.unknown_query_param(taken);
  if (!unknown)
    return std::nullopt;
  std::string list;
  for (const auto t : taken)
    list += (list.empty() ? "" : ", ") + std::string(t);
  return http::error_response(
      400, "invalid_parameter",
      unknown->substr(0, 64) + ": not a parameter of this call (" + list + ")");
}

struct query_state {
  query::message_reader messages;
  query::queue_reader queues;
  query::message_state_reader states;
  query::cursor_key key;
  query::page_limits limits;
  std::chrono::milliseconds statement_timeout;

  store::clock::time_point deadline() const { return store::clock::now() + statement_timeout; }
};

http::response store_failed(const store::statement_status& status) {
  const auto kind = store::classify(status.ec, status.sqlstate);
  if (kind == store::failure_kind::overloaded) {
    return http::overloaded_response(503, "overloaded", "too many requests waiting for PostgreSQL",
                                     1);
  }
  if (kind == store::failure_kind::rejected || status.ec == store::errc::query_failed) {
    spdlog::error("query: PostgreSQL refused a query statement sqlstate={} error=\"{}\"",
                  status.sqlstate, status.message);
    return http::error_response(500, "internal_error", "PostgreSQL refused the statement");
  }
  spdlog::warn("query: store failed error=\"{}\"", status.message);
  return http::overloaded_response(503, "db_unavailable",
                                   "PostgreSQL is not available: " + status.message, 1);
}

// A JSON string of text PostgreSQL gave (valid UTF-8): ", \ and control characters escaped,
// everything else as it is. nlohmann's serializer did the same at several times the cost.
void append_json_string(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  std::size_t run = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    out.append(text.data() + run, i - run);
    run = i + 1;
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else {
      out += "\\u00";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  out.append(text.data() + run, text.size() - run);
  out += '"';
}

std::string json_string(std::string_view text) {
  std::string out;
  append_json_string(out, text);
  return out;
}

void append_text_or_null(std::string& out, const std::optional<std::string>& text) {
  if (text)
    append_json_string(out, *text);
  else
    out += "null";
}

// One message as the list shows it; the payload spliced in as the text that was pushed.
std::string message_json(const query::stored_message& m, bool with_queue) {
  std::string out;
  out.reserve(m.payload.size() + m.partition.size() + 224);
  out += "{\"id\":\"";
  out += m.id.to_string();
  out += '"';
  if (with_queue) {
    out += ",\"queue\":";
    append_json_string(out, m.queue);
  }
  out += ",\"partition\":";
  append_json_string(out, m.partition);
  out += ",\"createdAt\":\"";
  query::append_time_us(out, m.created_ms * 1000);
  out += "\",\"eventTime\":\"";
  query::append_time_us(out, m.event_us);
  out += "\",\"traceId\":";
  append_text_or_null(out, m.trace_id);
  out += ",\"transactionId\":";
  append_text_or_null(out, m.transaction_id);
  out += ",\"payload\":";
  out += m.payload;
  out += '}';
  return out;
}

// The common list body plus the total's kind.
std::string page_body(const std::vector<std::string>& items, std::size_t limit,
                      const std::optional<std::string>& next, std::size_t page,
                      const query::total_count& total) {
  std::string out = http::list_body(items, limit, next, http::page_numbers{page, total.value});
  out.pop_back();
  out += total.is_estimate ? ",\"totalIsEstimate\":true}" : ",\"totalIsEstimate\":false}";
  return out;
}

template <typename T>
std::optional<http::response> take_error(std::variant<T, query::bad_parameter>& v) {
  if (auto* bad = std::get_if<query::bad_parameter>(&v))
    return std::move(bad->answer);
  return std::nullopt;
}

asio::awaitable<http::response> list_messages(query_state& q, http::request& req) {
  if (auto e = unknown_parameter(
          req, {"partition", "start_time", "end_time", "limit", "page", "sort", "cursor"}))
    co_return std::move(*e);
  const auto queue = queue_param(req);
  if (!queue)
    co_return invalid_queue();
  auto paging_read = query::read_paging(req, q.limits);
  if (auto e = take_error(paging_read))
    co_return std::move(*e);
  auto filter_read = query::read_message_filter(req);
  if (auto e = take_error(filter_read))
    co_return std::move(*e);
  const auto& paging = std::get<query::paging>(paging_read);
  const auto& filter = std::get<query::message_filter>(filter_read);
  const std::string fp = query::fingerprint(*queue, filter, paging.sort);
  const auto deadline = q.deadline();
  const auto [key_status, key] = co_await q.key.get(deadline);
  if (key_status)
    co_return store_failed(key_status);

  query::message_page_request r;
  r.queue = *queue;
  r.filter = filter;
  r.sort = paging.sort;
  r.limit = paging.limit;
  std::size_t page = paging.page;
  if (paging.cursor) {
    auto decoded = query::decode_message_cursor(*paging.cursor, fp, key);
    if (const auto* e = std::get_if<http::cursor_error>(&decoded))
      co_return http::cursor_error_response(*e);
    const auto& at = std::get<query::message_position>(decoded);
    if (at.event_us < query::min_time_us || at.event_us > query::max_time_us)
      co_return http::cursor_error_response(http::cursor_error::malformed);
    r.after = at;
    r.known_total = query::total_count{at.state.total, at.state.total_is_estimate};
    page = at.state.page;
  } else {
    r.offset = (paging.page - 1) * paging.limit;
  }
  const auto listed = co_await q.messages.page(r, deadline);
  if (listed.status)
    co_return store_failed(listed.status);
  std::vector<std::string> items;
  items.reserve(listed.items.size());
  for (const auto& m : listed.items)
    items.push_back(message_json(m, false));
  std::optional<std::string> next;
  if (listed.next) {
    auto at = *listed.next;
    at.state = {listed.total.value, listed.total.is_estimate, static_cast<std::uint32_t>(page + 1)};
    next = query::encode_message_cursor(at, fp, key);
  }
  co_return http::response::json(200, page_body(items, r.limit, next, page, listed.total));
}

asio::awaitable<http::response> list_partitions(query_state& q, http::request& req) {
  if (auto e = unknown_parameter(req, {"limit", "page", "sort", "cursor"}))
    co_return std::move(*e);
  const auto queue = queue_param(req);
  if (!queue)
    co_return invalid_queue();
  auto paging_read = query::read_paging(req, q.limits);
  if (auto e = take_error(paging_read))
    co_return std::move(*e);
  const auto& paging = std::get<query::paging>(paging_read);
  const std::string fp = query::fingerprint(*queue, paging.sort);
  const auto deadline = q.deadline();
  const auto [key_status, key] = co_await q.key.get(deadline);
  if (key_status)
    co_return store_failed(key_status);

  query::partition_page_request r;
  r.queue = *queue;
  r.sort = paging.sort;
  r.limit = paging.limit;
  std::size_t page = paging.page;
  if (paging.cursor) {
    auto decoded = query::decode_partition_cursor(*paging.cursor, fp, key);
    if (const auto* e = std::get_if<http::cursor_error>(&decoded))
      co_return http::cursor_error_response(*e);
    auto& at = std::get<query::partition_position>(decoded);
    r.after = std::move(at.last);
    r.known_total = query::total_count{at.state.total, at.state.total_is_estimate};
    page = at.state.page;
  } else {
    r.offset = (paging.page - 1) * paging.limit;
  }
  const auto listed = co_await q.queues.partitions(r, deadline);
  if (listed.status)
    co_return store_failed(listed.status);
  std::vector<std::string> items;
  items.reserve(listed.items.size());
  for (const auto& p : listed.items)
    items.push_back(json_string(p));
  std::optional<std::string> next;
  if (listed.more) {
    next = query::encode_partition_cursor(
        {listed.items.back(),
         {listed.total.value, listed.total.is_estimate, static_cast<std::uint32_t>(page + 1)}},
        fp, key);
  }
  co_return http::response::json(200, page_body(items, r.limit, next, page, listed.total));
}

json count_json(const query::total_count& c) {
  return json(c.value);
}

asio::awaitable<http::response> list_queues(query_state& q, http::request& req) {
  if (auto e = unknown_parameter(req, {"limit", "cursor"}))
    co_return std::move(*e);
  auto paging_read = query::read_paging(req, q.limits);
  if (auto e = take_error(paging_read))
    co_return std::move(*e);
  const auto& paging = std::get<query::paging>(paging_read);
  if (paging.page_given || paging.sort != sort_order::asc) {
    co_return http::error_response(400, "invalid_parameter",
                                   "page and sort are not parameters of the queue list: it is in "
                                   "name order, paged with cursor=");
  }
  constexpr std::string_view fp = "queues";
  const auto deadline = q.deadline();
  const auto [key_status, key] = co_await q.key.get(deadline);
  if (key_status)
    co_return store_failed(key_status);
  query::queue_list_request r;
  r.limit = paging.limit;
  if (paging.cursor) {
    auto decoded = query::decode_queue_cursor(*paging.cursor, fp, key);
    if (const auto* e = std::get_if<http::cursor_error>(&decoded))
      co_return http::cursor_error_response(*e);
    r.after = std::move(std::get<std::string>(decoded));
  }
  // A token limited to prefixes sees only its queues: filtered in the statement, so a page
  // still holds `limit` of them.
  if (req.caller)
    r.prefixes = req.caller->prefixes;
  const auto listed = co_await q.queues.queues(r, deadline);
  if (listed.status)
    co_return store_failed(listed.status);
  std::vector<std::string> items;
  items.reserve(listed.items.size());
  const auto time_or_null = [](const std::optional<std::int64_t>& us) {
    return us ? json(query::format_time_us(*us)) : json(nullptr);
  };
  for (const auto& s : listed.items) {
    items.push_back(json{{"queue", s.queue},
                         {"total", count_json(s.total)},
                         {"totalIsEstimate", s.total.is_estimate},
                         {"unpublished", count_json(s.unpublished)},
                         {"unpublishedIsEstimate", s.unpublished.is_estimate},
                         {"deadLettered", count_json(s.dead_lettered)},
                         {"deadLetteredIsEstimate", s.dead_lettered.is_estimate},
                         {"firstEventTime", time_or_null(s.first_event_us)},
                         {"lastEventTime", time_or_null(s.last_event_us)}}
                        .dump());
  }
  std::optional<std::string> next;
  if (listed.more)
    next = query::encode_queue_cursor(listed.items.back().queue, fp, key);
  co_return http::response::json(200, http::list_body(items, r.limit, next));
}

json optional_int(const std::optional<std::int64_t>& v) {
  return v ? json(*v) : json(nullptr);
}

json optional_ms(const std::optional<std::int64_t>& ms) {
  return ms ? json(format_rfc3339_ms(*ms)) : json(nullptr);
}

// What the delivery tables say, in one word: dead_lettered, retry_scheduled, delivered,
// attempted (an attempt whose outcome was not final) or no_attempts (none recorded: not
// delivered yet, or its attempts are older than DELIVERY_ATTEMPTS_RETENTION_HOURS).
std::string_view delivery_state(const query::subscription_state& s) {
  if (s.dead_reason)
    return "dead_lettered";
  if (s.retry_due_ms)
    return "retry_scheduled";
  if (s.last_outcome && *s.last_outcome == "delivered")
    return "delivered";
  if (s.attempts > 0)
    return "attempted";
  return "no_attempts";
}

asio::awaitable<http::response> get_message(query_state& q, http::request& req) {
  const auto it = req.params.find("id");
  std::optional<uuid> id;
  if (it != req.params.end()) {
    if (const auto text = percent_decode(it->second))
      id = uuid::parse(*text);
  }
  if (!id) {
    co_return http::error_response(
        400, "invalid_id",
        "the message id must be a UUID, e.g. 01890a5d-ac96-774b-bcce-b302099a8057");
  }
  const auto state = co_await q.states.read(*id, q.deadline());
  if (state.status)
    co_return store_failed(state.status);
  // A message of a queue the caller's prefixes do not cover is answered as missing: a 403
  // would tell the caller that the id exists in another queue.
  // An async proxy request's message holds the client's headers for the target (its
  // Authorization among them): only a caller that may poll the request (write) sees it.
  const bool async_request = state.message && state.message->queue.starts_with("@async.") &&
                             req.caller && !req.caller->may(http::access::write);
  if (!state.message || async_request ||
      (req.caller && !req.caller->covers(state.message->queue))) {
    co_return http::error_response(404, "message_not_found", "no message " + id->to_string());
  }
  json subscriptions = json::array();
  for (const auto& s : state.subscriptions) {
    json dead = nullptr;
    if (s.dead_reason) {
      dead = json{{"reason", *s.dead_reason},
                  {"attempts", optional_int(s.dead_attempts)},
                  {"lastStatus", optional_int(s.dead_last_status)},
                  {"deadAt", optional_ms(s.dead_at_ms)}};
    }
    json retry = nullptr;
    if (s.retry_due_ms) {
      retry = json{{"attempt", optional_int(s.retry_attempt)},
                   {"dueAt", optional_ms(s.retry_due_ms)},
                   {"origin", s.retry_origin ? json(*s.retry_origin) : json(nullptr)}};
    }
    subscriptions.push_back(
        json{{"subscription", s.subscription},
             {"exists", s.subscribed},
             {"state", delivery_state(s)},
             {"attempts", s.attempts},
             {"lastAttemptAt", optional_ms(s.last_attempt_ms)},
             {"lastOutcome", s.last_outcome ? json(*s.last_outcome) : json(nullptr)},
             {"lastStatus", optional_int(s.last_status)},
             {"retry", retry},
             {"deadLetter", dead}});
  }
  const json publish = {{"state", state.unpublished ? "pending" : "published"},
                        {"storedAt", format_rfc3339_ms(state.stored_ms)}};
  std::string body = message_json(*state.message, true);
  body.pop_back();
  body += ",\"publish\":";
  body += publish.dump();
  body += ",\"delivery\":{\"subscriptions\":";
  body += subscriptions.dump();
  body += ",\"attempts\":\"/api/v1/messages/" + id->to_string() + "/deliveries\"}}";
  co_return http::response::json(200, std::move(body));
}

http::route_options read_route(std::string resource_param) {
  http::route_options o;
  o.required = http::access::read;
  o.resource_param = std::move(resource_param);
  return o;
}

}  // namespace

void add_query_routes(http::router& routes, store::pg_pool& pool, query::page_limits limits,
                      std::chrono::milliseconds statement_timeout) {
  const auto q = std::make_shared<query_state>(query_state{
      query::message_reader(pool), query::queue_reader(pool), query::message_state_reader(pool),
      query::cursor_key(pool), limits, statement_timeout});
  routes.add(
      "GET", "/api/v1/queues", "/api/v1/queues",
      [q](http::request& req) { return list_queues(*q, req); }, read_route(""));
  routes.add(
      "GET", "/api/v1/queues/{queue}/partitions", "/api/v1/queues/{queue}/partitions",
      [q](http::request& req) { return list_partitions(*q, req); }, read_route("queue"));
  routes.add(
      "GET", "/api/v1/queues/{queue}/messages", "/api/v1/queues/{queue}/messages",
      [q](http::request& req) { return list_messages(*q, req); }, read_route("queue"));
  routes.add(
      "GET", "/api/v1/messages/{id}", "/api/v1/messages/{id}",
      [q](http::request& req) { return get_message(*q, req); }, read_route(""));
}

}  // namespace sluice::api
