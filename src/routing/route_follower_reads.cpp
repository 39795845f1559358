#include <charconv>

#include "sluice/routing/route_follower.hpp"

namespace sluice::routing {
namespace asio = boost::asio;

namespace {

asio::awaitable<std::pair<store::statement_status, std::int64_t>> current_version_on(
    store::pg_connection& conn, store::clock::time_point deadline) {
  const auto r =
      co_await conn.execute("SELECT version FROM sluice_route_registry WHERE id = 1", deadline);
  if (r.ec)
    co_return std::pair{store::status_of(r), std::int64_t{0}};
  std::int64_t version = 0;
  if (r.rows.size() != 1 || r.rows[0].empty() || !r.rows[0][0]) {
    store::statement_status bad;
    bad.ec = std::make_error_code(std::errc::bad_message);
    bad.message = "sluice_route_registry has no version row";
    co_return std::pair{bad, std::int64_t{0}};
  }
  const auto& text = *r.rows[0][0];
  std::from_chars(text.data(), text.data() + text.size(), version);
  co_return std::pair{store::statement_status{}, version};
}

}  // namespace

// In a file of its own: a unit test that injects its reads links without route_store.
route_follower_reads default_reads() {
  route_follower_reads reads;
  reads.current_version = current_version_on;
  reads.events_since = [](store::pg_connection& conn, std::int64_t after, std::size_t limit,
                          store::clock::time_point deadline) {
    return route_store::events_since(conn, after, limit, deadline);
  };
  return reads;
}

}  // namespace sluice::routing
