#pragma once

#include <chrono>
#include <string>
#include <system_error>
#include <tuple>

#include "sluice/core/uuid.hpp"
#include "sluice/http/message.hpp"
#include "sluice/store/pg_pool.hpp"

#include <boost/asio/awaitable.hpp>

namespace sluice::requests {

// What PostgreSQL knows of an async request.
struct request_state {
  enum class kind { unknown, pending, done, failed };
  kind what = kind::unknown;
  std::string response;  // done: response_json's text (as jsonb gives it back)
  std::string error;     // failed: error_json's text
  // The service of the request's async queue (`@async.<service>`); empty when its message is
  // not (or no longer) in sluice_messages.
  std::string service;
};

// Reads a request's state: its outcome (sluice_rpc_responses), else whether the request is a
// message of an async queue (sluice_messages: accepted and stored, waiting in RabbitMQ or at a
// worker). One round trip.
class request_status_reader {
 public:
  request_status_reader(store::pg_pool& pool, std::chrono::milliseconds statement_timeout);

  boost::asio::awaitable<std::tuple<std::error_code, request_state>> read(const uuid& id);

 private:
  store::pg_pool& pool_;
  std::chrono::milliseconds statement_timeout_;
};

// The answer of GET /api/v1/requests/{id}:
//   200 {"id":…,"status":"pending"} | {"id":…,"status":"done","response":{…}} |
//       {"id":…,"status":"failed","error":{"code":…,"message":…}}
//   404 request_not_found: PostgreSQL answered and knows no such request, and this instance's
//       file buffer holds nothing still to be replayed
//   503 db_unavailable + Retry-After: PostgreSQL did not answer. Requests accepted meanwhile are
//       in the file buffer, but its records are not indexed by id, so no honest answer exists
//       until PostgreSQL is back (the request itself is safe and is answered later).
//   503 replay_pending + Retry-After: PostgreSQL knows no such request, but this instance's
//       file buffer still holds records accepted during an outage that are not replayed yet;
//       the id may be one of them. (Records in another instance's buffer are not visible here:
//       until that instance replays them, this one answers 404 for them.)
http::response status_answer(const std::string& id, std::error_code read_error,
                             const request_state& state, bool buffer_unreplayed);

}  // namespace sluice::requests
