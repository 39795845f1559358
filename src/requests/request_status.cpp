#include "sluice/requests/request_status.hpp"

#include <nlohmann/json.hpp>

namespace sluice::requests {
namespace asio = boost::asio;

namespace {
// One row whatever exists: the outcome if any, and the async queue of the message with the id
// (NULL without one): its service is what the caller's prefixes must cover.
constexpr std::string_view read_sql = R"sql(
SELECT r.status, r.response::text, r.error::text,
       (SELECT m.queue FROM sluice_messages m
         WHERE m.id = $1::uuid AND starts_with(m.queue, '@async.') LIMIT 1)
  FROM (SELECT $1::uuid AS id) k
  LEFT JOIN sluice_rpc_responses r ON r.id = k.id)sql";
}  // namespace

request_status_reader::request_status_reader(store::pg_pool& pool,
                                             std::chrono::milliseconds statement_timeout)
    : pool_(pool), statement_timeout_(statement_timeout) {}

asio::awaitable<std::tuple<std::error_code, request_state>> request_status_reader::read(
    const uuid& id) {
  request_state state;
  store::pg_statement s{.sql = read_sql, .name = "sluice_rpc_request_status"};
  s.params.add(id);
  const store::pg_result r = co_await pool_.execute(s, store::clock::now() + statement_timeout_);
  if (r.ec)
    co_return std::tuple{r.ec, state};
  if (r.rows.size() != 1 || r.rows[0].size() != 4)
    co_return std::tuple{std::make_error_code(std::errc::protocol_error), state};
  const auto& row = r.rows[0];
  constexpr std::string_view async_prefix = "@async.";
  if (row[3] && row[3]->starts_with(async_prefix))
    state.service = row[3]->substr(async_prefix.size());
  if (row[0] && *row[0] == "done") {
    state.what = request_state::kind::done;
    state.response = row[1].value_or("null");
  } else if (row[0] && *row[0] == "failed") {
    state.what = request_state::kind::failed;
    state.error = row[2].value_or("null");
  } else if (row[3]) {
    state.what = request_state::kind::pending;
  }
  co_return std::tuple{std::error_code{}, state};
}

http::response status_answer(const std::string& id, std::error_code read_error,
                             const request_state& state, bool buffer_unreplayed) {
  if (read_error) {
    return http::overloaded_response(
        503, "db_unavailable",
        "PostgreSQL is unavailable, so the request's status cannot be read now; a request "
        "accepted during the outage is kept in the file buffer and answered later",
        2);
  }
  // The id is a canonical uuid: it needs no JSON escaping.
  std::string body = R"({"id":")" + id + R"(","status":)";
  switch (state.what) {
    case request_state::kind::done:
      body += R"("done","response":)" + state.response + "}";
      return http::response::json(200, std::move(body));
    case request_state::kind::failed:
      body += R"("failed","error":)" + state.error + "}";
      return http::response::json(200, std::move(body));
    case request_state::kind::pending:
      body += R"("pending"})";
      return http::response::json(200, std::move(body));
    case request_state::kind::unknown:
      break;
  }
  if (buffer_unreplayed) {
    return http::overloaded_response(
        503, "replay_pending",
        "no such request in PostgreSQL yet, but the file buffer still holds requests accepted "
        "during an outage that are not replayed; retry shortly",
        1);
  }
  return http::error_response(404, "request_not_found", "no async request with id " + id);
}

}  // namespace sluice::requests
